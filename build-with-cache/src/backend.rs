//! Builder backends: auto-detection, and everything that differs between them (the words of their commands and the shape of their program) behind the [`Engine`] trait: docker classic, docker with `BuildKit`, buildx, buildah.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::args::BuildOptions;
use crate::refs::is_loopback_registry;

use crate::error::BuildError;
use crate::options::BackendChoice;

/// A resolved backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Docker, classic builder.
    Docker,
    /// Docker with built-in `BuildKit` (inline cache).
    Buildkit,
    /// docker buildx (registry cache).
    Buildx,
    /// buildah bud.
    Buildah,
}

impl Backend {
    /// Lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Backend::Docker => "docker",
            Backend::Buildkit => "buildkit",
            Backend::Buildx => "buildx",
            Backend::Buildah => "buildah",
        }
    }
}

/// What differs between backends: the words of their commands and the shape
/// of their program. Everything else (the plan, the program, the run) is
/// written once.
pub trait Engine: Sync {
    /// Which backend.
    fn backend(&self) -> Backend;
    /// Environment of its commands.
    fn env(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
    /// Words between the program and every subcommand (buildah's global options).
    fn global(&self, _opts: &BuildOptions) -> Vec<String> {
        Vec::new()
    }
    /// The build subcommand.
    fn build_words(&self) -> &'static [&'static str] {
        &["build"]
    }
    /// Its cache options for one build: the cache refs to read (and, for
    /// buildah, the layer repositories to read and write).
    fn cache_args(
        &self,
        opts: &BuildOptions,
        cache_from: &[String],
        layers: Option<(&str, Option<&str>)>,
    ) -> Vec<String>;
    /// Push arguments (after the program and global words).
    fn push_args(&self, _opts: &BuildOptions, _image: &str, reference: &str) -> Vec<String> {
        vec!["push".into(), reference.into()]
    }
    /// Arguments that print a local image's config: `rootfs.diff_ids`,
    /// `created` and `config.Labels` (buildah nests it under `OCIv1`).
    fn inspect_args(&self, image: &str) -> Vec<String> {
        vec![
            "image".into(),
            "inspect".into(),
            "--format".into(),
            "{\"rootfs\":{\"diff_ids\":{{json .RootFS.Layers}}},\"created\":{{json .Created}},\"config\":{\"Labels\":{{json .Config.Labels}}}}"
                .into(),
            image.into(),
        ]
    }
    /// One build for the whole Dockerfile, which pushes the tags itself and
    /// keeps its own cache (buildx): no per-stage builds or cache images.
    fn single_build(&self) -> bool {
        false
    }
    /// Cache images must be pulled before a build can read them (classic builder).
    fn pulls_cache(&self) -> bool {
        false
    }
    /// Stage builds are independent `--target` builds that may run at once (`BuildKit`).
    fn concurrent_stages(&self) -> bool {
        false
    }
    /// Every stage image is tagged as its cache ref right after its build,
    /// and is then a cache source of the later stage builds (classic builder).
    fn local_cache_tags(&self) -> bool {
        false
    }
    /// A local image is pushed by name, so it is tagged as the ref first
    /// (docker); buildah pushes an image id to any ref.
    fn push_needs_tag(&self) -> bool {
        true
    }
    /// A layer-cache repository besides the stage images (buildah).
    fn layer_cache(&self) -> bool {
        false
    }
}

fn cache_from_args(cache_from: &[String]) -> Vec<String> {
    cache_from
        .iter()
        .flat_map(|c| ["--cache-from".to_string(), c.clone()])
        .collect()
}

/// `DOCKER_BUILDKIT=0 docker build`.
struct Classic;
/// `DOCKER_BUILDKIT=1 docker build` with a pre-23 CLI.
struct DockerBuildkit;
/// `docker buildx build`.
struct Buildx;
/// `buildah bud`.
struct Buildah;

