//! Test support: a fake GitHub REST API on loopback backed by a real bare repo, a recording fake `kubectl`, a cluster repo, and an agent process.
#![allow(dead_code)]

#[allow(unused_imports)] // not every test binary talks to the forge
pub use microplatform_test_support::fake_github;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use microplatform_test_support::{Cmd, TestDir, bin, free_port, git_in, wait_until};

/// The webhook secret the tests use.
pub const SECRET: &str = "It's a Secret to Everybody";

/// A pinned image reference.
pub const IMAGE: &str = "127.0.0.1:5000/app/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// Held by the tests that deploy stacks on the shared swarm engine (the `swarm` and `ingress` modules), so
/// they run one at a time: they deploy, prune and tear down stacks on one engine, and the ingress under test
/// follows every service of it. As separate test binaries they never overlapped; in one binary this named
/// lock of the harness keeps it so.
pub fn swarm_lock() -> std::sync::MutexGuard<'static, ()> {
    microplatform_test_support::serial("deploy-bot swarm")
}

/// A cluster repository with its fake GitHub (answering `token`) and a fake kubectl, and a state
/// directory for the agent; the agent and hardening modules start their agents on it.
pub struct Cluster {
    pub repo: ClusterRepo,
    pub gh: fake_github::FakeGitHub,
    pub k: FakeKubectl,
    pub st: PathBuf,
    _state: TestDir,
}

impl Cluster {
    pub fn new(token: &str) -> Self {
        let repo = ClusterRepo::new();
        let gh = fake_github::FakeGitHub::start("acme", "cluster", &repo.bare, token);
        let state = TestDir::new();
        Self {
            st: state.join("s"),
            repo,
            gh,
            k: FakeKubectl::new(),
            _state: state,
        }
    }
}

/// A bare cluster repo at `<dir>/acme/cluster.git` (default branch main, one commit) and a work clone.
pub struct ClusterRepo {
    pub dir: TestDir,
    pub bare: PathBuf,
    pub work: PathBuf,
}

impl ClusterRepo {
    pub fn new() -> Self {
        let dir = TestDir::new();
        let bare = dir.join("acme/cluster.git");
        std::fs::create_dir_all(&bare).unwrap();
        git_in(&bare, &["init", "-q", "--bare", "-b", "main"]);
        let work = dir.join("work");
        std::fs::create_dir_all(&work).unwrap();
        git_in(&work, &["init", "-q", "-b", "main"]);
        std::fs::write(work.join("README.md"), "cluster repo\n").unwrap();
        git_in(&work, &["add", "-A"]);
        git_in(&work, &["commit", "-q", "-m", "init"]);
        git_in(&work, &["remote", "add", "origin", &bare.to_string_lossy()]);
        git_in(&work, &["push", "-q", "origin", "main"]);
        Self { dir, bare, work }
    }

    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// `deploy-bot request --repo URL --namespace NS`, run in the repository's test directory.
    pub fn request(&self, namespace: &str) -> Cmd {
        self.request_in(&self.dir, namespace)
    }

    /// `deploy-bot request --repo URL --namespace NS`, run in `dir`.
    pub fn request_in(&self, dir: &TestDir, namespace: &str) -> Cmd {
        dir.cmd("deploy-bot")
            .args(["request", "--repo", &self.url(), "--namespace", namespace])
    }

