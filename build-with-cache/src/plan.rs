//! The build plan: resolved settings, stages with their cache refs, edges, the refs to read and write, and the builder commands; printed as JSON by `--dry-run`.

use std::path::PathBuf;

use serde::Serialize;

use crate::args::BuildOptions;
use crate::backend::{Backend, Tool};
use crate::context::Prepared;
use crate::dockerfile::{Dockerfile, Source};
use crate::graph::{self, Edge};
use crate::refs;
use crate::steps::{Builder, Step};

/// Schema version of the plan and result JSON.
pub const SCHEMA_VERSION: u32 = 1;

/// One stage of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    /// Name (`AS` name, or `stage-N`).
    pub name: String,
    /// Position in the Dockerfile.
    pub index: usize,
    /// Line of its `FROM`.
    pub line: usize,
    /// The base: an image, `stage:<name>` or `scratch`.
    pub base: String,
    /// External images read with `--from`.
    pub external_images: Vec<String>,
    /// Stages it reads.
    pub depends_on: Vec<String>,
    /// Whether this is the target (the image to tag and push).
    pub target: bool,
    /// Whether it gets its own build and cache image (named stages and the target).
    pub tracked: bool,
    /// The cache image written for this stage (this branch), if tracked.
    pub cache_ref: Option<String>,
    /// The cache images read for this stage (this branch, then the fallback branch).
    pub cache_from: Vec<String>,
    /// `--target` value (`None`: the last stage, unnamed).
    #[serde(skip)]
    pub target_arg: Option<String>,
    /// Names of the stages it needs, itself included.
    #[serde(skip)]
    pub closure: Vec<String>,
}

/// The whole plan.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// JSON schema version.
    pub schema_version: u32,
    /// Always `true` when printed by `--dry-run`.
    pub dry_run: bool,
    /// The backend.
    pub backend: Backend,
    /// The program the backend runs.
    pub program: String,
    /// Context directory.
    pub context: String,
    /// Dockerfile path.
    pub dockerfile: String,
    /// First tag.
    pub image: String,
    /// All tags.
    pub tags: Vec<String>,
    /// Target stage name.
    pub target: String,
    /// Cache repository.
    pub cache_repo: String,
    /// Branch (as given).
    pub branch: String,
    /// Fallback branch.
    pub fallback_branch: String,
    /// Whether caches are written.
    pub cache_write: bool,
    /// `--source-hash`, if given.
    pub source_hash: Option<String>,
    /// `<repo>:src-<HASH>`, if a hash was given.
    pub source_ref: Option<String>,
    /// Stages the target needs, in Dockerfile order.
    pub stages: Vec<StagePlan>,
    /// Stages the target does not need (dropped by `--target`).
    pub pruned: Vec<String>,
    /// Edges among the needed stages.
    pub edges: Vec<Edge>,
    /// Cache refs (or repositories, for buildah layers) read if present.
    pub cache_read: Vec<String>,
    /// Cache refs (or repositories) written.
    pub cache_write_refs: Vec<String>,
    /// The commands, in order; `condition` says when one is conditional.
    pub commands: Vec<Step>,
    /// Where stage image ids are written (`<tmp>` in the dry run).
    #[serde(skip)]
    pub tmp: PathBuf,
}

/// Inputs of a plan.
#[derive(Debug)]
pub struct Settings {
    /// Cache repository.
    pub cache_repo: String,
    /// Branch.
    pub branch: String,
    /// Fallback branch.
    pub fallback: String,
    /// Write caches.
    pub cache_write: bool,
    /// Source hash.
    pub source_hash: Option<String>,
}

impl Plan {
    /// The buildah layer-cache repositories: (read candidates in order, written).
    #[must_use]
    pub fn buildah_layers(&self) -> (Vec<String>, Option<String>) {
        let own = refs::buildah_layers_repo(&self.cache_repo, &self.branch);
        let mut read = vec![own.clone()];
        if self.fallback_branch != self.branch {
            read.push(refs::buildah_layers_repo(
                &self.cache_repo,
                &self.fallback_branch,
            ));
        }
        (read, self.cache_write.then_some(own))
    }

