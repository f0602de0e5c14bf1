//! Errors of `digest-resolve`: each names the file, document and path of the image it is about, and knows its exit code.

use std::path::PathBuf;

use microplatform_common::exit;
use microplatform_common::reference::ReferenceError;
use microplatform_common::registry::{DestinationError, RegistryError};

/// Where an image occurs.
#[derive(Debug, Clone)]
pub struct Location {
    /// File name (`-` for stdin).
    pub file: String,
    /// 0-based document index.
    pub document: usize,
    /// Path in the document, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    /// 1-based line.
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: document {}: line {}: {}",
            self.file, self.document, self.line, self.path
        )
    }
}

/// One failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad flags or flag combinations.
    #[error("{0}")]
    Usage(String),
    /// The registry client cannot be made (its TLS set-up failed).
    #[error("{source}")]
    Client {
        /// Why.
        #[source]
        source: RegistryError,
    },
    /// The async runtime cannot be started.
    #[error("cannot start the async runtime: {source}")]
    Runtime {
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `--promote-to` is not `REGISTRY[/PREFIX]`.
    #[error("--promote-to: {source}")]
    PromoteTo {
        /// Why.
        #[source]
        source: DestinationError,
    },
    /// An image whose promoted reference would not be valid.
    #[error("{source}")]
    PromoteTarget {
        /// Why.
        #[source]
        source: DestinationError,
    },
    /// An input that is not UTF-8.
    #[error("{file}: document 0: line {line}, column 1: invalid UTF-8: {source}")]
    Utf8 {
        /// File name.
        file: String,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// Where the first invalid byte is.
        #[source]
        source: std::str::Utf8Error,
    },
    /// An input file or directory cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// YAML or JSON that does not parse.
    #[error(
        "{file}: document {document}: line {line}, column {column}: invalid {format}: {message}"
    )]
    Parse {
        /// File name.
        file: String,
        /// 0-based document index.
        document: usize,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// An image value that is not a valid reference.
    #[error("{at}: image {image:?}: {}", one_line(&.source.to_string()))]
    InvalidReference {
        /// Where.
        at: Location,
        /// The value.
        image: String,
        /// Why.
        source: ReferenceError,
    },
    /// An image value that is written in a way that cannot be rewritten in place.
    #[error("{at}: image {image:?}: {message}")]
    Unsupported {
        /// Where.
        at: Location,
        /// The value.
        image: String,
        /// Why.
        message: String,
    },
    /// The registry could not resolve an image.
    #[error("{at}: image {image:?}: {source}")]
    Resolve {
        /// Where.
        at: Location,
        /// The value.
        image: String,
        /// Why.
        source: RegistryError,
    },
    /// Copying an image to the release-candidate registry failed (`--promote-to`).
    #[error("{at}: image {image:?}: promoting to {target}: {source}")]
    Promote {
        /// Where.
        at: Location,
        /// The value.
        image: String,
        /// The target reference.
        target: String,
        /// Why.
        source: RegistryError,
    },
    /// `--lock` has no entry for an image.
    #[error("{at}: image {image:?}: {reference} is not in the lock {lock}")]
    NotInLock {
        /// Where.
        at: Location,
        /// The value.
        image: String,
        /// The normalised reference looked up.
        reference: String,
        /// The lock file.
        lock: PathBuf,
    },
    /// A lock file that cannot be read.
    #[error("lock {path}: {source}")]
    LockRead {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A lock file that is not JSON of the lock's shape.
    #[error("lock {path}: invalid lock JSON: {source}")]
    LockJson {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A lock file of another schema version or platform.
    #[error("lock {path}: {message}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// Writing an output failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code of this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) | Error::PromoteTo { .. } | Error::PromoteTarget { .. } => exit::USAGE,
            Error::Runtime { .. } => exit::INTERNAL,
            Error::Read { source, .. } | Error::LockRead { source, .. } => {
                exit::for_read_error(source)
            }
            Error::Parse { .. }
            | Error::Utf8 { .. }
            | Error::LockJson { .. }
            | Error::InvalidReference { .. }
            | Error::Unsupported { .. }
            | Error::Lock { .. } => exit::INPUT,
            Error::Client { source }
            | Error::Resolve { source, .. }
            | Error::Promote { source, .. } => source.exit_code(),
            Error::NotInLock { .. } => exit::NOT_FOUND,
            Error::Write { .. } => exit::FAILURE,
        }
    }
}

impl exit::ExitCode for Error {
    fn exit_code(&self) -> u8 {
        Error::exit_code(self)
    }
}

/// The exit code for a set of failures: the most fundamental class wins
/// (usage, input, auth, network, not found, other).
pub fn combined_exit_code(errors: &[Error]) -> u8 {
    const ORDER: [u8; 5] = [
        exit::USAGE,
        exit::INPUT,
        exit::AUTH,
        exit::NETWORK,
        exit::NOT_FOUND,
    ];
    let codes: Vec<u8> = errors.iter().map(Error::exit_code).collect();
    ORDER
        .iter()
        .copied()
        .find(|c| codes.contains(c))
        .or_else(|| codes.first().copied())
        .unwrap_or(exit::INTERNAL)
}

/// A message on one line: line breaks (from a value quoted in it) escaped.
fn one_line(s: &str) -> String {
    s.replace('\r', "\\r").replace('\n', "\\n")
}
