//! What one run of build-with-cache does: the library's options, independent of the command line (`cli.rs` maps its flags onto them).

/// Builder backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// Detect: buildx plugin, else Docker with `BuildKit`, else classic Docker, else buildah.
    Auto,
    /// Docker classic builder (`DOCKER_BUILDKIT=0`), one build per stage, stage images pushed.
    Docker,
    /// Docker with `BuildKit`, inline cache metadata, stage images pushed.
    Buildkit,
    /// docker buildx with a registry cache (`mode=max`).
    Buildx,
    /// buildah bud `--layers --cache-from/--cache-to`.
    Buildah,
}

/// The options of [`crate::run`]; the flags of the same names in `--help` document them.
#[derive(Debug, Clone)]
pub struct Options {
    /// Repository holding the stage cache images (default: the repository of the first tag).
    pub cache_repo: Option<String>,
    /// Branch whose cache to read and write (default: `main`).
    pub branch: Option<String>,
    /// Also read the cache of this branch.
    pub fallback_branch: String,
    /// Read caches but never write them.
    pub no_cache_write: bool,
    /// Builder backend.
    pub backend: BackendChoice,
    /// Hash of the sources, part of the content key.
    pub source_hash: Option<String>,
    /// Skip the build when the content key's image exists.
    pub skip_existing: bool,
    /// Stage builds run at once (`BuildKit` backend; None: the engine's safe default).
    pub jobs: Option<u16>,
    /// Plan only: run nothing.
    pub dry_run: bool,
    /// `docker build` options and the build context, in order.
    pub docker_args: Vec<String>,
}
