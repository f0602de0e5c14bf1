//! monobuild's integration tests: the binary run on real git repositories.
//!
//! One test binary for the crate (`cargo test -p monobuild --test it MODULE::` runs one former file); each module was a file of its own under `tests/`.

mod common;
mod compat;
mod errors;
mod formats;
mod git;
mod index_scan;
mod snapshot;
