//! stackgen's integration tests: the CLI, plans, schema validators, reference files and a real swarm.
//!
//! One test binary for the crate (`cargo test -p stackgen --test it MODULE::` runs one former file); each module was a file of its own under `tests/`.

mod cli;
mod plan;
mod references;
mod support;
mod swarm;
mod validators;
