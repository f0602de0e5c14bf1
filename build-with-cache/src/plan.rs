//! The build plan: resolved settings, stages with their cache refs, edges, the content key, the refs to read and write, and the builder commands; printed as JSON by `--dry-run`.

use std::path::PathBuf;

use serde::Serialize;

use crate::args::BuildOptions;
use crate::backend::{Backend, Tool};
use crate::context::Prepared;
use crate::dockerfile::{Dockerfile, Source, Stage};
use crate::graph::{self, Edge};
use crate::key::KeyInputs;
use crate::program::{self, Action};
use crate::refs;
use crate::steps::{Builder, Step, StepKind};

/// Schema version of the plan and result JSON.
pub const SCHEMA_VERSION: u32 = 2;

/// How the plan and the result name a stage: its `AS` name, or for an
/// unnamed stage its index (`"3"`), as `COPY --from=3` names it. Stage names
/// start with a letter, so the two never collide.
#[must_use]
pub fn stage_id(st: &Stage) -> String {
    st.name.clone().unwrap_or_else(|| st.index.to_string())
}

/// One stage of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    /// Name: the `AS` name, or the index of an unnamed stage (see [`stage_id`]).
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
    /// Whether it gets its own build and cache image (every stage, except under buildx).
    pub tracked: bool,
    /// The cache image written for this stage (this branch), if tracked.
    pub cache_ref: Option<String>,
    /// The cache images read for this stage (this branch, then the fallback branch).
    pub cache_from: Vec<String>,
    /// `--target` value: the name as written, a generated name for an
    /// unnamed intermediate stage (`None`: the last stage, unnamed).
    pub build_target: Option<String>,
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
    /// Whether an existing image with the same content key skips the build
    /// (`--source-hash` or `--skip-existing`).
    pub skip_existing: bool,
    /// What the content key covers (when skipping is enabled).
    pub content_key_inputs: Option<KeyInputs>,
    /// The content key, when every input is known.
    pub content_key: Option<String>,
    /// `<image repository>:content-<hex>`, the ref that makes a later build skip.
    pub content_ref: Option<String>,
    /// How many stage builds run at once (`BuildKit`; the others build one at a time).
    pub jobs: usize,
    /// The Dockerfile given to the builder: the user's, or a copy under
    /// `<tmp>` in which unnamed intermediate stages got a name (to build and
    /// cache them on their own).
    pub build_dockerfile: String,
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
    /// The commands, in order (the program rendered with every cache ref
    /// assumed present); `condition` says when one is conditional.
    pub commands: Vec<Step>,
    /// Where stage image ids are written (`<tmp>` in the dry run).
    #[serde(skip)]
    pub tmp: PathBuf,
    /// The program: what `commands` renders and the run interprets.
    #[serde(skip)]
    pub actions: Vec<Action>,
    /// The text of `build_dockerfile` when it is a rewritten copy.
    #[serde(skip)]
    pub rewritten: Option<String>,
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
    /// Skip when the content key's image exists.
    pub skip_existing: bool,
    /// The content key's inputs (when skipping).
    pub key_inputs: Option<KeyInputs>,
    /// Stage builds at once.
    pub jobs: usize,
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

    /// Write the rewritten Dockerfile (if any) to `build_dockerfile`, with a
    /// copy of the original's `<Dockerfile>.dockerignore` next to it.
    pub fn write_dockerfile(&self, original: &std::path::Path) -> Result<(), crate::BuildError> {
        let Some(text) = &self.rewritten else {
            return Ok(());
        };
        let io = |path: String, source: std::io::Error| crate::BuildError::Io { path, source };
        std::fs::write(&self.build_dockerfile, text)
            .map_err(|e| io(self.build_dockerfile.clone(), e))?;
        let mut own = original.as_os_str().to_owned();
        own.push(".dockerignore");
        let own = PathBuf::from(own);
        if own.is_file() {
            let dst = format!("{}.dockerignore", self.build_dockerfile);
            std::fs::copy(&own, &dst).map_err(|e| io(dst, e))?;
        }
        Ok(())
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
    let names = generated_names(df, &needed, target);
    let stages: Vec<StagePlan> = needed
        .iter()
        .map(|&i| {
            let st = &df.stages[i];
            let is_target = i == target;
            let tracked = !tool.backend.engine().single_build();
            let id = stage_id(st);
            let (cache_ref, cache_from) = if tracked {
                let own = refs::stage_ref(&s.cache_repo, &s.branch, &id);
                let mut from = vec![own.clone()];
                if let Some(f) = fallback {
                    from.push(refs::stage_ref(&s.cache_repo, f, &id));
                }
                (Some(own), from)
            } else {
                (None, Vec::new())
            };
            StagePlan {
                name: id,
                index: i,
                line: st.line,
                base: match &st.base {
                    Source::Stage(b) => format!("stage:{}", stage_id(&df.stages[*b])),
                    Source::Image(img) => img.clone(),
                    Source::Scratch => "scratch".into(),
                },
                external_images: st.images_from.clone(),
                depends_on: graph::deps_of(df, i)
                    .into_iter()
                    .map(|d| stage_id(&df.stages[d]))
                    .collect(),
                target: is_target,
                tracked,
                cache_ref,
                cache_from,
                build_target: st
                    .name_as_written
                    .clone()
                    .or_else(|| names.get(&i).cloned()),
                closure: graph::needed(df, i)
                    .into_iter()
                    .map(|d| stage_id(&df.stages[d]))
                    .collect(),
            }
        })
        .collect();
    let rewritten = (!names.is_empty() && !tool.backend.engine().single_build())
        .then(|| name_unnamed_stages(&ctx.text, df.escape, df, &names));
    let pruned = df
        .stages
        .iter()
        .filter(|st| !needed.contains(&st.index))
        .map(stage_id)
        .collect();
    let content_key = s.key_inputs.as_ref().and_then(KeyInputs::key);
    let mut plan = Plan {
        schema_version: SCHEMA_VERSION,
        dry_run: true,
        backend: tool.backend,
        program: tool.program.display().to_string(),
        context: ctx.dir.display().to_string(),
        dockerfile: ctx.dockerfile.display().to_string(),
        image: opts.tags[0].clone(),
        tags: opts.tags.clone(),
        target: stage_id(&df.stages[target]),
        cache_repo: s.cache_repo.clone(),
        branch: s.branch.clone(),
        fallback_branch: s.fallback.clone(),
        cache_write: s.cache_write,
        source_hash: s.source_hash.clone(),
        skip_existing: s.skip_existing,
        content_key_inputs: s.key_inputs.clone(),
        content_ref: content_key
            .as_ref()
            .map(|k| refs::content_ref(&opts.tags[0], k)),
        content_key,
        jobs: if tool.backend.engine().concurrent_stages() {
            s.jobs
        } else {
            1
        },
        build_dockerfile: if rewritten.is_some() {
            tmp.join("Dockerfile").display().to_string()
        } else {
            ctx.dockerfile.display().to_string()
        },
        edges: edges(df, &needed),
        stages,
        pruned,
        cache_read: Vec::new(),
        cache_write_refs: Vec::new(),
        commands: Vec::new(),
        tmp,
        actions: Vec::new(),
        rewritten,
    };
    if tool.backend.engine().single_build() {
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
        if tool.backend.engine().layer_cache() {
            let (read, write) = plan.buildah_layers();
            plan.cache_read.extend(read);
            plan.cache_write_refs.extend(write);
        }
    }
    plan.cache_read.extend(opts.cache_from.iter().cloned());
    plan.actions = program::make(&plan, &opts.cache_from);
    plan.commands = dry_run_commands(&plan, opts, ctx, tool);
    plan
}

