//! End-to-end: push to deploy on the local platform. `scripts/local-platform up`
//! serves a bare monorepo remote whose post-receive hook (`scripts/push-hook`)
//! runs `scripts/pipeline`: `git push local BRANCH` deploys the branch (the
//! pusher sees the progress lines and the URL as `remote:` lines), a change
//! redeploys only its component, `git push local :BRANCH` tears the
//! environment down, pushing the same commit again does nothing, pushes are
//! queued, and a failing run names its step and its log.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, Output, TestDir, git_in, wait_until};
use serde::Deserialize;

use crate::platform::{Platform, StackGuard, refs, script, task_ids, unique, workspace_root};

/// The parts of `OUT/summary.json` (written by scripts/pipeline) checked here.
#[derive(Debug, Deserialize)]
struct Summary {
    branch: String,
    commit: String,
    namespace: String,
    built: Vec<String>,
    skipped: Vec<String>,
    deployed: Deployed,
    urls: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Deployed {
    unchanged: bool,
    cluster_commit: String,
    images: std::collections::BTreeMap<String, String>,
}

/// What the push-to-deploy tests read from a platform's state directory.
trait PushPlatform {
    /// The bare monorepo remote `up` serves.
    fn remote(&self) -> PathBuf;
    /// The run directory scripts/pipeline uses by default for a namespace.
    fn summary(&self, namespace: &str) -> Summary;
    /// The hook's log files, one per run.
    fn push_logs(&self) -> BTreeSet<String>;
}

impl PushPlatform for Platform {
    fn remote(&self) -> PathBuf {
        self.state.join("monorepo.git")
    }

    fn summary(&self, namespace: &str) -> Summary {
        let path = self.state.join(format!("runs/{namespace}/summary.json"));
        let text = std::fs::read_to_string(&path).expect("summary.json");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
    }

    fn push_logs(&self) -> BTreeSet<String> {
        match std::fs::read_dir(self.state.join("push-logs")) {
            Ok(dir) => dir
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => BTreeSet::new(),
        }
    }
}

/// `git push local ARGS` from `repo`. The pusher's environment names another
/// platform: the hook must deploy with its own platform's settings file.
fn push(repo: &Path, args: &[&str]) -> Output {
    let out = Cmd::new("git")
        .current_dir(repo)
        .arg("push")
        .env("MICROPLATFORM_STATE_DIR", "/nonexistent")
        .env("MICROPLATFORM_REGISTRY", "127.0.0.1:1")
        .env("MICROPLATFORM_CLUSTER_REPO", "file:///nonexistent.git")
        .env("MICROPLATFORM_AGENT_URL", "http://127.0.0.1:1")
        .env("MICROPLATFORM_DOCKER_HOST", "unix:///nonexistent.sock")
        .env("MICROPLATFORM_BIN_DIR", "/nonexistent")
        .args(args)
        .run();
    out.success();
    out
}

/// Git's `remote:` lines (what the hook printed), without the prefix.
fn remote_lines(out: &Output) -> Vec<String> {
    out.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote: "))
        .map(|l| l.trim_end().to_string())
        .collect()
}

fn stacks(dockerd: &Dockerd) -> Vec<String> {
    dockerd
        .run(&["stack", "ls", "--format", "{{.Name}}"])
        .lines()
        .map(str::to_string)
        .collect()
}

/// The front page, fetched by service name from the stack's network.
fn front_page(dockerd: &Dockerd, registry: &str, namespace: &str) -> String {
    dockerd.run(&[
        "run",
        "--rm",
        "--network",
        &format!("{namespace}_default"),
        &format!("{registry}/base/busybox:1"),
        "wget",
        "-qO-",
        "http://web:8080/",
    ])
}

fn copy_shop(repo: &TestDir) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join("examples/shop/."))
        .arg(repo.path())
        .status()
        .expect("cp");
    assert!(status.success());
}

