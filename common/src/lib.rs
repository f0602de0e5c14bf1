//! Shared building blocks of the microplatform tools: exit codes, JSON/file I/O, CLI helpers, and (feature `testing`) the integration-test harness.

pub mod cli;
pub mod exit;
pub mod http;
pub mod ingress;
pub mod io;
pub mod reference;
pub mod registry;

#[cfg(feature = "testing")]
pub mod testing;
