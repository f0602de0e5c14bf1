//! End-to-end: `scripts/local-platform up` and `scripts/pipeline` on a fresh git copy of `examples/shop`: the whole chain (monobuild → stackgen → build-with-cache → digest-resolve → deploy-bot → swarm), a library change rebuilding and redeploying exactly its dependents, a no-change run that builds, commits and restarts nothing, and two branches answering at their printed URLs through the platform's ingress (curl, and a headless Chromium whose screenshots are kept in `target/test-artifacts/`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::fake_github::FakeGitHub;
use microplatform_test_support::registry::{OCI_MANIFEST, Registry};
use microplatform_test_support::{Cmd, Output, TestDir, git_in, wait_until};
use serde::Deserialize;

use crate::platform::{
    Platform, StackGuard, bin_dir, copy_shop, refs, script, task_ids, unique, workspace_root,
};

/// `OUT/summary.json` written by scripts/pipeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Summary {
    schema_version: u32,
    branch: String,
    commit: String,
    environment: String,
    namespace: String,
    tag: String,
    affected: Vec<String>,
    built: Vec<String>,
    skipped: Vec<String>,
    libraries: Vec<String>,
    deployed: Deployed,
    urls: Vec<String>,
    smoke: Vec<SmokeCheck>,
    out_dir: String,
    seconds: f64,
}

/// A passed smoke check in `summary.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmokeCheck {
    service: String,
    url: String,
    status: u16,
    attempts: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Deployed {
    unchanged: bool,
    cluster_commit: String,
    images: BTreeMap<String, String>,
}

/// [`Platform::up`] with what every platform of these tests is checked for: `up` reused the harness
/// registry and the shared engine, started the agent and the ingress, and wrote the ingress port.
fn up(reg: &Registry, dockerd: &Dockerd) -> Platform {
    let (platform, out) = Platform::up(reg, dockerd);
    out.stderr_contains("registry: using the one already on")
        .stderr_contains("docker: using the engine at")
        .stderr_contains("deploy-bot agent: started")
        .stderr_contains("ingress: started");
    let env = std::fs::read_to_string(platform.state.join("env")).expect("settings");
    assert!(
        env.contains(&format!(
            "MICROPLATFORM_INGRESS_PORT={}\n",
            platform.ingress_port
        )),
        "{env}"
    );
    platform
}

fn summary(out: &Path) -> Summary {
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("summary.json: {e}\n{text}"))
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The service's spec (image, env, labels, ...): what a redeploy would change.
fn spec(dockerd: &Dockerd, service: &str) -> String {
    dockerd.run(&["service", "inspect", "--format", "{{json .Spec}}", service])
}

/// The files of a directory tree, relative path → bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, acc: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                walk(root, &p, acc);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .expect("prefix")
                    .to_string_lossy()
                    .into_owned();
                acc.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut acc = BTreeMap::new();
    walk(dir, dir, &mut acc);
    acc
}

/// A fresh git repo: `main` holds only a README (the project is new), the
/// branch adds a copy of examples/shop.
pub fn shop_repo(branch: &str) -> TestDir {
    let repo = TestDir::new();
    repo.git_init();
    repo.write("README.md", "# shop\n");
    repo.commit_all("Start");
    repo.git(&["checkout", "-q", "-b", branch]);
    copy_shop(&repo);
    repo.commit_all("Add the shop");
    repo
}

/// `OUT/name` parsed as JSON (plan.json, request.json).
fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// A platform [`up`] on a registry of its own and the shared engine, and a fresh copy of the shop
/// on the first of its branches: what each scenario here starts from. The fields drop in order:
/// the platform goes down first (its agent, self-healing, would redeploy a stack removed under
/// it), then the branches' stacks, then the registry's images, then the registry.
struct Shop {
    platform: Platform,
    _stacks: Vec<StackGuard<'static>>,
    _images: ImageCleanup<'static>,
    reg: Registry,
    dockerd: &'static Dockerd,
    /// The first branch, the one the repo is on.
    branch: String,
    repo: TestDir,
    /// The runs' `--out` directories.
    runs: TestDir,
}

