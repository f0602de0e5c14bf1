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
    /// The root config file is invalid.
    #[error("{path}:{line}: {message}")]
    Config {
        /// The config file.
        path: String,
        /// 1-based line number (0 when unknown).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A glob pattern does not compile.
    #[error("invalid glob {pattern:?}: {message}")]
    Glob {
        /// The pattern.
        pattern: String,
        /// What is wrong.
        message: String,
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
    GitSpawn(std::io::Error),
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
    Output(std::io::Error),
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

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
