//! Running a plan: the content-addressed skip, parallel cache checks, stage builds (at most `jobs` at once), cache-hit decisions, pushes and registry-side tag copies, and the JSON result.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsFd;
use std::process::Stdio;
use std::time::Instant;

use futures::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::backend::Backend;
use crate::error::BuildError;
use crate::key::KeyInputs;
use crate::plan::{Plan, SCHEMA_VERSION};
use crate::registry::{CopyError, ImageKey, Registry};
use crate::steps::{Builder, Step};

/// Cache outcome of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// The stage image equals a cached one (same layers and creation time).
    Hit,
    /// The stage was (partly) rebuilt.
    Miss,
    /// Not known: buildx (one build for all stages).
    Unknown,
}

/// One stage in the result.
#[derive(Debug, Clone, Serialize)]
pub struct StageResult {
    /// Stage name.
    pub name: String,
    /// Its cache ref for this branch.
    pub cache_ref: Option<String>,
    /// Digest of the stage image in the registry (the cache ref), when known.
    pub digest: Option<String>,
    /// Hit or miss.
    pub cache: CacheStatus,
    /// The ref the hit came from, if a hit.
    pub hit_from: Option<String>,
}

/// Durations in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Durations {
    /// Whole run.
    pub total_s: f64,
    /// Registry checks (skip check, cache HEADs, cache configs).
    pub check_s: f64,
    /// Pulling cache images.
    pub pull_s: f64,
    /// Builder runs.
    pub build_s: f64,
    /// Pushes and tag copies.
    pub push_s: f64,
}

/// The JSON result on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct BuildResult {
    /// JSON schema version.
    pub schema_version: u32,
    /// First tag.
    pub image: String,
    /// All tags pushed.
    pub tags: Vec<String>,
    /// The digest of the image as stored in the registry.
    pub digest: String,
    /// The backend used (`null` when skipped).
    pub backend: Option<Backend>,
    /// Whether nothing was built (an image with the same content key exists).
    pub skipped: bool,
    /// The content key (`sha256:<hex>`), when skipping is enabled and every input is known.
    pub content_key: Option<String>,
    /// `<repo>:content-<hex>` of the content key.
    pub content_ref: Option<String>,
    /// What the content key covers.
    pub content_key_inputs: Option<KeyInputs>,
    /// Stages (empty when skipped).
    pub stages: Vec<StageResult>,
    /// Cache refs that existed and were read.
    pub cache_read: Vec<String>,
    /// Cache refs written.
    pub cache_written: Vec<String>,
    /// Warnings (cache read or write failures), also logged to stderr.
    pub warnings: Vec<String>,
    /// Durations.
    pub durations: Durations,
}

/// The outcome of a step that ran.
struct Ran {
    code: i32,
    stdout: String,
    stderr_tail: Vec<String>,
}

/// Run a step: stdout goes to our stderr (or is captured), stderr is copied
/// to our stderr and its last lines kept for error messages. The child is
/// killed when the future is dropped (a failed sibling build).
async fn exec(step: &Step, capture: bool) -> Result<Ran, std::io::Error> {
    let mut cmd = tokio::process::Command::new(&step.argv[0]);
    cmd.args(&step.argv[1..])
        .envs(&step.env)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if capture {
        cmd.stdout(Stdio::piped());
    } else {
        cmd.stdout(Stdio::from(std::io::stderr().as_fd().try_clone_to_owned()?));
    }
    cmd.stderr(Stdio::piped());
    tracing::info!("running: {}", step.argv.join(" "));
    let mut child = cmd.spawn()?;
    let stderr = child.stderr.take().expect("piped stderr");
    let copy_stderr = async move {
        let mut tail: Vec<String> = Vec::new();
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = writeln!(std::io::stderr(), "{line}");
            if !line.trim().is_empty() {
                tail.push(line);
                if tail.len() > 20 {
                    tail.remove(0);
                }
            }
        }
        tail
    };
    let stdout_pipe = child.stdout.take();
    let read_stdout = async move {
        let mut stdout = String::new();
        if let Some(mut out) = stdout_pipe {
            out.read_to_string(&mut stdout).await?;
        }
        Ok::<_, std::io::Error>(stdout)
    };
    let (stderr_tail, stdout) = tokio::join!(copy_stderr, read_stdout);
    let status = child.wait().await?;
    Ok(Ran {
        code: status.code().unwrap_or(128),
        stdout: stdout?,
        stderr_tail,
    })
}

