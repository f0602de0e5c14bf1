//! build-with-cache's integration tests: the plan and its parser, the CLI, and real builds on a real engine and registry.
//!
//! One test binary for the crate (`cargo test -p build-with-cache --test it MODULE::` runs one former file); each module was a file of its own under `tests/`.

mod builds;
mod cli;
mod common;
mod parser;
