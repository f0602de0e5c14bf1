//! A client for the OCI distribution (Docker registry v2) API: manifests by tag or digest, auth as docker does it, retries, connection reuse.
//!
//! - `Accept` always lists the OCI index, OCI manifest, Docker manifest list
//!   and Docker v2 manifest types (with fewer, registries answer 404 or
//!   convert to schema 1, which has another digest).
//! - The digest is `Docker-Content-Digest`, else the sha256 of the body.
//! - Credentials come from `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`
//!   or `~/.docker/config.json` (`auths`, `credsStore`, `credHelpers`).
//!   Basic auth and the Bearer token flow (realm, service, scope; `token` or
//!   `access_token`) are supported; a token is cached per registry and scope.
//! - Plain HTTP is used only for loopback and `localhost` registries and for
//!   hosts listed in [`ClientOptions::insecure_registries`]; HTTPS otherwise.
//! - Timeouts, connection failures, 429 (honouring `Retry-After`) and 5xx are
//!   retried with exponential backoff and jitter.
//! - Images are copied by digest between repositories and registries
//!   ([`copy`]: blob mounts, streamed blob copies, manifests with their exact
//!   bytes) to a [`Destination`] (`REGISTRY[/PREFIX]`, the one mapping rule).

mod auth;
mod client;
pub mod copy;
pub mod credentials;
pub mod destination;

pub use client::RegistryClient;
pub use copy::{BlobTransfer, CopiedImage, Copier, CopyStats, Mount};
pub use credentials::Credential;
pub use destination::{Destination, DestinationError};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::exit;
use crate::reference::ReferenceError;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The `Accept` header sent for every manifest request.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether a media type is a multi-platform index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// What a manifest HEAD (or GET) says about a tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// `sha256:...` of the manifest bytes.
    pub digest: String,
    /// The manifest's media type (`Content-Type`).
    pub media_type: String,
    /// The manifest size in bytes, when known.
    pub size: Option<u64>,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (host or host:port) to talk to over plain HTTP, besides
    /// loopback addresses and `localhost`.
    pub insecure_registries: Vec<String>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// Timeout of connecting.
    pub connect_timeout: Duration,
    /// How many times a failed request is retried (timeouts, connection
    /// errors, 429, 5xx).
    pub max_retries: u32,
    /// The first backoff delay; doubled each retry, with jitter.
    pub retry_base_delay: Duration,
    /// The longest delay between retries (also caps `Retry-After`).
    pub max_retry_delay: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Auth files to read; `None` means the docker defaults
    /// ([`credentials::default_auth_files`]).
    pub auth_files: Option<Vec<PathBuf>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 4,
            retry_base_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(30),
            user_agent: concat!("microplatform-tools/", env!("CARGO_PKG_VERSION")).to_string(),
            auth_files: None,
        }
    }
}

/// A platform `os/arch[/variant]`, as in `--platform linux/arm64/v8`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture, e.g. `amd64`.
    pub architecture: String,
    /// Variant, e.g. `v7`.
    pub variant: Option<String>,
}

impl Platform {
    /// Parse `os/arch[/variant]` (architecture aliases such as `x86_64` and
    /// `aarch64` are normalised as containerd does).
    pub fn parse(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let bad = || format!("invalid platform {s:?}: expected os/arch[/variant]");
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(bad());
        }
        let (architecture, default_variant) = normalize_arch(&parts[1].to_ascii_lowercase());
        let variant = parts
            .get(2)
            .map(|v| v.to_ascii_lowercase())
            .or(default_variant);
        Ok(Self {
            os: parts[0].to_ascii_lowercase(),
            architecture,
            variant,
        })
    }

    /// Whether a manifest-list entry's platform matches this one.
    pub fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let (arch, default_variant) = normalize_arch(&architecture.to_ascii_lowercase());
        if self.os != os.to_ascii_lowercase() || self.architecture != arch {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have = variant.map(str::to_ascii_lowercase).or(default_variant);
                have.as_deref() == Some(want.as_str())
                    || (have.is_none() && self.architecture == "arm64" && want == "v8")
            }
        }
    }
}