fn last_line(r: &Ran) -> String {
    r.stderr_tail
        .iter()
        .rev()
        .find(|l| !l.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| format!("exit code {}", r.code))
}

/// State of a run.
struct Runner<'a> {
    plan: &'a Plan,
    builder: Builder<'a>,
    registry: Registry,
    warnings: Vec<String>,
    durations: Durations,
    cache_written: Vec<String>,
}

impl Runner<'_> {
    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }

    fn spawn_error(&self, step: &Step, e: &std::io::Error) -> BuildError {
        BuildError::Engine {
            backend: self.plan.backend.name().to_string(),
            message: format!("cannot run {}: {e}", step.argv[0]),
        }
    }

    /// Run a build step; a failure fails the command with the builder's code.
    async fn build(&mut self, step: &Step) -> Result<(), BuildError> {
        let t = Instant::now();
        let r = exec(step, false)
            .await
            .map_err(|e| self.spawn_error(step, &e))?;
        self.durations.build_s += t.elapsed().as_secs_f64();
        self.check_build(step, &r)
    }

    /// Run build steps, at most `jobs` at once, started in the given order
    /// (`BuildKit` shares the steps they have in common); the first failure
    /// fails the command and stops the builds still running.
    async fn build_parallel(&mut self, steps: &[Step], jobs: usize) -> Result<(), BuildError> {
        let t = Instant::now();
        let mut runs = futures::stream::iter(steps.iter().map(|step| async move {
            let r = exec(step, false).await;
            (step, r)
        }))
        .buffered(jobs.max(1));
        let mut outcome = Ok(());
        while let Some((step, r)) = runs.next().await {
            let checked = match r {
                Ok(r) => self.check_build(step, &r),
                Err(e) => Err(self.spawn_error(step, &e)),
            };
            if let Err(e) = checked {
                outcome = Err(e);
                break;
            }
        }
        drop(runs);
        self.durations.build_s += t.elapsed().as_secs_f64();
        outcome
    }

    fn check_build(&self, step: &Step, r: &Ran) -> Result<(), BuildError> {
        if r.code != 0 {
            let joined = r.stderr_tail.join("\n").to_ascii_lowercase();
            let engine_down = joined.contains("cannot connect to the docker daemon")
                || joined.contains("is the docker daemon running")
                || joined.contains("error during connect");
            if engine_down {
                return Err(BuildError::Engine {
                    backend: self.plan.backend.name().to_string(),
                    message: last_line(r),
                });
            }
            return Err(BuildError::Builder {
                step: format!("building stage {}", step.stage.clone().unwrap_or_default()),
                code: r.code,
            });
        }
        Ok(())
    }

    /// Run a cache step (pull, tag, cache push): failure is a warning.
    async fn cache_step(&mut self, step: &Step, push: bool) -> bool {
        let t = Instant::now();
        let ok = match exec(step, false).await {
            Ok(r) if r.code == 0 => true,
            Ok(r) => {
                let m = format!("{} failed: {}", step.argv.join(" "), last_line(&r));
                self.warn(format!("cache not used/written: {m}"));
                false
            }
            Err(e) => {
                self.warn(format!("cache step {}: {e}", step.argv.join(" ")));
                false
            }
        };
        if push {
            self.durations.push_s += t.elapsed().as_secs_f64();
        } else {
            self.durations.pull_s += t.elapsed().as_secs_f64();
        }
        ok
    }

    async fn local_key(&mut self, image: &str) -> Option<ImageKey> {
        let step = Step {
            step: "inspect",
            stage: None,
            argv: self.builder.inspect_argv(image),
            env: self.builder.env(),
            condition: None,
        };
        let r = exec(&step, true).await.ok().filter(|r| r.code == 0)?;
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).ok()?;
        ImageKey::from_config(v.get("OCIv1").unwrap_or(&v))
    }
}

