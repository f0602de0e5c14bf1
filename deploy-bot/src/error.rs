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
    /// A smoke check got a wrong answer (status or body).
    #[error("smoke check failed: {0}")]
    Smoke(String),
    /// A smoke check got no answer at all (connection refused, timeout) until its deadline.
    #[error("smoke check got no answer: {0}")]
    SmokeNoAnswer(String),
    /// A bug or an impossible state.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
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
            Self::Usage(_) => exit::USAGE,
            Self::Name { .. } | Self::Validation(_) => exit::VALIDATION,
            Self::Input { .. } => exit::INPUT,
            Self::Io { .. } | Self::Smoke(_) => exit::FAILURE,
            Self::Git { .. } => exit::GIT,
            Self::NotFound(_) => exit::NOT_FOUND,
            Self::Network { .. } | Self::SmokeNoAnswer(_) => exit::NETWORK,
            Self::Api { status, .. } => {
                if *status == 404 {
                    exit::NOT_FOUND
                } else {
                    exit::NETWORK
                }
            }
            Self::Auth { .. } => exit::AUTH,
            Self::External { .. } => exit::EXTERNAL,
            Self::Internal(_) => exit::INTERNAL,
        }
    }
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
