//! The `monobuild` binary: parse arguments, run the command, map errors to exit codes.

mod cli;
mod commands;

use clap::Parser;
use microplatform_common::exit;

/// mimalloc: an analysis allocates hundreds of thousands of small strings and vectors, freed at
/// exit; glibc's allocator made `diff` on 10,000 components 11% slower (scripts/bench/monobuild.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    commands::started();
    let cli = cli::Cli::parse();
    microplatform_common::cli::init_logging(cli.global.verbose, false);
    let result = commands::run(&cli);
    tracing::debug!("done after {:?}", commands::started().elapsed());
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => exit::fail::<monobuild::Error>("monobuild", &err, exit::INTERNAL),
    }
}