impl Shop {
    /// The platform up, a stack guard for each of `branches`, and the shop's repo on the first.
    fn start(branches: &[&str]) -> Self {
        let reg = Registry::start();
        let dockerd = Dockerd::shared();
        let stacks = branches
            .iter()
            .map(|br| StackGuard {
                dockerd,
                name: format!("shop-{br}"),
            })
            .collect();
        let platform = up(&reg, dockerd);
        Shop {
            platform,
            _stacks: stacks,
            _images: ImageCleanup {
                dockerd,
                registry: reg.addr.clone(),
            },
            reg,
            dockerd,
            branch: branches[0].to_string(),
            repo: shop_repo(branches[0]),
            runs: TestDir::new(),
        }
    }

    /// `scripts/pipeline --out RUNS/NAME REPO BRANCH`: its output and its out directory.
    fn pipeline(&self, branch: &str, name: &str) -> (Output, PathBuf) {
        let out = self.runs.join(name);
        (self.platform.pipeline(self.repo.path(), branch, &out), out)
    }

    /// The URL of BRANCH's environment, through the platform's ingress.
    fn url(&self, branch: &str) -> String {
        format!(
            "http://{branch}.shop.dev.localhost:{}/",
            self.platform.ingress_port
        )
    }

    /// The swarm service NAME of the first branch's stack.
    fn service(&self, name: &str) -> String {
        format!("shop-{}_{name}", self.branch)
    }
}

/// The cluster repo's refs and the api and web services' tasks and specs at one moment.
struct Snapshot {
    refs: String,
    api_tasks: BTreeSet<String>,
    web_tasks: BTreeSet<String>,
    api_spec: String,
    web_spec: String,
}

impl Snapshot {
    /// The state of the first branch's deployment now.
    fn take(shop: &Shop) -> Self {
        let (api, web) = (shop.service("api"), shop.service("web"));
        Snapshot {
            refs: refs(&shop.platform.cluster_repo()),
            api_tasks: task_ids(shop.dockerd, &api),
            web_tasks: task_ids(shop.dockerd, &web),
            api_spec: spec(shop.dockerd, &api),
            web_spec: spec(shop.dockerd, &web),
        }
    }
}

/// One branch deployed through five runs, each checked against what the run before it left: only
/// the changed library's dependent rebuilt, then nothing built or restarted, then everything rebuilt
/// after a new base image, then the environment deleted. Each run is a full pipeline run of tens
/// of seconds on top of the ones before, so the steps share this test.
#[test]
fn pipeline_deploys_a_branch_rebuilds_only_dependents_and_is_idempotent() {
    let shop = Shop::start(&[&unique("e2e")]);
    let (run, out1) = shop.pipeline(&shop.branch, "run1");
    let s1 = the_first_run_builds_both_images_and_deploys_them(&shop, &run, &out1);
    the_first_run_saves_its_plan_compose_file_and_workflow(&shop, &out1);
    the_first_run_smoke_tests_at_the_url_and_by_service_name(&run, &s1, &out1);
    the_first_run_merges_the_stack_into_the_cluster_repo(&shop, &s1, &out1);
    let after1 = Snapshot::take(&shop);
    let s2 = a_library_change_rebuilds_and_redeploys_only_its_dependent(&shop, &s1, &after1);
    let after2 = Snapshot::take(&shop);
    let s3 = a_run_without_change_builds_commits_and_restarts_nothing(&shop, &s2, &after2);
    a_new_base_image_rebuilds_and_redeploys_both_services(&shop, &s3, &after2);
    delete_takes_the_environment_out_of_the_cluster_repo_and_the_engine(&shop);
}

