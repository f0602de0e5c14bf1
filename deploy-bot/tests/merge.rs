//! `deploy-bot merge` on real git repos: a deploy branch fast-forwards main and is deleted; when main moved, a
//! merge commit with both parents; a conflict merges and deletes nothing (exit 5); a missing branch exits 4.

mod support;

use microplatform_common::testing::{Cmd, bin};
use support::ClusterRepo;

fn merge(repo: &ClusterRepo, branch: &str) -> microplatform_common::testing::Output {
    Cmd::new(bin("deploy-bot"))
        .args(["merge", "--repo", &repo.url(), "--branch", branch])
        .run()
}

fn json(out: &microplatform_common::testing::Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).expect("merge prints JSON")
}

fn branches(repo: &ClusterRepo) -> String {
    repo.git(&["for-each-ref", "--format=%(refname)", "refs/heads/"])
}

#[test]
fn an_unmoved_main_is_fast_forwarded_and_the_branch_deleted() {
    let repo = ClusterRepo::new();
    let tip = repo.branch("deploy/web/abc", &[("web/compose.yaml", "services: {}\n")]);
    let out = merge(&repo, "deploy/web/abc");
    out.success();
    let v = json(&out);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["how"], "fast-forward");
    assert_eq!(v["commit"], tip.as_str());
    assert_eq!(v["base"], "main", "the remote's default branch");
    assert_eq!(repo.git(&["rev-parse", "main"]), tip);
    assert_eq!(branches(&repo), "refs/heads/main");
}

#[test]
fn a_moved_main_gets_a_merge_commit_with_both_changes() {
    let repo = ClusterRepo::new();
    let tip = repo.branch("deploy/web/abc", &[("web/compose.yaml", "web\n")]);
    let moved = repo.commit(&[("api/compose.yaml", "api\n")], &[], "api deployed");
    let out = Cmd::new(bin("deploy-bot"))
        .args(["merge", "--repo", &repo.url(), "--branch", "deploy/web/abc"])
        .args(["--base", "main", "--author-name", "forge"])
        .run();
    out.success();
    let v = json(&out);
    assert_eq!(v["how"], "merge commit");
    let head = repo.git(&["rev-parse", "main"]);
    assert_eq!(v["commit"], head.as_str());
    assert_eq!(
        repo.git(&["log", "-1", "--format=%P", "main"]),
        format!("{moved} {tip}")
    );
    assert_eq!(repo.git(&["log", "-1", "--format=%an", "main"]), "forge");
    assert_eq!(repo.git(&["show", "main:web/compose.yaml"]), "web");
    assert_eq!(repo.git(&["show", "main:api/compose.yaml"]), "api");
    assert_eq!(branches(&repo), "refs/heads/main");
}

#[test]
fn a_conflict_merges_nothing_and_a_missing_branch_is_named() {
    let repo = ClusterRepo::new();
    let tip = repo.branch("deploy/web/abc", &[("web/compose.yaml", "theirs\n")]);
    let main = repo.commit(
        &[("web/compose.yaml", "ours\n")],
        &[],
        "web changed on main",
    );
    merge(&repo, "deploy/web/abc")
        .code(5)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("merge deploy/web/abc into main")
        .stderr_contains("conflict in web/compose.yaml; nothing merged");
    assert_eq!(repo.git(&["rev-parse", "main"]), main);
    assert_eq!(repo.git(&["rev-parse", "deploy/web/abc"]), tip);

    merge(&repo, "deploy/web/nope")
        .code(4)
        .stderr_one_line()
        .stderr_contains("branch \"deploy/web/nope\" does not exist in file://");
}