/// Generated `AS` names for the unnamed stages that are built on their own
/// (needed, not the target): `bwc-stage-<N>`, made unique among the stage names.
fn generated_names(
    df: &Dockerfile,
    needed: &[usize],
    target: usize,
) -> std::collections::BTreeMap<usize, String> {
    let taken: Vec<&str> = df.stages.iter().filter_map(|s| s.name.as_deref()).collect();
    needed
        .iter()
        .filter(|&&i| i != target && df.stages[i].name.is_none())
        .map(|&i| {
            let mut name = format!("bwc-stage-{i}");
            while taken.contains(&name.as_str()) {
                name.push_str("-x");
            }
            (i, name)
        })
        .collect()
}

/// The Dockerfile with ` AS <name>` appended to the `FROM` of each unnamed
/// stage in `names` (at the end of its last continuation line), so that it
/// can be a `--target`. Line numbers and everything else stay as they are.
fn name_unnamed_stages(
    text: &str,
    escape: char,
    df: &Dockerfile,
    names: &std::collections::BTreeMap<usize, String>,
) -> String {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    for (&i, name) in names {
        let mut l = df.stages[i].line - 1;
        // Follow continuations (comment and empty lines inside are skipped).
        while l + 1 < lines.len() && lines[l].trim_end().ends_with(escape) {
            l += 1;
            while l + 1 < lines.len() && {
                let t = lines[l].trim_start();
                t.is_empty() || t.starts_with('#')
            } {
                l += 1;
            }
        }
        let line = &mut lines[l];
        let cr = line.ends_with('\r');
        let mut body = line.trim_end_matches('\r').trim_end().to_string();
        body.push_str(" AS ");
        body.push_str(name);
        if cr {
            body.push('\r');
        }
        *line = body;
    }
    lines.join("\n")
}

