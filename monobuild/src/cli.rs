//! Command-line interface of `monobuild` (clap derive; doc comments are the help).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use microplatform_common::cli::Shell;
use microplatform_common::exit;

/// Tool-specific notes appended to the shared exit-code table.
/// The help's epilogue: the exit codes from the one table in `common`, then notes.
pub fn after_help() -> String {
    format!(
        "{}\n{AFTER_HELP_NOTES}",
        exit::help(&[
            (exit::SUCCESS, ""),
            (
                exit::FAILURE,
                "writing the output failed; import: the repository cannot be created"
            ),
            (exit::USAGE, "bad flags or arguments"),
            (
                exit::INPUT,
                "a Dependencies line, a -f manifest line, the config file, a glob",
            ),
            (
                exit::NOT_FOUND,
                "an unknown dependency (file:line), an unknown --scope/why component, a missing base branch or commit, a missing input file",
            ),
            (
                exit::GIT,
                "not a git repository, git failed, shallow clone without the base, no commits yet",
            ),
            (
                exit::CYCLE,
                "a cycle of strong dependencies (printed with file:line of each edge)",
            ),
            (exit::INTERNAL, ""),
        ])
    )
}

const AFTER_HELP_NOTES: &str =
    "Errors are one line on stderr; nothing is written to stdout on error.
Docs: docs/monobuild.md (JSON contract, config file .monobuild.toml).";

/// Change detection and build schedules for monorepos.
///
/// A component is a directory holding a `Dependencies` file (one dependency per line, `!` for a
/// strong one); its name is its path from the current directory. `print` shows the graph or build
/// schedule, `diff` what git changes affect, `why` the path from a changed file to a component.
/// Compatible with the original monobuild's flags and text output.
#[derive(Debug, Parser)]
#[command(name = "monobuild", version, after_help = after_help(), propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Search pattern for dependency files (glob from the current directory; `**` crosses directories).
    #[arg(long, value_name = "GLOB", global = true, value_parser = glob_arg)]
    pub dependency_files: Option<String>,
    /// Read the whole graph from a full manifest file (`component: dep, !strongdep` lines, as `print --full` writes).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub file: Option<PathBuf>,
    /// Root config file (default: `.monobuild.toml` in the current directory, when present).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Run as if started in DIR.
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub directory: Option<PathBuf>,
    /// Scope the output to a component and its dependencies.
    #[arg(long, value_name = "COMPONENT", global = true)]
    pub scope: Option<String>,
    /// Only list top-level components (that nothing depends on).
    #[arg(long, global = true)]
    pub top_level: bool,
    /// Unknown dependencies are a warning (the edge is dropped) instead of an error.
    #[arg(long, global = true)]
    pub allow_unknown: bool,
    /// More logs on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `component: dep1, dep2` lines (the original's format).
    Text,
    /// The versioned JSON document (docs/monobuild.md).
    Json,
    /// Graphviz DOT, changed/affected highlighted.
    Dot,
    /// Mermaid flowchart, changed/affected highlighted.
    Mermaid,
}

/// What the text and graph formats show.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Output the dependencies (every edge), not the build schedule (strong edges).
    #[arg(long)]
    pub dependencies: bool,
    /// Output every edge with `!` on strong ones (the full-manifest format read by -f).
    #[arg(long)]
    pub full: bool,
    /// Print in DOT format for Graphviz (same as --format dot).
    #[arg(long)]
    pub dot: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

/// Where the changes come from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Base branch: diff against `git merge-base BRANCH HEAD` (default: config `base_branch`, then the remote's HEAD, `main`, `master`).
    #[arg(long, value_name = "BRANCH")]
    pub base_branch: Option<String>,
    /// Main-branch mode: diff against --base-commit instead of a merge base.
    #[arg(long)]
    pub main_branch: bool,
    /// Base commit in main-branch mode.
    #[arg(long, value_name = "REV", default_value = "HEAD^1")]
    pub base_commit: String,
    /// Include uncommitted changes (staged, unstaged, untracked) and read/hash the working tree
    /// instead of HEAD. (Stdin mode always reads the working tree.)
    #[arg(long)]
    pub uncommitted: bool,
    /// Changed paths on stdin are separated by NUL instead of newlines (with `-`).
    #[arg(short = 'z', long)]
    pub null: bool,
    /// `-`: read the changed paths from stdin instead of asking git.
    #[arg(value_name = "-", value_parser = ["-"])]
    pub stdin: Option<String>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the full build schedule or dependency graph.
    ///
    /// Each line is `<component>: <dependency>, <dependency>, ...`, sorted. By default only strong
    /// edges (the build schedule); --dependencies shows every edge, --full marks strong ones with `!`.
    ///
    /// Reads the working tree as it is (uncommitted changes included), like the original.
    Print {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Build schedule for the components affected by git changes.
    ///
    /// Feature-branch mode (default) diffs against the merge base with --base-branch; --main-branch
    /// diffs against --base-commit (default HEAD^1). A trailing `-` reads the changed paths from stdin.
    /// Affected = changed components plus everything depending on them (weak or strong).
    Diff {
        #[command(flatten)]
        output: OutputArgs,
        #[command(flatten)]
        source: SourceArgs,
        /// Also include the strong dependencies of the selected components.
        #[arg(long)]
        rebuild_strong: bool,
    },
    /// Explain why a component is affected: the path from a changed file to it.
    Why {
        /// The component.
        component: String,
        #[command(flatten)]
        source: SourceArgs,
        /// `text` or `json`.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Record a plain directory (no git) as a branch of a repository, printing JSON.
    ///
    /// The repository (bare, created when missing) gets a base branch with one empty
    /// commit; each import commits the directory as `git add -A` sees it onto the
    /// branch (.gitignore honoured). An unchanged directory commits nothing
    /// (`"unchanged": true`). scripts/pipeline uses it for a REPO that is not a git repo.
    Import {
        /// The directory.
        dir: std::path::PathBuf,
        /// The repository to record it in.
        #[arg(long, value_name = "DIR")]
        repo: std::path::PathBuf,
        /// The branch.
        #[arg(long, value_name = "BRANCH")]
        branch: String,
        /// The base branch created with one empty commit.
        #[arg(long, value_name = "BRANCH", default_value = "main")]
        base_branch: String,
    },
    /// Print shell completions.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// A glob given on the command line: one that does not compile is a usage error (exit 2),
/// like any bad flag value (the same glob in `.monobuild.toml` is malformed input, exit 3).
fn glob_arg(s: &str) -> Result<String, String> {
    monobuild::config::glob(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}
