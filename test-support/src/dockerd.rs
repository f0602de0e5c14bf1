//! A real Docker engine for tests: Debian's `docker.io` dockerd started by hand (vfs, no iptables, no bridge, own socket), shared or fresh, plus a busybox-static base image.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::{Cmd, Output, TestDir, free_port, require, wait_until};

/// The docker CLI to use: Debian's `/usr/bin/docker` (20.10, `BuildKit` built
/// in) when present, else whatever `docker` is on PATH.
#[must_use]
pub fn docker_cli() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.exists() {
        debian
    } else {
        require("docker", "docker.io")
    }
}

/// A dockerd the tests talk to through `DOCKER_HOST`.
pub struct Dockerd {
    /// `unix:///…/sock`.
    pub host: String,
    /// The engine's state directory (data root, exec root, socket, log).
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: Option<TestDir>,
}

static SHARED: OnceLock<Dockerd> = OnceLock::new();

impl Dockerd {
    /// The engine shared by all tests of all test binaries: reused when it is
    /// already running (state in `MICROPLATFORM_TEST_DOCKERD_DIR`, default
    /// `/tmp/mpt-shared-dockerd`), started otherwise. It outlives the tests;
    /// `scripts/test.sh` stops it by PID at the end.
    /// `MICROPLATFORM_TEST_DOCKER_HOST` points the tests at another engine.
    pub fn shared() -> &'static Dockerd {
        SHARED.get_or_init(|| {
            if let Ok(host) = std::env::var("MICROPLATFORM_TEST_DOCKER_HOST") {
                return Dockerd {
                    host,
                    dir: PathBuf::from("/nonexistent"),
                    child: None,
                    _tmp: None,
                };
            }
            let dir = PathBuf::from(
                std::env::var("MICROPLATFORM_TEST_DOCKERD_DIR")
                    .unwrap_or_else(|_| "/tmp/mpt-shared-dockerd".into()),
            );
            std::fs::create_dir_all(&dir).expect("mkdir dockerd dir");
            let lock = File::create(dir.join("lock")).expect("lock file");
            lock.lock().expect("flock");
            let host = format!("unix://{}", dir.join("sock").display());
            if !ping(&host) {
                // Not running (or stale): start it detached from this process.
                let _ = std::fs::remove_file(dir.join("sock"));
                let _ = std::fs::remove_file(dir.join("pid"));
                let child = spawn_dockerd(&dir);
                std::fs::write(dir.join("dockerd.pid"), child.id().to_string()).expect("pid");
                // Dropping a Child neither kills nor waits for it: the
                // engine outlives this process (scripts/test.sh stops it).
                drop(child);
                wait_ready(&host, &dir);
            }
            drop(lock);
            Dockerd {
                host,
                dir,
                child: None,
                _tmp: None,
            }
        })
    }

    /// A fresh engine with an empty data root (empty cache), stopped and
    /// removed on drop.
    #[must_use]
    pub fn fresh() -> Self {
        let tmp = TestDir::new();
        let dir = tmp.path().to_path_buf();
        let child = spawn_dockerd(&dir);
        let host = format!("unix://{}", dir.join("sock").display());
        wait_ready(&host, &dir);
        Dockerd {
            host,
            dir,
            child: Some(child),
            _tmp: Some(tmp),
        }
    }

    /// A docker CLI command against this engine.
    #[must_use]
    pub fn docker(&self) -> Cmd {
        Cmd::new(docker_cli()).env("DOCKER_HOST", &self.host)
    }

    /// Run `docker ARGS` and assert success; returns trimmed stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.docker().args(args).run();
        out.success();
        out.stdout.trim().to_string()
    }

    /// Run `docker ARGS` and return the output without asserting.
    #[must_use]
    pub fn try_run(&self, args: &[&str]) -> Output {
        self.docker().args(args).run()
    }

    /// Make sure this engine is a single-node swarm manager (idempotent).
    ///
    /// Each engine advertises its own loopback address (see
    /// [`swarm_address`]): Swarm's gossip (memberlist) always binds port 7946
    /// on the advertise address, so two engines on `127.0.0.1` clash and the
    /// second one silently loses service discovery.
    ///
    /// Tests of one process and of several test binaries call this at the same
    /// time: a file lock per engine makes exactly one of them initialise it.
    pub fn ensure_swarm(&self) {
        let lock_path = std::env::temp_dir().join(format!(
            "mpt-swarm-{}.lock",
            swarm_address(Path::new(&self.host))
        ));
        let lock = File::create(&lock_path).expect("swarm lock file");
        lock.lock().expect("flock swarm lock");
        let state = self.run(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
        if state == "active" {
            return;
        }
        self.own_gateway_bridge();
        let addr = swarm_address(&self.dir);
        let port = free_port();
        let data_port = free_port();
        self.run(&[
            "swarm",
            "init",
            "--advertise-addr",
            &format!("{addr}:{port}"),
            "--listen-addr",
            &format!("{addr}:{port}"),
            "--data-path-port",
            &data_port.to_string(),
        ]);
    }

    /// Create this engine's `docker_gwbridge` before its swarm does, with a
    /// bridge device and subnet of its own: the default (`docker_gwbridge`,
    /// 172.18.0.0/16) is one host-wide device, so a second engine's
    /// host-mode published ports would reach the first engine's containers.
    fn own_gateway_bridge(&self) {
        let exists = self
            .try_run(&["network", "inspect", "docker_gwbridge"])
            .code
            == Some(0);
        if exists {
            return;
        }
        let addr = swarm_address(&self.dir);
        let [_, x, y, z]: [u8; 4] = addr
            .split('.')
            .map(|p| p.parse().expect("octet"))
            .collect::<Vec<u8>>()
            .try_into()
            .expect("four octets");
        self.run(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &format!("10.{}.{y}.0/24", 64 + x % 64),
            "--opt",
            &format!("com.docker.network.bridge.name=gwb{x:02x}{y:02x}{z:02x}"),
            "--opt",
            "com.docker.network.bridge.enable_icc=false",
            "--opt",
            "com.docker.network.bridge.enable_ip_masquerade=false",
            "docker_gwbridge",
        ]);
    }

    /// Build (once per engine) and push a busybox-static base image to
    /// `registry/base/busybox:1`; returns the reference.
    pub fn base_image(&self, registry: &str) -> String {
        let reference = format!("{registry}/base/busybox:1");
        let tmp = TestDir::new();
        let tar = busybox_rootfs_tar(tmp.path());
        let out = Cmd::new("sh")
            .args([
                "-c",
                &format!(
                    "{} import -c 'ENV PATH=/bin' {} {reference}",
                    docker_cli().display(),
                    tar.display()
                ),
            ])
            .env("DOCKER_HOST", &self.host)
            .run();
        out.success();
        self.run(&["push", &reference]);
        reference
    }
}