/// Whether the content key lets us skip: when `content_ref` exists, copies
/// it to every tag registry-side and returns the result.
pub async fn try_skip(
    registry: &Registry,
    tags: &[String],
    content_ref: &str,
    content_key: &str,
) -> Result<Option<BuildResult>, BuildError> {
    let t = Instant::now();
    let found = match registry.head(content_ref).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("cannot check {content_ref}: {e}; building");
            return Ok(None);
        }
    };
    let Some(digest) = found else {
        tracing::info!("{content_ref} not found: building");
        return Ok(None);
    };
    let check_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for tag in tags {
        match registry.copy(content_ref, tag).await {
            Ok(_) => {}
            Err(CopyError::BlobsMissing(_)) => {
                tracing::warn!("{tag}: in another repository without the layers; building");
                return Ok(None);
            }
            Err(CopyError::Registry(e)) => {
                return Err(BuildError::Push {
                    reference: tag.clone(),
                    message: e.to_string(),
                });
            }
        }
    }
    eprintln!(
        "build-with-cache: {content_ref} exists ({digest}); tagged {} registry-side, nothing built",
        tags.join(", ")
    );
    Ok(Some(BuildResult {
        schema_version: SCHEMA_VERSION,
        image: tags[0].clone(),
        tags: tags.to_vec(),
        digest,
        backend: None,
        skipped: true,
        content_key: Some(content_key.to_string()),
        content_ref: Some(content_ref.to_string()),
        content_key_inputs: None,
        stages: Vec::new(),
        cache_read: vec![content_ref.to_string()],
        cache_written: Vec::new(),
        warnings: Vec::new(),
        durations: Durations {
            check_s,
            push_s: t.elapsed().as_secs_f64(),
            ..Durations::default()
        },
    }))
}

