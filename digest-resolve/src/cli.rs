//! Command-line interface of `digest-resolve` (clap derive; doc comments are the help).

use clap::Parser;

/// Pin every container image in Kubernetes, Argo and Compose manifests to its registry content digest.
#[derive(Debug, Parser)]
#[command(name = "digest-resolve", version, after_help = microplatform_common::exit::EXIT_CODES_HELP)]
pub struct Cli {}
