//! The binary's commands: turn the parsed flags into the library's inputs, run it, and write the
//! result to stdout (nothing on stdout when it fails).

use anyhow::Context as _;
use monobuild::analysis::{self, Inputs, Selection, Source};
use monobuild::output::{self, Edges};

use crate::cli::{Cli, Command, Format, OutputArgs, SourceArgs};

fn source(args: &SourceArgs) -> anyhow::Result<Source> {
    Ok(if args.stdin.is_some() {
        let list =
            microplatform_common::io::read_stdin().context("reading changed paths from stdin")?;
        Source::paths_from_list(&list, args.null)
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

/// What goes to stdout, rendered only once the analysis succeeded (so an error leaves stdout empty).
enum Out<'a, T: serde::Serialize> {
    Bytes(Vec<u8>),
    Json(&'a T),
}

fn render(a: &analysis::Analysis, selected: &[bool], o: &OutputArgs) -> std::io::Result<()> {
    let format = if o.dot { Format::Dot } else { o.format };
    let text = match format {
        Format::Text => output::text(a, selected, edges(o)),
        Format::Dot => output::dot(a, selected, edges(o)),
        Format::Mermaid => output::mermaid(a, selected, edges(o)),
        Format::Json => {
            // Piped: compact, serialized on two threads.
            let doc = output::json(a, selected);
            return microplatform_common::io::write_json_stdout_compact_with(&doc, |out| {
                doc.write_compact_json(out)
            });
        }
    };
    write_out::<()>(&Out::Bytes(text.into_bytes()))
}

/// Write to stdout. JSON is streamed through the shared helper: indented on a terminal, compact
/// when piped (10k components: megabytes less to write and parse), plus a newline.
fn write_out<T: serde::Serialize>(out: &Out<'_, T>) -> std::io::Result<()> {
    use microplatform_common::io;
    match out {
        Out::Bytes(b) => io::write_stdout(b),
        Out::Json(value) => io::write_json_stdout_as(value, io::JsonLayout::PrettyOnTerminal),
    }
}

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> anyhow::Result<()> {
    if let Command::Import {
        dir,
        repo,
        branch,
        base_branch,
    } = &cli.command
    {
        let done = monobuild::import::import(dir, repo, branch, base_branch)?;
        return write_out(&Out::Json(&done))
            .map_err(monobuild::Error::Output)
            .map_err(Into::into);
    }
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
    let written = match &cli.command {
        Command::Print { output } => {
            let mut result = analysis::analyze(&inputs, &Source::Nothing)?;
            warn(&result.warnings);
            let selected = result.select(&selection(false))?;
            render(&result, &selected, output)
        }
        Command::Diff {
            output,
            source: src,
            rebuild_strong,
        } => {
            inputs.uncommitted = src.uncommitted;
            tracing::debug!("analysis starts after {:?}", started().elapsed());
            let mut result = analysis::analyze(&inputs, &source(src)?)?;
            warn(&result.warnings);
            let selected = result.select(&selection(*rebuild_strong))?;
            tracing::debug!("selected after {:?}", started().elapsed());
            let written = render(&result, &selected, output);
            tracing::debug!("written after {:?}", started().elapsed());
            // The process ends now: freeing the analysis (and the snapshot of hundreds of thousands
            // of files it keeps) piece by piece would only delay that.
            std::mem::forget(result);
            written
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
                write_out(&Out::Json(&w))
            } else {
                write_out::<()>(&Out::Bytes(output::why_text(&w).into_bytes()))
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
        Command::Import { .. } => unreachable!("handled above"),
    };
    match written {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(monobuild::Error::Output).map_err(Into::into),
    }
}

fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("monobuild: warning: {w}");
    }
}

/// When the process started (for the debug log's timings).
pub fn started() -> std::time::Instant {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *START.get_or_init(std::time::Instant::now)
}
