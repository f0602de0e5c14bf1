//! The in-process index reader and tree-id computation against real git: every directory's tree id
//! must equal git's own, with the index's cache-tree fully valid, partly invalidated, absent
//! (`ls-files` fallback), from a subdirectory, in a SHA-256 repository and for a sparse index.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Doc, mb};
use microplatform_test_support::{TestDir, git_in};
use monobuild::snapshot::{Dirs, ObjectFormat, Snapshot};

/// Every directory's tree id in `tree` (a commit or tree), as git lists it (`""` for its root).
fn git_trees(dir: &Path, tree: &str) -> BTreeMap<String, String> {
    let id = git_in(dir, &["rev-parse", tree]);
    let root = git_in(dir, &["rev-parse", &format!("{}^{{tree}}", id.trim())]);
    let mut out = BTreeMap::from([(String::new(), root.trim().to_string())]);
    let listing = git_in(dir, &["ls-tree", "-r", "-d", "-z", tree]);
    for rec in listing.split('\0').filter(|r| !r.is_empty()) {
        let (meta, path) = rec.split_once('\t').expect("ls-tree record");
        let fields: Vec<&str> = meta.split(' ').collect();
        // `-d` lists submodule entries too; only trees are directories.
        if fields[1] == "tree" {
            out.insert(path.to_string(), fields[2].to_string());
        }
    }
    out
}

/// `monobuild diff --main-branch --base-commit HEAD --format json` in `dir`: the committed state
/// with nothing changed, so every component with its hash.
fn committed(dir: &Path) -> Doc {
    let out = microplatform_test_support::Cmd::new(microplatform_test_support::bin("monobuild"))
        .current_dir(dir)
        .args([
            "diff",
            "--main-branch",
            "--base-commit",
            "HEAD",
            "--format",
            "json",
        ])
        .run();
    out.success();
    out.json()
}

fn ours(snapshot: &Snapshot) -> BTreeMap<String, String> {
    let (root, dirs) = snapshot.tree_ids(Dirs::All);
    let mut out: BTreeMap<String, String> = dirs
        .into_iter()
        .map(|(d, id)| (d, id.to_string()))
        .collect();
    assert_eq!(
        out.get(""),
        root.map(|r| r.to_string()).as_ref(),
        "root id is returned and kept"
    );
    out.entry(String::new()).or_default();
    out
}

fn index_of(t: &TestDir) -> std::path::PathBuf {
    t.join(".git/index")
}

/// A tree with names that sort differently as files and directories, spaces, non-ASCII names,
/// an executable, a symlink and a submodule entry.
fn tricky(t: &TestDir, format: &str) {
    t.git_init_object_format(format);
    for (p, c) in [
        ("a-b", "1"),
        ("a/x", "2"),
        ("a/y/z", "3"),
        ("a0", "4"),
        ("a.txt", "5"),
        ("b c/d e", "6"),
        ("é/ü/ß", "7"),
        ("deep/1/2/3/4/f", "8"),
        ("deep/1/2b", "9"),
        ("run.sh", "#!/bin/sh\n"),
        ("a/y.z/q", "10"),
    ] {
        t.write(p, c);
    }
    std::fs::set_permissions(
        t.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("a/x", t.join("link")).unwrap();
    git_in(t.path(), &["add", "-A"]);
    // A submodule entry (gitlink) pointing at some commit id.
    let fake = "1".repeat(if format == "sha256" { 64 } else { 40 });
    git_in(
        t.path(),
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{fake},a/sub"),
        ],
    );
    git_in(t.path(), &["commit", "-q", "-m", "tricky"]);
}

#[test]
fn tree_ids_equal_gits_with_a_valid_cache_tree() {
    let t = TestDir::new();
    tricky(&t, "sha1");
    let s = Snapshot::read_index(&index_of(&t), "", ObjectFormat::Sha1)
        .unwrap()
        .expect("not sparse");
    assert_eq!(ours(&s), git_trees(t.path(), "HEAD"));
    assert!(!s.has_conflicts());
}

