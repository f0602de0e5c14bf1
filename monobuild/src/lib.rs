//! Change detection and build schedules for monorepos from git diffs and Dependencies files.
//!
//! A component is a directory holding a `Dependencies` manifest; its name is its path from the root.
//! [`analysis::analyze`] reads the manifests, asks git what changed, propagates the impact through
//! the dependency graph and hashes every component; [`output`] renders the result.

pub mod analysis;
pub mod config;
pub mod error;
pub mod git;
pub mod graph;
pub mod import;
pub mod index_scan;
pub mod manifest;
pub mod output;
pub mod snapshot;

pub use error::{Error, Result};
