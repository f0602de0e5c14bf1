//! Change detection against real git repositories: feature-branch and main-branch modes, renames,
//! deletes, odd paths, uncommitted changes, missing merge base, first commit, shallow clones, subdirectories.

use crate::common;

use common::{Doc, mb, original_fixture, repo};
use microplatform_test_support::{Cmd, Output, TestDir, git_in};

fn json(t: &TestDir, args: &[&str]) -> Doc {
    let out = mb(t).args(args).args(["--format", "json"]).run();
    out.success();
    out.json()
}

#[test]
fn feature_branch_diffs_against_the_merge_base() {
    let t = repo();
    t.git(&["checkout", "-q", "-b", "feature"]);
    t.write("libs/lib2/src.txt", "x\n");
    t.commit_all("feature work");
    // main moves on after the branch was cut: its changes are not the branch's.
    t.git(&["checkout", "-q", "main"]);
    t.write("app4/main-only.txt", "m\n");
    let main_tip = t.commit_all("main work");
    t.git(&["checkout", "-q", "feature"]);
    mb(&t)
        .arg("diff")
        .run()
        .success()
        .stdout_eq("app1: \napp2: \nlibs/lib2: \nstack1: app1, app2\n");
    mb(&t)
        .args(["diff", "--base-branch", "main"])
        .run()
        .success()
        .stdout_eq("app1: \napp2: \nlibs/lib2: \nstack1: app1, app2\n");
    let doc = json(&t, &["diff"]);
    assert_eq!(doc.mode, "feature-branch");
    let base = doc.base.as_ref().unwrap();
    assert_eq!(base.reference, "main");
    assert_ne!(base.commit, main_tip);
    assert_eq!(base.commit, t.git(&["merge-base", "main", "HEAD"]));
    assert_eq!(
        doc.head.as_ref().unwrap().commit,
        t.git(&["rev-parse", "HEAD"])
    );
    assert_eq!(doc.changed(), ["libs/lib2"]);
    assert_eq!(doc.affected(), ["app1", "app2", "libs/lib2", "stack1"]);
    assert_eq!(doc.changed_files.len(), 1);
    assert_eq!(doc.changed_files[0].status, "added");
    assert_eq!(
        doc.components["libs/lib2"].reasons,
        ["added: libs/lib2/src.txt"]
    );
    assert!(
        doc.components["app1"]
            .reasons
            .contains(&"depends on libs/lib2 (weak)".to_string())
    );
    assert!(
        doc.components["stack1"]
            .reasons
            .contains(&"depends on app1 (strong)".to_string())
    );
}

#[test]
fn base_may_be_a_tag_and_criss_cross_histories_use_gits_merge_base() {
    let t = repo();
    t.git(&["tag", "-a", "-m", "release", "v1"]);
    t.git(&["checkout", "-q", "-b", "feature"]);
    t.write("app3/x", "x\n");
    t.commit_all("feature");
    let doc = json(&t, &["diff", "--base-branch", "v1"]);
    let base = doc.base.as_ref().unwrap();
    assert_eq!(base.reference, "v1");
    assert_eq!(base.commit, t.git(&["rev-parse", "v1^{commit}"]));
    assert_eq!(doc.changed(), ["app3"]);

    // Criss-cross merges give two merge bases; the one `git merge-base` picks is used.
    t.git(&["checkout", "-q", "main"]);
    t.write("app4/m", "m\n");
    t.commit_all("main 1");
    t.git(&["checkout", "-q", "-b", "other", "feature"]);
    t.git(&["checkout", "-q", "main"]);
    t.git(&["merge", "-q", "--no-edit", "feature"]);
    t.git(&["checkout", "-q", "other"]);
    t.git(&["merge", "-q", "--no-edit", "main~1"]);
    t.write("libs/lib1/o", "o\n");
    t.commit_all("other 2");
    let all = t.git(&["merge-base", "--all", "main", "HEAD"]);
    assert_eq!(all.lines().count(), 2, "two merge bases: {all}");
    let doc = json(&t, &["diff", "--base-branch", "main"]);
    assert_eq!(
        doc.base.as_ref().unwrap().commit,
        t.git(&["merge-base", "main", "HEAD"])
    );
}

