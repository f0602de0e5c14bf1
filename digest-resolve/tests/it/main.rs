//! digest-resolve's integration tests: resolve, promote and the registry client against a real registry.
//!
//! One test binary for the crate (`cargo test -p digest-resolve --test it MODULE::` runs one former file); each module was a file of its own under `tests/`.

mod promote;
mod registry_client;
mod resolve;
mod yaml_as_kubectl;
