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

use crate::platform::{Platform, StackGuard, copy_shop, refs, script, task_ids, unique};

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

/// A developer's monorepo whose `local` remote is the platform's, with main (a README) pushed
/// with `-o ci.skip`; returns the repo and that push's output.
fn repo_with_main_pushed(platform: &Platform) -> (TestDir, Output) {
    let repo = TestDir::new();
    repo.git_init();
    repo.write("README.md", "# shop\n");
    repo.commit_all("Start");
    repo.git(&[
        "remote",
        "add",
        "local",
        &platform.remote().to_string_lossy(),
    ]);
    let out = push(repo.path(), &["-o", "ci.skip", "local", "main"]);
    (repo, out)
}

#[test]
fn up_serves_a_bare_monorepo_remote_with_the_push_hook() {
    let reg = Registry::start();
    let (platform, up) = Platform::up(&reg, Dockerd::shared());
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
}

#[test]
fn a_ci_skip_push_updates_the_ref_and_runs_nothing() {
    let reg = Registry::start();
    let (platform, _) = Platform::up(&reg, Dockerd::shared());
    let (repo, out) = repo_with_main_pushed(&platform);
    assert_eq!(
        remote_lines(&out),
        ["push: main: push option ci.skip: nothing to run"],
        "{}",
        out.stderr
    );
    assert!(platform.push_logs().is_empty());
    assert_eq!(
        git_in(&platform.remote(), &["rev-parse", "main"]),
        repo.git(&["rev-parse", "main"])
    );
}

#[test]
fn up_again_keeps_the_remote_its_refs_and_its_hook() {
    let reg = Registry::start();
    let (platform, _) = Platform::up(&reg, Dockerd::shared());
    let remote = platform.remote();
    let (repo, _) = repo_with_main_pushed(&platform);
    repo.git(&["checkout", "-q", "-b", "second"]);
    repo.commit_all("Second");
    push(repo.path(), &["-o", "ci.skip", "local", "second"]);
    let remote_refs = refs(&remote);
    let hook = std::fs::read_to_string(remote.join("hooks/post-receive")).expect("hook");
    platform
        .cmd()
        .arg("up")
        .run()
        .success()
        .stderr_contains(&format!("monorepo remote: {}", remote.display()));
    assert_eq!(refs(&remote), remote_refs);
    assert_eq!(
        std::fs::read_to_string(remote.join("hooks/post-receive")).expect("hook"),
        hook
    );
}

#[test]
fn status_names_the_monorepo_remote_and_how_to_add_it() {
    let reg = Registry::start();
    let (platform, _) = Platform::up(&reg, Dockerd::shared());
    let remote = platform.remote();
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
}

/// The push-to-deploy scenario's world: the registry, the engine, the platform, the developer's
/// repo (main pushed with `ci.skip`) and the names of its branches.
struct Scenario<'a> {
    reg: &'a Registry,
    dockerd: &'a Dockerd,
    platform: &'a Platform,
    repo: TestDir,
    /// The branch deployed, changed, pushed again and deleted.
    branch: String,
    /// The branch whose run fails.
    broken: String,
    /// The branch's namespace (its stack's name).
    ns: String,
}

/// An environment after a run: the run's summary and the tasks of its api and web services.
struct Live {
    summary: Summary,
    api: BTreeSet<String>,
    web: BTreeSet<String>,
}

impl<'a> Scenario<'a> {
    fn new(reg: &'a Registry, dockerd: &'a Dockerd, platform: &'a Platform, branch: &str) -> Self {
        Scenario {
            reg,
            dockerd,
            platform,
            repo: repo_with_main_pushed(platform).0,
            branch: branch.to_string(),
            broken: format!("{branch}-broken"),
            ns: format!("shop-{branch}"),
        }
    }

    /// `git push local ARGS` from the developer's repo.
    fn push(&self, args: &[&str]) -> Output {
        push(self.repo.path(), args)
    }