/// Run 1, everything new: every step runs, both images are built in schedule order and deployed
/// pinned by digest, and the summary describes the branch's environment.
fn the_first_run_builds_both_images_and_deploys_them(
    shop: &Shop,
    run: &Output,
    out: &Path,
) -> Summary {
    run.success();
    for step in [
        "diff", "workflow", "prepare", "build", "render", "resolve", "request", "merge", "apply",
        "smoke",
    ] {
        run.stderr_contains(&format!("] {step}"));
    }
    let s = summary(out);
    let branch = &shop.branch;
    assert_eq!(s.schema_version, 1);
    assert_eq!(s.branch, *branch);
    assert_eq!(s.commit, shop.repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(s.environment, "dev");
    assert_eq!(s.namespace, format!("shop-{branch}"));
    assert_eq!(s.tag, *branch);
    assert_eq!(sorted(&s.built), ["api", "web"]);
    assert!(s.skipped.is_empty(), "{s:?}");
    assert_eq!(sorted(&s.libraries), ["libs/greeting", "libs/page"]);
    assert_eq!(
        sorted(&s.affected),
        ["libs/greeting", "libs/page", "services/api", "services/web"]
    );
    assert!(!s.deployed.unchanged);
    assert_eq!(s.urls, [shop.url(branch)]);
    assert_eq!(Path::new(&s.out_dir), out);
    assert!(s.seconds > 0.0);
    for (svc, image) in &s.deployed.images {
        let prefix = format!("{}/shop/{svc}:{branch}@sha256:", shop.reg.addr);
        assert!(image.starts_with(&prefix), "{image} is not {prefix}…");
    }
    s
}

/// Run 1 saves its plan next to the summary, a compose file carrying the endpoint mode, and an
/// Argo Workflow with a task per scheduled job.
fn the_first_run_saves_its_plan_compose_file_and_workflow(shop: &Shop, out: &Path) {
    let plan = read_json(&out.join("plan.json"));
    assert_eq!(plan["tag"], serde_json::Value::String(shop.branch.clone()));
    let compose = std::fs::read_to_string(out.join("deploy/compose.yaml")).expect("compose");
    assert!(compose.contains("endpoint_mode: dnsrr"), "{compose}");
    let workflow = std::fs::read_to_string(out.join("workflow.yaml")).expect("workflow");
    assert!(workflow.contains("kind: Workflow"), "{workflow}");
}

/// Run 1's smoke step: the front page shows both services' greetings (web called api by name), the
/// declared healthy answers (stack.yaml `smoke`) were checked at the URL through the ingress, and
/// every health and ingress path was called by service name (deploy-bot smoke --by-name), the
/// summary's `try:` lines repeating the ingress calls.
fn the_first_run_smoke_tests_at_the_url_and_by_service_name(run: &Output, s: &Summary, out: &Path) {
    let page = std::fs::read_to_string(out.join("smoke/web-ingress.txt")).expect("smoke page");
    assert!(page.contains("web says: Hello, visitor!"), "{page}");
    assert!(page.contains("api says: Hello, web!"), "{page}");
    let checked: Vec<(&str, &str, u16)> = s
        .smoke
        .iter()
        .map(|c| (c.service.as_str(), c.url.as_str(), c.status))
        .collect();
    let base = &s.urls[0];
    let greet = format!("{base}cgi-bin/greet?name=smoke");
    assert_eq!(
        checked,
        [("api", greet.as_str(), 200), ("web", base.as_str(), 200)]
    );
    assert!(s.smoke.iter().all(|c| c.attempts >= 1));
    let web_body = std::fs::read_to_string(out.join("smoke/web.txt")).expect("smoke body");
    assert!(web_body.contains("status: ok"), "{web_body}");
    run.stderr_contains(
        "at the URL: api 200 /\"greeting\":\"[^\"]+, smoke!\"/, web 200 /status: ok/",
    );
    run.stderr_contains("] smoke    4 calls by service name answered");
    run.stderr_contains(&format!("--network {}_default ", s.namespace));
    run.stderr_contains(" wget -qO- http://web:8080/\n");
    let health = std::fs::read_to_string(out.join("smoke/api-health.txt")).expect("health");
    assert_eq!(health, "ok\n", "api's health answer, by name");
}

/// Run 1 is merged: the cluster repo's main holds the resolved stack, no deploy branch is left.
fn the_first_run_merges_the_stack_into_the_cluster_repo(shop: &Shop, s: &Summary, out: &Path) {
    let cluster = shop.platform.cluster_repo();
    assert_eq!(
        git_in(&cluster, &["rev-parse", "main"]),
        s.deployed.cluster_commit
    );
    let merged = git_in(
        &cluster,
        &["show", &format!("main:shop-{}/compose.yaml", shop.branch)],
    );
    assert_eq!(
        merged.trim(),
        std::fs::read_to_string(out.join("deploy/compose.yaml"))
            .expect("compose")
            .trim()
    );
    assert!(
        !refs(&cluster).contains("refs/heads/deploy/"),
        "{}",
        refs(&cluster)
    );
}

/// Run 2, after a change to libs/page: only web (its one dependent) is rebuilt and redeployed;
/// api keeps its image, its spec and its task.
fn a_library_change_rebuilds_and_redeploys_only_its_dependent(
    shop: &Shop,
    s1: &Summary,
    before: &Snapshot,
) -> Summary {
    let layout = shop.repo.read("libs/page/layout.html");
    shop.repo.write(
        "libs/page/layout.html",
        layout.replace(
            "shop example of the microplatform tools",
            "shop, second edition",
        ),
    );
    shop.repo.commit_all("New footer");
    let (run, out) = shop.pipeline(&shop.branch, "run2");
    run.success();
    let s2 = summary(&out);
    assert_eq!(s2.built, ["web"], "{s2:?}");
    assert_eq!(s2.skipped, ["api"], "{s2:?}");
    assert!(!s2.deployed.unchanged);
    assert_eq!(s2.deployed.images["api"], s1.deployed.images["api"]);
    assert_ne!(s2.deployed.images["web"], s1.deployed.images["web"]);
    let page = std::fs::read_to_string(out.join("smoke/web-ingress.txt")).expect("smoke page");
    assert!(page.contains("shop, second edition"), "{page}");
    assert!(page.contains("api says: Hello, web!"), "{page}");
    let (api, web) = (shop.service("api"), shop.service("web"));
    assert_eq!(
        task_ids(shop.dockerd, &api),
        before.api_tasks,
        "api was restarted"
    );
    // `docker stack deploy` touches every service of the stack, but api's
    // spec (its pinned image) is the same, so its task kept running.
    assert_eq!(
        spec(shop.dockerd, &api),
        before.api_spec,
        "api's spec changed"
    );
    assert!(
        task_ids(shop.dockerd, &web).len() > before.web_tasks.len(),
        "web was not redeployed"
    );
    s2
}

/// Run 3, without a change: nothing built, byte-identical manifests, no commit to the cluster
/// repo, no restart and no changed spec.
fn a_run_without_change_builds_commits_and_restarts_nothing(
    shop: &Shop,
    s2: &Summary,
    before: &Snapshot,
) -> Summary {
    let (run, out3) = shop.pipeline(&shop.branch, "run3");
    run.success().stderr_contains("unchanged");
    let s3 = summary(&out3);
    assert!(s3.built.is_empty(), "{s3:?}");
    assert_eq!(sorted(&s3.skipped), ["api", "web"]);
    assert!(s3.deployed.unchanged);
    assert_eq!(s3.deployed.cluster_commit, s2.deployed.cluster_commit);
    assert_eq!(s3.deployed.images, s2.deployed.images);
    let request = read_json(&out3.join("request.json"));
    assert_eq!(request["unchanged"], serde_json::Value::Bool(true));
    let out2 = shop.runs.join("run2");
    assert_eq!(
        std::fs::read(out3.join("deploy/compose.yaml")).expect("compose3"),
        std::fs::read(out2.join("deploy/compose.yaml")).expect("compose2")
    );
    assert_eq!(tree(&out3.join("manifests")), tree(&out2.join("manifests")));
    assert!(!tree(&out3.join("manifests")).is_empty());
    let now = Snapshot::take(shop);
    assert_eq!(now.refs, before.refs, "the cluster repo changed");
    assert_eq!(now.api_tasks, before.api_tasks, "api was restarted");
    assert_eq!(now.web_tasks, before.web_tasks, "web was restarted");
    assert_eq!(now.api_spec, before.api_spec, "api's spec changed");
    assert_eq!(now.web_spec, before.web_spec, "web's spec changed");
    s3
}

/// Run 4, after a new base image under the same tag: its digest is part of every content key
/// (build-with-cache), so api and web are rebuilt and redeployed.
fn a_new_base_image_rebuilds_and_redeploys_both_services(
    shop: &Shop,
    s3: &Summary,
    before: &Snapshot,
) {
    let base = format!("{}/base/busybox:1", shop.reg.addr);
    Cmd::new(workspace_root().join("examples/shop/tools/make-base-image"))
        .args(["--force", &base])
        .env("DOCKER_HOST", &shop.dockerd.host)
        .run()
        .success();
    let (run, out4) = shop.pipeline(&shop.branch, "run4");
    run.success();
    let s4 = summary(&out4);
    assert_eq!(sorted(&s4.built), ["api", "web"], "{s4:?}");
    assert!(s4.skipped.is_empty(), "{s4:?}");
    assert!(!s4.deployed.unchanged);
    assert_ne!(s4.deployed.images["api"], s3.deployed.images["api"]);
    assert_ne!(s4.deployed.images["web"], s3.deployed.images["web"]);
    let now = Snapshot::take(shop);
    assert!(
        now.api_tasks.len() > before.api_tasks.len(),
        "api not redeployed"
    );
    assert!(
        now.web_tasks.len() > before.web_tasks.len(),
        "web not redeployed"
    );
}

/// `--delete`: the environment's directory leaves the cluster repo, and the stack goes.
fn delete_takes_the_environment_out_of_the_cluster_repo_and_the_engine(shop: &Shop) {
    let ns = format!("shop-{}", shop.branch);
    shop.platform
        .pipeline_cmd()
        .args([
            "--delete",
            "--out",
            &shop.runs.join("delete").to_string_lossy(),
        ])
        .arg(shop.repo.path())
        .arg(&shop.branch)
        .run()
        .success();
    let tree_after = git_in(
        &shop.platform.cluster_repo(),
        &["ls-tree", "--name-only", "main"],
    );
    assert!(!tree_after.contains(&ns), "{tree_after}");
    assert!(
        shop.dockerd
            .run(&[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={ns}")
            ])
            .trim()
            .is_empty(),
        "the stack still runs"
    );
}

#[test]
fn down_stops_what_up_started_and_nothing_else() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    let platform = up(&reg, dockerd);
    reg.push_image("shop/api", "kept", OCI_MANIFEST, "a");
    platform.down().success();
    let agent = std::net::TcpStream::connect(("127.0.0.1", platform.agent_port));
    assert!(agent.is_err(), "the agent still listens");
    let ingress = std::net::TcpStream::connect(("127.0.0.1", platform.ingress_port));
    assert!(ingress.is_err(), "the ingress still listens");
    assert!(reg.has("shop/api", "kept"), "the registry was stopped");
    dockerd.run(&["version"]);
}