    /// Write files into the work clone (relative paths), commit and push to main; returns the commit.
    pub fn commit(&self, files: &[(&str, &str)], remove: &[&str], msg: &str) -> String {
        git_in(&self.work, &["pull", "-q", "--ff-only", "origin", "main"]);
        for r in remove {
            let p = self.work.join(r);
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else if p.exists() {
                std::fs::remove_file(p).unwrap();
            }
        }
        for (rel, content) in files {
            let p = self.work.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git_in(&self.work, &["add", "-A"]);
        git_in(&self.work, &["commit", "-q", "--allow-empty", "-m", msg]);
        git_in(&self.work, &["push", "-q", "origin", "main"]);
        git_in(&self.work, &["rev-parse", "HEAD"])
    }

    /// Push a branch with files on top of main; returns its commit.
    pub fn branch(&self, name: &str, files: &[(&str, &str)]) -> String {
        git_in(&self.work, &["pull", "-q", "--ff-only", "origin", "main"]);
        git_in(&self.work, &["checkout", "-q", "-b", name]);
        for (rel, content) in files {
            let p = self.work.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        git_in(&self.work, &["add", "-A"]);
        git_in(
            &self.work,
            &["commit", "-q", "-m", &format!("change on {name}")],
        );
        git_in(&self.work, &["push", "-q", "origin", name]);
        let c = git_in(&self.work, &["rev-parse", "HEAD"]);
        git_in(&self.work, &["checkout", "-q", "main"]);
        c
    }

    pub fn git(&self, args: &[&str]) -> String {
        git_in(&self.bare, args)
    }
}

/// A Deployment + Service for namespace `ns` with an image.
pub fn deployment(ns: &str, name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n      containers:\n        - name: {name}\n          image: \"{image}\"\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{port: 80}}]\n"
    )
}

/// A fake `kubectl`: appends `START <pid> <args>` / `END <pid> <args>` to `$DIR/log`, stores every stdin in
/// `$DIR/stdin.N.yaml`, and checks the documents of an `apply --namespace NS`: every object carries the inventory
/// label and names namespace NS. `kubectl diff` reports drift (exit 1) while `$DIR/drift` exists; an apply with
/// `--prune` removes it (the drift is repaired). `$DIR/sleep` (seconds) holds applies of the namespace named in `$DIR/sleep-ns`; `$DIR/fail` fails them.
pub struct FakeKubectl {
    pub dir: TestDir,
}

impl FakeKubectl {
    pub fn new() -> Self {
        let dir = TestDir::new();
        let script = r#"#!/bin/sh
D="$(dirname "$0")"
echo "START $$ $*" >> "$D/log"
ns=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--namespace" ]; then ns="$a"; fi
  prev="$a"
done
case " $* " in
  *" -f - "*)
    n=$(ls "$D" | grep -c '^stdin\.' )
    f="$D/stdin.$n.$$.yaml"
    cat > "$f"
    kinds=$(grep -c '^kind:' "$f")
    if [ "$kinds" -eq 0 ]; then echo "error: no objects passed to apply" >&2; exit 1; fi
    if [ -n "$ns" ]; then
      labels=$(grep -c "deploy-bot.microplatform.dev/inventory: $ns\$" "$f")
      if [ "$labels" -ne "$kinds" ]; then echo "error: $kinds objects but $labels inventory labels for $ns" >&2; exit 1; fi
      if grep '^  namespace:' "$f" | grep -qv "namespace: $ns\$"; then echo "error: object outside namespace $ns" >&2; exit 1; fi
    fi
    ;;
esac
if [ "$1" = "diff" ]; then
  echo "END $$ $*" >> "$D/log"
  if [ -f "$D/drift" ]; then
    echo "diff -u -N /tmp/LIVE-1/apps.v1.Deployment.$ns.web /tmp/MERGED-1/apps.v1.Deployment.$ns.web"
    exit 1
  fi
  exit 0
fi
case " $* " in *" --prune "*) rm -f "$D/drift" ;; esac
if [ -n "$ns" ] && [ -f "$D/sleep" ] && [ "$(cat "$D/sleep-ns" 2>/dev/null)" = "$ns" ]; then sleep "$(cat "$D/sleep")"; fi
if [ -n "$ns" ] && [ -f "$D/fail" ]; then echo "error: the server rejected the apply" >&2; exit 1; fi
echo "END $$ $*" >> "$D/log"
echo "applied"
"#;
        let p = dir.write("kubectl", script);
        Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        dir.write("log", "");
        Self { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("kubectl")
    }

    pub fn log(&self) -> Vec<String> {
        self.dir.read("log").lines().map(str::to_string).collect()
    }

    /// Completed applies (END lines) of the main apply into namespace `ns`.
    pub fn applies(&self, ns: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| {
                l.starts_with("END ")
                    && l.contains("--prune")
                    && l.contains(&format!("--namespace {ns} "))
            })
            .count()
    }

    /// Started applies into namespace `ns`.
    pub fn started(&self, ns: &str) -> usize {
        self.log()
            .iter()
            .filter(|l| {
                l.starts_with("START ")
                    && l.contains("--prune")
                    && l.contains(&format!("--namespace {ns} "))
            })
            .count()
    }
}

/// A running agent in its own process group, `SIGKILL`ed (group) on drop.
pub struct AgentProc {
    child: Child,
    pub port: u16,
    pub stderr: PathBuf,
}

impl AgentProc {
    /// Start an agent that follows `repo`'s `main` branch, polling every `poll`, with `extra` flags.
    pub fn follow(
        state: &Path,
        repo: &ClusterRepo,
        poll: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let url = repo.url();
        let mut args = vec!["--repo", &url, "--branch", "main", "--poll-interval", poll];
        args.extend_from_slice(extra);
        Self::start(state, &args, env)
    }

    pub fn start(state: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with(state, &["-vv"], extra, env)
    }

