//! The integration-test harness: run a tool's real binary in a temp dir, make git repos on the fly, start a real registry and dockerd.
//!
//! A dev-dependency of every tool; no production crate depends on it.

pub mod dockerd;
pub mod fake_github;
pub mod registry;
pub mod token;

/// A blocking HTTP client builder with the tools' TLS provider installed.
pub fn blocking_client_builder() -> reqwest::blocking::ClientBuilder {
    microplatform_common::http::install_tls_provider();
    reqwest::blocking::Client::builder()
}

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Path of a workspace binary (`monobuild`, `stackgen`, ...).
///
/// Cargo puts integration-test executables in `target/<profile>/deps/`, and
/// the workspace binaries beside that directory; `cargo test --workspace`
/// builds all of them. `MICROPLATFORM_BIN_DIR` overrides the directory.
#[must_use]
pub fn bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("MICROPLATFORM_BIN_DIR") {
        return PathBuf::from(dir).join(name);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "binary {} not built; run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A temporary working directory, removed on drop (kept when
/// `MICROPLATFORM_KEEP_TMP` is set, for debugging).
pub struct TestDir {
    _dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl Default for TestDir {
    fn default() -> Self {
        Self::new()
    }
}

impl TestDir {
    /// A fresh empty directory.
    #[must_use]
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("mpt-test-")
            .tempdir()
            .expect("tempdir");
        let path = dir.path().canonicalize().expect("canonicalize");
        if std::env::var_os("MICROPLATFORM_KEEP_TMP").is_some() {
            eprintln!("keeping {}", path.display());
            let _ = dir.keep();
            return Self { _dir: None, path };
        }
        Self {
            _dir: Some(dir),
            path,
        }
    }

    /// The directory's path.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/rel`.
    #[must_use]
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }

    /// Write a file (parents created), returning its path.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write");
        p
    }

    /// Read a file as a string.
    #[must_use]
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.path.join(rel)).expect("read")
    }

    /// Remove a file or directory.
    pub fn remove(&self, rel: impl AsRef<Path>) {
        let p = self.path.join(rel);
        if p.is_dir() {
            std::fs::remove_dir_all(p).expect("rm -r");
        } else {
            std::fs::remove_file(p).expect("rm");
        }
    }

    /// Make this directory a git repository on branch `main` with a test identity.
    pub fn git_init(&self) -> &Self {
        self.git_init_object_format("sha1")
    }

    /// [`TestDir::git_init`] with another object format (`sha1` or `sha256`).
    pub fn git_init_object_format(&self, format: &str) -> &Self {
        self.git(&[
            "init",
            "-q",
            "-b",
            "main",
            &format!("--object-format={format}"),
        ]);
        self.git(&["config", "user.email", "test@example.com"]);
        self.git(&["config", "user.name", "Test"]);
        self.git(&["config", "commit.gpgsign", "false"]);
        self
    }

    /// Run git here; panics on failure; returns trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.path, args)
    }

    /// `git add -A && git commit -m msg`, returning the new commit id.
    pub fn commit_all(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// A command for a workspace binary, run in this directory.
    #[must_use]
    pub fn cmd(&self, tool: &str) -> Cmd {
        Cmd::new(bin(tool)).current_dir(&self.path)
    }
}

/// Run git in `dir`; panics on failure; returns trimmed stdout.
pub fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A command to run, built fluently.
pub struct Cmd {
    inner: Command,
    stdin: Option<Vec<u8>>,
    display: String,
}

