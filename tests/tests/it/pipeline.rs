//! End-to-end: `scripts/local-platform up` and `scripts/pipeline` on a fresh git copy of `examples/shop`: the whole chain (monobuild → stackgen → build-with-cache → digest-resolve → deploy-bot → swarm), a library change rebuilding and redeploying exactly its dependents, a no-change run that builds, commits and restarts nothing, and two branches answering at their printed URLs through the platform's ingress (curl, and a headless Chromium whose screenshots are kept in `target/test-artifacts/`).

use std::path::{Path, PathBuf};

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::fake_github::FakeGitHub;
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, Output, TestDir, git_in, wait_until};
use serde::Deserialize;

use crate::platform::{
    Platform, StackGuard, bin_dir, refs, script, task_ids, unique, workspace_root,
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
    images: std::collections::BTreeMap<String, String>,
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
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, acc: &mut std::collections::BTreeMap<String, Vec<u8>>) {
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
    let mut acc = std::collections::BTreeMap::new();
    walk(dir, dir, &mut acc);
    acc
}

/// A fresh git repo: `main` holds only a README (the project is new), the
/// branch adds a copy of examples/shop.
fn shop_repo(branch: &str) -> TestDir {
    let repo = TestDir::new();
    repo.git_init();
    repo.write("README.md", "# shop\n");
    repo.commit_all("Start");
    repo.git(&["checkout", "-q", "-b", branch]);
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join("examples/shop/."))
        .arg(repo.path())
        .status()
        .expect("cp");
    assert!(status.success());
    repo.commit_all("Add the shop");
    repo
}

