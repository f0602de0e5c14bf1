//! Cross-tool end-to-end tests: the toolchain on the local platform, the Argo path, renderings and the harness itself.
//!
//! One test binary for the crate (`cargo test -p microplatform-e2e --test it MODULE::` runs one former file); each module was a file of its own under `tests/`.

mod argo_events;
mod argo_executor;
mod argo_templates;
mod harness;
mod pipeline;
mod platform;
mod promotion;
mod push_to_deploy;
mod renderings;
mod toolkit_image;