    /// The platform's cluster repo.
    fn cluster(&self) -> PathBuf {
        self.platform.state.join("cluster.git")
    }

    /// Every task of the branch's `service`.
    fn tasks(&self, service: &str) -> BTreeSet<String> {
        task_ids(self.dockerd, &format!("{}_{service}", self.ns))
    }

    /// The branch's environment now, after the run that wrote `summary`.
    fn live(&self, summary: Summary) -> Live {
        Live {
            summary,
            api: self.tasks("api"),
            web: self.tasks("web"),
        }
    }

    /// The branch's front page, fetched by service name from its stack's network.
    fn front_page(&self) -> String {
        front_page(self.dockerd, &self.reg.addr, &self.ns)
    }
}

/// Pushes the shop, with a syntax error in api's health check, on the broken branch.
fn push_a_broken_api(s: &Scenario) -> Output {
    s.repo.git(&["checkout", "-q", "-b", &s.broken]);
    copy_shop(&s.repo);
    let health = s.repo.read("services/api/cgi-bin/health");
    s.repo.write(
        "services/api/cgi-bin/health",
        format!("{health}\nif then\n"),
    );
    s.repo.commit_all("A syntax error in api's health check");
    s.push(&["local", &s.broken])
}

/// A failing run tells the pusher the step and where its logs are (the push's and the step's),
/// both of which say what failed, and deploys nothing.
fn a_failing_run_names_its_step_and_its_log(s: &Scenario, out: &Output) {
    let broken = &s.broken;
    let lines = remote_lines(out);
    let failed = lines
        .iter()
        .find(|l| {
            l.starts_with(&format!(
                "push: {broken}: FAILED at step build (exit 1); full log: "
            ))
        })
        .unwrap_or_else(|| panic!("no failure line:\n{}", out.stderr));
    let log = PathBuf::from(failed.rsplit(' ').next().expect("log path"));
    let step_log = s
        .platform
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
    assert!(!stacks(s.dockerd).contains(&format!("shop-{broken}")));
}

/// Pushes the shop on the branch (from main); returns git's output and the commit.
fn push_the_shop(s: &Scenario) -> (Output, String) {
    s.repo.git(&["checkout", "-q", "-b", &s.branch, "main"]);
    copy_shop(&s.repo);
    let commit = s.repo.commit_all("Add the shop");
    (s.push(&["local", &s.branch]), commit)
}

/// git shows the run's start, a progress line for every step of the branch flow, and its end.
fn git_shows_the_runs_progress(s: &Scenario, out: &Output, commit: &str) {
    let (branch, lines) = (&s.branch, remote_lines(out));
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
            &commit[..12]
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
}

/// The pushed commit is deployed to the branch's namespace with one URL; web's image, content
/// key unchanged, was pushed by the failed run: only api is built. Returns the run's summary.
fn the_branch_is_deployed_building_only_api(s: &Scenario, commit: &str) -> Summary {
    let s1 = s.platform.summary(&s.ns);
    assert_eq!(s1.branch, s.branch);
    assert_eq!(s1.commit, commit);
    assert_eq!(s1.namespace, s.ns);
    assert_eq!(s1.built, ["api"], "{s1:?}");
    assert_eq!(s1.skipped, ["web"], "{s1:?}");
    assert!(!s1.deployed.unchanged);
    assert_eq!(s1.urls.len(), 1, "{s1:?}");
    s1
}

/// The deployed stack answers: web's front page shows api's answer.
fn the_stack_answers_on_its_network(s: &Scenario) {
    let page = s.front_page();
    assert!(page.contains("web says: Hello, visitor!"), "{page}");
    assert!(page.contains("api says: Hello, web!"), "{page}");
}

