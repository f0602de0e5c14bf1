//! Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one `stack.yaml`.
//!
//! No network I/O: `digest-resolve` pins the images named here, `deploy-bot` delivers.

pub mod compose;
pub mod error;
pub mod manifests;
pub mod plan;
pub mod positions;
pub mod quantity;
pub mod resolve;
pub mod schedule;
pub mod slug;
pub mod stack;
pub mod steps;
pub mod summary;
pub mod workflow;
pub mod yaml;

pub use error::{Error, Result};
