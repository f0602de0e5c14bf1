//! `deploy-bot merge` against real bare repos: fast-forward, merge commit, already merged, conflict, missing branch.

use crate::support;

use microplatform_test_support::Output;
use serde_json::Value;
use support::ClusterRepo;

fn merge(repo: &ClusterRepo, branch: &str) -> Output {
    repo.dir
        .cmd("deploy-bot")
        .args(["merge", "--repo", &repo.url(), "--branch", branch])
        .run()
}

fn has_branch(repo: &ClusterRepo, b: &str) -> bool {
    !repo
        .git(&[
            "for-each-ref",
            "--format=%(refname)",
            &format!("refs/heads/{b}"),
        ])
        .is_empty()
}

#[test]
fn fast_forward_then_already_merged() {
    let repo = ClusterRepo::new();
    let c = repo.branch(
        "deploy/shop/abc",
        &[("shop/compose.yaml", "services: {}\n")],
    );
    let out = merge(&repo, "deploy/shop/abc");
    out.success();
    let v: Value = out.json();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["how"], "fast-forward");
    assert_eq!(v["base"], "main");
    assert_eq!(v["commit"], c.as_str());
    assert_eq!(repo.git(&["rev-parse", "refs/heads/main"]), c);
    assert!(!has_branch(&repo, "deploy/shop/abc"));

    // A branch whose commit main already has: main stays, the branch goes.
    repo.git(&["branch", "deploy/shop/old", &c]);
    let out = merge(&repo, "deploy/shop/old");
    out.success();
    let v: Value = out.json();
    assert_eq!(v["how"], "already merged");
    assert_eq!(repo.git(&["rev-parse", "refs/heads/main"]), c);
    assert!(!has_branch(&repo, "deploy/shop/old"));
}

#[test]
fn a_moved_base_gets_a_merge_commit_with_both_changes() {
    let repo = ClusterRepo::new();
    let deploy = repo.branch("deploy/shop/abc", &[("shop/compose.yaml", "shop\n")]);
    let moved = repo.commit(&[("other/compose.yaml", "other\n")], &[], "other env");
    let out = merge(&repo, "deploy/shop/abc");
    out.success();
    let v: Value = out.json();
    assert_eq!(v["how"], "merge commit");
    let head = repo.git(&["rev-parse", "refs/heads/main"]);
    assert_eq!(v["commit"], head.as_str());
    assert_eq!(
        repo.git(&["log", "-1", "--format=%P|%an|%s", &head]),
        format!("{moved} {deploy}|deploy-bot|Merge branch 'deploy/shop/abc' into main")
    );
    assert_eq!(
        repo.git(&["ls-tree", "-r", "--name-only", &head]),
        "README.md\nother/compose.yaml\nshop/compose.yaml"
    );
    assert!(!has_branch(&repo, "deploy/shop/abc"));
}

#[test]
fn a_conflict_names_the_file_and_pushes_nothing() {
    let repo = ClusterRepo::new();
    repo.branch(
        "deploy/shop/abc",
        &[("shop/compose.yaml", "from the branch\n")],
    );
    let main = repo.commit(&[("shop/compose.yaml", "from main\n")], &[], "direct");
    let out = merge(&repo, "deploy/shop/abc");
    out.code(5).stdout_empty().stderr_one_line();
    out.stderr_contains("merge conflict in shop/compose.yaml");
    assert_eq!(repo.git(&["rev-parse", "refs/heads/main"]), main);
    assert!(has_branch(&repo, "deploy/shop/abc"));
}

#[test]
fn bad_or_missing_branches() {
    let repo = ClusterRepo::new();
    let out = merge(&repo, "deploy/shop/none");
    out.code(4)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("no branch deploy/shop/none");
    merge(&repo, "a..b")
        .code(10)
        .stderr_one_line()
        .stderr_contains("branch");
    merge(&repo, "main").code(2).stderr_one_line();
}