#[test]
fn pipeline_without_platform_settings_is_a_usage_error() {
    let state = TestDir::new();
    let out = Cmd::new(script("pipeline"))
        .env("MICROPLATFORM_STATE_DIR", state.path())
        .env_remove("MICROPLATFORM_REGISTRY")
        .env_remove("MICROPLATFORM_CLUSTER_REPO")
        .args([
            workspace_root()
                .join("examples/shop")
                .to_string_lossy()
                .as_ref(),
            "x",
        ])
        .run();
    out.code(2)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("scripts/local-platform up");
}

#[test]
fn pipeline_names_a_missing_branch() {
    let repo = TestDir::new();
    repo.git_init();
    repo.write("stack.yaml", "name: x\n");
    repo.commit_all("x");
    let state = TestDir::new();
    let out = Cmd::new(script("pipeline"))
        .env("MICROPLATFORM_STATE_DIR", state.path())
        .args([
            "--registry",
            "127.0.0.1:1",
            "--cluster-repo",
            "file:///nonexistent",
            "--agent-url",
            "http://127.0.0.1:1",
            "--webhook-secret-file",
            "/nonexistent",
            "--docker-host",
            "unix:///nonexistent",
            "--bin-dir",
        ])
        .arg(bin_dir())
        .arg(repo.path())
        .arg("no-such-branch")
        .run();
    out.code(2)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("no branch no-such-branch");
}

