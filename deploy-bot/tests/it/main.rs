//! deploy-bot's integration tests: the agent, request/merge/notify/report/smoke, the swarm applier and the ingress.
//!
//! One test binary for the crate (`cargo test -p deploy-bot --test it MODULE::` runs one former file); each module was a file of its own under `tests/`.

mod agent;
mod deploy_manifests;
mod hardening;
mod ingress;
mod merge;
mod notify;
mod report;
mod request;
mod smoke;
mod support;
mod swarm;
