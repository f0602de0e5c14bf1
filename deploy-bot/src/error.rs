//! The library's error type: every failure class with its context, and its exit code.

use microplatform_common::exit;

/// Everything that can go wrong in `deploy-bot`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or an unusable combination of them.
    #[error("{0}")]
    Usage(String),
    /// A name (namespace, path, label, sha) that is not allowed.
    #[error("invalid {what} {value:?}: {reason}")]
    Name {
        /// What the name is (namespace, path, label).
        what: &'static str,
        /// The offending value.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// Input that does not parse.
    #[error("{path}: {message}")]
    Input {
        /// File (or `<stdin>`) and position.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A JSON input (a plan, a smoke result, a request result, a promotion report) that does not parse.
    #[error("{path}: {what}: {source}")]
    Json {
        /// File (or `<stdin>`).
        path: String,
        /// What the input should have been (`not JSON`, `not a smoke result (…)`).
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// YAML that does not parse.
    #[error("{path}: {}{}", document.map(|d| format!("document {d}: ")).unwrap_or_default(), yaml_message(source))]
    Yaml {
        /// File (or `<stdin>`), with `:line:column` when the parser says where.
        path: String,
        /// The 1-based document, when the parser says where.
        document: Option<usize>,
        /// The parser's error (its message is shown without its location, given above, and without
        /// advice meant for programmers; boxed: it is large).
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// A document that cannot be written back as YAML.
    #[error("{path}: document {document}: {source}")]
    YamlOut {
        /// File (or `<stdin>`).
        path: String,
        /// The 1-based document.
        document: usize,
        /// The serializer's error (boxed: it is large).
        #[source]
        source: Box<serde_saphyr::SerializeError>,
    },
    /// A regular expression of the input that does not compile.
    #[error(
        "{path}: {field}: `{pattern}` is not a regular expression: {}",
        last_line(source)
    )]
    Regex {
        /// The input file.
        path: String,
        /// The field (`services[0].smoke.body`).
        field: String,
        /// The expression as written.
        pattern: String,
        /// The regex error (its last line is shown: the rest draws the expression again).
        #[source]
        source: regex::Error,
    },
    /// A URL option that does not parse.
    #[error("{option} {value}: {source}")]
    Url {
        /// The option (`--agent-url`).
        option: &'static str,
        /// Its value.
        value: String,
        /// The URL parser's error.
        #[source]
        source: url::ParseError,
    },
    /// The address to listen on cannot be bound.
    #[error("--listen {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A directory of inputs cannot be walked.
    #[error("{path}: {source}")]
    Walk {
        /// The directory.
        path: String,
        /// The walk's error (it names the entry).
        #[source]
        source: walkdir::Error,
    },
    /// Validation of manifests failed.
    #[error("validation failed: {0}")]
    Validation(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// git failed.
    #[error("git {args}: {message}")]
    Git {
        /// The git arguments.
        args: String,
        /// git's stderr (or the reason).
        message: String,
    },
    /// git cannot be run, or its output not read.
    #[error("git {args}: cannot run git: {source}")]
    GitIo {
        /// The git arguments.
        args: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An HTTP call failed (connection, timeout, 5xx).
    #[error("{url}: {message}")]
    Network {
        /// The URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// An HTTP exchange failed (connection, TLS, timeout, a body cut short).
    #[error("{url}: {}{hint}", microplatform_common::http::describe(source))]
    Http {
        /// The URL.
        url: String,
        /// The HTTP client's error (without the URL, said once above).
        #[source]
        source: reqwest::Error,
        /// What to check (` (is the agent running at --agent-url?)`), or empty.
        hint: &'static str,
    },
    /// An HTTP answer that is not the JSON expected.
    #[error("{url}: {what}: {source}")]
    Answer {
        /// The URL.
        url: String,
        /// What was expected (`HTTP 200: unexpected pull list`).
        what: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// No token for the forge (`--forge github`).
    #[error("{what} (needed for --forge github)")]
    NoToken {
        /// Where the token was looked for, and what was found there.
        what: String,
    },
    /// The forge refused our credentials.
    #[error("{url}: authentication failed (HTTP {status})")]
    Auth {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
    },
    /// The forge API answered with an unexpected status.
    #[error("{url}: HTTP {status}: {message}")]
    Api {
        /// The URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The API's message.
        message: String,
    },
    /// An external program (kubectl, docker) failed.
    #[error("{program}: {message}")]
    External {
        /// The program.
        program: String,
        /// Its error output.
        message: String,
    },
    /// The docker engine API failed (unreachable, or a body cut short).
    #[error(
        "docker engine API GET {url}: {}{hint}",
        microplatform_common::http::describe(source)
    )]
    EngineApi {
        /// The URL.
        url: String,
        /// The HTTP client's error (without the URL).
        #[source]
        source: reqwest::Error,
        /// What to check, or empty.
        hint: &'static str,
    },
    /// An external program's JSON output that does not parse.
    #[error("{program}: {what}: {source}")]
    ExternalJson {
        /// The program.
        program: String,
        /// What the output was (`unexpected inspect output`).
        what: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A program (docker, kubectl) cannot be run.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A smoke check got a wrong answer (status or body).
    #[error("smoke check failed: {0}")]
    Smoke(String),
    /// A smoke check got no answer at all (connection refused, timeout) until its deadline.
    #[error("smoke check got no answer: {0}")]
    SmokeNoAnswer(String),
    /// A bug or an impossible state.
    #[error("internal error: {0}")]
    Internal(String),
    /// Setting up failed in a way that is a bug or a broken host (an HTTP client, a thread, a task).
    #[error("internal error: {what}: {source}")]
    Setup {
        /// What was set up (`http client`, `blocking task`).
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// A failed HTTP exchange at `url`, with a hint of what to check (or `""`).
    pub fn http(url: impl Into<String>, e: reqwest::Error, hint: &'static str) -> Self {
        Self::Http {
            url: url.into(),
            source: e.without_url(),
            hint,
        }
    }

    /// A set-up failure (a bug or a broken host) with its cause.
    pub fn setup(
        what: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Setup {
            what,
            source: source.into(),
        }
    }

    /// An I/O error with the path it concerns.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}

impl exit::ExitCode for Error {
    fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) | Self::Url { .. } | Self::Listen { .. } => exit::USAGE,
            Self::Name { .. } | Self::Validation(_) => exit::VALIDATION,
            Self::Input { .. }
            | Self::Json { .. }
            | Self::Yaml { .. }
            | Self::YamlOut { .. }
            | Self::Regex { .. }
            | Self::Walk { .. } => exit::INPUT,
            Self::Io { .. } | Self::Smoke(_) => exit::FAILURE,
            Self::Git { .. } | Self::GitIo { .. } => exit::GIT,
            Self::NotFound(_) => exit::NOT_FOUND,
            Self::Network { .. }
            | Self::Http { .. }
            | Self::Answer { .. }
            | Self::SmokeNoAnswer(_) => exit::NETWORK,
            Self::Api { status, .. } => {
                if *status == 404 {
                    exit::NOT_FOUND
                } else {
                    exit::NETWORK
                }
            }
            Self::Auth { .. } | Self::NoToken { .. } => exit::AUTH,
            Self::External { .. }
            | Self::Spawn { .. }
            | Self::EngineApi { .. }
            | Self::ExternalJson { .. } => exit::EXTERNAL,
            Self::Internal(_) | Self::Setup { .. } => exit::INTERNAL,
        }
    }
}

/// The YAML parser's message without its location (given separately) and without advice meant for programmers.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let mut message = e.to_string();
    if let Some(i) = message.find(" at line ") {
        message.truncate(i);
    }
    if let Some(i) = message.find(", set DuplicateKeyPolicy") {
        message.truncate(i);
    }
    message
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

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
