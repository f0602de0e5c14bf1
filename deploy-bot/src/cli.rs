//! Command-line interface of `deploy-bot` (clap derive; doc comments are the help).

use clap::Parser;

/// `GitOps` deploys: pull requests with manifests to a cluster repo, and an agent that verifies, validates and applies what was merged.
#[derive(Debug, Parser)]
#[command(name = "deploy-bot", version, after_help = microplatform_common::exit::EXIT_CODES_HELP)]
pub struct Cli {}
