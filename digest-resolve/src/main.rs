//! The `digest-resolve` binary: parse arguments, run the library, map errors to exit codes.

use clap::Parser;
use digest_resolve::cli::Cli;
use microplatform_common::{cli as common_cli, exit};

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if let Some(code) = common_cli::meta_command::<Cli>(&args) {
        return code;
    }
    let cli = Cli::parse_from(args);
    if let Some(shell) = cli.completions {
        common_cli::print_completions::<Cli>(shell);
        return std::process::ExitCode::SUCCESS;
    }
    if cli.man {
        return match common_cli::print_man::<Cli>() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => exit::report(
                "digest-resolve",
                &anyhow::Error::new(e).context("writing the man page"),
                exit::FAILURE,
            ),
        };
    }
    common_cli::init_logging(cli.verbose, cli.quiet);
    match digest_resolve::run(&digest_resolve::options::Options::from(&cli)) {
        Ok(outcome) if cli.check && outcome.changed => std::process::ExitCode::from(exit::FAILURE),
        Ok(_) => std::process::ExitCode::SUCCESS,
        Err(errors) => {
            let code = digest_resolve::error::combined_exit_code(&errors);
            for e in &errors {
                eprintln!("digest-resolve: error: {e}");
            }
            std::process::ExitCode::from(code)
        }
    }
}