/// Edges among the given stages, named by [`stage_id`].
fn edges(df: &Dockerfile, stages: &[usize]) -> Vec<Edge> {
    let mut out = Vec::new();
    for &i in stages {
        let st = &df.stages[i];
        if let Source::Stage(b) = st.base {
            out.push(Edge {
                from: stage_id(&df.stages[b]),
                to: stage_id(st),
                kind: "from",
            });
        }
        for &c in &st.copies_from {
            out.push(Edge {
                from: stage_id(&df.stages[c]),
                to: stage_id(st),
                kind: "copy",
            });
        }
    }
    out
}

/// The commands as the dry run shows them: the skip check, then the
/// program rendered with every cache ref assumed present.
fn dry_run_commands(plan: &Plan, opts: &BuildOptions, ctx: &Prepared, tool: &Tool) -> Vec<Step> {
    let b = Builder {
        tool,
        opts,
        dockerfile: std::path::Path::new(&plan.build_dockerfile),
        context: &ctx.dir,
        content_key: plan.content_key.as_deref(),
    };
    let mut out = Vec::new();
    if let Some(src) = &plan.content_ref {
        let mut skip = program::registry_step(
            StepKind::RegistryCopy,
            None,
            vec![src.clone(), plan.image.clone()],
        );
        skip.condition = Some(format!(
            "{src} exists: tag it registry-side and stop (skipped)"
        ));
        out.push(skip);
    }
    let state = program::State::assumed(plan, &opts.cache_from);
    for action in &plan.actions {
        out.extend(program::render(plan, &b, &state, action));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_stages_get_names_that_collide_with_nothing() {
        let text = "FROM a:1\nRUN x\nFROM a:1 AS bwc-stage-0\nFROM \\\n  # c\n  a:1\r\nCOPY --from=0 /a /a\nFROM a:1 AS stage-0\nCOPY --from=2 /b /b\nCOPY --from=bwc-stage-0 /c /c\n";
        let df = crate::dockerfile::parse("Dockerfile", text, &std::collections::BTreeMap::new())
            .unwrap();
        let needed = graph::needed(&df, 3);
        assert_eq!(needed, vec![0, 1, 2, 3]);
        let names = generated_names(&df, &needed, 3);
        assert_eq!(names.get(&0).map(String::as_str), Some("bwc-stage-0-x"));
        assert_eq!(names.get(&2).map(String::as_str), Some("bwc-stage-2"));
        assert_eq!(names.len(), 2);
        let out = name_unnamed_stages(text, '\\', &df, &names);
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(lines[0], "FROM a:1 AS bwc-stage-0-x");
        assert_eq!(lines[5], "  a:1 AS bwc-stage-2\r");
        assert_eq!(out.split('\n').count(), text.split('\n').count());
        let again =
            crate::dockerfile::parse("Dockerfile", &out, &std::collections::BTreeMap::new())
                .unwrap();
        assert_eq!(again.stages[2].name.as_deref(), Some("bwc-stage-2"));
        assert_eq!(again.stages[3].copies_from, df.stages[3].copies_from);
        // Ids: names, or indexes for unnamed stages; never `stage-N`.
        let ids: Vec<String> = df.stages.iter().map(stage_id).collect();
        assert_eq!(ids, ["0", "bwc-stage-0", "2", "stage-0"]);
        let e = edges(&df, &needed);
        assert!(e.iter().any(|e| e.from == "0" && e.to == "2"), "{e:?}");
        assert!(
            e.iter().any(|e| e.from == "2" && e.to == "stage-0"),
            "{e:?}"
        );
    }
}