/// git shows the environment's URL, and it opens (the platform's ingress; names under
/// .localhost are loopback).
fn git_shows_the_url_and_it_opens(s: &Scenario, out: &Output, s1: &Summary) {
    assert!(
        remote_lines(out)
            .iter()
            .any(|l| l.trim_start() == format!("url:      {} (ingress host)", s1.urls[0])),
        "the URL is not in git's output:\n{}",
        out.stderr
    );
    assert!(
        s1.urls[0].starts_with(&format!("http://{}.shop.dev.localhost:", s.branch)),
        "{s1:?}"
    );
    let out = Cmd::new("curl")
        .args(["-sS", "-m", "10", &s1.urls[0]])
        .run();
    out.success().stdout_contains("api says: Hello, web!");
}

/// The cluster repo's main, at the run's cluster commit, holds the environment's directory.
fn the_cluster_repos_main_holds_the_environment(s: &Scenario, s1: &Summary) {
    let cluster = s.cluster();
    assert_eq!(
        git_in(&cluster, &["rev-parse", "main"]),
        s1.deployed.cluster_commit
    );
    git_in(
        &cluster,
        &["cat-file", "-e", &format!("main:{}/compose.yaml", s.ns)],
    );
}

/// Commits a new footer in libs/page (web's) on the branch; pushes it and, once its run has
/// started, deletes the broken branch. Returns both pushes' output and the change's push log
/// as it was when the queued push ended.
fn push_a_change_and_queue_a_delete(s: &Scenario) -> (Output, Output, String) {
    let layout = s.repo.read("libs/page/layout.html");
    s.repo.write(
        "libs/page/layout.html",
        layout.replace(
            "shop example of the microplatform tools",
            "shop, pushed edition",
        ),
    );
    s.repo.commit_all("New footer");
    let (platform, branch) = (s.platform, &s.branch);
    let logs_before = platform.push_logs();
    std::thread::scope(|scope| {
        let change = scope.spawn(|| s.push(&["local", branch]));
        let started = wait_until(Duration::from_secs(60), || {
            platform.push_logs().len() > logs_before.len()
        });
        assert!(started, "the change's run did not start");
        let queued = s.push(&["local", &format!(":{}", s.broken)]);
        let change_log = platform
            .push_logs()
            .difference(&logs_before)
            .find(|f| f.ends_with(&format!("-{branch}.log")))
            .cloned()
            .expect("the change's log");
        let text = std::fs::read_to_string(platform.state.join("push-logs").join(change_log))
            .expect("log");
        (change.join().expect("push thread"), queued, text)
    })
}

/// A push during a run waits in the queue: it says so, and only runs (and ends) once the run
/// in progress has finished.
fn a_push_during_a_run_waits_for_it(s: &Scenario, out: &Output, queued: &Output, log: &str) {
    let broken = &s.broken;
    let queued_lines = remote_lines(queued);
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
    assert!(log.contains("pipeline: done in"), "{log}");
    assert!(
        remote_lines(out)
            .iter()
            .any(|l| l.starts_with(&format!("push: {}: done", s.branch))),
        "{}",
        out.stderr
    );
}