impl Engine for Classic {
    fn backend(&self) -> Backend {
        Backend::Docker
    }
    fn env(&self) -> BTreeMap<String, String> {
        [("DOCKER_BUILDKIT".to_string(), "0".to_string())].into()
    }
    fn cache_args(
        &self,
        _: &BuildOptions,
        cache_from: &[String],
        _: Option<(&str, Option<&str>)>,
    ) -> Vec<String> {
        cache_from_args(cache_from)
    }
    fn pulls_cache(&self) -> bool {
        true
    }
    fn local_cache_tags(&self) -> bool {
        true
    }
}

impl Engine for DockerBuildkit {
    fn backend(&self) -> Backend {
        Backend::Buildkit
    }
    fn env(&self) -> BTreeMap<String, String> {
        [("DOCKER_BUILDKIT".to_string(), "1".to_string())].into()
    }
    fn cache_args(
        &self,
        opts: &BuildOptions,
        cache_from: &[String],
        _: Option<(&str, Option<&str>)>,
    ) -> Vec<String> {
        let mut a = Vec::new();
        if opts.network.is_none() {
            a.extend(["--network".into(), "host".into()]);
        }
        a.extend(["--build-arg".into(), "BUILDKIT_INLINE_CACHE=1".into()]);
        a.extend(cache_from_args(cache_from));
        a
    }
    fn concurrent_stages(&self) -> bool {
        true
    }
}

impl Engine for Buildx {
    fn backend(&self) -> Backend {
        Backend::Buildx
    }
    fn build_words(&self) -> &'static [&'static str] {
        &["buildx", "build"]
    }
    fn cache_args(
        &self,
        _: &BuildOptions,
        cache_from: &[String],
        _: Option<(&str, Option<&str>)>,
    ) -> Vec<String> {
        cache_from
            .iter()
            .flat_map(|c| {
                let v = if c.contains('=') {
                    c.clone()
                } else {
                    format!("type=registry,ref={c}")
                };
                ["--cache-from".to_string(), v]
            })
            .collect()
    }
    fn single_build(&self) -> bool {
        true
    }
}

impl Engine for Buildah {
    fn backend(&self) -> Backend {
        Backend::Buildah
    }
    fn global(&self, opts: &BuildOptions) -> Vec<String> {
        let mut g = Vec::new();
        if !opts.buildah_global.iter().any(|a| a == "--storage-driver") {
            g.extend(["--storage-driver".to_string(), "vfs".to_string()]);
        }
        g.extend(opts.buildah_global.iter().cloned());
        g
    }
    fn build_words(&self) -> &'static [&'static str] {
        &["bud"]
    }
    fn cache_args(
        &self,
        opts: &BuildOptions,
        _: &[String],
        layers: Option<(&str, Option<&str>)>,
    ) -> Vec<String> {
        let mut a = Vec::new();
        if !opts.has("--isolation") {
            a.extend(["--isolation".into(), "chroot".into()]);
        }
        a.push("--layers".into());
        if let Some((from, to)) = layers {
            a.extend(["--cache-from".into(), from.to_string()]);
            if let Some(to) = to {
                a.extend(["--cache-to".into(), to.to_string()]);
            }
            if !opts.has("--tls-verify")
                && (is_loopback_registry(from) || to.is_some_and(is_loopback_registry))
            {
                a.push("--tls-verify=false".into());
            }
        }
        a
    }
    fn push_args(&self, opts: &BuildOptions, image: &str, reference: &str) -> Vec<String> {
        let mut a = vec!["push".to_string()];
        if is_loopback_registry(reference) && !opts.has("--tls-verify") {
            a.push("--tls-verify=false".into());
        }
        a.extend([image.into(), format!("docker://{reference}")]);
        a
    }
    fn inspect_args(&self, image: &str) -> Vec<String> {
        vec![
            "inspect".into(),
            "--type".into(),
            "image".into(),
            image.into(),
        ]
    }
    fn push_needs_tag(&self) -> bool {
        false
    }
    fn layer_cache(&self) -> bool {
        true
    }
}

impl Backend {
    /// What differs for this backend.
    #[must_use]
    pub fn engine(self) -> &'static dyn Engine {
        match self {
            Backend::Docker => &Classic,
            Backend::Buildkit => &DockerBuildkit,
            Backend::Buildx => &Buildx,
            Backend::Buildah => &Buildah,
        }
    }
}