/// A repository whose only branch is `master` (the original fixture), with a feature branch `f`
/// checked out that changed `app4`.
fn master_only_repo_on_a_feature_branch() -> TestDir {
    let t = TestDir::new();
    t.git(&["init", "-q", "-b", "master"]);
    t.git(&["config", "user.email", "t@e"]);
    t.git(&["config", "user.name", "T"]);
    original_fixture(&t, "");
    t.commit_all("init");
    t.git(&["checkout", "-q", "-b", "f"]);
    t.write("app4/x", "1");
    t.commit_all("f");
    t
}

/// `monobuild ARGS` run in `dir` (not necessarily a [`TestDir`]).
fn monobuild_in(dir: &std::path::Path, args: &[&str]) -> Output {
    Cmd::new(microplatform_test_support::bin("monobuild"))
        .current_dir(dir)
        .args(args)
        .run()
}

#[test]
fn default_base_is_master_when_there_is_no_main() {
    let t = master_only_repo_on_a_feature_branch();
    assert_eq!(json(&t, &["diff"]).base.unwrap().reference, "master");
}

#[test]
fn default_base_in_a_clone_is_the_remote_head() {
    let t = master_only_repo_on_a_feature_branch();
    t.git(&["checkout", "-q", "master"]);
    let clone = TestDir::new();
    git_in(
        clone.path(),
        &[
            "clone",
            "-q",
            "-b",
            "master",
            t.path().to_str().unwrap(),
            "c",
        ],
    );
    let c = clone.join("c");
    git_in(&c, &["checkout", "-q", "-b", "topic"]);
    std::fs::write(c.join("app1/y"), "y").unwrap();
    git_in(&c, &["add", "-A"]);
    git_in(
        &c,
        &[
            "-c",
            "user.name=T",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "-m",
            "y",
        ],
    );
    let out = monobuild_in(&c, &["diff", "--format", "json"]);
    out.success();
    let doc: Doc = out.json();
    // origin/HEAD (the remote's checked-out branch) wins.
    assert_eq!(doc.base.as_ref().unwrap().reference, "origin/master");
    assert_eq!(doc.changed(), ["app1"]);
}

#[test]
fn main_branch_mode_uses_the_parent_or_base_commit() {
    let t = repo();
    t.write("app3/a.txt", "1");
    let first = t.commit_all("one");
    t.write("libs/lib1/b.txt", "2");
    t.commit_all("two");
    mb(&t)
        .args(["diff", "--main-branch"])
        .run()
        .success()
        .stdout_eq("app1: \nlibs/lib1: \nstack1: app1\n");
    mb(&t)
        .args(["diff", "--main-branch", "--base-commit", "HEAD~2"])
        .run()
        .success()
        .stdout_eq("app1: \napp3: \nlibs/lib1: \nstack1: app1, app3\n");
    let doc = json(&t, &["diff", "--main-branch", "--base-commit", &first]);
    assert_eq!(doc.mode, "main-branch");
    assert_eq!(doc.base.as_ref().unwrap().commit, first);
    assert_eq!(doc.changed(), ["libs/lib1"]);
}

#[test]
fn renames_mark_old_and_new_owner_and_deleted_components_are_reported() {
    let t = repo();
    t.write(
        "libs/lib1/moving.txt",
        "some content that is long enough to be detected as a rename\n",
    );
    t.commit_all("add");
    t.git(&["mv", "libs/lib1/moving.txt", "app4/moved.txt"]);
    t.commit_all("move");
    let doc = json(&t, &["diff", "--main-branch"]);
    assert_eq!(doc.changed_files.len(), 1);
    let f = &doc.changed_files[0];
    assert_eq!(f.status, "renamed");
    assert_eq!(f.path, "app4/moved.txt");
    assert_eq!(f.old_path.as_deref(), Some("libs/lib1/moving.txt"));
    assert_eq!(f.components, ["app4", "libs/lib1"]);
    assert_eq!(doc.changed(), ["app4", "libs/lib1"]);
    assert!(
        doc.components["app4"].reasons[0]
            .starts_with("renamed: libs/lib1/moving.txt -> app4/moved.txt")
    );

    // Delete a file and a whole component (and the dependency on it).
    t.remove("libs/lib2/Dependencies");
    t.write("libs/lib2/keep.txt", "not a component any more");
    t.write("app1/Dependencies", "libs/lib1\n");
    t.write("app2/Dependencies", "libs/lib3\n");
    t.remove("app4/moved.txt");
    t.commit_all("delete");
    let doc = json(&t, &["diff", "--main-branch"]);
    assert_eq!(doc.deleted_components, ["libs/lib2"]);
    assert!(!doc.components.contains_key("libs/lib2"));
    let del: Vec<_> = doc
        .changed_files
        .iter()
        .filter(|f| f.status == "deleted")
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(del, ["app4/moved.txt", "libs/lib2/Dependencies"]);
    // Edges removed from a Dependencies file mark that component.
    assert_eq!(doc.changed(), ["app1", "app2", "app4"]);
}

