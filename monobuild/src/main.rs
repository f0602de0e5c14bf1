//! The `monobuild` binary: parse arguments, run the library, map errors to exit codes.

mod cli;

use std::io::Write as _;

use anyhow::Context as _;
use clap::Parser;
use microplatform_common::exit;
use monobuild::analysis::{self, Inputs, Selection, Source};
use monobuild::output::{self, Edges};

use cli::{Cli, Command, Format, OutputArgs, SourceArgs};

fn read_changed_paths(null: bool) -> anyhow::Result<Vec<String>> {
    let input =
        microplatform_common::io::read_stdin().context("reading changed paths from stdin")?;
    let sep = if null { '\0' } else { '\n' };
    Ok(input
        .split(sep)
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .map(|l| l.strip_prefix("./").unwrap_or(l))
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect())
}

fn source(args: &SourceArgs) -> anyhow::Result<Source> {
    Ok(if args.stdin.is_some() {
        Source::Paths(read_changed_paths(args.null)?)
    } else if args.main_branch {
        Source::Main(args.base_commit.clone())
    } else {
        Source::Feature(args.base_branch.clone())
    })
}

fn edges(o: &OutputArgs) -> Edges {
    if o.full {
        Edges::Full
    } else if o.dependencies {
        Edges::Dependencies
    } else {
        Edges::Schedule
    }
}

fn render(a: &analysis::Analysis, selected: &[bool], o: &OutputArgs) -> anyhow::Result<Vec<u8>> {
    let format = if o.dot { Format::Dot } else { o.format };
    Ok(match format {
        Format::Text => output::text(a, selected, edges(o)).into_bytes(),
        Format::Dot => output::dot(a, selected, edges(o)).into_bytes(),
        Format::Mermaid => output::mermaid(a, selected, edges(o)).into_bytes(),
        Format::Json => to_json(&output::json(a, selected))?,
    })
}

/// JSON plus a newline: indented on a terminal, compact when piped (10k components: megabytes less to write and parse).
fn to_json<T: serde::Serialize>(value: &T) -> anyhow::Result<Vec<u8>> {
    use std::io::IsTerminal as _;
    let mut v = if std::io::stdout().is_terminal() {
        serde_json::to_vec_pretty(value)
    } else {
        serde_json::to_vec(value)
    }
    .context("serializing JSON")?;
    v.push(b'\n');
    Ok(v)
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    let root = match &global.directory {
        Some(d) => d.clone(),
        None => std::env::current_dir().context("current directory")?,
    };
    let mut inputs = Inputs {
        root,
        dependency_files: global.dependency_files.clone(),
        file: global.file.clone(),
        config: global.config.clone(),
        allow_unknown: global.allow_unknown,
        uncommitted: false,
    };
    let selection = |rebuild_strong| Selection {
        scope: global.scope.clone(),
        top_level: global.top_level,
        rebuild_strong,
    };
    let out = match &cli.command {
        Command::Print { output } => {
            let mut result = analysis::analyze(&inputs, &Source::Nothing)?;
            warn(&result.warnings);
            let selected = result.select(&selection(false))?;
            render(&result, &selected, output)?
        }
        Command::Diff {
            output,
            source: src,
            rebuild_strong,
        } => {
            inputs.uncommitted = src.uncommitted;
            let mut result = analysis::analyze(&inputs, &source(src)?)?;
            warn(&result.warnings);
            let selected = result.select(&selection(*rebuild_strong))?;
            render(&result, &selected, output)?
        }
        Command::Why {
            component,
            source: src,
            format,
        } => {
            inputs.uncommitted = src.uncommitted;
            let result = analysis::analyze(&inputs, &source(src)?)?;
            warn(&result.warnings);
            let index = result.graph.find(component)?;
            let w = output::why(&result, index);
            if *format == Format::Json {
                to_json(&w)?
            } else {
                output::why_text(&w).into_bytes()
            }
        }
        Command::Completions { shell } => {
            microplatform_common::cli::print_completions::<Cli>(*shell);
            return Ok(());
        }
        Command::Man => {
            microplatform_common::cli::print_man::<Cli>().context("writing the man page")?;
            return Ok(());
        }
    };
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(monobuild::Error::Output).map_err(Into::into),
    }
}

fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("monobuild: warning: {w}");
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    microplatform_common::cli::init_logging(cli.global.verbose, false);
    match run(&cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::code_of::<monobuild::Error>(&err, exit::INTERNAL);
            exit::report("monobuild", &err, code)
        }
    }
}
