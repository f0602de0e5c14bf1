//! What one run of digest-resolve does: the library's options, independent of the command line (`cli.rs` maps its flags onto them).

use std::path::PathBuf;

/// Input format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// By file extension (.json is JSON), else by content (a leading `{` or `[` is JSON).
    #[default]
    Auto,
    /// YAML (multi-document).
    Yaml,
    /// JSON (one or more values).
    Json,
}

/// The options of [`crate::run`]; the flags of the same names in `--help` document them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Files or directories; `-` or none = stdin.
    pub inputs: Vec<PathBuf>,
    /// Rewrite the files in place (all of them or, on any error, none).
    pub in_place: bool,
    /// Change nothing; report whether a rewrite would change something.
    pub check: bool,
    /// Only list the images found (no network, nothing rewritten).
    pub list: bool,
    /// Write a JSON report of every image occurrence here (`-` = stderr).
    pub report: Option<PathBuf>,
    /// Write a lock file of every resolved reference here.
    pub lock_output: Option<PathBuf>,
    /// Resolve from this lock file instead of the registries.
    pub lock: Option<PathBuf>,
    /// Pin to the manifest of this platform (`OS/ARCH[/VARIANT]`) instead of the index.
    pub platform: Option<String>,
    /// Write `name@sha256:…` instead of `name:tag@sha256:…`.
    pub drop_tag: bool,
    /// Check that references already pinned exist.
    pub verify_pinned: bool,
    /// Copy every image by digest into this registry (`REGISTRY[/PREFIX]`) and pin to it.
    pub promote_to: Option<String>,
    /// Write the promotion's JSON report here.
    pub promote_report: Option<PathBuf>,
    /// Registries spoken to over plain HTTP.
    pub insecure_registry: Vec<String>,
    /// Images resolved or copied at once (at least 1).
    pub concurrency: u16,
    /// Extra image paths (`KIND:PATH`).
    pub image_path: Vec<String>,
    /// Input format.
    pub format: Format,
    /// Retries of a failed registry request.
    pub retries: u32,
    /// Timeout of a registry request, in seconds.
    pub timeout: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            inputs: Vec::new(),
            in_place: false,
            check: false,
            list: false,
            report: None,
            lock_output: None,
            lock: None,
            platform: None,
            drop_tag: false,
            verify_pinned: false,
            promote_to: None,
            promote_report: None,
            insecure_registry: Vec::new(),
            concurrency: 16,
            image_path: Vec::new(),
            format: Format::Auto,
            retries: 4,
            timeout: 30,
        }
    }
}
