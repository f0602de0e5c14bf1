//! Command-line interface of `stackgen` (clap derive; doc comments are the help).

use clap::Parser;

/// Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one stack.yaml.
#[derive(Debug, Parser)]
#[command(name = "stackgen", version, after_help = microplatform_common::exit::EXIT_CODES_HELP)]
pub struct Cli {}
