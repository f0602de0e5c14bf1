//! The program of a build: one typed list of actions (operations and their conditions as enums) made from the plan, which `--dry-run` renders as commands and [`crate::run`] interprets in order.

use std::collections::{BTreeMap, BTreeSet};

use crate::plan::Plan;
use crate::registry::ImageKey;
use crate::steps::{Builder, Step, StepKind};

/// When an action runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// Always.
    Always,
    /// The cache ref exists in the registry.
    RefExists(String),
    /// The stage (index into `Plan::stages`) is not a cache hit.
    Miss(usize),
    /// The stage is a hit from a ref other than its own cache ref.
    HitFromOther(usize),
    /// The stage is a cache hit.
    Hit(usize),
    /// The stage is not a hit from its own cache ref.
    NotOwnHit(usize),
    /// The registry-side copy to this ref failed.
    CopyFailed(String),
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// HEAD every stage cache ref, read the configs of those that exist, and
    /// pick the buildah layer repository to read.
    CheckCaches,
    /// HEAD the buildx cache refs.
    CheckBuildxCaches,
    /// Pull a cache image (classic builder).
    Pull(String),
    /// Build stages (indexes into `Plan::stages`), up to `Plan::jobs` at once.
    Build(Vec<usize>),
    /// The one buildx build (pushes the tags itself).
    Buildx,
    /// Decide hit or miss of a built stage (inspect the local image).
    Decide(usize),
    /// Tag a stage image locally as `reference`; on success (classic
    /// builder) it is a cache source for later stage builds.
    Tag {
        /// The stage.
        stage: usize,
        /// The local tag.
        reference: String,
    },
    /// Push a stage image to its cache ref (a failure is a warning).
    PushCache {
        /// The stage.
        stage: usize,
        /// The cache ref.
        reference: String,
    },
    /// Copy a stage's hit registry-side to its own cache ref.
    CopyHit {
        /// The stage.
        stage: usize,
        /// Its cache ref.
        reference: String,
    },
    /// Copy the target's hit registry-side to a requested tag.
    CopyTarget(String),
    /// Push the target image to a requested tag (a failure fails the command).
    PushTarget(String),
    /// Read the digest of the first tag from the registry.
    Digest,
    /// Copy the first tag registry-side to the target's cache ref.
    CopyImage(String),
    /// Copy the first tag registry-side to the content ref.
    WriteContentRef(String),
}

/// One action of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What it does.
    pub op: Op,
    /// When.
    pub when: When,
}

fn act(op: Op, when: When) -> Action {
    Action { op, when }
}

/// The program of a plan.
#[must_use]
pub fn make(plan: &Plan, user_cache_from: &[String]) -> Vec<Action> {
    let mut out = Vec::new();
    let engine = plan.backend.engine();
    if engine.single_build() {
        out.push(act(Op::CheckBuildxCaches, When::Always));
        out.push(act(Op::Buildx, When::Always));
        out.push(act(Op::Digest, When::Always));
        if let Some(c) = &plan.content_ref {
            out.push(act(Op::WriteContentRef(c.clone()), When::Always));
        }
        return out;
    }
    out.push(act(Op::CheckCaches, When::Always));
    if engine.pulls_cache() {
        for st in &plan.stages {
            for r in &st.cache_from {
                out.push(act(Op::Pull(r.clone()), When::RefExists(r.clone())));
            }
        }
        for r in user_cache_from {
            out.push(act(Op::Pull(r.clone()), When::Always));
        }
    }
    let stages: Vec<usize> = (0..plan.stages.len())
        .filter(|&i| plan.stages[i].tracked)
        .collect();
    if engine.concurrent_stages() {
        out.push(act(Op::Build(stages.clone()), When::Always));
    }
    let mut target = None;
    for &i in &stages {
        let st = &plan.stages[i];
        let own = st.cache_ref.clone().unwrap_or_default();
        if !engine.concurrent_stages() {
            out.push(act(Op::Build(vec![i]), When::Always));
        }
        out.push(act(Op::Decide(i), When::Always));
        if engine.local_cache_tags() {
            out.push(act(
                Op::Tag {
                    stage: i,
                    reference: own.clone(),
                },
                When::Always,
            ));
        }
        if st.target {
            target = Some(i);
            continue;
        }
        if plan.cache_write {
            out.push(act(
                Op::CopyHit {
                    stage: i,
                    reference: own.clone(),
                },
                When::HitFromOther(i),
            ));
            if engine.push_needs_tag() && !engine.local_cache_tags() {
                out.push(act(
                    Op::Tag {
                        stage: i,
                        reference: own.clone(),
                    },
                    When::Miss(i),
                ));
            }
            out.push(act(
                Op::PushCache {
                    stage: i,
                    reference: own,
                },
                When::Miss(i),
            ));
        }
    }
    let t = target.expect("the target is a tracked stage");
    for tag in &plan.tags {
        out.push(act(Op::CopyTarget(tag.clone()), When::Hit(t)));
        out.push(act(Op::PushTarget(tag.clone()), When::Miss(t)));
    }
    out.push(act(Op::Digest, When::Always));
    if plan.cache_write {
        let own = plan.stages[t].cache_ref.clone().unwrap_or_default();
        out.push(act(Op::CopyImage(own.clone()), When::NotOwnHit(t)));
        if engine.push_needs_tag() {
            out.push(act(
                Op::Tag {
                    stage: t,
                    reference: own.clone(),
                },
                When::CopyFailed(own.clone()),
            ));
        }
        out.push(act(
            Op::PushCache {
                stage: t,
                reference: own.clone(),
            },
            When::CopyFailed(own),
        ));
    }
    if let Some(c) = &plan.content_ref {
        out.push(act(Op::WriteContentRef(c.clone()), When::Always));
    }
    out
}

