//! The library's error type: every failure names its place (file, line, key or field) and knows its exit code.

use microplatform_common::exit;

/// Everything that can go wrong in `stackgen`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{path}: cannot write: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The stack file does not parse (YAML syntax, unknown key, wrong type).
    #[error("{path}:{line}:{column}: {message}")]
    StackSyntax {
        /// The stack file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, starting with the key: the parser's message without its position
        /// (given above), or the duplicate key.
        message: String,
        /// The parser's error (boxed: it is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A regular expression of the stack file that does not compile.
    #[error(
        "{path}:{line}:{column}: {key}: `{}` is not a regular expression: {}",
        pattern.escape_debug(),
        last_line(source)
    )]
    StackRegex {
        /// The stack file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The dotted key (`services.api.smoke.body`).
        key: String,
        /// The expression as written.
        pattern: String,
        /// The regex error (its last line is shown: the rest draws the expression again).
        #[source]
        source: regex::Error,
    },
    /// The stack file parses but a value is invalid.
    #[error("{path}:{line}:{column}: {key}: {message}")]
    StackInvalid {
        /// The stack file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The dotted key (`services.api.ports[0].port`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// `--env` names no environment of the stack file.
    #[error("unknown environment `{name}` (valid: {valid})")]
    UnknownEnvironment {
        /// The name asked for.
        name: String,
        /// The environments declared, comma-separated.
        valid: String,
    },
    /// A branch name that leaves nothing once slugged.
    #[error("branch `{branch}` has no letters or digits, so it cannot name an environment")]
    EmptyBranch {
        /// The branch.
        branch: String,
    },
    /// An environment has no host template, so it has no URL.
    #[error("environment `{env}` has no `host`, so it has no URL")]
    NoHost {
        /// The environment.
        env: String,
    },
    /// A rendered name (namespace, host) is not valid.
    #[error("environment `{env}`: {what} `{value}` {message}")]
    Render {
        /// The environment.
        env: String,
        /// `namespace` or `host`.
        what: &'static str,
        /// The rendered value.
        value: String,
        /// Why it is invalid.
        message: String,
    },
    /// The schedule JSON is malformed or of another version.
    #[error("schedule: {field}: {message}")]
    Schedule {
        /// The JSON path of the field (`schedule.jobs[3].needs`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The schedule's job graph is invalid (unknown dependency, cycle).
    #[error("schedule: {field}: {message}")]
    Graph {
        /// The JSON path of the field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Two jobs whose names give the same Argo task name, or names Argo cannot take.
    #[error("workflow: {message}")]
    Naming {
        /// What collides or is invalid.
        message: String,
    },
    /// The schedule is not JSON.
    #[error("schedule: line {} column {}: not JSON: {source}", source.line(), source.column())]
    ScheduleJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A step output of a run (`stackgen summary`) that is not JSON.
    #[error("{path}: not JSON: {source}")]
    Json {
        /// The file.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A step output of a run (`stackgen summary`) that is not what the step writes.
    #[error("{path}: {message}")]
    Input {
        /// The file (with `:line` for JSON Lines).
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A bad option value.
    #[error("{option}: {message}")]
    Usage {
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The process exit code for this error (see `microplatform_common::exit`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                exit::NOT_FOUND
            }
            Error::Read { .. }
            | Error::StackSyntax { .. }
            | Error::Schedule { .. }
            | Error::ScheduleJson { .. }
            | Error::Json { .. }
            | Error::Input { .. } => exit::INPUT,
            Error::Write { .. } => exit::FAILURE,
            Error::StackInvalid { .. }
            | Error::StackRegex { .. }
            | Error::Render { .. }
            | Error::Naming { .. } => exit::VALIDATION,
            Error::UnknownEnvironment { .. } | Error::NoHost { .. } => exit::NOT_FOUND,
            Error::EmptyBranch { .. } | Error::Usage { .. } => exit::USAGE,
            Error::Graph { .. } => exit::CYCLE,
        }
    }
}

impl exit::ExitCode for Error {
    fn exit_code(&self) -> u8 {
        Error::exit_code(self)
    }
}

/// The last line of a regex error: the rest of its text draws the expression with a caret.
fn last_line(e: &regex::Error) -> String {
    e.to_string()
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