/// Run the plan for real.
pub async fn execute(
    plan: &Plan,
    builder: Builder<'_>,
    registry: Registry,
) -> Result<BuildResult, BuildError> {
    let started = Instant::now();
    let mut r = Runner {
        plan,
        builder,
        registry,
        warnings: Vec::new(),
        durations: Durations::default(),
        cache_written: Vec::new(),
    };
    let backend = plan.backend;

    // 1. Which cache images exist (parallel HEADs), and their content keys.
    let t = Instant::now();
    let stage_refs: Vec<String> = plan
        .stages
        .iter()
        .flat_map(|s| s.cache_from.iter().cloned())
        .collect();
    let heads = r.registry.head_all(&stage_refs).await;
    let mut existing: BTreeMap<String, String> = BTreeMap::new();
    let mut reported = std::collections::BTreeSet::new();
    for (reference, res) in heads {
        match res {
            Ok(Some(d)) => {
                existing.insert(reference, d);
            }
            Ok(None) => {}
            Err(e) => {
                let repo = crate::refs::repository_of(&reference);
                if reported.insert(repo.clone()) {
                    r.warn(format!(
                        "cache {repo} cannot be read, building without it: {e}"
                    ));
                }
            }
        }
    }
    let key_futs = existing.keys().map(|k| {
        let reg = r.registry.clone();
        let k = k.clone();
        async move {
            let key = reg.image_key(&k).await;
            (k, key)
        }
    });
    let mut keys: BTreeMap<String, ImageKey> = BTreeMap::new();
    for (k, res) in futures::future::join_all(key_futs).await {
        match res {
            Ok(Some(key)) => {
                keys.insert(k, key);
            }
            Ok(None) => {}
            Err(e) => r.warn(format!("cache image {k} cannot be read: {e}")),
        }
    }
    r.durations.check_s = t.elapsed().as_secs_f64();
    let mut cache_read: Vec<String> = existing.keys().cloned().collect();
    for st in &plan.stages {
        tracing::info!(
            "stage {}: cache {}",
            st.name,
            st.cache_from
                .iter()
                .map(|c| format!(
                    "{c} {}",
                    if existing.contains_key(c) {
                        "found"
                    } else {
                        "absent"
                    }
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    // 2. Cache sources for the builder.
    let mut cache_from: Vec<String> = Vec::new();
    for reference in stage_refs
        .iter()
        .filter(|c| existing.contains_key(*c))
        .chain(
            plan.cache_read
                .iter()
                .filter(|c| !stage_refs.contains(c) && !c.contains("/layers-")),
        )
    {
        if backend == Backend::Docker {
            let step = r.builder.pull(reference);
            if !r.cache_step(&step, false).await {
                cache_read.retain(|c| c != reference);
                continue;
            }
        }
        cache_from.push(reference.clone());
    }
    // buildah: one layer-cache repository to read (the branch's when it has
    // stage images, else the fallback's); 1.28 takes a single --cache-from.
    let (layers_read, layers_write) = plan.buildah_layers();
    let layers_from = if plan.has_fallback()
        && !plan
            .stages
            .iter()
            .filter_map(|s| s.cache_ref.as_ref())
            .any(|c| existing.contains_key(c))
        && plan
            .stages
            .iter()
            .filter_map(|s| s.cache_from.get(1))
            .any(|c| existing.contains_key(c))
    {
        layers_read[1].clone()
    } else {
        layers_read[0].clone()
    };
    if backend == Backend::Buildah {
        cache_read.push(layers_from.clone());
    }

    // 3. Build each stage, then the target. BuildKit builds every stage
    // target on its own (sharing common steps), so up to `jobs` run at once.
    let tmp = &plan.tmp;
    let parallel = backend == Backend::Buildkit;
    if parallel {
        let steps: Vec<Step> = plan
            .stages
            .iter()
            .filter(|st| st.tracked)
            .map(|st| {
                let tags: &[String] = if st.target { &plan.tags } else { &[] };
                r.builder.build(
                    &st.name,
                    st.build_target.as_deref(),
                    &plan.stage_cache_from(st, &cache_from),
                    tags,
                    &tmp.join(format!("{}.iid", st.name)),
                    None,
                )
            })
            .collect();
        eprintln!(
            "build-with-cache: building stages {} ({} at a time)",
            steps
                .iter()
                .filter_map(|s| s.stage.clone())
                .collect::<Vec<_>>()
                .join(", "),
            plan.jobs
        );
        r.build_parallel(&steps, plan.jobs).await?;
    }
    let mut results = Vec::new();
    let mut target_hit: Option<String> = None;
    let mut target_image = String::new();
    for st in &plan.stages {
        if !st.tracked {
            results.push(StageResult {
                name: st.name.clone(),
                cache_ref: None,
                digest: None,
                cache: CacheStatus::Unknown,
                hit_from: None,
            });
            continue;
        }
        let iid = tmp.join(format!("{}.iid", st.name));
        let tags: &[String] = if st.target { &plan.tags } else { &[] };
        let buildah_cache = (backend == Backend::Buildah)
            .then_some((layers_from.as_str(), layers_write.as_deref()));
        let step = r.builder.build(
            &st.name,
            st.build_target.as_deref(),
            &plan.stage_cache_from(st, &cache_from),
            tags,
            &iid,
            buildah_cache,
        );
        if !parallel {
            eprintln!("build-with-cache: building stage {}", st.name);
            r.build(&step).await?;
        }
        let image = std::fs::read_to_string(&iid)
            .map_err(|e| BuildError::Io {
                path: iid.display().to_string(),
                source: e,
            })?
            .trim()
            .to_string();
        let own = st.cache_ref.clone().expect("tracked stage has a cache ref");
        let local = r.local_key(&image).await;
        let hit_from = local.as_ref().and_then(|lk| {
            st.cache_from
                .iter()
                .find(|c| keys.get(*c).is_some_and(|k| k.matches(lk)))
                .cloned()
        });
        if hit_from.is_none() {
            tracing::debug!(
                "stage {}: built {local:?}; cached: {:?}",
                st.name,
                st.cache_from
                    .iter()
                    .map(|c| keys.get(c))
                    .collect::<Vec<_>>()
            );
        }
        let cache = if hit_from.is_some() {
            CacheStatus::Hit
        } else {
            CacheStatus::Miss
        };
        eprintln!(
            "build-with-cache: stage {}: cache {}",
            st.name,
            if hit_from.is_some() { "hit" } else { "miss" }
        );
        if backend == Backend::Docker {
            // Later stage builds use the freshly built stage as a cache source.
            let tag = r.builder.tag(&st.name, &image, &own);
            if r.cache_step(&tag, true).await && !cache_from.contains(&own) {
                cache_from.push(own.clone());
            }
        }
        if st.target {
            target_hit.clone_from(&hit_from);
            target_image.clone_from(&image);
            results.push(StageResult {
                name: st.name.clone(),
                cache_ref: Some(own),
                digest: None,
                cache,
                hit_from,
            });
            continue;
        }
        let digest = write_stage_cache(
            &mut r,
            st.name.as_str(),
            &image,
            &own,
            hit_from.as_deref(),
            &existing,
        )
        .await;
        results.push(StageResult {
            name: st.name.clone(),
            cache_ref: Some(own),
            digest,
            cache,
            hit_from,
        });
    }

    // 4. The requested tags: registry-side copy of a cache hit, else push.
    let target = plan.stages.iter().find(|s| s.target).expect("target stage");
    let t = Instant::now();
    for tag in &plan.tags {
        let mut done = false;
        if let Some(src) = &target_hit {
            match r.registry.copy(src, tag).await {
                Ok(_) => done = true,
                Err(CopyError::BlobsMissing(_)) => {}
                Err(CopyError::Registry(e)) => {
                    return Err(BuildError::Push {
                        reference: tag.clone(),
                        message: e.to_string(),
                    });
                }
            }
        }
        if !done {
            let step = r
                .builder
                .push("push", Some(&target.name), &target_image, tag);
            let ran = exec(&step, false)
                .await
                .map_err(|e| r.spawn_error(&step, &e))?;
            if ran.code != 0 {
                return Err(BuildError::Push {
                    reference: tag.clone(),
                    message: last_line(&ran),
                });
            }
        }
    }
    r.durations.push_s += t.elapsed().as_secs_f64();
    let digest = r
        .registry
        .head(&plan.tags[0])
        .await
        .map_err(|e| BuildError::Registry(format!("digest of {}: {e}", plan.tags[0])))?
        .ok_or_else(|| {
            BuildError::Registry(format!(
                "{} is not in the registry after the push",
                plan.tags[0]
            ))
        })?;
    // The target's cache ref.
    if let Some(res) = results.iter_mut().find(|s| s.name == target.name) {
        let own = res.cache_ref.clone().unwrap_or_default();
        let hit = res.hit_from.clone();
        res.digest = if plan.cache_write && hit.as_deref() != Some(own.as_str()) {
            let t = Instant::now();
            let ok = match r.registry.copy(&plan.tags[0], &own).await {
                Ok(_) => true,
                Err(e) => {
                    // Another repository: let the builder push it.
                    tracing::debug!("registry copy to {own} failed ({e}); pushing");
                    if backend != Backend::Buildah {
                        let tag = r.builder.tag(&target.name, &target_image, &own);
                        r.cache_step(&tag, true).await;
                    }
                    let push =
                        r.builder
                            .push("push-cache", Some(&target.name), &target_image, &own);
                    r.cache_step(&push, true).await
                }
            };
            r.durations.push_s += t.elapsed().as_secs_f64();
            if ok {
                r.cache_written.push(own.clone());
                r.registry.head(&own).await.ok().flatten()
            } else {
                None
            }
        } else {
            hit.and_then(|h| existing.get(&h).cloned())
        };
    }
    if let Some(src) = &plan.content_ref {
        match r.registry.copy(&plan.tags[0], src).await {
            Ok(_) => r.cache_written.push(src.clone()),
            Err(e) => r.warn(format!("cannot write {src}: {e}")),
        }
    }
    if backend == Backend::Buildah
        && let Some(w) = &layers_write
    {
        r.cache_written.push(w.clone());
    }
    r.durations.total_s = started.elapsed().as_secs_f64();
    Ok(BuildResult {
        schema_version: SCHEMA_VERSION,
        image: plan.tags[0].clone(),
        tags: plan.tags.clone(),
        digest,
        backend: Some(backend),
        skipped: false,
        content_key: plan.content_key.clone(),
        content_ref: plan.content_ref.clone(),
        content_key_inputs: plan.content_key_inputs.clone(),
        stages: results,
        cache_read,
        cache_written: r.cache_written,
        warnings: r.warnings,
        durations: r.durations,
    })
}

/// Write the cache image of a non-target stage: on a hit from another ref a
/// registry-side copy, on a miss a push; returns the cache ref's digest.
async fn write_stage_cache(
    r: &mut Runner<'_>,
    stage: &str,
    image: &str,
    own: &str,
    hit_from: Option<&str>,
    existing: &BTreeMap<String, String>,
) -> Option<String> {
    if hit_from == Some(own) {
        return existing.get(own).cloned();
    }
    if !r.plan.cache_write {
        return hit_from.and_then(|h| existing.get(h).cloned());
    }
    let t = Instant::now();
    let ok = if let Some(src) = hit_from {
        match r.registry.copy(src, own).await {
            Ok(_) => true,
            Err(e) => {
                r.warn(format!("cache {own} not written: {e}"));
                false
            }
        }
    } else {
        if r.plan.backend != Backend::Docker && r.plan.backend != Backend::Buildah {
            let tag = r.builder.tag(stage, image, own);
            r.cache_step(&tag, true).await;
        }
        let push = r.builder.push("push-cache", Some(stage), image, own);
        r.cache_step(&push, true).await
    };
    r.durations.push_s += t.elapsed().as_secs_f64();
    if !ok {
        return None;
    }
    r.cache_written.push(own.to_string());
    r.registry.head(own).await.ok().flatten()
}

/// Run buildx (one build, registry cache, pushes itself).
pub async fn execute_buildx(
    plan: &Plan,
    builder: Builder<'_>,
    registry: Registry,
) -> Result<BuildResult, BuildError> {
    let started = Instant::now();
    let mut r = Runner {
        plan,
        builder,
        registry,
        warnings: Vec::new(),
        durations: Durations::default(),
        cache_written: Vec::new(),
    };
    let t = Instant::now();
    let heads = r.registry.head_all(&plan.cache_read).await;
    let mut read = Vec::new();
    for (k, v) in heads {
        match v {
            Ok(Some(_)) => read.push(k),
            Ok(None) => {}
            Err(e) => r.warn(format!("cache {k} cannot be read: {e}")),
        }
    }
    r.durations.check_s = t.elapsed().as_secs_f64();
    let target = plan.stages.iter().find(|s| s.target).expect("target");
    let step = r.builder.buildx(
        &target.name,
        target.build_target.as_deref(),
        &read,
        plan.cache_write_refs.first().map(String::as_str),
        &plan.tags,
        &plan.tmp.join("image.iid"),
    );
    r.build(&step).await?;
    let digest = r
        .registry
        .head(&plan.tags[0])
        .await
        .map_err(|e| BuildError::Registry(e.to_string()))?
        .ok_or_else(|| BuildError::Registry(format!("{} not found after push", plan.tags[0])))?;
    if let Some(src) = &plan.content_ref {
        match r.registry.copy(&plan.tags[0], src).await {
            Ok(_) => r.cache_written.push(src.clone()),
            Err(e) => r.warn(format!("cannot write {src}: {e}")),
        }
    }
    r.cache_written
        .extend(plan.cache_write_refs.iter().cloned());
    r.durations.total_s = started.elapsed().as_secs_f64();
    Ok(BuildResult {
        schema_version: SCHEMA_VERSION,
        image: plan.tags[0].clone(),
        tags: plan.tags.clone(),
        digest,
        backend: Some(Backend::Buildx),
        skipped: false,
        content_key: plan.content_key.clone(),
        content_ref: plan.content_ref.clone(),
        content_key_inputs: plan.content_key_inputs.clone(),
        stages: plan
            .stages
            .iter()
            .map(|s| StageResult {
                name: s.name.clone(),
                cache_ref: plan.cache_write_refs.first().cloned(),
                digest: None,
                cache: CacheStatus::Unknown,
                hit_from: None,
            })
            .collect(),
        cache_read: read,
        cache_written: r.cache_written,
        warnings: r.warnings,
        durations: r.durations,
    })
}