#[test]
fn paths_with_spaces_and_non_ascii_work() {
    let t = TestDir::new();
    t.git_init();
    t.write("my app/Dependencies", "!lïb ü\n");
    t.write("lïb ü/Dependencies", "");
    t.write("lïb ü/dätä file.txt", "1");
    t.commit_all("init");
    t.write("lïb ü/dätä file.txt", "2");
    t.write("lïb ü/new\tname.txt", "tab");
    t.commit_all("change");
    mb(&t)
        .args(["diff", "--main-branch"])
        .run()
        .success()
        .stdout_eq("lïb ü: \nmy app: lïb ü\n");
    let doc = json(&t, &["diff", "--main-branch"]);
    let paths: Vec<_> = doc.changed_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["lïb ü/dätä file.txt", "lïb ü/new\tname.txt"]);
    assert_eq!(
        doc.schedule.stages,
        vec![vec!["lïb ü".to_string()], vec!["my app".to_string()]]
    );
}

#[test]
fn uncommitted_changes_are_optional_and_hashed_consistently() {
    let t = repo();
    t.git(&["checkout", "-q", "-b", "feature"]);
    let committed = json(&t, &["diff"]);
    assert!(committed.changed().is_empty());
    t.write("app3/wip.txt", "untracked");
    t.write("libs/lib1/Dependencies", "libs/lib3\n# edited\n");
    mb(&t).arg("diff").run().success().stdout_eq("");
    mb(&t)
        .args(["diff", "--uncommitted"])
        .run()
        .success()
        .stdout_eq("app1: \napp3: \nlibs/lib1: \nstack1: app1, app3\n");
    let wip = json(&t, &["diff", "--uncommitted"]);
    assert!(wip.head.as_ref().unwrap().uncommitted);
    assert_eq!(wip.changed(), ["app3", "libs/lib1"]);
    assert_ne!(wip.hash("app3"), committed.hash("app3"));
    assert_ne!(wip.hash("stack1"), committed.hash("stack1"));
    assert_eq!(wip.hash("app2"), committed.hash("app2"));
    // The index is untouched by hashing the working tree.
    assert_eq!(t.git(&["diff", "--cached", "--name-only"]), "");
    // After committing, the committed hashes equal the uncommitted ones: the same sources, the same hash.
    t.commit_all("wip");
    let after = json(&t, &["diff"]);
    for c in ["app1", "app2", "app3", "libs/lib1", "stack1"] {
        assert_eq!(after.hash(c), wip.hash(c), "{c}");
    }
    // print reads and hashes the working tree, like the original reads the manifests on disk.
    t.write("app2/new.txt", "n");
    t.write("app4/Dependencies", "libs/lib3\n");
    mb(&t)
        .args(["print", "--dependencies", "--scope", "app4"])
        .run()
        .success()
        .stdout_eq("app4: libs/lib3\nlibs/lib3: \n");
    let printed = json(&t, &["print"]);
    assert_ne!(printed.hash("app2"), after.hash("app2"));
    assert_eq!(printed.hash("app1"), after.hash("app1"));
}

#[test]
fn no_merge_base_means_everything_is_affected() {
    let t = repo();
    t.git(&["checkout", "-q", "--orphan", "other"]);
    t.write("app4/x", "1");
    t.commit_all("unrelated");
    mb(&t).arg("diff").run().success().stdout_eq(
        "app1: \napp2: \napp3: \napp4: \nlibs/lib1: \nlibs/lib2: \nlibs/lib3: \nstack1: app1, app2, app3\n",
    );
    let doc = json(&t, &["diff"]);
    assert_eq!(
        doc.full_rebuild.as_deref(),
        Some("no merge base between main and HEAD: everything is affected")
    );
    assert!(
        doc.components
            .values()
            .all(|c| c.changed && c.reasons.iter().any(|r| r.contains("no merge base")))
    );
}