#[test]
fn pipeline_deploys_a_branch_rebuilds_only_dependents_and_is_idempotent() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    let platform = up(&reg, dockerd);
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let branch = unique("e2e");
    let repo = shop_repo(&branch);
    let runs = TestDir::new();
    let _stack = StackGuard {
        dockerd,
        name: format!("shop-{branch}"),
    };

    // Run 1: everything is new: both images built in schedule order, deployed, answering.
    let out1 = runs.join("run1");
    let run = platform.pipeline(repo.path(), &branch, &out1);
    run.success();
    for step in [
        "diff", "workflow", "prepare", "build", "render", "resolve", "request", "merge", "apply",
        "smoke",
    ] {
        run.stderr_contains(&format!("] {step}"));
    }
    let s1 = summary(&out1);
    assert_eq!(s1.schema_version, 1);
    assert_eq!(s1.branch, branch);
    assert_eq!(s1.commit, repo.git(&["rev-parse", "HEAD"]));
    assert_eq!(s1.environment, "dev");
    assert_eq!(s1.namespace, format!("shop-{branch}"));
    assert_eq!(s1.tag, branch);
    assert_eq!(sorted(&s1.built), ["api", "web"]);
    assert!(s1.skipped.is_empty(), "{s1:?}");
    assert_eq!(sorted(&s1.libraries), ["libs/greeting", "libs/page"]);
    assert_eq!(
        sorted(&s1.affected),
        ["libs/greeting", "libs/page", "services/api", "services/web"]
    );
    assert!(!s1.deployed.unchanged);
    // The plan is saved next to the summary, and the compose file carries the endpoint mode.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out1.join("plan.json")).expect("plan"))
            .expect("plan json");
    assert_eq!(plan["tag"], serde_json::Value::String(branch.clone()));
    let compose = std::fs::read_to_string(out1.join("deploy/compose.yaml")).expect("compose");
    assert!(compose.contains("endpoint_mode: dnsrr"), "{compose}");
    assert_eq!(
        s1.urls,
        [format!(
            "http://{branch}.shop.dev.localhost:{}/",
            platform.ingress_port
        )]
    );
    assert_eq!(Path::new(&s1.out_dir), out1.as_path());
    assert!(s1.seconds > 0.0);
    for (svc, image) in &s1.deployed.images {
        let prefix = format!("{}/shop/{svc}:{branch}@sha256:", reg.addr);
        assert!(image.starts_with(&prefix), "{image} is not {prefix}…");
    }
    // The saved workflow is an Argo Workflow with a task per scheduled job.
    let workflow = std::fs::read_to_string(out1.join("workflow.yaml")).expect("workflow");
    assert!(workflow.contains("kind: Workflow"), "{workflow}");
    // The front page shows both services' greetings: web called api by name.
    let page = std::fs::read_to_string(out1.join("smoke/web-ingress.txt")).expect("smoke page");
    assert!(page.contains("web says: Hello, visitor!"), "{page}");
    assert!(page.contains("api says: Hello, web!"), "{page}");
    // The declared healthy answers (stack.yaml `smoke`) were checked at the URL, through the ingress.
    let checked: Vec<(&str, &str, u16)> = s1
        .smoke
        .iter()
        .map(|c| (c.service.as_str(), c.url.as_str(), c.status))
        .collect();
    let base = &s1.urls[0];
    assert_eq!(
        checked,
        [
            (
                "api",
                format!("{base}cgi-bin/greet?name=smoke").as_str(),
                200
            ),
            ("web", base.as_str(), 200)
        ]
    );
    assert!(s1.smoke.iter().all(|c| c.attempts >= 1));
    let web_body = std::fs::read_to_string(out1.join("smoke/web.txt")).expect("smoke body");
    assert!(web_body.contains("status: ok"), "{web_body}");
    run.stderr_contains(
        "at the URL: api 200 /\"greeting\":\"[^\"]+, smoke!\"/, web 200 /status: ok/",
    );
    // Every health and ingress path was called by service name (deploy-bot smoke --by-name), and the summary's
    // `try:` lines repeat the ingress calls.
    run.stderr_contains("] smoke    4 calls by service name answered");
    run.stderr_contains(&format!("--network shop-{branch}_default "));
    run.stderr_contains(" wget -qO- http://web:8080/\n");
    let health = std::fs::read_to_string(out1.join("smoke/api-health.txt")).expect("health");
    assert_eq!(health, "ok\n", "api's health answer, by name");
    // Merged: the cluster repo's main holds the resolved stack, no deploy branch is left.
    let cluster = platform.cluster_repo();
    assert_eq!(
        git_in(&cluster, &["rev-parse", "main"]),
        s1.deployed.cluster_commit
    );
    let compose1 = git_in(
        &cluster,
        &["show", &format!("main:shop-{branch}/compose.yaml")],
    );
    assert_eq!(
        compose1.trim(),
        std::fs::read_to_string(out1.join("deploy/compose.yaml"))
            .expect("compose")
            .trim()
    );
    assert!(
        !refs(&cluster).contains("refs/heads/deploy/"),
        "{}",
        refs(&cluster)
    );
    let api = format!("shop-{branch}_api");
    let web = format!("shop-{branch}_web");
    let api_tasks1 = task_ids(dockerd, &api);
    let web_tasks1 = task_ids(dockerd, &web);
    let api_spec1 = spec(dockerd, &api);

    // Run 2: a change to libs/page: only web (its one dependent) is rebuilt and redeployed.
    let layout = repo.read("libs/page/layout.html");
    repo.write(
        "libs/page/layout.html",
        layout.replace(
            "shop example of the microplatform tools",
            "shop, second edition",
        ),
    );
    repo.commit_all("New footer");
    let out2 = runs.join("run2");
    platform.pipeline(repo.path(), &branch, &out2).success();
    let s2 = summary(&out2);
    assert_eq!(s2.built, ["web"], "{s2:?}");
    assert_eq!(s2.skipped, ["api"], "{s2:?}");
    assert!(!s2.deployed.unchanged);
    assert_eq!(s2.deployed.images["api"], s1.deployed.images["api"]);
    assert_ne!(s2.deployed.images["web"], s1.deployed.images["web"]);
    let page = std::fs::read_to_string(out2.join("smoke/web-ingress.txt")).expect("smoke page");
    assert!(page.contains("shop, second edition"), "{page}");
    assert!(page.contains("api says: Hello, web!"), "{page}");
    let api_tasks2 = task_ids(dockerd, &api);
    let web_tasks2 = task_ids(dockerd, &web);
    assert_eq!(api_tasks2, api_tasks1, "api was restarted");
    // `docker stack deploy` touches every service of the stack, but api's
    // spec (its pinned image) is the same, so its task kept running.
    assert_eq!(spec(dockerd, &api), api_spec1, "api's spec changed");
    assert!(
        web_tasks2.len() > web_tasks1.len(),
        "web was not redeployed"
    );
    let refs2 = refs(&cluster);
    let (api_spec2, web_spec2) = (spec(dockerd, &api), spec(dockerd, &web));

    // Run 3: no change: nothing built, byte-identical manifests, no commit, no restart.
    let out3 = runs.join("run3");
    let run = platform.pipeline(repo.path(), &branch, &out3);
    run.success().stderr_contains("unchanged");
    let s3 = summary(&out3);
    assert!(s3.built.is_empty(), "{s3:?}");
    assert_eq!(sorted(&s3.skipped), ["api", "web"]);
    assert!(s3.deployed.unchanged);
    assert_eq!(s3.deployed.cluster_commit, s2.deployed.cluster_commit);
    assert_eq!(s3.deployed.images, s2.deployed.images);
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out3.join("request.json")).expect("request"))
            .expect("request json");
    assert_eq!(request["unchanged"], serde_json::Value::Bool(true));
    assert_eq!(
        std::fs::read(out3.join("deploy/compose.yaml")).expect("compose3"),
        std::fs::read(out2.join("deploy/compose.yaml")).expect("compose2")
    );
    assert_eq!(tree(&out3.join("manifests")), tree(&out2.join("manifests")));
    assert!(!tree(&out3.join("manifests")).is_empty());
    assert_eq!(refs(&cluster), refs2, "the cluster repo changed");
    assert_eq!(task_ids(dockerd, &api), api_tasks2, "api was restarted");
    assert_eq!(task_ids(dockerd, &web), web_tasks2, "web was restarted");
    assert_eq!(spec(dockerd, &api), api_spec2, "api's spec changed");
    assert_eq!(spec(dockerd, &web), web_spec2, "web's spec changed");

    // Run 4: a new base image under the same tag: its digest is part of every
    // content key (build-with-cache), so api and web are rebuilt and redeployed.
    let base = format!("{}/base/busybox:1", reg.addr);
    Cmd::new(workspace_root().join("examples/shop/tools/make-base-image"))
        .args(["--force", &base])
        .env("DOCKER_HOST", &dockerd.host)
        .run()
        .success();
    let out4 = runs.join("run4");
    platform.pipeline(repo.path(), &branch, &out4).success();
    let s4 = summary(&out4);
    assert_eq!(sorted(&s4.built), ["api", "web"], "{s4:?}");
    assert!(s4.skipped.is_empty(), "{s4:?}");
    assert!(!s4.deployed.unchanged);
    assert_ne!(s4.deployed.images["api"], s3.deployed.images["api"]);
    assert_ne!(s4.deployed.images["web"], s3.deployed.images["web"]);
    assert!(
        task_ids(dockerd, &api).len() > api_tasks2.len(),
        "api not redeployed"
    );
    assert!(
        task_ids(dockerd, &web).len() > web_tasks2.len(),
        "web not redeployed"
    );

    // --delete: the environment's directory leaves the cluster repo, the stack goes.
    let del = platform
        .pipeline_cmd()
        .args(["--delete", "--out", &runs.join("delete").to_string_lossy()])
        .arg(repo.path())
        .arg(&branch)
        .run();
    del.success();
    let tree_after = git_in(&cluster, &["ls-tree", "--name-only", "main"]);
    assert!(
        !tree_after.contains(&format!("shop-{branch}")),
        "{tree_after}"
    );
    assert!(
        dockerd
            .run(&[
                "service",
                "ls",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace=shop-{branch}")
            ])
            .trim()
            .is_empty(),
        "the stack still runs"
    );

    // down stops what up started (the agent) and nothing else.
    platform.down().success();
    let agent = std::net::TcpStream::connect(("127.0.0.1", platform.agent_port));
    assert!(agent.is_err(), "the agent still listens");
    let ingress = std::net::TcpStream::connect(("127.0.0.1", platform.ingress_port));
    assert!(ingress.is_err(), "the ingress still listens");
    assert!(reg.has("shop/api", &branch), "the registry was stopped");
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

