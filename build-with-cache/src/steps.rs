//! The exact builder commands of each backend (pull, build a stage, tag, push, inspect) as argv vectors, shared by the dry-run plan and the real run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::args::BuildOptions;
use crate::backend::{Engine, Tool};

/// The kind of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepKind {
    /// Registry `HEAD`s of cache refs (in-process).
    RegistryCheck,
    /// Pull a cache image.
    PullCache,
    /// Build a stage.
    BuildStage,
    /// Build the requested image.
    Build,
    /// Inspect a built image (hit or miss).
    Inspect,
    /// Tag an image locally.
    Tag,
    /// Push a stage image to its cache ref.
    PushCache,
    /// Push the requested image.
    Push,
    /// Registry-side manifest copy (in-process).
    RegistryCopy,
    /// Read the pushed image's digest (in-process).
    RegistryDigest,
}

impl StepKind {
    /// The name, as in the JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            StepKind::RegistryCheck => "registry-check",
            StepKind::PullCache => "pull-cache",
            StepKind::BuildStage => "build-stage",
            StepKind::Build => "build",
            StepKind::Inspect => "inspect",
            StepKind::Tag => "tag",
            StepKind::PushCache => "push-cache",
            StepKind::Push => "push",
            StepKind::RegistryCopy => "registry-copy",
            StepKind::RegistryDigest => "registry-digest",
        }
    }
}

/// One command of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// The kind (`registry-*` steps are done in-process: `argv` is `[kind, ARGS…]`).
    pub step: StepKind,
    /// The stage it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Program and arguments (`registry-copy` steps are done in-process: `["registry-copy", SRC, DST]`).
    pub argv: Vec<String>,
    /// Extra environment.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// When the step runs (absent: always).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// Makes the commands of one backend.
#[derive(Debug)]
pub struct Builder<'a> {
    /// Backend and program.
    pub tool: &'a Tool,
    /// Understood options and pass-through arguments.
    pub opts: &'a BuildOptions,
    /// Dockerfile to pass with `-f`.
    pub dockerfile: &'a Path,
    /// Context directory.
    pub context: &'a Path,
    /// The content key, put on the requested image as the label [`crate::key::LABEL`].
    pub content_key: Option<&'a str>,
}

impl Builder<'_> {
    fn program(&self) -> String {
        self.tool.program.display().to_string()
    }

    fn engine(&self) -> &'static dyn Engine {
        self.tool.backend.engine()
    }

    /// Environment of the backend's commands.
    #[must_use]
    pub fn env(&self) -> BTreeMap<String, String> {
        self.engine().env()
    }

    /// The program and the backend's global words.
    fn head(&self) -> Vec<String> {
        let mut a = vec![self.program()];
        a.extend(self.engine().global(self.opts));
        a
    }

    fn step(&self, step: StepKind, stage: Option<&str>, argv: Vec<String>) -> Step {
        Step {
            step,
            stage: stage.map(str::to_string),
            argv,
            env: self.env(),
            condition: None,
        }
    }

    /// Pull a cache image (classic builder only).
    #[must_use]
    pub fn pull(&self, reference: &str) -> Step {
        let mut argv = self.head();
        argv.extend(["pull".into(), "--quiet".into(), reference.into()]);
        self.step(StepKind::PullCache, None, argv)
    }

    /// Build one stage (or the final image when `tags` is non-empty).
    #[must_use]
    pub fn build(
        &self,
        stage: &str,
        target: Option<&str>,
        cache_from: &[String],
        tags: &[String],
        iidfile: &Path,
        buildah_cache: Option<(&str, Option<&str>)>,
    ) -> Step {
        let engine = self.engine();
        let mut argv = self.head();
        argv.extend(engine.build_words().iter().map(|w| (*w).to_string()));
        argv.extend(self.opts.pass_tokens(&[]));
        argv.extend(engine.cache_args(self.opts, cache_from, buildah_cache));
        if let Some(key) = self.content_key.filter(|_| !tags.is_empty()) {
            argv.extend(["--label".into(), format!("{}={key}", crate::key::LABEL)]);
        }
        if let Some(t) = target {
            argv.extend(["--target".into(), t.to_string()]);
        }
        argv.extend(["--iidfile".into(), iidfile.display().to_string()]);
        for t in tags {
            argv.extend(["-t".into(), t.clone()]);
        }
        argv.extend([
            "-f".into(),
            self.dockerfile.display().to_string(),
            self.context.display().to_string(),
        ]);
        let kind = if tags.is_empty() {
            StepKind::BuildStage
        } else {
            StepKind::Build
        };
        self.step(kind, Some(stage), argv)
    }

    /// The buildx build: one invocation, registry cache with `mode=max`, pushes the tags.
    #[must_use]
    pub fn buildx(
        &self,
        stage: &str,
        target: Option<&str>,
        cache_from: &[String],
        cache_to: Option<&str>,
        tags: &[String],
        iidfile: &Path,
    ) -> Step {
        let mut s = self.build(stage, target, cache_from, tags, iidfile, None);
        let ctx = s.argv.pop().unwrap_or_default();
        if let Some(to) = cache_to {
            s.argv.extend([
                "--cache-to".into(),
                format!("type=registry,ref={to},mode=max,image-manifest=true,oci-mediatypes=true"),
            ]);
        }
        s.argv.push("--push".into());
        s.argv.push(ctx);
        s
    }

    /// Tag a local image.
    #[must_use]
    pub fn tag(&self, stage: &str, image: &str, reference: &str) -> Step {
        let mut argv = self.head();
        argv.extend(["tag".into(), image.into(), reference.into()]);
        self.step(StepKind::Tag, Some(stage), argv)
    }

    /// Push a local image to `reference` (`image` is the local name or id).
    #[must_use]
    pub fn push(&self, kind: StepKind, stage: Option<&str>, image: &str, reference: &str) -> Step {
        let mut argv = self.head();
        argv.extend(self.engine().push_args(self.opts, image, reference));
        self.step(kind, stage, argv)
    }

    /// Inspect a local image's config (for the cache-hit check).
    #[must_use]
    pub fn inspect_argv(&self, image: &str) -> Vec<String> {
        let mut argv = self.head();
        argv.extend(self.engine().inspect_args(image));
        argv
    }
}
