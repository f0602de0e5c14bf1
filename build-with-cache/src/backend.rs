//! Builder backends: auto-detection and the programs to run (docker classic, docker with `BuildKit`, buildx, buildah).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::BackendChoice;
use crate::error::BuildError;

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

/// The docker engine's version, or why the engine is not usable.
fn docker_engine(docker: &Path) -> Result<String, String> {
    let out = Command::new(docker)
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => Ok(String::from_utf8_lossy(&o.stdout).trim().to_string()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr)
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("docker version failed")
            .trim()
            .to_string()),
        Err(e) => Err(format!("cannot run {}: {e}", docker.display())),
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
        let version = docker_engine(&docker).map_err(|p| engine_err(backend, p))?;
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
                (Some(_), Some(problem)) if docker_host_set => Err(engine_err(
                    "docker",
                    format!("DOCKER_HOST is set but {problem}"),
                )),
                (_, problem) => match which("buildah") {
                    Some(b) => Ok(Tool {
                        backend: Backend::Buildah,
                        program: b,
                        engine_version: None,
                    }),
                    None => Err(engine_err(
                        "auto",
                        format!(
                            "no docker engine ({}) and no buildah",
                            problem.unwrap_or_else(|| "docker CLI not found".into())
                        ),
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
