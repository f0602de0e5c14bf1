//! The exact builder commands of each backend (pull, build a stage, tag, push, inspect) as argv vectors, shared by the dry-run plan and the real run.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::args::BuildOptions;
use crate::backend::{Backend, Tool};
use crate::refs::is_loopback_registry;

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

    /// Environment of docker commands.
    #[must_use]
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        match self.tool.backend {
            Backend::Docker => {
                env.insert("DOCKER_BUILDKIT".into(), "0".into());
            }
            Backend::Buildkit => {
                env.insert("DOCKER_BUILDKIT".into(), "1".into());
            }
            Backend::Buildx | Backend::Buildah => {}
        }
        env
    }

    fn buildah_global(&self) -> Vec<String> {
        let mut g = Vec::new();
        if !self
            .opts
            .buildah_global
            .iter()
            .any(|a| a == "--storage-driver")
        {
            g.extend(["--storage-driver".to_string(), "vfs".to_string()]);
        }
        g.extend(self.opts.buildah_global.iter().cloned());
        g
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
        self.step(
            StepKind::PullCache,
            None,
            vec![
                self.program(),
                "pull".into(),
                "--quiet".into(),
                reference.into(),
            ],
        )
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
        let mut argv = vec![self.program()];
        match self.tool.backend {
            Backend::Docker | Backend::Buildkit => argv.push("build".into()),
            Backend::Buildx => argv.extend(["buildx".into(), "build".into()]),
            Backend::Buildah => {
                argv.extend(self.buildah_global());
                argv.push("bud".into());
            }
        }
        argv.extend(self.opts.pass_tokens(&[]));
        match self.tool.backend {
            Backend::Docker => {
                for c in cache_from {
                    argv.extend(["--cache-from".into(), c.clone()]);
                }
            }
            Backend::Buildkit => {
                if self.opts.network.is_none() {
                    argv.extend(["--network".into(), "host".into()]);
                }
                argv.extend(["--build-arg".into(), "BUILDKIT_INLINE_CACHE=1".into()]);
                for c in cache_from {
                    argv.extend(["--cache-from".into(), c.clone()]);
                }
            }
            Backend::Buildx => {
                for c in cache_from {
                    let v = if c.contains('=') {
                        c.clone()
                    } else {
                        format!("type=registry,ref={c}")
                    };
                    argv.extend(["--cache-from".into(), v]);
                }
            }
            Backend::Buildah => {
                if !self.opts.has("--isolation") {
                    argv.extend(["--isolation".into(), "chroot".into()]);
                }
                argv.push("--layers".into());
                if let Some((from, to)) = buildah_cache {
                    argv.extend(["--cache-from".into(), from.to_string()]);
                    if let Some(to) = to {
                        argv.extend(["--cache-to".into(), to.to_string()]);
                    }
                    if !self.opts.has("--tls-verify")
                        && (is_loopback_registry(from) || to.is_some_and(is_loopback_registry))
                    {
                        argv.push("--tls-verify=false".into());
                    }
                }
            }
        }
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

    /// Tag a local image (docker backends).
    #[must_use]
    pub fn tag(&self, stage: &str, image: &str, reference: &str) -> Step {
        let argv = match self.tool.backend {
            Backend::Buildah => {
                let mut a = vec![self.program()];
                a.extend(self.buildah_global());
                a.extend(["tag".into(), image.into(), reference.into()]);
                a
            }
            _ => vec![self.program(), "tag".into(), image.into(), reference.into()],
        };
        self.step(StepKind::Tag, Some(stage), argv)
    }

    /// Push a local image to `reference` (`image` is the local name or id).
    #[must_use]
    pub fn push(&self, kind: StepKind, stage: Option<&str>, image: &str, reference: &str) -> Step {
        let argv = match self.tool.backend {
            Backend::Buildah => {
                let mut a = vec![self.program()];
                a.extend(self.buildah_global());
                a.push("push".into());
                if is_loopback_registry(reference) && !self.opts.has("--tls-verify") {
                    a.push("--tls-verify=false".into());
                }
                a.extend([image.into(), format!("docker://{reference}")]);
                a
            }
            _ => vec![self.program(), "push".into(), reference.into()],
        };
        self.step(kind, stage, argv)
    }

    /// Inspect a local image's config (for the cache-hit check); buildah prints
    /// its whole state, the config is under `OCIv1`.
    #[must_use]
    pub fn inspect_argv(&self, image: &str) -> Vec<String> {
        match self.tool.backend {
            Backend::Buildah => {
                let mut a = vec![self.program()];
                a.extend(self.buildah_global());
                a.extend([
                    "inspect".into(),
                    "--type".into(),
                    "image".into(),
                    image.into(),
                ]);
                a
            }
            _ => vec![
                self.program(),
                "image".into(),
                "inspect".into(),
                "--format".into(),
                "{\"rootfs\":{\"diff_ids\":{{json .RootFS.Layers}}},\"created\":{{json .Created}},\"config\":{\"Labels\":{{json .Config.Labels}}}}"
                    .into(),
                image.into(),
            ],
        }
    }
}
