//! CLI plumbing every tool shares: logging to stderr, shell completions and man pages from clap.

use std::io::Write;

use clap::CommandFactory;
pub use clap_complete::Shell;

/// Send `tracing` logs to stderr. `verbose` raises the level (0 = warn,
/// 1 = info, 2 = debug, 3+ = trace); `RUST_LOG` overrides it.
pub fn init_logging(verbose: u8, quiet: bool) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Write shell completions for the CLI `C` to stdout.
pub fn print_completions<C: CommandFactory>(shell: Shell) {
    let mut cmd = C::command();
    let name = cmd.get_name().to_string();
    clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
}

/// Write the roff man page of the CLI `C` to stdout.
pub fn print_man<C: CommandFactory>() -> std::io::Result<()> {
    let cmd = C::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    let mut out = std::io::stdout().lock();
    out.write_all(&buf)?;
    out.flush()
}

/// `TOOL completions SHELL` and `TOOL man` for the tools whose command line
/// is flags and operands (build-with-cache, digest-resolve), the same shape
/// as the subcommands of the others. `args` is the whole argv; returns the
/// exit code when `args[1]` is one of the two words, `None` otherwise (an
/// operand of that name is still reachable as `./man`).
pub fn meta_command<C: CommandFactory>(args: &[String]) -> Option<std::process::ExitCode> {
    let name = C::command().get_name().to_string();
    match args.get(1).map(String::as_str) {
        Some("man") if args.len() == 2 => Some(match print_man::<C>() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => crate::exit::report(
                &name,
                &anyhow::Error::new(e).context("writing the man page"),
                crate::exit::FAILURE,
            ),
        }),
        Some("completions") => {
            let shell = args.get(2).and_then(|s| s.parse::<Shell>().ok());
            if let (Some(shell), 3) = (shell, args.len()) {
                print_completions::<C>(shell);
                Some(std::process::ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "{name}: error: usage: {name} completions SHELL (bash, elvish, fish, powershell, zsh)"
                );
                Some(std::process::ExitCode::from(crate::exit::USAGE))
            }
        }
        _ => None,
    }
}