#[test]
fn first_commit_means_everything_is_affected() {
    let t = repo();
    let doc = json(&t, &["diff", "--main-branch"]);
    assert_eq!(doc.affected().len(), 8);
    assert!(doc.base.is_none());
    assert!(doc.full_rebuild.unwrap().starts_with("first commit"));
    mb(&t)
        .args(["why", "app1", "--main-branch"])
        .run()
        .success()
        .stdout_contains("first commit");
}

/// A depth-1 clone of the `feature` branch (two commits past `main`, which has two); the origin
/// is returned too, to keep it alive for later fetches.
fn shallow_clone_of_a_feature_branch() -> (TestDir, TestDir) {
    let t = repo();
    t.write("app1/a", "1");
    t.commit_all("two");
    t.git(&["checkout", "-q", "-b", "feature"]);
    t.write("app1/b", "2");
    t.commit_all("three");
    let clone = TestDir::new();
    let url = format!("file://{}", t.path().display());
    git_in(
        clone.path(),
        &["clone", "-q", "--depth", "1", "-b", "feature", &url, "c"],
    );
    (t, clone)
}

#[test]
fn shallow_clone_in_main_branch_mode_without_the_parent_exits_5() {
    let (_origin, clone) = shallow_clone_of_a_feature_branch();
    monobuild_in(&clone.join("c"), &["diff", "--main-branch"])
        .code(5)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("shallow clone: base commit 'HEAD^1' is not in the fetched history");
}

#[test]
fn shallow_clone_without_the_base_branch_exits_4() {
    let (_origin, clone) = shallow_clone_of_a_feature_branch();
    monobuild_in(&clone.join("c"), &["diff", "--base-branch", "main"])
        .code(4)
        .stdout_empty()
        .stderr_contains("shallow clone");
}

#[test]
fn shallow_clone_with_a_shallow_base_branch_still_lacks_the_merge_base() {
    let (_origin, clone) = shallow_clone_of_a_feature_branch();
    let c = clone.join("c");
    git_in(&c, &["fetch", "-q", "--depth", "1", "origin", "main:main"]);
    monobuild_in(&c, &["diff", "--base-branch", "main"])
        .code(5)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("shallow clone: the merge base of main and HEAD");
}

#[test]
fn a_deepened_clone_diffs_against_the_base_branch() {
    let (_origin, clone) = shallow_clone_of_a_feature_branch();
    let c = clone.join("c");
    git_in(
        &c,
        &[
            "fetch",
            "-q",
            "--unshallow",
            "origin",
            "feature",
            "main:main",
        ],
    );
    monobuild_in(&c, &["diff", "--base-branch", "main"])
        .success()
        .stdout_eq("app1: \nstack1: app1\n");
}

#[test]
fn works_from_a_subdirectory_of_the_repository() {
    let t = TestDir::new();
    t.git_init();
    t.write("tool/src/main.rs", "fn main() {}\n");
    original_fixture(&t, "examples/shop/");
    t.commit_all("init");
    t.git(&["checkout", "-q", "-b", "feature"]);
    t.write("tool/src/main.rs", "fn main() { println!(); }\n");
    t.write("examples/shop/libs/lib3/x", "1");
    t.write("examples/other/app1/x", "outside the root");
    t.commit_all("change");
    let shop = t.join("examples/shop");
    let cmd = || {
        microplatform_test_support::Cmd::new(microplatform_test_support::bin("monobuild"))
            .current_dir(&shop)
    };
    cmd()
        .args(["diff", "--top-level", "--base-branch", "main"])
        .run()
        .success()
        .stdout_eq("stack1: \n");
    let out = cmd().args(["diff", "--format", "json"]).run();
    out.success();
    let doc: Doc = out.json();
    let paths: Vec<_> = doc.changed_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["libs/lib3/x"]);
    assert_eq!(doc.changed(), ["libs/lib3"]);
    // -C does the same from anywhere.
    mb(&t)
        .args(["-C", "examples/shop", "diff", "--top-level"])
        .run()
        .success()
        .stdout_eq("stack1: \n");
    // Hashes from a subdirectory equal those of the same tree at the root of another repository.
    let solo = TestDir::new();
    solo.git_init();
    for f in t.git(&["ls-files", "examples/shop"]).lines() {
        solo.write(
            f.strip_prefix("examples/shop/").unwrap(),
            std::fs::read(t.join(f)).unwrap(),
        );
    }
    solo.commit_all("solo");
    let solo_doc = json(&solo, &["print"]);
    assert_eq!(solo_doc.hash("stack1"), doc.hash("stack1"));
}