/// What the run knows so far; the dry run assumes every cache ref exists.
#[derive(Debug, Default)]
pub struct State {
    /// Cache refs that exist, with their digests.
    pub existing: BTreeMap<String, String>,
    /// Content keys of the existing cache images.
    pub keys: BTreeMap<String, ImageKey>,
    /// Cache refs the builder reads.
    pub cache_from: Vec<String>,
    /// The buildah layer repository read.
    pub layers_from: String,
    /// Built image ids, by stage.
    pub images: BTreeMap<usize, String>,
    /// Decided stages: the ref of the hit, `None` for a miss.
    pub hits: BTreeMap<usize, Option<String>>,
    /// Refs whose registry-side copy failed.
    pub copy_failed: BTreeSet<String>,
    /// Whether this is the dry run (conditions are shown, not evaluated).
    pub dry_run: bool,
}

impl State {
    /// The state the dry run renders with: every cache ref present.
    #[must_use]
    pub fn assumed(plan: &Plan, user_cache_from: &[String]) -> Self {
        let (layers_read, _) = plan.buildah_layers();
        Self {
            cache_from: plan
                .stages
                .iter()
                .flat_map(|s| s.cache_from.iter().cloned())
                .chain(user_cache_from.iter().cloned())
                .collect(),
            layers_from: layers_read[0].clone(),
            dry_run: true,
            ..Self::default()
        }
    }

    /// Whether an action's condition holds.
    #[must_use]
    pub fn holds(&self, plan: &Plan, when: &When) -> bool {
        let hit = |i: &usize| self.hits.get(i).cloned().flatten();
        match when {
            When::Always => true,
            When::RefExists(r) => self.existing.contains_key(r),
            When::Miss(i) => hit(i).is_none(),
            When::Hit(i) => hit(i).is_some(),
            When::HitFromOther(i) => {
                hit(i).is_some_and(|h| Some(&h) != plan.stages[*i].cache_ref.as_ref())
            }
            When::NotOwnHit(i) => hit(i) != plan.stages[*i].cache_ref,
            When::CopyFailed(r) => self.copy_failed.contains(r),
        }
    }

    /// The local image of a stage (`<image id>` in the dry run).
    #[must_use]
    pub fn image(&self, i: usize) -> String {
        self.images
            .get(&i)
            .cloned()
            .unwrap_or_else(|| "<image id>".into())
    }
}

/// How a condition reads in the dry run.
#[must_use]
pub fn describe(plan: &Plan, when: &When) -> Option<String> {
    let name = |i: &usize| plan.stages[*i].name.clone();
    Some(match when {
        When::Always => return None,
        When::RefExists(r) => format!("{r} exists in the registry"),
        When::Miss(i) => format!("{} is a cache miss", name(i)),
        When::Hit(i) => format!("{} is a cache hit", name(i)),
        When::HitFromOther(i) => format!("{} is a cache hit from another ref", name(i)),
        When::NotOwnHit(i) => format!(
            "{} is not a cache hit of {}",
            name(i),
            plan.stages[*i].cache_ref.clone().unwrap_or_default()
        ),
        When::CopyFailed(r) => format!("the registry-side copy to {r} failed"),
    })
}