/// A change to libs/page rebuilds and redeploys web only: api keeps its image and its tasks,
/// web gets a new image, a new task and the new footer. Returns the environment after it.
fn a_change_redeploys_only_its_component(s: &Scenario, before: &Live) -> Live {
    let s2 = s.platform.summary(&s.ns);
    assert_eq!(s2.commit, s.repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(s2.built, ["web"], "{s2:?}");
    assert_eq!(s2.skipped, ["api"], "{s2:?}");
    assert!(!s2.deployed.unchanged);
    let images = &before.summary.deployed.images;
    assert_eq!(s2.deployed.images["api"], images["api"]);
    assert_ne!(s2.deployed.images["web"], images["web"]);
    let after = s.live(s2);
    assert_eq!(after.api, before.api, "api was restarted");
    assert!(after.web.len() > before.web.len(), "web was not redeployed");
    let page = s.front_page();
    assert!(page.contains("shop, pushed edition"), "{page}");
    after
}

/// Pushing the same commit again: git has nothing to send, no run starts.
fn pushing_the_same_commit_again_runs_nothing(s: &Scenario) {
    let logs = s.platform.push_logs();
    let out = s.push(&["local", &s.branch]);
    assert!(remote_lines(&out).is_empty(), "{}", out.stderr);
    assert!(
        out.stderr.contains("Everything up-to-date"),
        "{}",
        out.stderr
    );
    assert_eq!(s.platform.push_logs(), logs);
}

/// A new commit with the same tree runs, and changes nothing: no build, no cluster commit,
/// no restart.
fn a_commit_with_the_same_tree_changes_nothing(s: &Scenario, before: &Live) {
    let cluster_refs = refs(&s.cluster());
    let commit = s.repo.commit_all("Nothing new");
    let out = s.push(&["local", &s.branch]);
    assert!(
        remote_lines(&out).iter().any(|l| l
            .trim_start()
            .starts_with(&format!("deployed: {} unchanged", s.ns))),
        "{}",
        out.stderr
    );
    let s3 = s.platform.summary(&s.ns);
    assert_eq!(s3.commit, commit);
    assert!(s3.built.is_empty(), "{s3:?}");
    assert!(s3.deployed.unchanged);
    assert_eq!(s3.deployed.images, before.summary.deployed.images);
    assert_eq!(refs(&s.cluster()), cluster_refs, "the cluster repo changed");
    assert_eq!(s.tasks("api"), before.api, "api was restarted");
    assert_eq!(s.tasks("web"), before.web, "web was restarted");
}

/// Deleting the branch tears its environment down: the stack is gone, and its directory in
/// the cluster repo, and the branch on the remote.
fn deleting_the_branch_tears_its_environment_down(s: &Scenario) {
    let (branch, ns) = (&s.branch, &s.ns);
    let out = s.push(&["local", &format!(":{branch}")]);
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
    assert!(!stacks(s.dockerd).contains(ns), "{:?}", stacks(s.dockerd));
    let tree = git_in(&s.cluster(), &["ls-tree", "--name-only", "main"]);
    assert!(!tree.lines().any(|l| l == ns), "{tree}");
    assert!(git_in(&s.platform.remote(), &["branch", "--list", branch]).is_empty());
}

/// The steps share one test: each works on the state the one before left on one platform
/// (the failed run pushed web's image, so the deploy builds only api; the change, the repeat and
/// the teardown act on that deployment), and each state is a swarm deploy or a build of tens
/// of seconds.
#[test]
fn git_push_deploys_redeploys_one_component_tears_down_and_ignores_a_repeat() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    // Dropped last: the images, once the stacks using them are gone.
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let branch = unique("push");
    // Declared before the platform, so dropped after it: once `down` has
    // stopped the agent, nothing re-applies the stacks these remove.
    let _stack = StackGuard {
        dockerd,
        name: format!("shop-{branch}"),
    };
    let _broken_stack = StackGuard {
        dockerd,
        name: format!("shop-{branch}-broken"),
    };
    let (platform, _) = Platform::up(&reg, dockerd);
    let s = Scenario::new(&reg, dockerd, &platform, &branch);
    let out = push_a_broken_api(&s);
    a_failing_run_names_its_step_and_its_log(&s, &out);

    let (out, commit) = push_the_shop(&s);
    git_shows_the_runs_progress(&s, &out, &commit);
    let s1 = the_branch_is_deployed_building_only_api(&s, &commit);
    the_stack_answers_on_its_network(&s);
    git_shows_the_url_and_it_opens(&s, &out, &s1);
    the_cluster_repos_main_holds_the_environment(&s, &s1);

    let deployed = s.live(s1);
    let (out, queued, change_log) = push_a_change_and_queue_a_delete(&s);
    a_push_during_a_run_waits_for_it(&s, &out, &queued, &change_log);
    let changed = a_change_redeploys_only_its_component(&s, &deployed);
    pushing_the_same_commit_again_runs_nothing(&s);
    a_commit_with_the_same_tree_changes_nothing(&s, &changed);
    deleting_the_branch_tears_its_environment_down(&s);
    platform.down().success();
}