#[test]
#[allow(clippy::too_many_lines)] // one platform, one story: push, change, no-op, delete
fn git_push_deploys_redeploys_one_component_tears_down_and_ignores_a_repeat() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    // Dropped last: the images, once the stacks using them are gone.
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let branch = unique("push");
    let broken = format!("{branch}-broken");
    let ns = format!("shop-{branch}");
    // Declared before the platform, so dropped after it: once `down` has
    // stopped the agent, nothing re-applies the stacks these remove.
    let _stack = StackGuard {
        dockerd,
        name: ns.clone(),
    };
    let _broken_stack = StackGuard {
        dockerd,
        name: format!("shop-{broken}"),
    };
    let (platform, up) = Platform::up(&reg, dockerd);
    up.stderr_contains("deploy-bot agent: started");
    let remote = platform.remote();
    // up serves the remote, records it in the settings file and says how to use it.
    up.stderr_contains(&format!("git remote add local {}", remote.display()));
    let env = std::fs::read_to_string(platform.state.join("env")).expect("env");
    assert!(
        env.contains(&format!(
            "MICROPLATFORM_MONOREPO_REMOTE={}\n",
            remote.display()
        )),
        "{env}"
    );
    assert_eq!(
        git_in(&remote, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    let hook = std::fs::read_to_string(remote.join("hooks/post-receive")).expect("hook");
    assert!(
        hook.contains(&script("push-hook").display().to_string()),
        "{hook}"
    );

    // The developer's monorepo: main holds a README; `local` is the platform.
    let repo = TestDir::new();
    repo.git_init();
    repo.write("README.md", "# shop\n");
    repo.commit_all("Start");
    repo.git(&["remote", "add", "local", &remote.to_string_lossy()]);
    // `-o ci.skip` updates the ref and runs nothing (main has no stack yet).
    let out = push(repo.path(), &["-o", "ci.skip", "local", "main"]);
    assert_eq!(
        remote_lines(&out),
        ["push: main: push option ci.skip: nothing to run"],
        "{}",
        out.stderr
    );
    assert!(platform.push_logs().is_empty());

    // A failing run: the pusher is told the step and where its log is.
    repo.git(&["checkout", "-q", "-b", &broken]);
    copy_shop(&repo);
    let health = repo.read("services/api/cgi-bin/health");
    repo.write(
        "services/api/cgi-bin/health",
        format!("{health}\nif then\n"),
    );
    repo.commit_all("A syntax error in api's health check");
    let out = push(repo.path(), &["local", &broken]);
    let lines = remote_lines(&out);
    let failed = lines
        .iter()
        .find(|l| {
            l.starts_with(&format!(
                "push: {broken}: FAILED at step build (exit 1); full log: "
            ))
        })
        .unwrap_or_else(|| panic!("no failure line:\n{}", out.stderr));
    let log = PathBuf::from(failed.rsplit(' ').next().expect("log path"));
    let step_log = platform
        .state
        .join(format!("runs/shop-{broken}/logs/build-api.log"));
    assert!(
        lines.iter().any(
            |l| l.starts_with("pipeline: step build failed: build-with-cache: api")
                && l.contains(&step_log.display().to_string())
        ),
        "{}",
        out.stderr
    );
    assert!(
        std::fs::read_to_string(&log)
            .expect("push log")
            .contains("step build failed"),
        "{}",
        log.display()
    );
    let step_text = std::fs::read_to_string(&step_log).expect("build log");
    assert!(step_text.contains("syntax error"), "{step_text}");
    assert!(!stacks(dockerd).contains(&format!("shop-{broken}")));

    // 1. Push a branch: it is built, deployed and answers; git shows the progress and the URL.
    repo.git(&["checkout", "-q", "-b", &branch, "main"]);
    copy_shop(&repo);
    let commit1 = repo.commit_all("Add the shop");
    let out = push(repo.path(), &["local", &branch]);
    let lines = remote_lines(&out);
    for step in [
        "diff", "workflow", "prepare", "build", "render", "resolve", "request", "merge", "apply",
        "smoke",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with('[') && l.contains(&format!("] {step}"))),
            "no {step} line:\n{}",
            out.stderr
        );
    }
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "push: {branch}: 000000000000 -> {}: running the branch flow",
            &commit1[..12]
        ))),
        "{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("push: {branch}: done (log "))),
        "{}",
        out.stderr
    );
    let s1 = platform.summary(&ns);
    assert_eq!(s1.branch, branch);
    assert_eq!(s1.commit, commit1);
    assert_eq!(s1.namespace, ns);
    // web's image, content key unchanged, was pushed by the failed run: only api is built.
    assert_eq!(s1.built, ["api"], "{s1:?}");
    assert_eq!(s1.skipped, ["web"], "{s1:?}");
    assert!(!s1.deployed.unchanged);
    assert_eq!(s1.urls.len(), 1, "{s1:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start() == format!("url:      {} (ingress host)", s1.urls[0])),
        "the URL is not in git's output:\n{}",
        out.stderr
    );
    let page = front_page(dockerd, &reg.addr, &ns);
    assert!(page.contains("web says: Hello, visitor!"), "{page}");
    assert!(page.contains("api says: Hello, web!"), "{page}");
    // The URL git printed opens (the platform's ingress; names under .localhost are loopback).
    assert!(
        s1.urls[0].starts_with(&format!("http://{branch}.shop.dev.localhost:")),
        "{s1:?}"
    );
    let out = Cmd::new("curl")
        .args(["-sS", "-m", "10", &s1.urls[0]])
        .run();
    out.success().stdout_contains("api says: Hello, web!");
    // The cluster repo's main holds the environment's directory.
    let cluster = platform.state.join("cluster.git");
    assert_eq!(
        git_in(&cluster, &["rev-parse", "main"]),
        s1.deployed.cluster_commit
    );
    git_in(
        &cluster,
        &["cat-file", "-e", &format!("main:{ns}/compose.yaml")],
    );

    // up again is idempotent: the remote and its refs are kept, the hook is not rewritten.
    let remote_refs = refs(&remote);
    platform
        .cmd()
        .arg("up")
        .run()
        .success()
        .stderr_contains(&format!("monorepo remote: {}", remote.display()));
    assert_eq!(refs(&remote), remote_refs);
    // status names the remote and how to add it.
    platform
        .cmd()
        .arg("status")
        .run()
        .success()
        .stderr_contains(&format!(
            "monorepo remote: {} (post-receive",
            remote.display()
        ))
        .stderr_contains(&format!("git remote add local {}", remote.display()));
    assert_eq!(
        std::fs::read_to_string(remote.join("hooks/post-receive")).expect("hook"),
        hook
    );

    // 2. Push a change to libs/page: only web is rebuilt and redeployed. Meanwhile
    // another push (deleting the broken branch) waits in the queue.
    let api = format!("{ns}_api");
    let web = format!("{ns}_web");
    let (api_tasks1, web_tasks1) = (task_ids(dockerd, &api), task_ids(dockerd, &web));
    let layout = repo.read("libs/page/layout.html");
    repo.write(
        "libs/page/layout.html",
        layout.replace(
            "shop example of the microplatform tools",
            "shop, pushed edition",
        ),
    );
    let commit2 = repo.commit_all("New footer");
    let logs_before = platform.push_logs();
    let (out, queued, change_log_then) = std::thread::scope(|s| {
        let change = s.spawn(|| push(repo.path(), &["local", &branch]));
        // Once the change's run has started, push again.
        let started = wait_until(Duration::from_secs(60), || {
            platform.push_logs().len() > logs_before.len()
        });
        assert!(started, "the change's run did not start");
        let queued = push(repo.path(), &["local", &format!(":{broken}")]);
        // The queued run only started once the change's run had finished.
        let change_log = platform
            .push_logs()
            .difference(&logs_before)
            .find(|f| f.ends_with(&format!("-{branch}.log")))
            .cloned()
            .expect("the change's log");
        let text = std::fs::read_to_string(platform.state.join("push-logs").join(change_log))
            .expect("log");
        (change.join().expect("push thread"), queued, text)
    });
    let queued_lines = remote_lines(&queued);
    assert!(
        queued_lines.contains(&format!(
            "push: {broken}: queued behind the run in progress"
        )),
        "{}",
        queued.stderr
    );
    assert!(
        queued_lines
            .iter()
            .any(|l| l.starts_with(&format!("push: {broken}: done (log "))),
        "{}",
        queued.stderr
    );
    assert!(
        change_log_then.contains("pipeline: done in"),
        "{change_log_then}"
    );
    assert!(
        remote_lines(&out)
            .iter()
            .any(|l| l.starts_with(&format!("push: {branch}: done"))),
        "{}",
        out.stderr
    );
    let s2 = platform.summary(&ns);
    assert_eq!(s2.commit, commit2);
    assert_eq!(s2.built, ["web"], "{s2:?}");
    assert_eq!(s2.skipped, ["api"], "{s2:?}");
    assert!(!s2.deployed.unchanged);
    assert_eq!(s2.deployed.images["api"], s1.deployed.images["api"]);
    assert_ne!(s2.deployed.images["web"], s1.deployed.images["web"]);
    assert_eq!(task_ids(dockerd, &api), api_tasks1, "api was restarted");
    let web_tasks2 = task_ids(dockerd, &web);
    assert!(
        web_tasks2.len() > web_tasks1.len(),
        "web was not redeployed"
    );
    let page = front_page(dockerd, &reg.addr, &ns);
    assert!(page.contains("shop, pushed edition"), "{page}");

    // 3. Push the same commit again: git has nothing to send, no run starts.
    let (logs2, cluster_refs2) = (platform.push_logs(), refs(&cluster));
    let out = push(repo.path(), &["local", &branch]);
    assert!(remote_lines(&out).is_empty(), "{}", out.stderr);
    assert!(
        out.stderr.contains("Everything up-to-date"),
        "{}",
        out.stderr
    );
    assert_eq!(platform.push_logs(), logs2);
    // A new commit with the same tree runs, and changes nothing: no build,
    // no cluster commit, no restart.
    let commit3 = repo.commit_all("Nothing new");
    let out = push(repo.path(), &["local", &branch]);
    assert!(
        remote_lines(&out).iter().any(|l| l
            .trim_start()
            .starts_with(&format!("deployed: {ns} unchanged"))),
        "{}",
        out.stderr
    );
    let s3 = platform.summary(&ns);
    assert_eq!(s3.commit, commit3);
    assert!(s3.built.is_empty(), "{s3:?}");
    assert!(s3.deployed.unchanged);
    assert_eq!(s3.deployed.images, s2.deployed.images);
    assert_eq!(refs(&cluster), cluster_refs2, "the cluster repo changed");
    assert_eq!(task_ids(dockerd, &api), api_tasks1, "api was restarted");
    assert_eq!(task_ids(dockerd, &web), web_tasks2, "web was restarted");

    // 4. Delete the branch: the stack is gone, and its directory in the cluster repo.
    let out = push(repo.path(), &["local", &format!(":{branch}")]);
    let lines = remote_lines(&out);
    assert!(
        lines.contains(&format!(
            "push: {branch} deleted: tearing its environment down"
        )),
        "{}",
        out.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("apply    {ns} removed"))),
        "{}",
        out.stderr
    );
    assert!(!stacks(dockerd).contains(&ns), "{:?}", stacks(dockerd));
    let tree = git_in(&cluster, &["ls-tree", "--name-only", "main"]);
    assert!(!tree.lines().any(|l| l == ns), "{tree}");
    assert!(git_in(&remote, &["branch", "--list", &branch]).is_empty());

    platform.down().success();
}
