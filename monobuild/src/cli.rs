//! Command-line interface of `monobuild` (clap derive; doc comments are the help).

use clap::Parser;

/// Change detection and build schedules for monorepos from git diffs and Dependencies files.
#[derive(Debug, Parser)]
#[command(name = "monobuild", version, after_help = microplatform_common::exit::EXIT_CODES_HELP)]
pub struct Cli {}
