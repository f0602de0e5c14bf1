//! The local platform of the end-to-end tests: `scripts/local-platform up`/`down` on the shared engine with harness registries, `scripts/pipeline` against it, and the helpers the pipeline, push-to-deploy, promotion and Argo tests share (unique branch names, stack clean-up, task ids, refs).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use microplatform_test_support::dockerd::Dockerd;
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, Output, TestDir, bin, free_port, git_in, wait_until};

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Copy `examples/shop` (its files, not the directory) into `repo`'s working tree.
pub fn copy_shop(repo: &TestDir) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join("examples/shop/."))
        .arg(repo.path())
        .status()
        .expect("cp");
    assert!(status.success(), "cp -a examples/shop: {status}");
}

/// `scripts/NAME`.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("scripts").join(name)
}

/// The directory of the workspace's binaries.
pub fn bin_dir() -> PathBuf {
    bin("deploy-bot").parent().expect("bin dir").to_path_buf()
}

/// A unique, DNS-friendly name for a branch (its stack lives on the shared
/// engine): `PREFIX-PID-N`, N distinct within this test binary and unlikely to
/// repeat across runs.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        (nanos % 100_000 + seq * 100_000) % 1_000_000
    )
}

/// `HOST:PORT`'s port.
fn port_of(reg: &Registry) -> String {
    reg.addr.rsplit(':').next().expect("port").to_string()
}

/// The platform, brought up by `scripts/local-platform up` on the shared
/// engine and a harness registry (and optionally a release-candidate one),
/// both reused, not started by the script; with its own state directory,
/// agent and ingress ports; `down` on drop.
pub struct Platform {
    /// `MICROPLATFORM_STATE_DIR`: settings (`env`), the cluster repo, the monorepo remote, runs.
    pub state: TestDir,
    /// The deploy-bot agent's port.
    pub agent_port: u16,
    /// The platform ingress's port.
    pub ingress_port: u16,
    docker_host: String,
    registry_port: String,
    rc_port: String,
}

impl Platform {
    /// `scripts/local-platform` with this platform's settings.
    pub fn cmd(&self) -> Cmd {
        Cmd::new(script("local-platform"))
            .env("MICROPLATFORM_STATE_DIR", self.state.path())
            .env("MICROPLATFORM_REGISTRY_PORT", &self.registry_port)
            .env("MICROPLATFORM_RC_REGISTRY_PORT", &self.rc_port)
            .env("MICROPLATFORM_AGENT_PORT", self.agent_port.to_string())
            .env("MICROPLATFORM_INGRESS_PORT", self.ingress_port.to_string())
            .env("MICROPLATFORM_BIN_DIR", bin_dir())
            .env("DOCKER_HOST", &self.docker_host)
    }

    /// `up` on `dockerd` (made a swarm first) with `reg` for builds; asserts
    /// success and returns the platform and the output of `up`.
    pub fn up(reg: &Registry, dockerd: &Dockerd) -> (Self, Output) {
        Self::start(reg, None, dockerd)
    }

    /// [`Platform::up`] with `rc` as the release-candidate registry.
    pub fn up_with_rc(reg: &Registry, rc: &Registry, dockerd: &Dockerd) -> (Self, Output) {
        Self::start(reg, Some(rc), dockerd)
    }

    fn start(reg: &Registry, rc: Option<&Registry>, dockerd: &Dockerd) -> (Self, Output) {
        dockerd.ensure_swarm();
        let platform = Platform {
            state: TestDir::new(),
            agent_port: free_port(),
            ingress_port: free_port(),
            docker_host: dockerd.host.clone(),
            registry_port: port_of(reg),
            // Without a test registry for release candidates, local-platform starts its own; it is
            // given a port that is free now, like the agent's and the ingress's. Left to itself it
            // would take the first port after the registry's that nothing listens on, and with
            // several platforms up at once that port can be another test's outgoing connection.
            rc_port: rc.map_or_else(|| free_port().to_string(), port_of),
        };
        let out = platform.cmd().arg("up").run();
        out.success();
        (platform, out)
    }

    /// `scripts/local-platform down` (idempotent; drop does it too).
    pub fn down(&self) -> Output {
        self.cmd().arg("down").run()
    }

    /// `scripts/pipeline` on this platform, before its arguments.
    pub fn pipeline_cmd(&self) -> Cmd {
        Cmd::new(script("pipeline")).env("MICROPLATFORM_STATE_DIR", self.state.path())
    }

    /// `scripts/pipeline --out OUT REPO BRANCH` on this platform.
    pub fn pipeline(&self, repo: &Path, branch: &str, out: &Path) -> Output {
        self.pipeline_cmd()
            .args(["--out", &out.to_string_lossy()])
            .arg(repo)
            .arg(branch)
            .run()
    }

    /// The platform's cluster repo (bare).
    pub fn cluster_repo(&self) -> PathBuf {
        self.state.join("cluster.git")
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

/// Removes a stack from the shared engine, also when the test fails, and
/// waits for its containers to go (so their images can be removed).
pub struct StackGuard<'a> {
    /// The engine.
    pub dockerd: &'a Dockerd,
    /// The stack.
    pub name: String,
}

impl Drop for StackGuard<'_> {
    fn drop(&mut self) {
        let _ = self.dockerd.try_run(&["stack", "rm", &self.name]);
        let label = format!("label=com.docker.stack.namespace={}", self.name);
        wait_until(Duration::from_secs(30), || {
            self.dockerd
                .try_run(&["ps", "-aq", "--filter", &label])
                .stdout
                .trim()
                .is_empty()
        });
    }
}

/// Every task (running and historic) of a service: a restart adds one.
pub fn task_ids(dockerd: &Dockerd, service: &str) -> BTreeSet<String> {
    dockerd
        .run(&["service", "ps", "-q", "--no-trunc", service])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every ref of a repository with its commit.
pub fn refs(repo: &Path) -> String {
    git_in(repo, &["for-each-ref", "--format=%(refname) %(objectname)"])
}