    /// The cache sources for building `st`, out of `available`: its own
    /// refs first, then those of the stages it needs, then any others
    /// (user `--cache-from`); refs of stages it does not need are left out,
    /// so `BuildKit` takes each layer's metadata from its own stage image.
    #[must_use]
    pub fn stage_cache_from(&self, st: &StagePlan, available: &[String]) -> Vec<String> {
        let owner = |c: &String| {
            self.stages
                .iter()
                .find(|s| s.cache_from.contains(c))
                .map(|s| s.name.clone())
        };
        let mut out: Vec<String> = st
            .cache_from
            .iter()
            .filter(|c| available.contains(c))
            .cloned()
            .collect();
        for c in available {
            if out.contains(c) {
                continue;
            }
            if owner(c).is_none_or(|o| st.closure.contains(&o)) {
                out.push(c.clone());
            }
        }
        out
    }

    /// Whether branch and fallback differ.
    #[must_use]
    pub fn has_fallback(&self) -> bool {
        self.fallback_branch != self.branch
    }
}

/// Make the plan (commands as in the dry run: every cache ref assumed present).
#[must_use]
pub fn make(
    df: &Dockerfile,
    target: usize,
    opts: &BuildOptions,
    ctx: &Prepared,
    tool: &Tool,
    s: &Settings,
    tmp: PathBuf,
) -> Plan {
    let needed = graph::needed(df, target);
    let fallback = (s.fallback != s.branch).then_some(s.fallback.as_str());
    let stages: Vec<StagePlan> = needed
        .iter()
        .map(|&i| {
            let st = &df.stages[i];
            let is_target = i == target;
            let tracked = is_target || st.name.is_some();
            let label = st.label();
            let (cache_ref, cache_from) = if tool.backend == Backend::Buildx || !tracked {
                (None, Vec::new())
            } else {
                let own = refs::stage_ref(&s.cache_repo, &s.branch, &label);
                let mut from = vec![own.clone()];
                if let Some(f) = fallback {
                    from.push(refs::stage_ref(&s.cache_repo, f, &label));
                }
                (Some(own), from)
            };
            StagePlan {
                name: label,
                index: i,
                line: st.line,
                base: match &st.base {
                    Source::Stage(b) => format!("stage:{}", df.stages[*b].label()),
                    Source::Image(img) => img.clone(),
                    Source::Scratch => "scratch".into(),
                },
                external_images: st.images_from.clone(),
                depends_on: graph::deps_of(df, i)
                    .into_iter()
                    .map(|d| df.stages[d].label())
                    .collect(),
                target: is_target,
                tracked,
                cache_ref,
                cache_from,
                target_arg: st.target_arg(),
                closure: graph::needed(df, i)
                    .into_iter()
                    .map(|d| df.stages[d].label())
                    .collect(),
            }
        })
        .collect();
    let pruned = df
        .stages
        .iter()
        .filter(|st| !needed.contains(&st.index))
        .map(crate::dockerfile::Stage::label)
        .collect();
    let mut plan = Plan {
        schema_version: SCHEMA_VERSION,
        dry_run: true,
        backend: tool.backend,
        program: tool.program.display().to_string(),
        context: ctx.dir.display().to_string(),
        dockerfile: ctx.dockerfile.display().to_string(),
        image: opts.tags[0].clone(),
        tags: opts.tags.clone(),
        target: df.stages[target].label(),
        cache_repo: s.cache_repo.clone(),
        branch: s.branch.clone(),
        fallback_branch: s.fallback.clone(),
        cache_write: s.cache_write,
        source_hash: s.source_hash.clone(),
        source_ref: s
            .source_hash
            .as_ref()
            .map(|h| refs::source_ref(&opts.tags[0], h)),
        edges: graph::edges(df, &needed),
        stages,
        pruned,
        cache_read: Vec::new(),
        cache_write_refs: Vec::new(),
        commands: Vec::new(),
        tmp,
    };
    if tool.backend == Backend::Buildx {
        plan.cache_read
            .push(refs::buildx_ref(&s.cache_repo, &s.branch));
        if let Some(f) = fallback {
            plan.cache_read.push(refs::buildx_ref(&s.cache_repo, f));
        }
        if s.cache_write {
            plan.cache_write_refs
                .push(refs::buildx_ref(&s.cache_repo, &s.branch));
        }
    } else {
        for st in &plan.stages {
            plan.cache_read.extend(st.cache_from.iter().cloned());
            if s.cache_write {
                plan.cache_write_refs.extend(st.cache_ref.iter().cloned());
            }
        }
        if tool.backend == Backend::Buildah {
            let (read, write) = plan.buildah_layers();
            plan.cache_read.extend(read);
            plan.cache_write_refs.extend(write);
        }
    }
    plan.cache_read.extend(opts.cache_from.iter().cloned());
    plan.commands = dry_run_commands(&plan, opts, ctx, tool);
    plan
}