#[test]
fn tree_ids_equal_gits_with_the_cache_tree_partly_invalidated() {
    let t = TestDir::new();
    tricky(&t, "sha1");
    // `git add` invalidates the changed paths' ancestors only; write-tree (on a copy of the index,
    // so ours reads the invalidated one) says what the trees are.
    t.write("a/y/z", "changed");
    t.write("deep/1/new", "new");
    t.remove("a0");
    git_in(t.path(), &["add", "-A"]);
    let s = Snapshot::read_index(&index_of(&t), "", ObjectFormat::Sha1)
        .unwrap()
        .unwrap();
    let computed = ours(&s);
    std::fs::copy(index_of(&t), t.join(".git/index-copy")).unwrap();
    let tree = microplatform_test_support::Cmd::new("git")
        .current_dir(t.path())
        .env("GIT_INDEX_FILE", t.join(".git/index-copy"))
        .args(["write-tree"])
        .run();
    tree.success();
    assert_eq!(computed, git_trees(t.path(), tree.stdout.trim()));
}

#[test]
fn tree_ids_equal_gits_without_a_cache_tree_and_from_a_subdirectory() {
    let t = TestDir::new();
    tricky(&t, "sha1");
    // ls-files output (the fallback) has no cache-tree: everything is computed.
    let listing = git_in(t.path(), &["ls-files", "-s", "-z"]);
    let s = Snapshot::from_ls_files(listing.as_bytes(), ObjectFormat::Sha1).unwrap();
    assert_eq!(ours(&s), git_trees(t.path(), "HEAD"));
    // From a subdirectory: paths and ids relative to it.
    let s = Snapshot::read_index(&index_of(&t), "a/", ObjectFormat::Sha1)
        .unwrap()
        .unwrap();
    assert_eq!(ours(&s), git_trees(t.path(), "HEAD:a"));
    let files: Vec<String> = s
        .files()
        .map(|f| String::from_utf8(f.path.to_vec()).unwrap())
        .collect();
    assert_eq!(files, ["sub", "x", "y.z/q", "y/z"]);
}

#[test]
fn tree_ids_equal_gits_in_a_sha256_repository() {
    let t = TestDir::new();
    tricky(&t, "sha256");
    let s = Snapshot::read_index(&index_of(&t), "", ObjectFormat::Sha256)
        .unwrap()
        .unwrap();
    let trees = ours(&s);
    assert!(trees[""].len() == 64);
    assert_eq!(trees, git_trees(t.path(), "HEAD"));
}

#[test]
fn conflicts_are_reported_and_left_out() {
    let t = TestDir::new();
    tricky(&t, "sha1");
    t.git(&["checkout", "-q", "-b", "other"]);
    t.write("a/x", "other");
    t.commit_all("other");
    t.git(&["checkout", "-q", "main"]);
    t.write("a/x", "main");
    t.commit_all("main");
    let merge = microplatform_test_support::Cmd::new("git")
        .current_dir(t.path())
        .args(["merge", "-q", "other"])
        .run();
    assert_ne!(merge.code, Some(0), "the merge conflicts");
    let s = Snapshot::read_index(&index_of(&t), "", ObjectFormat::Sha1)
        .unwrap()
        .unwrap();
    assert!(s.has_conflicts());
    assert!(s.files().all(|f| f.path != b"a/x"));
}

/// monobuild reads the committed state in-process; a sparse index, staged changes, a work tree
/// from another directory and the `--uncommitted` snapshot all give git's tree-based hashes.
/// A committed original fixture with a source file and a deep library file, and its `print` JSON.
fn committed_fixture() -> (TestDir, Doc) {
    let t = TestDir::new();
    t.git_init();
    common::original_fixture(&t, "");
    t.write("app1/src/main.c", "int main;\n");
    t.write("libs/lib3/deep/x/y", "y\n");
    t.commit_all("init");
    let full: Doc = mb(&t).args(["print", "--format", "json"]).run().json();
    (t, full)
}

/// Stages a change to the deep library file.
fn stage_a_change(t: &TestDir) {
    t.write("libs/lib3/deep/x/y", "staged\n");
    t.git(&["add", "-A"]);
}

#[test]
fn committed_hashes_equal_the_print_hashes() {
    let (t, full) = committed_fixture();
    let head = committed(t.path());
    for (n, c) in &full.components {
        assert_eq!(c.hash, head.hash(n), "{n}");
    }
}

#[test]
fn a_sparse_checkout_with_a_sparse_index_hashes_like_the_full_checkout() {
    let (t, full) = committed_fixture();
    // A sparse checkout with a sparse index: the cone holds only app1, the other manifests are
    // not on disk, yet read from git.
    let sparse = TestDir::new();
    git_in(
        sparse.path(),
        &[
            "clone",
            "-q",
            "--no-checkout",
            t.path().to_str().unwrap(),
            "s",
        ],
    );
    let s = sparse.join("s");
    git_in(
        &s,
        &["sparse-checkout", "set", "--cone", "--sparse-index", "app1"],
    );
    git_in(&s, &["checkout", "-q", "main"]);
    assert!(!s.join("libs/lib3/Dependencies").exists());
    let sparse_doc = committed(&s);
    assert_eq!(sparse_doc.components.len(), full.components.len());
    for (n, c) in &full.components {
        assert_eq!(c.hash, sparse_doc.hash(n), "{n}");
        assert_eq!(c.dependencies, sparse_doc.components[n].dependencies, "{n}");
    }
}