#[test]
fn two_branches_answer_at_their_printed_urls_in_curl_and_chromium() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    let a = unique("url-a");
    let b = unique("url-b");
    // Declared before the platform, so they are dropped after it: the agent
    // (self-heal) would otherwise redeploy a stack removed under it.
    let _stacks = [&a, &b].map(|br| StackGuard {
        dockerd,
        name: format!("shop-{br}"),
    });
    let platform = up(&reg, dockerd);
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let repo = shop_repo(&a);
    // Branch b differs from a by its page title, so each URL shows its own branch.
    repo.git(&["checkout", "-q", "-b", &b]);
    let layout = repo.read("libs/page/layout.html");
    let b_edition = format!("shop, edition {b}");
    repo.write(
        "libs/page/layout.html",
        layout.replace("shop example of the microplatform tools", &b_edition),
    );
    repo.commit_all("Branch b's edition");
    let runs = TestDir::new();

    let mut urls = Vec::new();
    for br in [&a, &b] {
        let out = runs.join(br);
        let run = platform.pipeline(repo.path(), br, &out);
        run.success();
        let url = printed_url(&run);
        // One URL rule: the printed line, summary.json and the plan agree, and name the ingress port.
        assert_eq!(
            url,
            format!("http://{br}.shop.dev.localhost:{}/", platform.ingress_port)
        );
        assert_eq!(summary(&out).urls, std::slice::from_ref(&url));
        let plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).expect("plan"))
                .expect("plan json");
        assert_eq!(plan["url"], serde_json::Value::String(url.clone()));
        // The compose file routes the host: labels and a host-mode port without a fixed number.
        let compose = std::fs::read_to_string(out.join("deploy/compose.yaml")).expect("compose");
        assert!(
            compose.contains(&format!(
                "dev.microplatform.ingress.host: {br}.shop.dev.localhost"
            )),
            "{compose}"
        );
        urls.push(url);
    }

    // Both environments answer at the same time, each at its own URL, through
    // the ingress `scripts/local-platform up` started: web's page shows api's answer.
    // What to show when a URL answers with the wrong page: both runs' builds and
    // digests, the ingress's routes with their task ports, and the engine's tasks.
    let diagnose = || {
        let run = |br: &str| {
            std::fs::read_to_string(runs.join(br).join("summary.json")).unwrap_or_default()
        };
        format!(
            "summary a: {}\nsummary b: {}\nthe ingress's routes: {}\ncontainers: {}",
            run(&a),
            run(&b),
            curl(&format!(
                "http://no-such-host.localhost:{}/",
                platform.ingress_port
            )),
            dockerd
                .try_run(&["ps", "--format", "{{.Names}} {{.Image}} {{.Ports}}"])
                .stdout
        )
    };
    for (url, edition) in [
        (&urls[0], "shop example of the microplatform tools"),
        (&urls[1], b_edition.as_str()),
    ] {
        let mut page = String::new();
        let ok = wait_until(std::time::Duration::from_secs(60), || {
            page = curl(url);
            page.contains("api says: Hello, web!") && page.contains(edition)
        });
        assert!(
            ok,
            "{url} did not show its branch's page with api's answer:\n{page}\n{}",
            diagnose()
        );
        assert!(page.contains("status: ok"), "{page}");
        // The api's path prefix routes to api, the rest to web.
        let greet = curl(&format!("{url}cgi-bin/greet?name=curl"));
        assert!(
            greet.contains(r#""greeting":"Hello, curl!""#),
            "{url}cgi-bin/greet: {greet}\nthe ingress's routes: {}\nservices: {}",
            curl(&format!(
                "http://no-such-host.localhost:{}/",
                platform.ingress_port
            )),
            dockerd
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
        !curl(&urls[0]).contains(&b_edition),
        "branch a shows b's page"
    );

    // A real browser opens the URL: the DOM shows api's answer, and a screenshot is kept.
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

#[test]
fn a_degraded_web_fails_the_smoke_step_naming_service_url_and_body_and_the_forge_hears_both() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    let branch = unique("degraded");
    // Dropped after the platform (see above).
    let _stack = StackGuard {
        dockerd,
        name: format!("shop-{branch}"),
    };
    let platform = up(&reg, dockerd);
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let repo = shop_repo(&branch);
    // The monorepo's forge: the fake GitHub on loopback, with the branch's pull request open.
    let gh = FakeGitHub::start("acme", "shop", repo.path(), "forge-token");
    let pr = gh.open_pull(&branch);
    let secrets = TestDir::new();
    let token = secrets.write("forge-token", "forge-token\n");
    let runs = TestDir::new();
    let url = format!(
        "http://{branch}.shop.dev.localhost:{}/",
        platform.ingress_port
    );
    let run_with_forge = |out: &Path, extra: &[&str]| {
        platform
            .pipeline_cmd()
            .env("MICROPLATFORM_GITHUB_REPO", "acme/shop")
            .env("MICROPLATFORM_GITHUB_API", gh.url())
            .env("MICROPLATFORM_GITHUB_TOKEN_FILE", &token)
            .args(["--forge", "github"])
            .args(extra)
            .args(["--out", &out.to_string_lossy()])
            .arg(repo.path())
            .arg(&branch)
            .run()
    };
    // Healthy: the URL and the smoke result reach the commit (status) and the pull request (one comment).
    let good = run_with_forge(&runs.join("good"), &[]);
    good.success();
    let head = repo.git(&["rev-parse", "HEAD"]);
    let statuses = gh.statuses_for("microplatform/dev");
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(
        (
            statuses[0].sha.as_str(),
            statuses[0].state.as_str(),
            statuses[0].target_url.as_deref()
        ),
        (head.as_str(), "success", Some(url.as_str()))
    );
    let comments = gh.with(|r| r.comments.clone());
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].0, pr);
    assert!(
        comments[0].1.starts_with("<!-- microplatform:dev -->") && comments[0].1.contains(&url),
        "{}",
        comments[0].1
    );

    // web cannot reach api: it still answers 200, with a page saying "status: degraded".
    let stack = repo.read("stack.yaml");
    assert!(stack.contains("API_URL: http://api:8080"), "{stack}");
    repo.write(
        "stack.yaml",
        stack.replace("API_URL: http://api:8080", "API_URL: http://api:9"),
    );
    repo.commit_all("Point web at a closed port");
    let out = runs.join("run");
    let run = run_with_forge(&out, &["--smoke-timeout", "5"]);
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
    assert!(
        !out.join("summary.json").exists(),
        "a failed run wrote a summary"
    );
    let body =
        std::fs::read_to_string(out.join("smoke/web.txt")).expect("the failing body is kept");
    assert!(body.contains("status: degraded"), "{body}");
    // The forge hears the failure on the new commit; the pull request's comment is edited, not duplicated.
    let failing = repo.git(&["rev-parse", "HEAD"]);
    let statuses = gh.statuses_for("microplatform/dev");
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
    let comments = gh.with(|r| r.comments.clone());
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert!(
        comments[0].1.contains("failure") || comments[0].1.contains("❌"),
        "{}",
        comments[0].1
    );
}