#[test]
fn global_inputs_from_the_root_config_mark_everything() {
    let t = repo();
    t.write(
        ".monobuild.toml",
        "# root config\nglobal_inputs = [\"Cargo.lock\", \"ci/**\"]\nignore = [\"**/*.md\"]\n",
    );
    t.write("Cargo.lock", "v1");
    t.commit_all("config");
    let before = json(&t, &["print"]);
    t.write("app4/README.md", "docs only");
    t.commit_all("docs");
    mb(&t)
        .args(["diff", "--main-branch"])
        .run()
        .success()
        .stdout_eq("");
    let doc = json(&t, &["diff", "--main-branch"]);
    assert!(doc.changed_files[0].ignored);
    t.write("Cargo.lock", "v2");
    t.commit_all("bump");
    let doc = json(&t, &["diff", "--main-branch"]);
    assert_eq!(doc.changed().len(), 8);
    assert!(doc.changed_files[0].global);
    assert!(
        doc.components["libs/lib3"]
            .reasons
            .contains(&"global input changed: Cargo.lock".to_string())
    );
    for (name, c) in &doc.components {
        assert_ne!(
            c.hash,
            before.hash(name),
            "{name}: global inputs are part of every hash"
        );
    }
    mb(&t)
        .args(["why", "app1", "--main-branch"])
        .run()
        .success()
        .stdout_eq("app1 is changed: global input Cargo.lock was modified\n");
}

#[test]
fn hashes_are_content_addresses() {
    let t = repo();
    let first = json(&t, &["print"]);
    assert!(
        first
            .components
            .values()
            .all(|c| common::valid_hash(&c.hash))
    );
    // A clone has the same hashes.
    let clone = TestDir::new();
    git_in(
        clone.path(),
        &["clone", "-q", t.path().to_str().unwrap(), "c"],
    );
    let out = microplatform_test_support::Cmd::new(microplatform_test_support::bin("monobuild"))
        .current_dir(clone.join("c"))
        .args(["print", "--format", "json"])
        .run();
    out.success();
    let cloned: Doc = out.json();
    for (n, comp) in &first.components {
        assert_eq!(comp.hash, cloned.hash(n));
    }
    // Changing lib3 changes every hash that depends on it, not the others.
    t.write("libs/lib1/f", "1");
    t.commit_all("lib1");
    let changed = json(&t, &["print"]);
    for (n, comp) in &changed.components {
        let expect_change = ["libs/lib1", "app1", "stack1"].contains(&n.as_str());
        assert_eq!(comp.hash != first.hash(n), expect_change, "{n}");
    }
    // Reverting restores the old hashes.
    t.remove("libs/lib1/f");
    t.commit_all("revert");
    let reverted = json(&t, &["print"]);
    for (n, comp) in &reverted.components {
        assert_eq!(comp.hash, first.hash(n), "{n}");
    }
}

#[test]
fn staged_changes_do_not_leak_into_the_committed_state() {
    let t = repo();
    t.git(&["checkout", "-q", "-b", "feature"]);
    t.write("app1/x", "1");
    t.commit_all("x");
    let clean = json(&t, &["diff"]);
    // Stage a change (and a manifest edit) without committing it.
    t.write("app2/staged.txt", "s");
    t.write("app4/Dependencies", "libs/lib3\n");
    t.git(&["add", "-A"]);
    let staged = json(&t, &["diff"]);
    assert_eq!(staged.changed(), ["app1"]);
    for (n, c) in &clean.components {
        assert_eq!(c.hash, staged.hash(n), "{n}");
    }
    assert!(staged.components["app4"].dependencies.is_empty());
    // With --uncommitted they count.
    let wip = json(&t, &["diff", "--uncommitted"]);
    assert_eq!(wip.changed(), ["app1", "app2", "app4"]);
    assert_eq!(wip.components["app4"].dependencies.len(), 1);
}