/// The backend and the program it runs.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Which backend.
    pub backend: Backend,
    /// The program (`docker`, `/usr/bin/docker`, `buildah`).
    pub program: PathBuf,
    /// The docker engine's version (`docker version`), when probed.
    pub engine_version: Option<String>,
}

/// The first engine version whose built-in `BuildKit` is trusted with
/// concurrent builds: dockerd 20.10 (and older) intermittently dies with
/// `fatal error: concurrent map writes` in its inline-cache exporter when
/// several builds run at once (moby/buildkit#2889, moby/moby#42422).
pub const SAFE_PARALLEL_ENGINE_MAJOR: u32 = 23;

impl Tool {
    /// How many stage builds may run at once by default: one on engines
    /// before 23.0 or of unknown version, else one per CPU (at most `stages`).
    #[must_use]
    pub fn default_jobs(&self, stages: usize) -> usize {
        let safe = self
            .engine_version
            .as_deref()
            .and_then(major)
            .is_some_and(|m| m >= SAFE_PARALLEL_ENGINE_MAJOR);
        if !safe {
            return 1;
        }
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        cpus.min(stages).max(1)
    }
}

fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        let p = PathBuf::from(program);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn output(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The docker CLI: `$BUILD_WITH_CACHE_DOCKER`, else `docker` on PATH.
fn docker_program() -> Option<PathBuf> {
    std::env::var("BUILD_WITH_CACHE_DOCKER")
        .ok()
        .and_then(|p| which(&p))
        .or_else(|| which("docker"))
}

fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

/// A docker CLI with `BuildKit` built in (before 23.0; later clients need the
/// buildx plugin for `DOCKER_BUILDKIT=1`): the configured one, else Debian's `/usr/bin/docker`.
fn legacy_buildkit_client(docker: &Path) -> Option<PathBuf> {
    let mut candidates = vec![docker.to_path_buf()];
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() && !candidates.contains(&debian) {
        candidates.push(debian);
    }
    candidates.into_iter().find(|c| {
        output(c, &["version", "--format", "{{.Client.Version}}"])
            .and_then(|v| major(&v))
            .is_some_and(|m| (18..23).contains(&m))
    })
}

/// Why the docker engine is not usable.
#[derive(Debug, thiserror::Error)]
pub enum EngineProblem {
    /// `docker version` failed: the last line it printed (the CLI says why only in text).
    #[error("{0}")]
    Refused(String),
    /// The docker CLI cannot be run.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The CLI's path.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The docker engine's version, or why the engine is not usable.
fn docker_engine(docker: &Path) -> Result<String, EngineProblem> {
    let out = Command::new(docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(EngineProblem::Refused(
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .rfind(|l| !l.trim().is_empty())
                .unwrap_or("docker version failed")
                .trim()
                .to_string(),
        )),
        Err(source) => Err(EngineProblem::Spawn {
            program: docker.display().to_string(),
            source,
        }),
    }
}

fn buildx_available(docker: &Path) -> bool {
    output(docker, &["buildx", "version"]).is_some()
}

/// Resolve the backend. `auto`: with a reachable docker engine (or
/// `DOCKER_HOST` set) buildx if its plugin works, else `BuildKit` when a
/// client with it built in exists, else the classic builder; without docker,
/// buildah.
pub fn resolve(choice: BackendChoice) -> Result<Tool, BuildError> {
    let engine_err = |backend: &str, message: String| BuildError::Engine {
        backend: backend.to_string(),
        message,
    };
    let need_docker = |backend: &str| -> Result<(PathBuf, String), BuildError> {
        let docker = docker_program()
            .ok_or_else(|| engine_err(backend, "docker CLI not found on PATH".into()))?;
        let version = docker_engine(&docker).map_err(|source| BuildError::EngineProbe {
            backend: backend.to_string(),
            context: "",
            source,
        })?;
        Ok((docker, version))
    };
    match choice {
        BackendChoice::Docker => {
            let (program, version) = need_docker("docker")?;
            Ok(Tool {
                backend: Backend::Docker,
                program,
                engine_version: Some(version),
            })
        }
        BackendChoice::Buildkit => {
            let (docker, version) = need_docker("buildkit")?;
            let program = legacy_buildkit_client(&docker).ok_or_else(|| {
                engine_err(
                    "buildkit",
                    "no docker CLI with built-in BuildKit (< 23.0) found; use --backend buildx"
                        .into(),
                )
            })?;
            Ok(Tool {
                backend: Backend::Buildkit,
                program,
                engine_version: Some(version),
            })
        }
        BackendChoice::Buildx => {
            let (docker, version) = need_docker("buildx")?;
            if !buildx_available(&docker) {
                return Err(engine_err(
                    "buildx",
                    "`docker buildx` is not installed".into(),
                ));
            }
            Ok(Tool {
                backend: Backend::Buildx,
                program: docker,
                engine_version: Some(version),
            })
        }
        BackendChoice::Buildah => Ok(Tool {
            backend: Backend::Buildah,
            program: which("buildah")
                .ok_or_else(|| engine_err("buildah", "buildah not found on PATH".into()))?,
            engine_version: None,
        }),
        BackendChoice::Auto => {
            let docker = docker_program();
            let docker_host_set = std::env::var_os("DOCKER_HOST").is_some();
            let engine = docker.as_deref().map(docker_engine);
            let (version, engine_problem) = match engine {
                Some(Ok(v)) => (Some(v), None),
                Some(Err(p)) => (None, Some(p)),
                None => (None, None),
            };
            match (&docker, engine_problem) {
                (Some(d), None) if version.is_some() => {
                    if buildx_available(d) {
                        Ok(Tool {
                            backend: Backend::Buildx,
                            program: d.clone(),
                            engine_version: version,
                        })
                    } else if let Some(p) = legacy_buildkit_client(d) {
                        Ok(Tool {
                            backend: Backend::Buildkit,
                            program: p,
                            engine_version: version,
                        })
                    } else {
                        Ok(Tool {
                            backend: Backend::Docker,
                            program: d.clone(),
                            engine_version: version,
                        })
                    }
                }
                (Some(_), Some(problem)) if docker_host_set => Err(BuildError::EngineProbe {
                    backend: "docker".into(),
                    context: "DOCKER_HOST is set but ",
                    source: problem,
                }),
                (_, problem) => match (which("buildah"), problem) {
                    (Some(b), _) => Ok(Tool {
                        backend: Backend::Buildah,
                        program: b,
                        engine_version: None,
                    }),
                    (None, Some(problem)) => Err(BuildError::EngineProbe {
                        backend: "auto".into(),
                        context: "no buildah, and no docker engine: ",
                        source: problem,
                    }),
                    (None, None) => Err(engine_err(
                        "auto",
                        "no docker engine (docker CLI not found) and no buildah".into(),
                    )),
                },
            }
        }
    }
}

/// The tool as it would be resolved without probing (for `--dry-run` with an explicit backend).
#[must_use]
pub fn unprobed(backend: Backend) -> Tool {
    let program = match backend {
        Backend::Buildah => which("buildah").unwrap_or_else(|| PathBuf::from("buildah")),
        Backend::Buildkit => {
            let d = docker_program().unwrap_or_else(|| PathBuf::from("docker"));
            legacy_buildkit_client(&d).unwrap_or(d)
        }
        Backend::Docker | Backend::Buildx => {
            docker_program().unwrap_or_else(|| PathBuf::from("docker"))
        }
    };
    Tool {
        backend,
        program,
        engine_version: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_stage_builds_only_on_engines_known_to_survive_them() {
        let tool = |v: Option<&str>| Tool {
            backend: Backend::Buildkit,
            program: PathBuf::from("docker"),
            engine_version: v.map(str::to_string),
        };
        assert_eq!(tool(Some("20.10.24+dfsg1")).default_jobs(9), 1);
        assert_eq!(tool(Some("22.06.0-beta")).default_jobs(9), 1);
        assert_eq!(tool(None).default_jobs(9), 1);
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        assert_eq!(tool(Some("27.3.1")).default_jobs(9), cpus.min(9));
        assert_eq!(tool(Some("27.3.1")).default_jobs(1), 1);
    }
}