    /// Start an agent with these global flags (`-vv`, `--log-format json`, none) before the `agent` flags.
    pub fn start_with(state: &Path, global: &[&str], extra: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_wrapped(&[], state, global, extra, env)
    }

    /// [`AgentProc::start_with`], run through `wrapper` (e.g. `prlimit --nofile=96:96`).
    pub fn start_wrapped(
        wrapper: &[&str],
        state: &Path,
        global: &[&str],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let port = free_port();
        let stderr = state.with_extension(format!("agent-{port}.log"));
        let log = std::fs::File::create(&stderr).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(bin("deploy-bot"));
                c
            }
            None => Command::new(bin("deploy-bot")),
        };
        cmd.args(global)
            .arg("agent")
            .args(["--state-dir", &state.to_string_lossy()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("DEPLOY_BOT_WEBHOOK_SECRET", SECRET)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let me = Self {
            child,
            port,
            stderr,
        };
        let up = wait_until(Duration::from_secs(20), || me.get("/healthz").0 == 200);
        assert!(up, "agent did not start:\n{}", me.log());
        me
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let client = microplatform_test_support::blocking_client_builder()
            .build()
            .expect("client");
        match client.get(self.url(path)).send() {
            Ok(r) => {
                let s = r.status().as_u16();
                (s, r.text().unwrap_or_default())
            }
            Err(_) => (0, String::new()),
        }
    }

    /// The value of a `/metrics` series (`name` or `name{label="value"}`); panics when it is missing.
    pub fn metric(&self, series: &str) -> u64 {
        let (_, text) = self.get("/metrics");
        microplatform_test_support::metric_value(&text, series)
            .unwrap_or_else(|| panic!("no metric {series} in\n{text}"))
    }

    /// Wait until the `/metrics` series satisfies `want` (the agent processed what the test waits for), up to
    /// 60 s; panics with the last scrape and the agent's log when it does not. Returns the value.
    #[track_caller]
    pub fn wait_for_metric(&self, series: &str, want: impl FnMut(u64) -> bool) -> u64 {
        microplatform_test_support::wait_for_metric(
            &self.url("/metrics"),
            series,
            Duration::from_secs(60),
            want,
        )
        .unwrap_or_else(|e| panic!("{e}\n--- agent log ---\n{}", self.log()))
    }

    /// POST a webhook; `sig`: None = correct signature, Some(x) = header x ("" = no header).
    pub fn send(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        sig: Option<&str>,
    ) -> (u16, String) {
        self.send_as(event, delivery, body, sig, "application/json")
    }

    /// [`AgentProc::send`] with this `Content-Type`.
    pub fn send_as(
        &self,
        event: &str,
        delivery: &str,
        body: &[u8],
        sig: Option<&str>,
        content_type: &str,
    ) -> (u16, String) {
        let client = microplatform_test_support::blocking_client_builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut rb = client
            .post(self.url("/webhooks"))
            .header("X-GitHub-Event", event)
            .header("X-GitHub-Delivery", delivery)
            .header("Content-Type", content_type)
            .body(body.to_vec());
        match sig {
            None => {
                rb = rb.header(
                    "X-Hub-Signature-256",
                    deploy_bot::webhook::sign(SECRET.as_bytes(), body),
                );
            }
            Some("") => {}
            Some(s) => rb = rb.header("X-Hub-Signature-256", s),
        }
        let r = rb.send().unwrap();
        let s = r.status().as_u16();
        (s, r.text().unwrap_or_default())
    }

    /// SIGKILL the whole process group (the agent and the kubectl it runs).
    pub fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}

/// A push event payload for `acme/cluster`.
/// The commit the agent last applied to namespace `ns`, from its state directory.
pub fn applied_commit(state: &Path, ns: &str) -> Option<String> {
    let text = std::fs::read_to_string(state.join(format!("applied/{ns}.json"))).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["commit"].as_str().map(str::to_string)
}

pub fn push_event(git_ref: &str, after: &str, full_name: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "ref": git_ref,
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "repository": {"full_name": full_name, "clone_url": format!("https://github.com/{full_name}.git")},
        "head_commit": {"id": after, "message": message},
    }))
    .unwrap()
}

/// A `pull_request` event payload.
pub fn pr_event(action: &str, number: u64, head_ref: &str, head_sha: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "action": action,
        "number": number,
        "pull_request": {"number": number, "head": {"ref": head_ref, "sha": head_sha}, "base": {"ref": "main", "sha": ""}},
        "repository": {"full_name": "acme/cluster"},
    }))
    .unwrap()
}
