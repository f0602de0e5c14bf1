//! End-to-end: the main flow on the local platform (`scripts/pipeline REPO main` on a copy of
//! `examples/shop`, whose `promotion` is dev → staging (gate auto) → prod (gate manual)):
//! images built, promoted by digest into the release-candidate registry (identical digests),
//! staging deployed from the release-candidate registry and smoke-tested, the prod deploy
//! branch opened and not merged; a rerun builds, copies, commits and restarts nothing; a change
//! to one service copies only that image's new blobs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Output, TestDir, git_in};

use crate::platform::{Platform, StackGuard, copy_shop, refs, task_ids};

fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// `(environment, bytes_copied)` of every environment of the summary's promotion.
fn copied(summary: &serde_json::Value) -> Vec<(String, u64)> {
    summary["promotion"]["environments"]
        .as_array()
        .expect("promotion.environments")
        .iter()
        .map(|e| {
            (
                e["environment"].as_str().unwrap().to_string(),
                e["promoted"]["bytes_copied"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The main flow's world: the build and release-candidate registries, the engine, the platform
/// on both registries, and a developer's repo whose main has the shop merged into it.
struct MainFlow<'a> {
    reg: &'a Registry,
    rc: &'a Registry,
    dockerd: &'a Dockerd,
    platform: &'a Platform,
    repo: TestDir,
    /// The commit of main that merged the shop.
    merged: String,
    runs: TestDir,
}

/// One run of `scripts/pipeline REPO main`: its output, out directory and summary.
struct Run {
    out: Output,
    dir: PathBuf,
    summary: serde_json::Value,
}

impl<'a> MainFlow<'a> {
    /// main: a README, then the shop merged into it.
    fn new(
        reg: &'a Registry,
        rc: &'a Registry,
        dockerd: &'a Dockerd,
        platform: &'a Platform,
    ) -> Self {
        let repo = TestDir::new();
        repo.git_init();
        repo.write("README.md", "# shop\n");
        repo.commit_all("Start");
        copy_shop(&repo);
        repo.commit_all("Merge the shop");
        let merged = repo.git(&["rev-parse", "HEAD"]);
        MainFlow {
            reg,
            rc,
            dockerd,
            platform,
            repo,
            merged,
            runs: TestDir::new(),
        }
    }

    /// `scripts/pipeline --out RUNS/NAME REPO main`; asserts success.
    fn run(&self, name: &str) -> Run {
        let dir = self.runs.join(name);
        let out = self.platform.pipeline(self.repo.path(), "main", &dir);
        out.success();
        let summary = json(&dir.join("summary.json"));
        Run { out, dir, summary }
    }

    /// The cluster repo.
    fn cluster(&self) -> PathBuf {
        self.platform.state.join("cluster.git")
    }

    /// Every task of staging's api and web services.
    fn staging_tasks(&self) -> Vec<BTreeSet<String>> {
        ["api", "web"]
            .iter()
            .map(|s| task_ids(self.dockerd, &format!("shop-staging_{s}")))
            .collect()
    }

    /// Commits a change to api's greet script on main.
    fn change_api(&self) {
        let greet = self.repo.path().join("services/api/cgi-bin/greet");
        let mut text = std::fs::read_to_string(&greet).expect("greet");
        text.push_str("# release 2\n");
        std::fs::write(&greet, text).expect("write greet");
        self.repo.commit_all("Change api");
    }
}

/// The release candidates of a run's promotion.
fn candidates(run: &Run) -> &[serde_json::Value] {
    run.summary["promotion"]["release_candidates"]
        .as_array()
        .expect("release candidates")
}

/// The service (`api` or `web`) of a release candidate.
fn candidate_image(candidate: &serde_json::Value) -> &'static str {
    if candidate["target"].as_str().unwrap().contains("/shop/api:") {
        "api"
    } else {
        "web"
    }
}

/// `up` uses the release-candidate registry it is given and records it in the settings.
fn up_uses_the_given_rc_registry(platform: &Platform, up: &Output, rc: &Registry) {
    up.stderr_contains("release-candidate registry: using the one already on");
    let env = std::fs::read_to_string(platform.state.join("env")).expect("settings");
    assert!(
        env.contains(&format!("MICROPLATFORM_RC_REGISTRY={}", rc.addr)),
        "{env}"
    );
}

/// The first run goes through every step of the main flow and names both environments' gates.
fn first_run_walks_every_step_of_the_main_flow(run: &Run) {
    for step in [
        "diff", "build", "render", "promote", "request", "apply", "smoke", "gate",
    ] {
        run.out.stderr_contains(&format!("] {step}"));
    }
    run.out
        .stderr_contains("environment staging (gate auto), prod (gate manual)");
}

/// The first run builds both services and deploys staging.
fn first_run_builds_both_services_for_staging(run: &Run) {
    let s1 = &run.summary;
    assert_eq!(s1["environment"], "staging");
    assert_eq!(s1["namespace"], "shop-staging");
    assert_eq!(s1["built"], serde_json::json!(["api", "web"]));
}

/// Identical digests: every release candidate is the built image, by digest, in the RC registry.
fn release_candidates_are_the_built_images_by_digest(flow: &MainFlow, run: &Run) {
    let candidates = candidates(run);
    assert_eq!(candidates.len(), 2, "{}", run.summary);
    for c in candidates {
        let digest = c["digest"].as_str().unwrap();
        let target = c["target"].as_str().unwrap();
        let source = c["source"].as_str().unwrap();
        let image = candidate_image(c);
        assert_eq!(
            source,
            format!("{}/shop/{image}:main@{digest}", flow.reg.addr),
            "{c}"
        );
        assert_eq!(
            target,
            format!("{}/shop/{image}:main@{digest}", flow.rc.addr)
        );
        let (status, built, _) = flow.reg.get_manifest(&format!("shop/{image}"), "main");
        assert_eq!((status, built.as_deref()), (200, Some(digest)));
        let (status, promoted, _) = flow.rc.get_manifest(&format!("shop/{image}"), "main");
        assert_eq!((status, promoted.as_deref()), (200, Some(digest)));
    }
}

/// Staging runs the release candidates, pinned by digest.
fn staging_runs_the_release_candidates(flow: &MainFlow, run: &Run) {
    for c in candidates(run) {
        let target = c["target"].as_str().unwrap();
        let image = candidate_image(c);
        assert_eq!(
            run.summary["deployed"]["images"][image], target,
            "{}",
            run.summary
        );
        let spec = flow.dockerd.run(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &format!("shop-staging_{image}"),
        ]);
        assert_eq!(spec, target);
    }
}

/// The first run copies the images into the RC registry for staging, and prod has nothing
/// left to copy; returns the bytes copied per environment.
fn staging_copies_the_images_and_prod_finds_them_promoted(run: &Run) -> Vec<(String, u64)> {
    let first_copy = copied(&run.summary);
    assert_eq!(first_copy[0].0, "staging");
    assert!(first_copy[0].1 > 0, "{first_copy:?}");
    assert_eq!(first_copy[1], ("prod".to_string(), 0), "already promoted");
    first_copy
}

/// Smoke-tested: staging's front page shows both services' answers.
fn staging_passes_its_smoke_test(run: &Run) {
    let page = std::fs::read_to_string(run.dir.join("envs/staging/smoke/web-ingress.txt"))
        .expect("smoke page");
    assert!(
        page.contains("web says: Hello, visitor!") && page.contains("api says: Hello, web!"),
        "{page}"
    );
}

/// Staging (and not prod) is on the cluster repo's main, at the run's cluster commit.
fn staging_is_on_the_cluster_repos_main(flow: &MainFlow, run: &Run) {
    let cluster = flow.cluster();
    assert_eq!(
        git_in(&cluster, &["rev-parse", "main"]),
        run.summary["deployed"]["cluster_commit"].as_str().unwrap()
    );
    let on_main = git_in(&cluster, &["ls-tree", "--name-only", "main"]);
    assert!(
        on_main.lines().any(|l| l == "shop-staging") && !on_main.lines().any(|l| l == "shop"),
        "{on_main}"
    );
}

/// Prod (gate manual) gets a deploy branch of the release candidates, not merged, and waits.
fn prod_waits_on_an_unmerged_deploy_branch(flow: &MainFlow, run: &Run) {
    let cluster = flow.cluster();
    let prod = &run.summary["promotion"]["environments"][1];
    assert_eq!(
        (&prod["gate"], &prod["namespace"]),
        (&"manual".into(), &"shop".into())
    );
    let branch = prod["request"]["branch"].as_str().expect("prod branch");
    assert_eq!(branch, format!("deploy/shop/{}", flow.merged));
    let prod_compose = git_in(&cluster, &["show", &format!("{branch}:shop/compose.yaml")]);
    let message = git_in(&cluster, &["log", "-1", "--format=%B", branch]);
    for c in candidates(run) {
        let target = c["target"].as_str().unwrap();
        assert!(
            prod_compose.contains(&format!("image: {target}")),
            "{prod_compose}"
        );
        assert!(
            message.contains(&format!("Release-Candidate: {target}")),
            "{message}"
        );
    }
    assert!(
        !git_in(&cluster, &["branch", "--merged", "main"]).contains(branch),
        "the prod branch is not merged"
    );
    run.out
        .stderr_contains(&format!("gate     manual: shop waits for branch {branch}"));
}

/// A rerun without a change builds nothing, copies 0 bytes and keeps the release candidates.
fn a_rerun_builds_and_copies_nothing(first: &Run, rerun: &Run) {
    let s2 = &rerun.summary;
    assert_eq!(s2["built"], serde_json::json!([]), "{s2}");
    assert_eq!(s2["promotion"]["bytes_copied"], 0, "{s2}");
    assert_eq!(copied(s2), [("staging".into(), 0), ("prod".into(), 0)]);
    assert_eq!(
        s2["promotion"]["release_candidates"],
        first.summary["promotion"]["release_candidates"]
    );
}

/// A rerun without a change commits nothing to the cluster repo and restarts no service
/// (`refs_before` and `tasks_before` are the cluster repo's refs and staging's tasks before it).
fn a_rerun_commits_and_restarts_nothing(
    flow: &MainFlow,
    rerun: &Run,
    refs_before: &str,
    tasks_before: &[BTreeSet<String>],
) {
    assert_eq!(rerun.summary["deployed"]["unchanged"], true);
    assert_eq!(refs(&flow.cluster()), refs_before, "nothing committed");
    rerun
        .out
        .stderr_contains("already applied: shop-staging runs these digests");
    for ((s, before), now) in ["api", "web"]
        .iter()
        .zip(tasks_before)
        .zip(flow.staging_tasks())
    {
        assert_eq!(&now, before, "{s} restarted");
    }
}

/// After a change to api, only api is built and redeployed, and fewer bytes than the first
/// run's are copied (only its new blobs).
fn a_change_to_api_builds_and_copies_only_api(
    first: &Run,
    first_copy: &[(String, u64)],
    changed: &Run,
) {
    let s3 = &changed.summary;
    assert_eq!(s3["built"], serde_json::json!(["api"]), "{s3}");
    let third = copied(s3);
    assert!(
        third[0].1 > 0 && third[0].1 < first_copy[0].1,
        "{third:?} vs {first_copy:?}"
    );
    let s1 = &first.summary;
    assert_ne!(
        s3["deployed"]["images"]["api"], s1["deployed"]["images"]["api"],
        "api redeployed"
    );
    assert_eq!(
        s3["deployed"]["images"]["web"],
        s1["deployed"]["images"]["web"]
    );
}

/// Prints how long the merge to staging took and what each run (first, rerun, api changed)
/// copied to staging.
fn report(merge_to_staging: std::time::Duration, [first, rerun, changed]: [&Run; 3]) {
    eprintln!(
        "promotion e2e: merge to staging running {:.1}s (pipeline {}s); bytes copied: first {} (rerun {}), one service changed {}",
        merge_to_staging.as_secs_f64(),
        first.summary["seconds"],
        copied(&first.summary)[0].1,
        copied(&rerun.summary)[0].1,
        copied(&changed.summary)[0].1
    );
}

/// The steps share one test: each is a state the one before left (a platform up with a swarm
/// stack, then pipeline runs that build, promote and deploy), which takes minutes to make, and
/// the rerun and the change are only meaningful against the first run's images and cluster.
#[test]
fn main_flow_promotes_deploys_staging_opens_prod_and_reruns_as_a_no_op() {
    let reg = Registry::start();
    let rc = Registry::start();
    let dockerd = Dockerd::shared();
    // Declared before the platform, so it is dropped after it: the agent (self-heal)
    // would otherwise deploy the stack again once it is removed under it.
    let _stack = StackGuard {
        dockerd,
        name: "shop-staging".into(),
    };
    let (platform, up) = Platform::up_with_rc(&reg, &rc, dockerd);
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let _rc_images = ImageCleanup {
        dockerd,
        registry: rc.addr.clone(),
    };
    up_uses_the_given_rc_registry(&platform, &up, &rc);
    let flow = MainFlow::new(&reg, &rc, dockerd, &platform);

    // Run 1: build, promote, staging deployed and smoke-tested, prod branch opened.
    let t0 = std::time::Instant::now();
    let run1 = flow.run("run1");
    let merge_to_staging = t0.elapsed();
    first_run_walks_every_step_of_the_main_flow(&run1);
    first_run_builds_both_services_for_staging(&run1);
    release_candidates_are_the_built_images_by_digest(&flow, &run1);
    staging_runs_the_release_candidates(&flow, &run1);
    let first_copy = staging_copies_the_images_and_prod_finds_them_promoted(&run1);
    staging_passes_its_smoke_test(&run1);
    staging_is_on_the_cluster_repos_main(&flow, &run1);
    prod_waits_on_an_unmerged_deploy_branch(&flow, &run1);

    // Run 2, no change; run 3, api changed.
    let (refs_before, tasks_before) = (refs(&flow.cluster()), flow.staging_tasks());
    let run2 = flow.run("run2");
    a_rerun_builds_and_copies_nothing(&run1, &run2);
    a_rerun_commits_and_restarts_nothing(&flow, &run2, &refs_before, &tasks_before);
    flow.change_api();
    let run3 = flow.run("run3");
    a_change_to_api_builds_and_copies_only_api(&run1, &first_copy, &run3);
    report(merge_to_staging, [&run1, &run2, &run3]);
}
