//! The `deploy-bot` binary: parse arguments, run the command, map errors to exit codes.

mod cli;
mod commands;

use clap::Parser;
use deploy_bot::error::Error;
use microplatform_common::exit;

fn main() -> std::process::ExitCode {
    // deploy-bot is its own GIT_ASKPASS for git over HTTPS (see deploy_bot::git): answer git's prompt and stop.
    if std::env::var_os(deploy_bot::git::ASKPASS_ENV).is_some() {
        let prompt = std::env::args().nth(1).unwrap_or_default();
        return match deploy_bot::git::askpass_answer(&prompt) {
            Some(answer) => {
                println!("{answer}");
                std::process::ExitCode::SUCCESS
            }
            None => std::process::ExitCode::FAILURE,
        };
    }
    let cli = cli::Cli::parse();
    commands::init_logging(&cli);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return exit::report("deploy-bot", &anyhow::Error::new(e), exit::INTERNAL),
    };
    match rt.block_on(commands::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => exit::fail::<Error>("deploy-bot", &e, exit::INTERNAL),
    }
}