/// An in-process registry step, as a command.
#[must_use]
pub fn registry_step(kind: StepKind, stage: Option<&str>, refs: Vec<String>) -> Step {
    let mut argv = vec![kind.name().to_string()];
    argv.extend(refs);
    Step {
        step: kind,
        stage: stage.map(str::to_string),
        argv,
        env: BTreeMap::new(),
        condition: None,
    }
}

/// The commands of an action given the state (several for a stage group).
#[must_use]
pub fn render(plan: &Plan, b: &Builder<'_>, state: &State, action: &Action) -> Vec<Step> {
    let stage_name = |i: usize| plan.stages[i].name.as_str();
    let mut steps = match &action.op {
        Op::CheckCaches => vec![registry_step(
            StepKind::RegistryCheck,
            None,
            plan.stages
                .iter()
                .flat_map(|s| s.cache_from.iter().cloned())
                .collect(),
        )],
        Op::CheckBuildxCaches => vec![registry_step(
            StepKind::RegistryCheck,
            None,
            plan.cache_read.clone(),
        )],
        Op::Pull(r) => vec![b.pull(r)],
        Op::Build(stages) => stages
            .iter()
            .map(|&i| {
                let st = &plan.stages[i];
                let tags: &[String] = if st.target { &plan.tags } else { &[] };
                let (_, layers_write) = plan.buildah_layers();
                let buildah_cache = plan
                    .backend
                    .engine()
                    .layer_cache()
                    .then_some((state.layers_from.as_str(), layers_write.as_deref()));
                b.build(
                    &st.name,
                    st.build_target.as_deref(),
                    &plan.stage_cache_from(st, &state.cache_from),
                    tags,
                    &plan.tmp.join(format!("{}.iid", st.name)),
                    buildah_cache,
                )
            })
            .collect(),
        Op::Buildx => {
            let t = plan.stages.iter().find(|s| s.target).expect("target");
            let read: Vec<String> = if state.dry_run {
                plan.cache_read.clone()
            } else {
                state.cache_from.clone()
            };
            vec![b.buildx(
                &t.name,
                t.build_target.as_deref(),
                &read,
                plan.cache_write_refs.first().map(String::as_str),
                &plan.tags,
                &plan.tmp.join("image.iid"),
            )]
        }
        Op::Decide(i) => vec![Step {
            step: StepKind::Inspect,
            stage: Some(stage_name(*i).to_string()),
            argv: b.inspect_argv(&state.image(*i)),
            env: b.env(),
            condition: None,
        }],
        Op::Tag { stage, reference } => {
            vec![b.tag(stage_name(*stage), &state.image(*stage), reference)]
        }
        Op::PushCache { stage, reference } => vec![b.push(
            StepKind::PushCache,
            Some(stage_name(*stage)),
            &state.image(*stage),
            reference,
        )],
        Op::CopyHit { stage, reference } => {
            let from = state
                .hits
                .get(stage)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "<hit>".into());
            vec![registry_step(
                StepKind::RegistryCopy,
                Some(stage_name(*stage)),
                vec![from, reference.clone()],
            )]
        }
        Op::CopyTarget(tag) => {
            let t = plan.stages.iter().position(|s| s.target).expect("target");
            let from = state
                .hits
                .get(&t)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "<hit>".into());
            vec![registry_step(
                StepKind::RegistryCopy,
                Some(stage_name(t)),
                vec![from, tag.clone()],
            )]
        }
        Op::PushTarget(tag) => {
            let t = plan.stages.iter().position(|s| s.target).expect("target");
            vec![b.push(StepKind::Push, Some(stage_name(t)), &state.image(t), tag)]
        }
        Op::Digest => vec![registry_step(
            StepKind::RegistryDigest,
            None,
            vec![plan.image.clone()],
        )],
        Op::CopyImage(r) | Op::WriteContentRef(r) => vec![registry_step(
            StepKind::RegistryCopy,
            None,
            vec![plan.image.clone(), r.clone()],
        )],
    };
    let condition = describe(plan, &action.when);
    for s in &mut steps {
        s.condition.clone_from(&condition);
    }
    steps
}