impl Cmd {
    /// A command for a program.
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let display = program.as_ref().to_string_lossy().into_owned();
        let mut cmd = Command::new(program);
        cmd.env_remove("RUST_LOG");
        Self {
            inner: cmd,
            stdin: None,
            display,
        }
    }

    /// Add arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.display.push(' ');
            self.display.push_str(&a.as_ref().to_string_lossy());
            self.inner.arg(a);
        }
        self
    }

    /// Add one argument.
    #[must_use]
    pub fn arg(self, a: impl AsRef<OsStr>) -> Self {
        self.args([a])
    }

    /// Set the working directory.
    #[must_use]
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    /// Set an environment variable.
    #[must_use]
    pub fn env(mut self, k: impl AsRef<OsStr>, v: impl AsRef<OsStr>) -> Self {
        self.inner.env(k, v);
        self
    }

    /// Remove an environment variable.
    #[must_use]
    pub fn env_remove(mut self, k: impl AsRef<OsStr>) -> Self {
        self.inner.env_remove(k);
        self
    }

    /// Feed bytes on stdin.
    #[must_use]
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Run to completion and capture the output.
    pub fn run(mut self) -> Output {
        self.inner
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self
            .inner
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.display));
        if let Some(input) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("stdin");
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let out = child.wait_with_output().expect("wait");
        Output {
            command: self.display,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// The captured result of a command.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// Exit code (None when killed by a signal).
    pub code: Option<i32>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

impl Output {
    fn context(&self) -> String {
        format!(
            "command: {}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// Assert exit code 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "expected success\n{}", self.context());
        self
    }

    /// Assert a specific exit code.
    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "expected exit {code}\n{}",
            self.context()
        );
        self
    }

    /// Assert a non-zero exit.
    #[track_caller]
    pub fn failure(&self) -> &Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "expected failure\n{}",
            self.context()
        );
        self
    }

    /// Assert stdout equals exactly.
    #[track_caller]
    pub fn stdout_eq(&self, expected: &str) -> &Self {
        assert_eq!(self.stdout, expected, "stdout differs\n{}", self.context());
        self
    }

    /// Assert stdout contains a string.
    #[track_caller]
    pub fn stdout_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// Assert stderr contains a string.
    #[track_caller]
    pub fn stderr_contains(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.context()
        );
        self
    }

    /// Assert stdout is empty.
    #[track_caller]
    pub fn stdout_empty(&self) -> &Self {
        assert!(
            self.stdout.is_empty(),
            "expected empty stdout\n{}",
            self.context()
        );
        self
    }

    /// Assert stderr is exactly one non-empty line (the error line).
    #[track_caller]
    pub fn stderr_one_line(&self) -> &Self {
        let lines: Vec<_> = self.stderr.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line\n{}",
            self.context()
        );
        self
    }

    /// Deserialize stdout as JSON (use `deny_unknown_fields` structs).
    #[track_caller]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not the expected JSON: {e}\n{}", self.context()))
    }
}

/// A free TCP port on 127.0.0.1 (bind to :0 and release).
///
#[must_use]
///
/// Free on both loopback addresses where the host has IPv6: a server meant
/// for `localhost` URLs listens on `::1` too, and the engine's published
/// ports (`[::]:PORT`) must not already hold the number there.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let v4 = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = v4.local_addr().expect("addr").port();
        // In use on ::1: try another; bound, or no IPv6 loopback at all: take it.
        if std::net::TcpListener::bind(("::1", port))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::AddrInUse)
        {
            continue;
        }
        return port;
    }
    panic!("no port free on both 127.0.0.1 and ::1 after 50 tries")
}

/// Wait until `f` returns true, polling every 50 ms, up to `timeout`.
pub fn wait_until(timeout: std::time::Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    f()
}

/// A process-wide lock per name, for tests of one test binary that must not
/// overlap (they share an engine-wide resource); hold the guard for the test.
///
/// Each crate's integration tests are one binary: tests of different modules
/// run at the same time unless they take the same lock. A test that panicked
/// while holding it does not poison it for the others.
pub fn serial(name: &str) -> std::sync::MutexGuard<'static, ()> {
    static LOCKS: std::sync::OnceLock<
        std::sync::Mutex<BTreeMap<String, &'static std::sync::Mutex<()>>>,
    > = std::sync::OnceLock::new();
    let lock: &'static std::sync::Mutex<()> = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(name.to_string())
        .or_insert_with(|| Box::leak(Box::default()));
    lock.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The value of one series of a Prometheus text exposition: `name` or
/// `name{label="value"}`, exactly as rendered.
#[must_use]
pub fn metric_value(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Scrape `url` (a `/metrics` endpoint) every 50 ms until `series` satisfies
/// `want`, up to `timeout`: the positive signal to wait for before asserting
/// that something did *not* happen. Returns the value, or the last scrape
/// (for the failure message) when it never did.
pub fn wait_for_metric(
    url: &str,
    series: &str,
    timeout: std::time::Duration,
    mut want: impl FnMut(u64) -> bool,
) -> Result<u64, String> {
    let client = blocking_client_builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .expect("client");
    let mut last = String::new();
    let mut found = None;
    let ok = wait_until(timeout, || {
        last = client
            .get(url)
            .send()
            .and_then(reqwest::blocking::Response::text)
            .unwrap_or_else(|e| format!("(no answer: {e})"));
        found = metric_value(&last, series);
        found.is_some_and(&mut want)
    });
    match found {
        Some(v) if ok => Ok(v),
        _ => Err(format!(
            "{series} did not reach the expected value within {timeout:?}; last scrape of {url}:\n{last}"
        )),
    }
}

/// Whether a program is on PATH.
#[must_use]
pub fn have(program: &str) -> bool {
    which(program).is_some()
}

/// Find a program on PATH.
#[must_use]
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Require a program for a test: panics with an install hint when it is missing
/// (tests never skip silently; `scripts/test.sh` installs everything).
#[track_caller]
pub fn require(program: &str, package: &str) -> PathBuf {
    which(program).unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed: apt-get install -y {package} (scripts/test.sh does this)"
        )
    })
}

/// Environment for a child process with some variables set, as a map.
#[must_use]
pub fn env_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}
