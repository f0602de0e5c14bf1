//! Running a plan: the content-addressed skip, parallel cache checks, stage builds (at most `jobs` at once), cache-hit decisions, pushes and registry-side tag copies, and the JSON result.

use std::collections::BTreeSet;
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
use crate::program::{self, Action, Op, State};
use crate::registry::{ImageKey, Registry};
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
    state: State,
    warnings: Vec<String>,
    durations: Durations,
    cache_read: Vec<String>,
    cache_written: Vec<String>,
    /// Cache refs written in this run.
    written: BTreeSet<String>,
    digest: Option<String>,
}

impl Runner<'_> {
    fn warn(&mut self, msg: String) {
        tracing::warn!("{msg}");
        self.warnings.push(msg);
    }

    fn spawn_error(&self, step: &Step, e: std::io::Error) -> BuildError {
        BuildError::Spawn {
            backend: self.plan.backend.name().to_string(),
            program: step.argv[0].clone(),
            source: e,
        }
    }

    /// The commands of an action in the current state.
    fn render(&self, action: &Action) -> Vec<Step> {
        program::render(self.plan, &self.builder, &self.state, action)
    }

    /// Run a build step; a failure fails the command with the builder's code.
    async fn build(&mut self, step: &Step) -> Result<(), BuildError> {
        let r = exec(step, false)
            .await
            .map_err(|e| self.spawn_error(step, e))?;
        self.check_build(step, &r)
    }

    /// Run build steps, at most `jobs` at once, started in the given order
    /// (`BuildKit` shares the steps they have in common); the first failure
    /// fails the command and stops the builds still running.
    async fn build_parallel(&mut self, steps: &[Step], jobs: usize) -> Result<(), BuildError> {
        let mut runs = futures::stream::iter(steps.iter().map(|step| async move {
            let r = exec(step, false).await;
            (step, r)
        }))
        .buffered(jobs.max(1));
        while let Some((step, r)) = runs.next().await {
            match r {
                Ok(r) => self.check_build(step, &r)?,
                Err(e) => return Err(self.spawn_error(step, e)),
            }
        }
        Ok(())
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
    async fn cache_step(&mut self, step: &Step) -> bool {
        match exec(step, false).await {
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
        }
    }

    async fn local_key(&mut self, step: &Step) -> Option<ImageKey> {
        let r = exec(step, true).await.ok().filter(|r| r.code == 0)?;
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).ok()?;
        ImageKey::from_config(v.get("OCIv1").unwrap_or(&v))
    }

    fn read_iid(&self, i: usize) -> Result<String, BuildError> {
        let name = if self.plan.backend.engine().single_build() {
            "image.iid".to_string()
        } else {
            format!("{}.iid", self.plan.stages[i].name)
        };
        let iid = self.plan.tmp.join(name);
        Ok(std::fs::read_to_string(&iid)
            .map_err(|e| BuildError::Io {
                path: iid.display().to_string(),
                source: e,
            })?
            .trim()
            .to_string())
    }

    /// Which cache refs exist (parallel HEADs), their content keys, the
    /// cache sources for the builder and buildah's layer repository.
    async fn check_caches(&mut self) {
        let plan = self.plan;
        let stage_refs: Vec<String> = plan
            .stages
            .iter()
            .flat_map(|s| s.cache_from.iter().cloned())
            .collect();
        let heads = self.registry.head_all(&stage_refs).await;
        let mut reported = BTreeSet::new();
        for (reference, res) in heads {
            match res {
                Ok(Some(d)) => {
                    self.state.existing.insert(reference, d);
                }
                Ok(None) => {}
                Err(e) => {
                    let repo = crate::refs::repository_of(&reference);
                    if reported.insert(repo.clone()) {
                        self.warn(format!(
                            "cache {repo} cannot be read, building without it: {e}"
                        ));
                    }
                }
            }
        }
        let key_futs = self.state.existing.keys().map(|k| {
            let reg = self.registry.clone();
            let k = k.clone();
            async move {
                let key = reg.image_key(&k).await;
                (k, key)
            }
        });
        for (k, res) in futures::future::join_all(key_futs).await {
            match res {
                Ok(Some(key)) => {
                    self.state.keys.insert(k, key);
                }
                Ok(None) => {}
                Err(e) => self.warn(format!("cache image {k} cannot be read: {e}")),
            }
        }
        self.cache_read = self.state.existing.keys().cloned().collect();
        for st in &plan.stages {
            tracing::info!(
                "stage {}: cache {}",
                st.name,
                st.cache_from
                    .iter()
                    .map(|c| format!(
                        "{c} {}",
                        if self.state.existing.contains_key(c) {
                            "found"
                        } else {
                            "absent"
                        }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if !plan.backend.engine().pulls_cache() {
            // The classic builder reads what it pulled (see `Op::Pull`).
            let user = plan
                .cache_read
                .iter()
                .filter(|c| !stage_refs.contains(c) && !c.contains("/layers-"));
            self.state.cache_from = stage_refs
                .iter()
                .filter(|c| self.state.existing.contains_key(*c))
                .chain(user)
                .cloned()
                .collect();
        }
        // buildah: one layer-cache repository to read (the branch's when it has
        // stage images, else the fallback's); 1.28 takes a single --cache-from.
        let (layers_read, _) = plan.buildah_layers();
        let existing = &self.state.existing;
        let fallback = plan.has_fallback()
            && !plan
                .stages
                .iter()
                .filter_map(|s| s.cache_ref.as_ref())
                .any(|c| existing.contains_key(c))
            && plan
                .stages
                .iter()
                .filter_map(|s| s.cache_from.get(1))
                .any(|c| existing.contains_key(c));
        self.state
            .layers_from
            .clone_from(&layers_read[usize::from(fallback)]);
        if plan.backend.engine().layer_cache() {
            self.cache_read.push(self.state.layers_from.clone());
        }
    }

    /// Interpret one action.
    #[allow(clippy::too_many_lines)]
    async fn run(&mut self, action: &Action) -> Result<(), BuildError> {
        let plan = self.plan;
        match &action.op {
            Op::CheckCaches => self.check_caches().await,
            Op::CheckBuildxCaches => {
                let heads = self.registry.head_all(&plan.cache_read).await;
                for (k, v) in heads {
                    match v {
                        Ok(Some(_)) => self.state.cache_from.push(k),
                        Ok(None) => {}
                        Err(e) => self.warn(format!("cache {k} cannot be read: {e}")),
                    }
                }
                self.cache_read.clone_from(&self.state.cache_from);
            }
            Op::Pull(reference) => {
                let step = self.render(action).remove(0);
                if self.cache_step(&step).await {
                    self.state.cache_from.push(reference.clone());
                } else {
                    self.cache_read.retain(|c| c != reference);
                }
            }
            Op::Build(stages) => {
                let steps = self.render(action);
                if plan.backend.engine().concurrent_stages() {
                    eprintln!(
                        "build-with-cache: building stages {} ({} at a time)",
                        stages
                            .iter()
                            .map(|&i| plan.stages[i].name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                        plan.jobs
                    );
                    self.build_parallel(&steps, plan.jobs).await?;
                } else {
                    for (step, &i) in steps.iter().zip(stages) {
                        eprintln!("build-with-cache: building stage {}", plan.stages[i].name);
                        self.build(step).await?;
                    }
                }
                for &i in stages {
                    let image = self.read_iid(i)?;
                    self.state.images.insert(i, image);
                }
            }
            Op::Buildx => {
                let step = self.render(action).remove(0);
                self.build(&step).await?;
            }
            Op::Decide(i) => {
                let st = &plan.stages[*i];
                let step = self.render(action).remove(0);
                let local = self.local_key(&step).await;
                let hit_from = local.as_ref().and_then(|lk| {
                    st.cache_from
                        .iter()
                        .find(|c| self.state.keys.get(*c).is_some_and(|k| k.matches(lk)))
                        .cloned()
                });
                if hit_from.is_none() {
                    tracing::debug!(
                        "stage {}: built {local:?}; cached: {:?}",
                        st.name,
                        st.cache_from
                            .iter()
                            .map(|c| self.state.keys.get(c))
                            .collect::<Vec<_>>()
                    );
                }
                eprintln!(
                    "build-with-cache: stage {}: cache {}",
                    st.name,
                    if hit_from.is_some() { "hit" } else { "miss" }
                );
                self.state.hits.insert(*i, hit_from);
            }
            Op::Tag { reference, .. } => {
                let step = self.render(action).remove(0);
                if self.cache_step(&step).await
                    && plan.backend.engine().local_cache_tags()
                    && !self.state.cache_from.contains(reference)
                {
                    // Later stage builds use the freshly built stage as a cache source.
                    self.state.cache_from.push(reference.clone());
                }
            }
            Op::PushCache { reference, .. } => {
                let step = self.render(action).remove(0);
                if self.cache_step(&step).await {
                    self.wrote(reference);
                }
            }
            Op::CopyHit { stage, reference } => {
                let src = self
                    .state
                    .hits
                    .get(stage)
                    .cloned()
                    .flatten()
                    .unwrap_or_default();
                match self.registry.copy(&src, reference).await {
                    Ok(_) => self.wrote(reference),
                    Err(e) => self.warn(format!("cache {reference} not written: {e}")),
                }
            }
            Op::CopyTarget(tag) => {
                let t = plan.stages.iter().position(|s| s.target).expect("target");
                let src = self
                    .state
                    .hits
                    .get(&t)
                    .cloned()
                    .flatten()
                    .unwrap_or_default();
                self.registry
                    .copy(&src, tag)
                    .await
                    .map_err(|source| BuildError::PushRegistry {
                        reference: tag.clone(),
                        source,
                    })?;
            }
            Op::PushTarget(tag) => {
                let step = self.render(action).remove(0);
                let ran = exec(&step, false)
                    .await
                    .map_err(|e| self.spawn_error(&step, e))?;
                if ran.code != 0 {
                    return Err(BuildError::Push {
                        reference: tag.clone(),
                        message: last_line(&ran),
                    });
                }
            }
            Op::Digest => {
                let first = &plan.tags[0];
                let digest = self
                    .registry
                    .head(first)
                    .await
                    .map_err(|source| BuildError::Digest {
                        reference: first.clone(),
                        source,
                    })?
                    .ok_or_else(|| {
                        BuildError::Registry(format!(
                            "{first} is not in the registry after the push"
                        ))
                    })?;
                self.digest = Some(digest);
            }
            Op::CopyImage(reference) => match self.registry.copy(&plan.tags[0], reference).await {
                Ok(_) => self.wrote(reference),
                Err(e) => {
                    // Another repository: the builder pushes it (next actions).
                    tracing::debug!("registry copy to {reference} failed ({e}); pushing");
                    self.state.copy_failed.insert(reference.clone());
                }
            },
            Op::WriteContentRef(reference) => {
                match self.registry.copy(&plan.tags[0], reference).await {
                    Ok(_) => self.cache_written.push(reference.clone()),
                    Err(e) => self.warn(format!("cannot write {reference}: {e}")),
                }
            }
        }
        Ok(())
    }

    fn wrote(&mut self, reference: &str) {
        if self.written.insert(reference.to_string()) {
            self.cache_written.push(reference.to_string());
        }
    }

    /// The result, once the program has run.
    async fn finish(mut self) -> Result<BuildResult, BuildError> {
        let plan = self.plan;
        let mut stages = Vec::new();
        for (i, st) in plan.stages.iter().enumerate() {
            if !st.tracked {
                stages.push(StageResult {
                    name: st.name.clone(),
                    cache_ref: plan.cache_write_refs.first().cloned(),
                    digest: None,
                    cache: CacheStatus::Unknown,
                    hit_from: None,
                });
                continue;
            }
            let hit = self.state.hits.get(&i).cloned().flatten();
            let own = st.cache_ref.clone();
            let digest = match own.as_ref() {
                Some(o) if self.written.contains(o) => self.registry.head(o).await.ok().flatten(),
                _ if plan.cache_write && hit != own => None,
                _ => hit
                    .as_ref()
                    .and_then(|h| self.state.existing.get(h).cloned()),
            };
            stages.push(StageResult {
                name: st.name.clone(),
                cache_ref: own,
                digest,
                cache: if hit.is_some() {
                    CacheStatus::Hit
                } else {
                    CacheStatus::Miss
                },
                hit_from: hit,
            });
        }
        let engine = plan.backend.engine();
        if engine.layer_cache() {
            let (_, layers_write) = plan.buildah_layers();
            self.cache_written.extend(layers_write);
        }
        if engine.single_build() {
            self.cache_written
                .extend(plan.cache_write_refs.iter().cloned());
        }
        Ok(BuildResult {
            schema_version: SCHEMA_VERSION,
            image: plan.tags[0].clone(),
            tags: plan.tags.clone(),
            digest: self.digest.unwrap_or_default(),
            backend: Some(plan.backend),
            skipped: false,
            content_key: plan.content_key.clone(),
            content_ref: plan.content_ref.clone(),
            content_key_inputs: plan.content_key_inputs.clone(),
            stages,
            cache_read: self.cache_read,
            cache_written: self.cache_written,
            warnings: self.warnings,
            durations: self.durations,
        })
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
        registry
            .copy(content_ref, tag)
            .await
            .map_err(|source| BuildError::PushRegistry {
                reference: tag.clone(),
                source,
            })?;
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

/// Run the plan for real: interpret its program, action by action.
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
        state: State::default(),
        warnings: Vec::new(),
        durations: Durations::default(),
        cache_read: Vec::new(),
        cache_written: Vec::new(),
        written: BTreeSet::new(),
        digest: None,
    };
    for action in &plan.actions {
        if !r.state.holds(plan, &action.when) {
            continue;
        }
        let t = Instant::now();
        r.run(action).await?;
        let took = t.elapsed().as_secs_f64();
        let d = &mut r.durations;
        match action.op {
            Op::CheckCaches | Op::CheckBuildxCaches | Op::Digest => d.check_s += took,
            Op::Pull(_) => d.pull_s += took,
            Op::Build(_) | Op::Buildx => d.build_s += took,
            Op::Decide(_) => {}
            _ => d.push_s += took,
        }
    }
    let mut res = r.finish().await?;
    res.durations.total_s = started.elapsed().as_secs_f64();
    Ok(res)
}