/// containerd's architecture normalisation: `(arch, implied variant)`.
fn normalize_arch(arch: &str) -> (String, Option<String>) {
    match arch {
        "i386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), None),
        "aarch64" | "arm64" => ("arm64".into(), None),
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        other => (other.to_string(), None),
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What went wrong talking to a registry. Every variant names the URL.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    /// The repository, tag, digest or platform does not exist (exit 4).
    #[error("{what} not found at {url}{}", code_suffix(code.as_deref()))]
    NotFound {
        /// The URL asked.
        url: String,
        /// What was missing (`manifest`, `repository`, `platform linux/arm64`).
        what: String,
        /// The registry's error code (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`).
        code: Option<String>,
    },
    /// Credentials are missing or rejected (exit 7).
    #[error("authentication failed at {url}: {message}")]
    Auth {
        /// The URL asked.
        url: String,
        /// Why (status and the registry's message).
        message: String,
    },
    /// Credentials could not be read (exit 7).
    #[error("credentials for {registry}: {message}")]
    Credentials {
        /// The registry.
        registry: String,
        /// Why.
        message: String,
    },
    /// Connection failures, timeouts, 5xx or 429 after all retries (exit 6).
    #[error("network error at {url}: {message}")]
    Network {
        /// The URL asked.
        url: String,
        /// Why.
        message: String,
    },
    /// An unexpected status or an unreadable response (exit 6).
    #[error("registry error at {url}: {message}")]
    Protocol {
        /// The URL asked.
        url: String,
        /// Why.
        message: String,
    },
    /// The HTTP exchange itself failed after all retries: connection, TLS, timeout, a body cut
    /// short (exit 6). The message is the whole cause chain, without the URL again.
    #[error("network error at {url}: {}", crate::http::describe(source))]
    Transport {
        /// The URL asked.
        url: String,
        /// The HTTP client's error (its URL removed; shared so that a cached failure can be cloned).
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// The HTTP client could not be built (TLS set-up) (exit 6).
    #[error("cannot build HTTP client: {}", crate::http::describe(source))]
    Client {
        /// The HTTP client's error.
        #[source]
        source: Arc<reqwest::Error>,
    },
    /// A response that is not the JSON document it should be (exit 6).
    #[error("registry error at {url}: {what}: {source}")]
    Json {
        /// The URL asked.
        url: String,
        /// What the document was (`invalid manifest`, `manifest is not JSON`).
        what: String,
        /// The JSON error.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// A URL built from the registry's answers (token realm, upload `Location`) that does not
    /// parse (exit 6).
    #[error("registry error at {url}: {what}: {source}")]
    Url {
        /// The URL asked (or the realm).
        url: String,
        /// What the URL was.
        what: String,
        /// The URL parser's error.
        #[source]
        source: url::ParseError,
    },
    /// A reference derived for a request (a child manifest, a tag) that is not valid (exit 6).
    #[error("registry error at {url}: {source}")]
    Reference {
        /// The URL or reference it was derived from.
        url: String,
        /// Why the reference is invalid.
        #[source]
        source: ReferenceError,
    },
    /// A credentials file or helper could not be read or run (exit 7).
    #[error("credentials for {registry}: {what}: {source}")]
    CredentialsIo {
        /// The registry (empty while the auth files are read).
        registry: String,
        /// What was done (`cannot read FILE`, `cannot run PROGRAM`).
        what: String,
        /// The I/O error.
        #[source]
        source: Arc<std::io::Error>,
    },
    /// A credentials file or helper's answer that is not valid JSON (exit 7).
    #[error("credentials for {registry}: {what}: {source}")]
    CredentialsJson {
        /// The registry (empty while the auth files are read).
        registry: String,
        /// What was read (`FILE: invalid JSON`, `PROGRAM printed invalid JSON`).
        what: String,
        /// The JSON error.
        #[source]
        source: Arc<serde_json::Error>,
    },
    /// The credentials lookup task did not finish (it panicked: a bug) (exit 70).
    #[error("credentials for {registry}: lookup task failed: {source}")]
    CredentialsTask {
        /// The registry.
        registry: String,
        /// The task's error.
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(" ({c})")).unwrap_or_default()
}

impl RegistryError {
    /// The process exit code for this error (`exit::NOT_FOUND`, `exit::AUTH`, `exit::NETWORK`).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::NotFound { .. } => exit::NOT_FOUND,
            Self::Auth { .. }
            | Self::Credentials { .. }
            | Self::CredentialsIo { .. }
            | Self::CredentialsJson { .. } => exit::AUTH,
            Self::Network { .. }
            | Self::Protocol { .. }
            | Self::Transport { .. }
            | Self::Client { .. }
            | Self::Json { .. }
            | Self::Url { .. }
            | Self::Reference { .. } => exit::NETWORK,
            Self::CredentialsTask { .. } => exit::INTERNAL,
        }
    }

    /// The URL the error happened at.
    pub fn url(&self) -> &str {
        match self {
            Self::NotFound { url, .. }
            | Self::Auth { url, .. }
            | Self::Network { url, .. }
            | Self::Protocol { url, .. }
            | Self::Transport { url, .. }
            | Self::Json { url, .. }
            | Self::Url { url, .. }
            | Self::Reference { url, .. } => url,
            Self::Credentials { registry, .. }
            | Self::CredentialsIo { registry, .. }
            | Self::CredentialsJson { registry, .. }
            | Self::CredentialsTask { registry, .. } => registry,
            Self::Client { .. } => "",
        }
    }

    /// A failed HTTP exchange at `url` (the client's error keeps its cause chain, not the URL).
    pub(crate) fn transport(url: &str, e: reqwest::Error) -> Self {
        Self::Transport {
            url: url.to_string(),
            source: Arc::new(e.without_url()),
        }
    }

    /// A response at `url` that is not the JSON `what` should be.
    pub(crate) fn json(url: &str, what: impl Into<String>, e: serde_json::Error) -> Self {
        Self::Json {
            url: url.to_string(),
            what: what.into(),
            source: Arc::new(e),
        }
    }

    /// Whether a retry may succeed: a failed exchange or a server-side failure.
    pub fn is_network(&self) -> bool {
        matches!(self, Self::Network { .. } | Self::Transport { .. })
    }

    /// The same error for `registry`, when it was raised before the registry was known
    /// (reading the auth files).
    #[must_use]
    pub(crate) fn for_registry(self, name: &str) -> Self {
        let registry = name.to_string();
        match self {
            Self::Credentials { message, .. } => Self::Credentials { registry, message },
            Self::CredentialsIo { what, source, .. } => Self::CredentialsIo {
                registry,
                what,
                source,
            },
            Self::CredentialsJson { what, source, .. } => Self::CredentialsJson {
                registry,
                what,
                source,
            },
            other => other,
        }
    }
}

impl exit::ExitCode for RegistryError {
    fn exit_code(&self) -> u8 {
        RegistryError::exit_code(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_parse_and_match() {
        let p = Platform::parse("linux/arm64").unwrap();
        assert!(p.matches("linux", "arm64", Some("v8")));
        assert!(p.matches("linux", "aarch64", None));
        assert!(!p.matches("linux", "amd64", None));
        let p = Platform::parse("linux/arm64/v8").unwrap();
        assert!(p.matches("linux", "arm64", None));
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert!(p.matches("linux", "arm", Some("v7")));
        assert!(!p.matches("linux", "arm", Some("v6")));
        assert_eq!(
            Platform::parse("linux/x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert!(Platform::parse("linux").is_err());
        assert!(Platform::parse("linux//v7").is_err());
    }
}
