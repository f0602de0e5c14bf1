//! Multi-stage container builds that reuse layers cached in a registry, with every current builder.
//!
//! The flow: parse the command line ([`cli`], [`args`]), prepare the context
//! ([`context`]), parse the Dockerfile ([`dockerfile`]) into a stage graph
//! ([`graph`]), compute the content key ([`key`], [`dockerignore`]), name the
//! cache refs ([`refs`]), pick a backend ([`backend`]), plan the commands
//! ([`plan`], [`steps`]) and run them ([`run`]) with registry checks and
//! copies ([`registry`]).

pub mod args;
pub mod backend;
pub mod cli;
pub mod context;
pub mod dockerfile;
pub mod dockerignore;
pub mod error;
pub mod graph;
pub mod key;
pub mod options;
pub mod plan;
pub mod program;
pub mod refs;
pub mod registry;
pub mod run;
pub mod steps;
pub mod words;

use crate::backend::Backend;
pub use crate::error::BuildError;
use crate::options::{BackendChoice, Options};
use crate::plan::Settings;

/// What the command prints.
#[derive(Debug)]
pub enum Output {
    /// `--dry-run`.
    Plan(Box<plan::Plan>),
    /// A build (or a skip).
    Result(Box<run::BuildResult>),
}

/// Read a Dockerfile and dump its syntax tree in `BuildKit`'s parser-test format (`--dump-ast`).
pub fn dump_ast(file: &std::path::Path) -> Result<String, BuildError> {
    let bytes = std::fs::read(file).map_err(|source| BuildError::Dockerfile {
        path: file.display().to_string(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let ast = dockerfile::parse_ast(&file.display().to_string(), &text)?;
    Ok(dockerfile::dump_ast(&ast))
}

/// Run `build-with-cache` with the given options.
pub async fn run(options: Options) -> Result<Output, BuildError> {
    let opts = args::parse(&options.docker_args)?;
    for t in &opts.tags {
        microplatform_common::reference::Reference::parse(t).map_err(|source| BuildError::Tag {
            tag: t.clone(),
            source,
        })?;
    }
    let ctx = context::prepare(&opts.context, opts.file.as_deref()).await?;
    let df = dockerfile::parse(&ctx.dockerfile_display, &ctx.text, &opts.build_args)?;
    let target = graph::target_index(&df, &ctx.dockerfile_display, opts.target.as_deref())?;
    let cache_repo = options
        .cache_repo
        .clone()
        .unwrap_or_else(|| refs::default_cache_repo(&opts.tags[0]));
    if refs::split_tag(&cache_repo).1.is_some() || cache_repo.contains('@') {
        return Err(BuildError::Usage(format!(
            "--cache-repo {cache_repo:?} must be a repository without a tag or digest"
        )));
    }
    let needed = graph::needed(&df, target);
    let skip_existing = options.skip_existing || options.source_hash.is_some();
    let registry =
        registry::Registry::new().map_err(|source| BuildError::RegistryClient { source })?;
    let started = std::time::Instant::now();
    let key_inputs = if skip_existing {
        let images = key::external_images(&df, &needed);
        Some(
            key::gather(
                &registry,
                &opts,
                &ctx,
                options.source_hash.as_deref(),
                &images,
            )
            .await?,
        )
    } else {
        None
    };
    let key_s = started.elapsed().as_secs_f64();
    let mut warnings = Vec::new();
    if let Some(missing) = key_inputs
        .as_ref()
        .map(key::KeyInputs::unresolved)
        .filter(|m| !m.is_empty())
    {
        let w = format!(
            "no content key (the digest of {} is unknown): building without the skip check",
            missing.join(", ")
        );
        tracing::warn!("{w}");
        warnings.push(w);
    }
    let mut settings = Settings {
        cache_repo,
        branch: options.branch.clone().unwrap_or_else(|| "main".to_string()),
        fallback: options.fallback_branch.clone(),
        cache_write: !options.no_cache_write,
        source_hash: options.source_hash.clone(),
        skip_existing,
        key_inputs,
        jobs: 1,
    };
    let jobs_for = |tool: &backend::Tool| {
        options
            .jobs
            .map_or_else(|| tool.default_jobs(needed.len()), usize::from)
    };
    if options.dry_run {
        let tool = resolve_backend(options.backend, false).await?;
        settings.jobs = jobs_for(&tool);
        let p = plan::make(&df, target, &opts, &ctx, &tool, &settings, "<tmp>".into());
        return Ok(Output::Plan(Box::new(p)));
    }
    let content_ref = settings
        .key_inputs
        .as_ref()
        .and_then(key::KeyInputs::key)
        .map(|k| (refs::content_ref(&opts.tags[0], &k), k));
    if let Some((cref, k)) = &content_ref
        && let Some(mut res) = run::try_skip(&registry, &opts.tags, cref, k).await?
    {
        res.content_key_inputs.clone_from(&settings.key_inputs);
        res.durations.check_s += key_s;
        res.durations.total_s = started.elapsed().as_secs_f64();
        return Ok(Output::Result(Box::new(res)));
    }
    let tool = resolve_backend(options.backend, true).await?;
    settings.jobs = jobs_for(&tool);
    let tmp = tempfile::Builder::new()
        .prefix("build-with-cache-")
        .tempdir()
        .map_err(|e| BuildError::Io {
            path: std::env::temp_dir().display().to_string(),
            source: e,
        })?;
    let p = plan::make(
        &df,
        target,
        &opts,
        &ctx,
        &tool,
        &settings,
        tmp.path().to_path_buf(),
    );
    p.write_dockerfile(&ctx.dockerfile)?;
    let builder = steps::Builder {
        tool: &tool,
        opts: &opts,
        dockerfile: std::path::Path::new(&p.build_dockerfile),
        context: &ctx.dir,
        content_key: p.content_key.as_deref(),
    };
    let mut res = run::execute(&p, builder, registry).await?;
    if let Some(f) = &opts.iidfile {
        let file = match (tool.backend, p.stages.iter().find(|s| s.target)) {
            (Backend::Buildx, _) | (_, None) => "image.iid".to_string(),
            (_, Some(t)) => format!("{}.iid", t.name),
        };
        let id = std::fs::read_to_string(p.tmp.join(file)).unwrap_or_default();
        microplatform_common::io::atomic_write(std::path::Path::new(f), id.trim().as_bytes())
            .map_err(|e| BuildError::Io {
                path: f.clone(),
                source: e,
            })?;
    }
    warnings.append(&mut res.warnings);
    res.warnings = warnings;
    res.durations.check_s += key_s;
    res.durations.total_s = started.elapsed().as_secs_f64();
    Ok(Output::Result(Box::new(res)))
}

/// Resolve the backend (`probe`: check that an explicitly chosen one works;
/// else, for the dry run, only `auto` is probed). The probes (`docker
/// version`, ...) are child processes, run on the blocking pool rather than
/// on a runtime worker.
async fn resolve_backend(choice: BackendChoice, probe: bool) -> Result<backend::Tool, BuildError> {
    tokio::task::spawn_blocking(move || match choice {
        _ if probe => backend::resolve(choice),
        BackendChoice::Auto => backend::resolve(BackendChoice::Auto),
        BackendChoice::Docker => Ok(backend::unprobed(Backend::Docker)),
        BackendChoice::Buildkit => Ok(backend::unprobed(Backend::Buildkit)),
        BackendChoice::Buildx => Ok(backend::unprobed(Backend::Buildx)),
        BackendChoice::Buildah => Ok(backend::unprobed(Backend::Buildah)),
    })
    .await
    .map_err(|source| BuildError::ProbeTask { source })?
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use microplatform_common::exit::{self, ExitCode as _};

    use super::*;

    #[test]
    fn an_unreadable_dockerfile_keeps_the_io_error_as_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let e = dump_ast(&dir.path().join("Dockerfile")).unwrap_err();
        assert!(matches!(e, BuildError::Dockerfile { .. }), "{e}");
        assert_eq!(e.exit_code(), exit::NOT_FOUND);
        let io = e
            .source()
            .and_then(|c| c.downcast_ref::<std::io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_word_that_does_not_expand_keeps_the_lexers_error_as_its_cause() {
        let args = std::collections::BTreeMap::new();
        let e = dockerfile::parse("Dockerfile", "FROM ${x:?unset}\n", &args).unwrap_err();
        assert!(matches!(e, BuildError::Word { line: 1, .. }), "{e}");
        assert_eq!(e.exit_code(), exit::INPUT);
        let word = e
            .source()
            .and_then(|c| c.downcast_ref::<words::WordError>())
            .expect("the WordError is the source");
        assert!(word.message.contains("unset"), "{word}");
        assert_eq!(e.to_string(), format!("Dockerfile:1: {word}"));
    }
}