/// The `url:` line scripts/pipeline prints at the end.
fn printed_url(run: &Output) -> String {
    run.stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("url:"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no url line in:\n{}", run.stderr))
        .to_string()
}

/// `curl -sS URL`: the body, or the error.
fn curl(url: &str) -> String {
    let out = Cmd::new("curl").args(["-sS", "-m", "10", url]).run();
    format!("{}{}", out.stdout, out.stderr)
}

/// Where tests keep what a human may want to look at (screenshots): `target/test-artifacts/`.
fn artifacts_dir() -> PathBuf {
    let dir = bin_dir()
        .parent()
        .expect("target dir")
        .join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("mkdir test-artifacts");
    dir
}

/// Debian's Chromium, headless, on a throwaway profile.
fn chromium(profile: &Path, args: &[&str]) -> Output {
    Cmd::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .run()
}

/// Both branches' deployments (a full pipeline run each, tens of seconds) are what every step
/// looks at: the two URLs answer at the same time, each with its own branch's page, in curl and
/// in a browser; so the steps share this test rather than each deploying both branches again.
#[test]
fn two_branches_answer_at_their_printed_urls_in_curl_and_chromium() {
    let (a, b) = (unique("url-a"), unique("url-b"));
    let shop = Shop::start(&[&a, &b]);
    let b_edition = branch_with_its_own_edition(&shop, &b);
    let urls =
        [&a, &b].map(|br| each_run_prints_the_url_its_summary_plan_and_compose_name(&shop, br));
    each_url_shows_its_branch_page_and_sends_the_api_prefix_to_api(
        &shop,
        &urls,
        &b_edition,
        [&a, &b],
    );
    chromium_shows_apis_answer_at_each_url_and_a_screenshot_is_kept(&urls);
}

/// Branch B, made from the repo's branch: it differs by its page title, so each URL shows its
/// own branch. Returns that title.
fn branch_with_its_own_edition(shop: &Shop, b: &str) -> String {
    shop.repo.git(&["checkout", "-q", "-b", b]);
    let layout = shop.repo.read("libs/page/layout.html");
    let b_edition = format!("shop, edition {b}");
    shop.repo.write(
        "libs/page/layout.html",
        layout.replace("shop example of the microplatform tools", &b_edition),
    );
    shop.repo.commit_all("Branch b's edition");
    b_edition
}

/// One URL rule: a run of BR prints the URL that summary.json and the plan hold, naming the
/// ingress port, and its compose file routes the host (labels and a host-mode port without a
/// fixed number). Returns the URL.
fn each_run_prints_the_url_its_summary_plan_and_compose_name(shop: &Shop, br: &str) -> String {
    let (run, out) = shop.pipeline(br, br);
    run.success();
    let url = printed_url(&run);
    assert_eq!(url, shop.url(br));
    assert_eq!(summary(&out).urls, std::slice::from_ref(&url));
    let plan = read_json(&out.join("plan.json"));
    assert_eq!(plan["url"], serde_json::Value::String(url.clone()));
    let compose = std::fs::read_to_string(out.join("deploy/compose.yaml")).expect("compose");
    assert!(
        compose.contains(&format!(
            "dev.microplatform.ingress.host: {br}.shop.dev.localhost"
        )),
        "{compose}"
    );
    url
}

/// The ingress's routes with their task ports: its answer to a host it does not route.
fn ingress_routes(shop: &Shop) -> String {
    curl(&format!(
        "http://no-such-host.localhost:{}/",
        shop.platform.ingress_port
    ))
}

/// What to show when a URL answers with the wrong page: both runs' builds and digests, the
/// ingress's routes, and the engine's tasks.
fn diagnose(shop: &Shop, branches: [&str; 2]) -> String {
    let run = |br: &str| {
        std::fs::read_to_string(shop.runs.join(br).join("summary.json")).unwrap_or_default()
    };
    format!(
        "summary a: {}\nsummary b: {}\nthe ingress's routes: {}\ncontainers: {}",
        run(branches[0]),
        run(branches[1]),
        ingress_routes(shop),
        shop.dockerd
            .try_run(&["ps", "--format", "{{.Names}} {{.Image}} {{.Ports}}"])
            .stdout
    )
}

/// Both environments answer at the same time, each at its own URL, through the ingress
/// `scripts/local-platform up` started: web's page shows api's answer and its branch's title, and
/// the api's path prefix routes to api, the rest to web.
fn each_url_shows_its_branch_page_and_sends_the_api_prefix_to_api(
    shop: &Shop,
    urls: &[String; 2],
    b_edition: &str,
    branches: [&str; 2],
) {
    for (url, edition) in [
        (&urls[0], "shop example of the microplatform tools"),
        (&urls[1], b_edition),
    ] {
        let mut page = String::new();
        let ok = wait_until(std::time::Duration::from_secs(60), || {
            page = curl(url);
            page.contains("api says: Hello, web!") && page.contains(edition)
        });
        assert!(
            ok,
            "{url} did not show its branch's page with api's answer:\n{page}\n{}",
            diagnose(shop, branches)
        );
        assert!(page.contains("status: ok"), "{page}");
        let greet = curl(&format!("{url}cgi-bin/greet?name=curl"));
        assert!(
            greet.contains(r#""greeting":"Hello, curl!""#),
            "{url}cgi-bin/greet: {greet}\nthe ingress's routes: {}\nservices: {}",
            ingress_routes(shop),
            shop.dockerd
                .try_run(&[
                    "service",
                    "ls",
                    "--format",
                    "{{.Name}} {{.Replicas}} {{.Image}}"
                ])
                .stdout
        );
    }
    assert!(
        !curl(&urls[0]).contains(b_edition),
        "branch a shows b's page"
    );
}

/// A real browser opens each URL: the DOM shows api's answer, and a screenshot is kept.
fn chromium_shows_apis_answer_at_each_url_and_a_screenshot_is_kept(urls: &[String; 2]) {
    let profile = TestDir::new();
    for (name, url) in [("a", &urls[0]), ("b", &urls[1])] {
        let dom = chromium(profile.path(), &["--dump-dom", url]);
        dom.success();
        assert!(
            dom.stdout.contains("api says: Hello, web!"),
            "chromium --dump-dom {url}:\n{}\n{}",
            dom.stdout,
            dom.stderr
        );
        let shot = artifacts_dir().join(format!("branch-url-{name}.png"));
        let _ = std::fs::remove_file(&shot);
        chromium(
            profile.path(),
            &[
                &format!("--screenshot={}", shot.display()),
                "--window-size=1024,768",
                url,
            ],
        )
        .success();
        let png = std::fs::read(&shot).expect("screenshot written");
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000,
            "{} is not a PNG screenshot ({} bytes)",
            shot.display(),
            png.len()
        );
    }
}

/// The monorepo's forge: the fake GitHub on loopback, with the branch's pull request open, and
/// the token file `scripts/pipeline` reads.
struct Forge {
    gh: FakeGitHub,
    pr: u64,
    token: PathBuf,
    _secrets: TestDir,
}

impl Forge {
    /// The forge of the shop's repo, with a pull request for the shop's branch.
    fn open(shop: &Shop) -> Self {
        let gh = FakeGitHub::start("acme", "shop", shop.repo.path(), "forge-token");
        let pr = gh.open_pull(&shop.branch);
        let secrets = TestDir::new();
        let token = secrets.write("forge-token", "forge-token\n");
        Forge {
            gh,
            pr,
            token,
            _secrets: secrets,
        }
    }

    /// `scripts/pipeline --forge github EXTRA --out RUNS/NAME` on the shop's branch, reporting to
    /// this forge: its output and its out directory.
    fn pipeline(&self, shop: &Shop, name: &str, extra: &[&str]) -> (Output, PathBuf) {
        let out = shop.runs.join(name);
        let run = shop
            .platform
            .pipeline_cmd()
            .env("MICROPLATFORM_GITHUB_REPO", "acme/shop")
            .env("MICROPLATFORM_GITHUB_API", self.gh.url())
            .env("MICROPLATFORM_GITHUB_TOKEN_FILE", &self.token)
            .args(["--forge", "github"])
            .args(extra)
            .args(["--out", &out.to_string_lossy()])
            .arg(shop.repo.path())
            .arg(&shop.branch)
            .run();
        (run, out)
    }
}

/// The failing run is checked against what the healthy run before it told the forge (a second
/// status on the new commit, the same comment edited), and each is a full pipeline run of tens of
/// seconds, so the steps share this test.
#[test]
fn a_degraded_web_fails_the_smoke_step_naming_service_url_and_body_and_the_forge_hears_both() {
    let shop = Shop::start(&[&unique("degraded")]);
    let forge = Forge::open(&shop);
    a_healthy_run_reports_its_url_to_the_commit_and_the_pull_request(&shop, &forge);
    let out = a_web_pointed_at_a_closed_port_fails_the_smoke_step_naming_it(&shop, &forge);
    a_failed_run_keeps_the_failing_body_and_writes_no_summary(&out);
    the_forge_hears_the_failure_and_the_comment_is_edited_not_duplicated(&shop, &forge);
}

/// Healthy: the URL and the smoke result reach the commit (a status) and the pull request (one
/// comment).
fn a_healthy_run_reports_its_url_to_the_commit_and_the_pull_request(shop: &Shop, forge: &Forge) {
    forge.pipeline(shop, "good", &[]).0.success();
    let head = shop.repo.git(&["rev-parse", "HEAD"]);
    let url = shop.url(&shop.branch);
    let statuses = forge.gh.statuses_for("microplatform/dev");
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        (
            statuses[0].sha.as_str(),
            statuses[0].state.as_str(),
            statuses[0].target_url.as_deref()
        ),
        (head.as_str(), "success", Some(url.as_str()))
    );
    let comments = forge.gh.with(|r| r.comments.clone());
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].0, forge.pr);
    assert!(
        comments[0].1.starts_with("<!-- microplatform:dev -->") && comments[0].1.contains(&url),
        "{}",
        comments[0].1
    );
}

