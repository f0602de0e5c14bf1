//! The error type of `build-with-cache` and the exit code of each failure class.

use microplatform_common::exit;

/// Everything that can fail the command.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
    /// Dockerfile syntax error.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// Dockerfile path.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A word of the Dockerfile that cannot be expanded (unterminated quote, bad substitution).
    #[error("{path}:{line}: {context}{source}")]
    Word {
        /// Dockerfile path.
        path: String,
        /// 1-based line.
        line: usize,
        /// What the word was for (`failed to process arguments for platform: `), or empty.
        context: &'static str,
        /// The lexer's error.
        #[source]
        source: crate::words::WordError,
    },
    /// A `.dockerignore` pattern that does not compile.
    #[error("{path}:{line}: invalid pattern {pattern:?}: {}", source.kind())]
    Pattern {
        /// The `.dockerignore` file.
        path: String,
        /// 1-based line.
        line: usize,
        /// The pattern, cleaned as `BuildKit` cleans it.
        pattern: String,
        /// The glob error (its kind is shown: the pattern is already in the message).
        #[source]
        source: globset::Error,
    },
    /// `--from` (or `FROM`) names a stage that does not exist (before this one).
    #[error(
        "{path}:{line}: unknown stage {stage:?} (stages are referenced by `AS` name or index; write external images with a tag, e.g. `busybox:latest`)"
    )]
    UnknownStage {
        /// Dockerfile path.
        path: String,
        /// 1-based line.
        line: usize,
        /// The name given.
        stage: String,
    },
    /// `--target` names no stage.
    #[error("{path}: target stage {target:?} not found (stages: {known})")]
    UnknownTarget {
        /// Dockerfile path.
        path: String,
        /// Requested target.
        target: String,
        /// Known stage names.
        known: String,
    },
    /// Build context or Dockerfile missing.
    #[error("{what} {path}: {message}")]
    Missing {
        /// "build context" or "Dockerfile".
        what: &'static str,
        /// The path.
        path: String,
        /// Why.
        message: String,
    },
    /// The build context or the Dockerfile cannot be read (exit 4 when missing, else 3).
    #[error("{what} {path}: {source}")]
    ContextRead {
        /// "build context" or "Dockerfile".
        what: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A tool that fetches or unpacks a remote context (git, tar) cannot run (exit 9).
    #[error("build context {context}: cannot run {tool}: {source}")]
    ContextTool {
        /// The context as given.
        context: String,
        /// The program.
        tool: &'static str,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// A build context URL that cannot be downloaded (exit 4 for a 404/410, else 6).
    #[error(
        "build context {url}: {}",
        microplatform_common::http::describe(source)
    )]
    ContextFetch {
        /// The URL.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The Dockerfile cannot be read.
    #[error("Dockerfile {path}: {source}")]
    Dockerfile {
        /// The path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A `-t` tag that is not an image reference.
    #[error("invalid tag {tag:?}: {source}")]
    Tag {
        /// The tag as given.
        tag: String,
        /// Why it is invalid.
        #[source]
        source: microplatform_common::reference::ReferenceError,
    },
    /// The docker engine the backend needs is not usable (the CLI cannot run, or cannot reach it).
    #[error("builder {backend} is not usable: {context}{source}")]
    EngineProbe {
        /// Backend name.
        backend: String,
        /// What led to the probe (`DOCKER_HOST is set but `), or empty.
        context: &'static str,
        /// What the probe found.
        #[source]
        source: crate::backend::EngineProblem,
    },
    /// The backend probe did not finish (it panicked: a bug).
    #[error("builder auto is not usable: backend probe failed: {source}")]
    ProbeTask {
        /// The task's error.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The registry client cannot be made (its TLS set-up failed).
    #[error("registry: {source}")]
    RegistryClient {
        /// Why.
        #[source]
        source: microplatform_common::registry::RegistryError,
    },
    /// The engine (docker daemon / buildah) cannot be reached.
    #[error("builder {backend} is not usable: {message}")]
    Engine {
        /// Backend name.
        backend: String,
        /// Diagnostic line.
        message: String,
    },
    /// A build step failed in the builder: exit code 9 (an external tool failed), the builder's own code in the
    /// message, never passed through as if it were one of ours.
    #[error("{step} failed: the builder exited with code {code} (its output is above)")]
    Builder {
        /// What was running.
        step: String,
        /// The builder's exit code.
        code: i32,
    },
    /// Copying the requested image registry-side (a tag of an image already there) failed; the registry's
    /// error decides the exit code (7 refused credentials, 6 network, 4 not found).
    #[error("push of {reference} failed: {source}")]
    PushRegistry {
        /// The reference.
        reference: String,
        /// The registry's error.
        #[source]
        source: microplatform_common::registry::RegistryError,
    },
    /// The builder's push of the requested image failed (the builder's CLI says why only in text).
    #[error("push of {reference} failed: {message}")]
    Push {
        /// The reference.
        reference: String,
        /// Diagnostic.
        message: String,
    },
    /// A builder command that cannot be started (exit 9).
    #[error("builder {backend}: cannot run {program}: {source}")]
    Spawn {
        /// Backend name.
        backend: String,
        /// The program.
        program: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// The digest of the pushed image cannot be read (the registry error's exit code).
    #[error("registry: digest of {reference}: {source}")]
    Digest {
        /// The first `-t` tag.
        reference: String,
        /// The registry's error.
        #[source]
        source: microplatform_common::registry::RegistryError,
    },
    /// Registry access needed for the result failed (digest lookup, tag copy).
    #[error("registry: {0}")]
    Registry(String),
    /// Local I/O.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl exit::ExitCode for BuildError {
    fn exit_code(&self) -> u8 {
        match self {
            BuildError::Usage(_) | BuildError::Tag { .. } => exit::USAGE,
            BuildError::Syntax { .. } | BuildError::Word { .. } | BuildError::Pattern { .. } => {
                exit::INPUT
            }
            BuildError::Dockerfile { source, .. } | BuildError::ContextRead { source, .. } => {
                exit::for_read_error(source)
            }
            BuildError::ContextFetch { source, .. } => match source.status() {
                Some(s) if s.as_u16() == 404 || s.as_u16() == 410 => exit::NOT_FOUND,
                _ => exit::NETWORK,
            },
            BuildError::UnknownStage { .. }
            | BuildError::UnknownTarget { .. }
            | BuildError::Missing { .. } => exit::NOT_FOUND,
            BuildError::Engine { .. }
            | BuildError::EngineProbe { .. }
            | BuildError::Spawn { .. }
            | BuildError::ContextTool { .. }
            | BuildError::Builder { .. } => exit::EXTERNAL,
            BuildError::ProbeTask { .. } => exit::INTERNAL,
            BuildError::RegistryClient { source }
            | BuildError::PushRegistry { source, .. }
            | BuildError::Digest { source, .. } => source.exit_code(),
            // The builder's push reports its failure only as text (docker/buildah CLI output).
            BuildError::Push { message, .. } => {
                let m = message.to_ascii_lowercase();
                if ["denied", "auth", "forbidden"]
                    .iter()
                    .any(|w| m.contains(w))
                {
                    exit::AUTH
                } else {
                    exit::NETWORK
                }
            }
            BuildError::Registry(_) => exit::NETWORK,
            BuildError::Io { .. } => exit::FAILURE,
        }
    }
}

/// What `build-with-cache` prints on stdout when a build step fails in the builder (exit 9): the
/// builder's own exit code, machine-readable, beside the one-line message on stderr. Every other
/// failure leaves stdout empty (docs/conventions.md).
#[derive(Debug, serde::Serialize)]
pub struct BuilderFailure {
    /// Always 2, the build result's version.
    pub schema_version: u32,
    /// The failure.
    pub error: BuilderFailureError,
}

/// The `error` of a [`BuilderFailure`].
#[derive(Debug, serde::Serialize)]
pub struct BuilderFailureError {
    /// Always `builder`: a build step failed in the builder.
    pub class: &'static str,
    /// The step that failed (`building stage one`).
    pub step: String,
    /// The builder's own exit code.
    pub builder_exit_code: i32,
    /// Ours (9: an external tool failed).
    pub exit_code: u8,
    /// The message printed on stderr.
    pub message: String,
}

impl BuildError {
    /// The stdout document of a builder's failure; `None` for every other error.
    #[must_use]
    pub fn builder_failure(&self) -> Option<BuilderFailure> {
        let BuildError::Builder { step, code } = self else {
            return None;
        };
        Some(BuilderFailure {
            schema_version: 2,
            error: BuilderFailureError {
                class: "builder",
                step: step.clone(),
                builder_exit_code: *code,
                exit_code: microplatform_common::exit::ExitCode::exit_code(self),
                message: self.to_string(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_builder_failure_has_a_stdout_document_with_the_builders_code_and_others_none() {
        let e = BuildError::Builder {
            step: "building stage one".into(),
            code: 3,
        };
        let doc = serde_json::to_value(e.builder_failure().expect("a builder failure")).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "schema_version": 2,
                "error": {
                    "class": "builder",
                    "step": "building stage one",
                    "builder_exit_code": 3,
                    "exit_code": 9,
                    "message": "building stage one failed: the builder exited with code 3 (its output is above)"
                }
            })
        );
        let other = BuildError::Engine {
            backend: "docker".into(),
            message: "unreachable".into(),
        };
        assert!(other.builder_failure().is_none());
    }
}
