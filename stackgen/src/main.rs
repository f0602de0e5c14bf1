//! Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one `stack.yaml`.
//! The `stackgen` binary: parse arguments, run the command, map errors to exit codes.

mod cli;
mod commands;

use clap::Parser;
use microplatform_common::exit;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    microplatform_common::cli::init_logging(cli.verbose, false);
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => exit::fail::<stackgen::Error>("stackgen", &e, exit::INTERNAL),
    }
}
