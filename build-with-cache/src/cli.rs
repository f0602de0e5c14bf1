//! Command-line interface of `build-with-cache` (clap derive; doc comments are the help).

use clap::Parser;

/// Multi-stage container builds that reuse layers cached in a registry, with every current builder.
#[derive(Debug, Parser)]
#[command(name = "build-with-cache", version, after_help = microplatform_common::exit::EXIT_CODES_HELP)]
pub struct Cli {}