#[test]
fn staged_changes_leave_the_committed_hashes_alone() {
    let (t, full) = committed_fixture();
    // Staged changes: the committed state is still what is hashed.
    stage_a_change(&t);
    let staged = committed(t.path());
    for (n, c) in &full.components {
        assert_eq!(c.hash, staged.hash(n), "{n}");
    }
}

/// One behaviour over two states: what `--uncommitted` hashes is what the commit then hashes.
#[test]
fn uncommitted_sees_staged_changes_and_committing_them_gives_the_same_hashes() {
    let (t, full) = committed_fixture();
    stage_a_change(&t);
    // --uncommitted sees them; committing them gives the same hashes from the index.
    let wip: Doc = mb(&t)
        .args([
            "diff",
            "--main-branch",
            "--base-commit",
            "HEAD",
            "--uncommitted",
            "--format",
            "json",
        ])
        .run()
        .json();
    assert_ne!(wip.hash("libs/lib3"), full.hash("libs/lib3"));
    assert_eq!(wip.hash("app4"), full.hash("app4"));
    t.commit_all("staged");
    let after: Doc = mb(&t)
        .args(["diff", "--main-branch", "--format", "json"])
        .run()
        .json();
    for (n, c) in &wip.components {
        assert_eq!(c.hash, after.hash(n), "{n}");
    }
}

/// A split index (`core.splitIndex`) and a linked worktree read the same as a plain index.
#[test]
fn split_index_and_linked_worktrees_give_the_same_hashes() {
    let t = TestDir::new();
    t.git_init();
    common::original_fixture(&t, "");
    t.write("app2/src/x", "x\n");
    t.commit_all("init");
    let plain = committed(t.path());
    t.git(&["config", "core.splitIndex", "true"]);
    t.git(&["update-index", "--split-index"]);
    t.write("app2/src/y", "y\n");
    t.commit_all("second");
    t.git(&["rm", "-q", "app2/src/y"]);
    t.commit_all("back");
    assert!(
        std::fs::read_dir(t.join(".git")).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("sharedindex.")),
        "the index is split"
    );
    let split = committed(t.path());
    let worktrees = TestDir::new();
    let wt = worktrees.join("wt");
    t.git(&["worktree", "add", "-q", wt.to_str().unwrap(), "HEAD"]);
    let linked = committed(&wt);
    for (n, c) in &plain.components {
        assert_eq!(c.hash, split.hash(n), "{n}");
        assert_eq!(c.hash, linked.hash(n), "{n}");
    }
}

/// In a partial clone (`--filter=blob:none`) with a sparse checkout, the manifests outside the cone
/// are not in the local object store: they come through `git cat-file`, which fetches them.
#[test]
fn partial_clones_fetch_missing_manifests_through_git() {
    let t = TestDir::new();
    t.git_init();
    common::original_fixture(&t, "");
    t.commit_all("init");
    t.git(&["config", "uploadpack.allowFilter", "true"]);
    let full = committed(t.path());
    let clones = TestDir::new();
    let origin = format!("file://{}", t.path().display());
    git_in(
        clones.path(),
        &[
            "clone",
            "-q",
            "--filter=blob:none",
            "--sparse",
            &origin,
            "p",
        ],
    );
    let p = clones.join("p");
    git_in(&p, &["sparse-checkout", "set", "--cone", "app1"]);
    // The blob of a manifest outside the cone is not local yet (listed as missing, not fetched).
    let id = git_in(&p, &["rev-parse", "HEAD:libs/lib3/Dependencies"]);
    let missing = git_in(&p, &["rev-list", "--objects", "--missing=print", "HEAD"]);
    assert!(
        missing.lines().any(|l| l == format!("?{}", id.trim())),
        "the blob is missing before the run: {missing}"
    );
    let partial = committed(&p);
    for (n, c) in &full.components {
        assert_eq!(c.hash, partial.hash(n), "{n}");
        assert_eq!(c.dependencies, partial.components[n].dependencies, "{n}");
    }
}
