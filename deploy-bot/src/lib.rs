//! `GitOps` deploys: pull requests with manifests to a cluster repo, and an agent that verifies, validates and applies what was merged.

pub mod agent;
pub mod apply;
pub mod error;
pub mod git;
pub mod github;
pub mod ingress;
pub mod logging;
pub mod manifests;
pub mod merge;
pub mod metrics;
pub mod names;
pub mod notify;
pub mod queue;
pub mod report;
pub mod request;
pub mod server;
pub mod smoke;
pub mod status;
pub mod tree;
pub mod validate;
pub mod webhook;

pub use error::{Error, Result};
