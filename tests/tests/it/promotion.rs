//! End-to-end: the main flow on the local platform (`scripts/pipeline REPO main` on a copy of
//! `examples/shop`, whose `promotion` is dev → staging (gate auto) → prod (gate manual)):
//! images built, promoted by digest into the release-candidate registry (identical digests),
//! staging deployed from the release-candidate registry and smoke-tested, the prod deploy
//! branch opened and not merged; a rerun builds, copies, commits and restarts nothing; a change
//! to one service copies only that image's new blobs.

use std::collections::BTreeSet;
use std::path::Path;

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{TestDir, git_in};

use crate::platform::{Platform, StackGuard, refs, task_ids, workspace_root};

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
    up.stderr_contains("release-candidate registry: using the one already on");
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let _rc_images = ImageCleanup {
        dockerd,
        registry: rc.addr.clone(),
    };
    let env = std::fs::read_to_string(platform.state.join("env")).expect("settings");
    assert!(
        env.contains(&format!("MICROPLATFORM_RC_REGISTRY={}", rc.addr)),
        "{env}"
    );

    // main: a README, then the shop merged into it.
    let repo = TestDir::new();
    repo.git_init();
    repo.write("README.md", "# shop\n");
    repo.commit_all("Start");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(workspace_root().join("examples/shop/."))
        .arg(repo.path())
        .status()
        .expect("cp");
    assert!(cp.success());
    repo.commit_all("Merge the shop");
    let sha = repo.git(&["rev-parse", "HEAD"]);
    let runs = TestDir::new();

    // Run 1: build, promote, staging deployed and smoke-tested, prod branch opened.
    let t0 = std::time::Instant::now();
    let out1 = runs.join("run1");
    let run = platform.pipeline(repo.path(), "main", &out1);
    run.success();
    let merge_to_staging = t0.elapsed();
    for step in [
        "diff", "build", "render", "promote", "request", "apply", "smoke", "gate",
    ] {
        run.stderr_contains(&format!("] {step}"));
    }
    run.stderr_contains("environment staging (gate auto), prod (gate manual)");
    let s1 = json(&out1.join("summary.json"));
    assert_eq!(s1["environment"], "staging");
    assert_eq!(s1["namespace"], "shop-staging");
    assert_eq!(s1["built"], serde_json::json!(["api", "web"]));
    // Identical digests: every release candidate is the built image, by digest, in the RC registry.
    let candidates = s1["promotion"]["release_candidates"]
        .as_array()
        .expect("release candidates");
    assert_eq!(candidates.len(), 2, "{s1}");
    for c in candidates {
        let digest = c["digest"].as_str().unwrap();
        let target = c["target"].as_str().unwrap();
        let source = c["source"].as_str().unwrap();
        let image = if target.contains("/shop/api:") {
            "api"
        } else {
            "web"
        };
        assert_eq!(
            source,
            format!("{}/shop/{image}:main@{digest}", reg.addr),
            "{c}"
        );
        assert_eq!(target, format!("{}/shop/{image}:main@{digest}", rc.addr));
        let (status, built, _) = reg.get_manifest(&format!("shop/{image}"), "main");
        assert_eq!((status, built.as_deref()), (200, Some(digest)));
        let (status, promoted, _) = rc.get_manifest(&format!("shop/{image}"), "main");
        assert_eq!((status, promoted.as_deref()), (200, Some(digest)));
        // Staging runs the release candidate, pinned by digest.
        assert_eq!(s1["deployed"]["images"][image], target, "{s1}");
        let spec = dockerd.run(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &format!("shop-staging_{image}"),
        ]);
        assert_eq!(spec, target);
    }
    let first_copy = copied(&s1);
    assert_eq!(first_copy[0].0, "staging");
    assert!(first_copy[0].1 > 0, "{first_copy:?}");
    assert_eq!(first_copy[1], ("prod".to_string(), 0), "already promoted");
    // Smoke-tested: the front page shows both services' answers.
    let page = std::fs::read_to_string(out1.join("envs/staging/smoke/web-ingress.txt"))
        .expect("smoke page");
    assert!(
        page.contains("web says: Hello, visitor!") && page.contains("api says: Hello, web!"),
        "{page}"
    );
    // Staging is on the cluster repo's main; prod is a deploy branch, not merged.
    let cluster = platform.state.join("cluster.git");
    assert_eq!(
        git_in(&cluster, &["rev-parse", "main"]),
        s1["deployed"]["cluster_commit"].as_str().unwrap()
    );
    let on_main = git_in(&cluster, &["ls-tree", "--name-only", "main"]);
    assert!(
        on_main.lines().any(|l| l == "shop-staging") && !on_main.lines().any(|l| l == "shop"),
        "{on_main}"
    );
    let prod = &s1["promotion"]["environments"][1];
    assert_eq!(
        (&prod["gate"], &prod["namespace"]),
        (&"manual".into(), &"shop".into())
    );
    let branch = prod["request"]["branch"].as_str().expect("prod branch");
    assert_eq!(branch, format!("deploy/shop/{sha}"));
    let prod_compose = git_in(&cluster, &["show", &format!("{branch}:shop/compose.yaml")]);
    let message = git_in(&cluster, &["log", "-1", "--format=%B", branch]);
    for c in candidates {
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
    run.stderr_contains(&format!("gate     manual: shop waits for branch {branch}"));

    // Run 2, no change: nothing built, 0 bytes copied, nothing committed, nothing restarted.
    let tasks: Vec<BTreeSet<String>> = ["api", "web"]
        .iter()
        .map(|s| task_ids(dockerd, &format!("shop-staging_{s}")))
        .collect();
    let refs_before = refs(&cluster);
    let out2 = runs.join("run2");
    let rerun = platform.pipeline(repo.path(), "main", &out2);
    rerun.success();
    let s2 = json(&out2.join("summary.json"));
    assert_eq!(s2["built"], serde_json::json!([]), "{s2}");
    assert_eq!(s2["promotion"]["bytes_copied"], 0, "{s2}");
    assert_eq!(copied(&s2), [("staging".into(), 0), ("prod".into(), 0)]);
    assert_eq!(s2["deployed"]["unchanged"], true);
    assert_eq!(
        s2["promotion"]["release_candidates"],
        s1["promotion"]["release_candidates"]
    );
    assert_eq!(refs(&cluster), refs_before, "nothing committed");
    rerun.stderr_contains("already applied: shop-staging runs these digests");
    for (s, before) in ["api", "web"].iter().zip(&tasks) {
        assert_eq!(
            &task_ids(dockerd, &format!("shop-staging_{s}")),
            before,
            "{s} restarted"
        );
    }

    // Run 3: api changes: only api is built, and only its new blobs are copied.
    let greet = repo.path().join("services/api/cgi-bin/greet");
    let mut text = std::fs::read_to_string(&greet).expect("greet");
    text.push_str("# release 2\n");
    std::fs::write(&greet, text).expect("write greet");
    repo.commit_all("Change api");
    let out3 = runs.join("run3");
    let changed = platform.pipeline(repo.path(), "main", &out3);
    changed.success();
    let s3 = json(&out3.join("summary.json"));
    assert_eq!(s3["built"], serde_json::json!(["api"]), "{s3}");
    let third = copied(&s3);
    assert!(
        third[0].1 > 0 && third[0].1 < first_copy[0].1,
        "{third:?} vs {first_copy:?}"
    );
    assert_ne!(
        s3["deployed"]["images"]["api"], s1["deployed"]["images"]["api"],
        "api redeployed"
    );
    assert_eq!(
        s3["deployed"]["images"]["web"],
        s1["deployed"]["images"]["web"]
    );
    eprintln!(
        "promotion e2e: merge to staging running {:.1}s (pipeline {}s); bytes copied: first {} (rerun {}), one service changed {}",
        merge_to_staging.as_secs_f64(),
        s1["seconds"],
        first_copy[0].1,
        copied(&s2)[0].1,
        third[0].1
    );
}