/// web cannot reach api: it still answers 200, with a page saying "status: degraded", and the
/// smoke step fails naming the service, the URL and the body. Returns the run's out directory.
fn a_web_pointed_at_a_closed_port_fails_the_smoke_step_naming_it(
    shop: &Shop,
    forge: &Forge,
) -> PathBuf {
    let stack = shop.repo.read("stack.yaml");
    assert!(stack.contains("API_URL: http://api:8080"), "{stack}");
    shop.repo.write(
        "stack.yaml",
        stack.replace("API_URL: http://api:8080", "API_URL: http://api:9"),
    );
    shop.repo.commit_all("Point web at a closed port");
    let (run, out) = forge.pipeline(shop, "run", &["--smoke-timeout", "5"]);
    let url = shop.url(&shop.branch);
    run.code(1)
        .stderr_contains("] apply")
        .stderr_contains(&format!(
            "pipeline: step smoke failed: deploy-bot: error: smoke check failed: service web: GET {url} answered 200 with a body not matching /status: ok/"
        ))
        .stderr_contains("status: degraded");
    assert!(
        !run.stderr.contains("] smoke"),
        "the smoke step reported success:\n{}",
        run.stderr
    );
    out
}

/// A failed run writes no summary and keeps the failing body.
fn a_failed_run_keeps_the_failing_body_and_writes_no_summary(out: &Path) {
    assert!(
        !out.join("summary.json").exists(),
        "a failed run wrote a summary"
    );
    let body =
        std::fs::read_to_string(out.join("smoke/web.txt")).expect("the failing body is kept");
    assert!(body.contains("status: degraded"), "{body}");
}

/// The forge hears the failure on the new commit; the pull request's comment is edited, not
/// duplicated.
fn the_forge_hears_the_failure_and_the_comment_is_edited_not_duplicated(
    shop: &Shop,
    forge: &Forge,
) {
    let failing = shop.repo.git(&["rev-parse", "HEAD"]);
    let statuses = forge.gh.statuses_for("microplatform/dev");
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert_eq!(
        (statuses[1].sha.as_str(), statuses[1].state.as_str()),
        (failing.as_str(), "failure")
    );
    assert!(
        statuses[1].description.contains("service web"),
        "{}",
        statuses[1].description
    );
    let comments = forge.gh.with(|r| r.comments.clone());
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].1.contains("failure") || comments[0].1.contains("❌"),
        "{}",
        comments[0].1
    );
}