/// Removes every image of a test registry from an engine when dropped (vfs
/// keeps a full copy per layer), also when the test fails.
pub struct ImageCleanup<'a> {
    /// The engine to clean.
    pub dockerd: &'a Dockerd,
    /// `HOST:PORT` of the registry whose images are removed.
    pub registry: String,
}

impl Drop for ImageCleanup<'_> {
    fn drop(&mut self) {
        let out = self
            .dockerd
            .try_run(&["images", "--format", "{{.Repository}} {{.ID}}"]);
        let prefix = format!("{}/", self.registry);
        let mut ids: Vec<&str> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(repo, _)| repo.starts_with(&prefix))
            .map(|(_, id)| id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            let mut args = vec!["rmi", "-f"];
            args.extend(ids);
            let _ = self.dockerd.try_run(&args);
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let stopped = wait_until(Duration::from_secs(20), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if !stopped {
                let _ = child.kill();
                let _ = child.wait();
            }
            // vfs layers can be large; remove them now.
            let _ = std::fs::remove_dir_all(self.dir.join("data"));
        }
    }
}

/// The loopback address an engine's swarm advertises: `127.X.Y.Z` derived
/// from its state directory, never in `127.0.0.0/16` (where `127.0.0.1` and
/// the usual test servers live).
#[must_use]
pub fn swarm_address(dir: &Path) -> String {
    // FNV-1a: stable across runs and toolchains, unlike `DefaultHasher`.
    let mut h: u32 = 0x811c_9dc5;
    for b in dir.as_os_str().as_encoded_bytes() {
        h = (h ^ u32::from(*b)).wrapping_mul(0x0100_0193);
    }
    let [_, x, y, z] = h.to_be_bytes();
    let x = if x == 0 { 1 } else { x };
    let z = if z == 0 || z == 255 { 1 } else { z };
    format!("127.{x}.{y}.{z}")
}

fn spawn_dockerd(dir: &Path) -> Child {
    let dockerd = require("dockerd", "docker.io");
    let log = File::create(dir.join("dockerd.log")).expect("log");
    Command::new(dockerd)
        .args([
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--insecure-registry=127.0.0.0/8",
        ])
        .arg(format!("--data-root={}", dir.join("data").display()))
        .arg(format!("--exec-root={}", dir.join("exec").display()))
        .arg(format!("--pidfile={}", dir.join("pid").display()))
        .arg(format!("-H=unix://{}", dir.join("sock").display()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start dockerd")
}

fn ping(host: &str) -> bool {
    Command::new(docker_cli())
        .args(["version", "--format", "{{.Server.Version}}"])
        .env("DOCKER_HOST", host)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn wait_ready(host: &str, dir: &Path) {
    let ok = wait_until(Duration::from_secs(60), || ping(host));
    assert!(
        ok,
        "dockerd did not become ready: {}",
        std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
    );
}

/// Make a root file system tarball holding Debian's `/bin/busybox` (from
/// `busybox-static`) and links for its applets; returns the tar path.
pub fn busybox_rootfs_tar(work: &Path) -> PathBuf {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("busybox not installed: apt-get install -y busybox-static"));
    let root = work.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("mkdir");
    for d in ["tmp", "etc", "var/www", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).expect("copy busybox");
    let applets = [
        "sh",
        "cat",
        "echo",
        "ls",
        "mkdir",
        "cp",
        "mv",
        "rm",
        "sleep",
        "wget",
        "httpd",
        "nc",
        "sed",
        "grep",
        "env",
        "true",
        "false",
        "test",
        "[",
        "printf",
        "head",
        "tail",
        "dd",
        "sha256sum",
        "touch",
        "chmod",
        "ln",
        "date",
        "id",
        "hostname",
        "tr",
        "wc",
        "seq",
        "expr",
        "uname",
        "find",
        "xargs",
    ];
    for a in applets {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .expect("passwd");
    std::fs::write(root.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").expect("group");
    let tar = work.join("rootfs.tar");
    let status = Command::new("tar")
        .args([
            "-C",
            &root.to_string_lossy(),
            "-cf",
            &tar.to_string_lossy(),
            ".",
        ])
        .status()
        .expect("tar");
    assert!(status.success(), "tar failed");
    tar
}
