//! Shared building blocks of the microplatform tools: exit codes, JSON/file I/O, CLI helpers.

pub mod cli;
pub mod duration;
pub mod exit;
pub mod git;
pub mod http;
pub mod ingress;
pub mod io;
pub mod names;
pub mod reference;
pub mod registry;