#[test]
fn edges_changed_in_a_full_manifest_file_mark_their_components() {
    let t = TestDir::new();
    t.git_init();
    t.write("deps.monobuild", "a: b\nb:\nc: !b\nd:\n");
    t.commit_all("graph");
    t.write(
        "deps.monobuild",
        "# reordered and edited\nd: b\nc: !b\nb:\na: b\n",
    );
    t.commit_all("edit graph");
    let out = mb(&t)
        .args([
            "-f",
            "deps.monobuild",
            "diff",
            "--main-branch",
            "--format",
            "json",
        ])
        .run();
    out.success();
    let doc: Doc = out.json();
    assert_eq!(doc.changed(), ["d"]);
    assert_eq!(
        doc.components["d"].reasons,
        ["dependencies changed in deps.monobuild"]
    );
    mb(&t)
        .args(["-f", "deps.monobuild", "why", "d", "--main-branch"])
        .run()
        .success()
        .stdout_eq("d is changed: dependencies changed in deps.monobuild\n");
}

/// `monobuild import`'s JSON (`deny_unknown_fields`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Imported {
    schema_version: u32,
    repo: String,
    branch: String,
    commit: String,
    unchanged: bool,
}

/// A plain directory `src/` holding the original fixture, a `.gitignore` for `*.log` and an ignored `build.log`.
fn plain_source_directory() -> TestDir {
    let t = TestDir::new();
    original_fixture(&t, "src/");
    t.write("src/.gitignore", "*.log\n");
    t.write("src/build.log", "ignored\n");
    t
}

/// `monobuild import src --repo repos/shop --branch feature-x`, which must succeed.
fn import_src(t: &TestDir) -> Imported {
    let out = mb(t)
        .args([
            "import",
            "src",
            "--repo",
            "repos/shop",
            "--branch",
            "feature-x",
        ])
        .run();
    out.success();
    out.json()
}

/// git in the repository that [`import_src`] writes.
fn imported_git(t: &TestDir, args: &[&str]) -> String {
    git_in(&t.join("repos/shop"), args)
}

#[test]
fn import_reports_the_new_branch_in_the_repository_it_created() {
    let t = plain_source_directory();
    let first = import_src(&t);
    assert_eq!(
        (first.schema_version, first.branch.as_str(), first.unchanged),
        (1, "feature-x", false)
    );
    assert!(first.repo.ends_with("repos/shop"), "{}", first.repo);
}

#[test]
fn import_commits_the_directory_to_the_branch_over_an_empty_main_honouring_gitignore() {
    let t = plain_source_directory();
    let first = import_src(&t);
    assert_eq!(
        imported_git(&t, &["ls-tree", "-r", "--name-only", "main"]),
        ""
    );
    let files = imported_git(&t, &["ls-tree", "-r", "--name-only", "feature-x"]);
    assert!(
        files.contains("app1/Dependencies") && files.contains(".gitignore"),
        "{files}"
    );
    assert!(!files.contains("build.log"), "{files}");
    assert_eq!(imported_git(&t, &["rev-parse", "feature-x"]), first.commit);
}

/// Needs the first import's commit, so both imports stay in one test.
#[test]
fn a_repeated_import_of_an_unchanged_directory_commits_nothing() {
    let t = plain_source_directory();
    let first = import_src(&t);
    let again = import_src(&t);
    assert!(again.unchanged);
    assert_eq!(again.commit, first.commit);
}

/// Needs the first import's commit as the parent, so import, change and import stay together.
#[test]
fn an_import_after_a_change_commits_just_that_change_on_top() {
    let t = plain_source_directory();
    let first = import_src(&t);
    t.write("src/libs/lib2/new.txt", "x\n");
    let changed = import_src(&t);
    assert!(!changed.unchanged);
    assert_eq!(imported_git(&t, &["rev-parse", "feature-x^"]), first.commit);
    assert_eq!(
        imported_git(&t, &["diff", "--name-only", "feature-x^", "feature-x"]),
        "libs/lib2/new.txt"
    );
}

#[test]
fn import_of_a_missing_directory_names_it() {
    let t = TestDir::new();
    mb(&t)
        .args(["import", "nowhere", "--repo", "r", "--branch", "b"])
        .run()
        .code(4)
        .stderr_contains("nowhere");
}
