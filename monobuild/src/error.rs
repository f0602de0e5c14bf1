//! The library's error type: every failure names its file/line or ref and maps to one documented exit code.

use microplatform_common::exit;

/// Everything that can go wrong in `monobuild`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A manifest or input file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line of a manifest does not parse.
    #[error("{path}:{line}: {message}")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The root config file is not valid TOML of the config's shape.
    #[error("{path}:{line}: {}", toml_message(source))]
    Config {
        /// The config file.
        path: String,
        /// 1-based line number (0 when unknown).
        line: usize,
        /// The TOML error (its message is shown on one line, its position as `path:line`).
        #[source]
        source: toml::de::Error,
    },
    /// A glob pattern does not compile.
    #[error("invalid glob {pattern:?}: {}", source.kind())]
    Glob {
        /// The pattern (the patterns, comma-separated, when the set does not build).
        pattern: String,
        /// The glob error (its kind is shown: the pattern is already in the message).
        #[source]
        source: globset::Error,
    },
    /// A dependency names no known component.
    #[error(
        "{path}:{line}: unknown dependency '{dependency}' of '{component}' (no manifest found for it)"
    )]
    UnknownDependency {
        /// The manifest naming it.
        path: String,
        /// 1-based line.
        line: usize,
        /// The component whose manifest it is.
        component: String,
        /// The unknown name.
        dependency: String,
    },
    /// A component was defined twice (in a full manifest file).
    #[error("{path}:{line}: component '{component}' is defined twice (first on line {first_line})")]
    Duplicate {
        /// The file.
        path: String,
        /// 1-based line of the second definition.
        line: usize,
        /// 1-based line of the first definition.
        first_line: usize,
        /// The component.
        component: String,
    },
    /// Strong dependencies form a cycle.
    #[error("strong dependency cycle: {cycle}")]
    StrongCycle {
        /// The cycle path with `file:line` of each edge.
        cycle: String,
    },
    /// A component named on the command line does not exist.
    #[error("unknown component '{0}' (no manifest found for it)")]
    UnknownComponent(String),
    /// The directory is not inside a git repository.
    #[error("not a git repository: {0}")]
    NotARepository(String),
    /// A git command failed.
    #[error("git {command} failed: {message}")]
    Git {
        /// The git subcommand and arguments.
        command: String,
        /// git's first error line.
        message: String,
    },
    /// git could not be started.
    #[error("cannot run git: {0}")]
    GitSpawn(#[source] std::io::Error),
    /// Talking to git (its pipes) or preparing its temporary index failed.
    #[error("git {command} failed: {source}")]
    GitIo {
        /// The git subcommand, or what was being prepared for it.
        command: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The repository's index cannot be read in-process.
    #[error("git read index failed: {path}: {source}")]
    Index {
        /// The index file.
        path: String,
        /// The index decoder's error (a `gix_error::Error`, a crate monobuild does not name).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A base ref or commit does not exist.
    #[error("base {kind} '{rev}' does not exist{hint}")]
    BaseNotFound {
        /// "branch" or "commit".
        kind: &'static str,
        /// The ref as given.
        rev: String,
        /// Extra hint (may be empty).
        hint: String,
    },
    /// The repository is shallow and lacks the history needed.
    #[error(
        "shallow clone: {what} is not in the fetched history; fetch more (git fetch --unshallow, or --deepen=N)"
    )]
    Shallow {
        /// What is missing.
        what: String,
    },
    /// The repository has no commit yet.
    #[error(
        "repository has no commits yet (HEAD is unborn); commit first or pass the changed files on stdin with '-'"
    )]
    NoCommits,
    /// A directory could not be created or written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[source] std::io::Error),
}

impl Error {
    /// The process exit code for this error (see `microplatform_common::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Read { source, .. } => exit::for_read_error(source),
            Self::Malformed { .. }
            | Self::Config { .. }
            | Self::Glob { .. }
            | Self::Duplicate { .. } => exit::INPUT,
            Self::UnknownDependency { .. }
            | Self::UnknownComponent(_)
            | Self::BaseNotFound { .. } => exit::NOT_FOUND,
            Self::StrongCycle { .. } => exit::CYCLE,
            Self::NotARepository(_)
            | Self::Git { .. }
            | Self::GitSpawn(_)
            | Self::GitIo { .. }
            | Self::Index { .. }
            | Self::Shallow { .. }
            | Self::NoCommits => exit::GIT,
            Self::Output(_) | Self::Write { .. } => exit::FAILURE,
        }
    }
}

impl microplatform_common::exit::ExitCode for Error {
    fn exit_code(&self) -> u8 {
        Error::exit_code(self)
    }
}

/// A TOML error's message on one line, without its position (the error says `path:line:`).
fn toml_message(e: &toml::de::Error) -> String {
    e.message().trim().replace('\n', " ")
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