fn cond(mut step: Step, c: impl Into<String>) -> Step {
    step.condition = Some(c.into());
    step
}

/// The commands as the dry run shows them.
fn dry_run_commands(plan: &Plan, opts: &BuildOptions, ctx: &Prepared, tool: &Tool) -> Vec<Step> {
    let b = Builder {
        tool,
        opts,
        dockerfile: &ctx.dockerfile,
        context: &ctx.dir,
    };
    let mut out = Vec::new();
    if let Some(src) = &plan.source_ref {
        out.push(cond(
            copy_step(src, &plan.image, None),
            format!("{src} exists: tag it registry-side and stop (skipped)"),
        ));
    }
    let stage_refs: Vec<String> = plan
        .stages
        .iter()
        .flat_map(|s| s.cache_from.iter().cloned())
        .chain(opts.cache_from.iter().cloned())
        .collect();
    match tool.backend {
        Backend::Buildx => {
            let target = plan.stages.iter().find(|s| s.target).expect("target");
            let (read, write): (Vec<String>, Option<&str>) = (
                plan.cache_read.clone(),
                plan.cache_write_refs.first().map(String::as_str),
            );
            out.push(b.buildx(
                &target.name,
                target.target_arg.as_deref(),
                &read,
                write,
                &plan.tags,
                &plan.tmp.join("image.iid"),
            ));
        }
        backend => {
            if backend == Backend::Docker {
                for r in &stage_refs {
                    out.push(cond(b.pull(r), format!("{r} exists in the registry")));
                }
            }
            let (layers_read, layers_write) = plan.buildah_layers();
            for st in plan.stages.iter().filter(|s| s.tracked) {
                let iid = plan.tmp.join(format!("{}.iid", st.name));
                let tags: &[String] = if st.target { &plan.tags } else { &[] };
                let buildah_cache = (backend == Backend::Buildah)
                    .then(|| (layers_read[0].as_str(), layers_write.as_deref()));
                out.push(b.build(
                    &st.name,
                    st.target_arg.as_deref(),
                    &plan.stage_cache_from(st, &stage_refs),
                    tags,
                    &iid,
                    buildah_cache,
                ));
                let own = st.cache_ref.clone().unwrap_or_default();
                if st.target {
                    for t in &plan.tags {
                        out.push(cond(
                            b.push("push", Some(&st.name), "<image id>", t),
                            "the image is not a cache hit (else: registry-copy of the hit)",
                        ));
                    }
                }
                if plan.cache_write {
                    if backend != Backend::Buildah {
                        out.push(b.tag(&st.name, "<image id>", &own));
                    }
                    out.push(cond(
                        b.push("push-cache", Some(&st.name), "<image id>", &own),
                        format!("{} is not a cache hit of {own}", st.name),
                    ));
                }
            }
        }
    }
    if let Some(src) = &plan.source_ref {
        out.push(copy_step(&plan.image, src, None));
    }
    out
}

/// An in-process registry-side copy, as a step.
#[must_use]
pub fn copy_step(src: &str, dst: &str, stage: Option<&str>) -> Step {
    Step {
        step: "registry-copy",
        stage: stage.map(str::to_string),
        argv: vec!["registry-copy".into(), src.into(), dst.into()],
        env: std::collections::BTreeMap::new(),
        condition: None,
    }
}
