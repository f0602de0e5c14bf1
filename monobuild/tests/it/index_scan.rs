//! The quick pass over git's index (`monobuild::index_scan`) against gix-index and git: the same
//! files, ids and cache-tree ids for index versions 2, 3 (intent-to-add) and 4, from a
//! subdirectory, in a SHA-256 repository; conflicts reported; a split or sparse index left to
//! gix-index.

use std::collections::BTreeMap;

use microplatform_test_support::{TestDir, git_in};
use monobuild::index_scan::{self, Scan};
use monobuild::snapshot::{Dirs, ObjectFormat, Snapshot};

/// A repository of components at several depths (a root one too), with names that sort
/// differently as files and directories, and a long path.
fn repo(format: &str) -> TestDir {
    let t = TestDir::new();
    t.git_init_object_format(format);
    let long = format!(
        "deep/{}Dependencies",
        "abcdefghijklmnopqrstuvwxyz/".repeat(12)
    );
    for p in [
        "Dependencies",
        "a/Dependencies",
        "a/src/main.rs",
        "a-b/Dependencies",
        "a.b/file",
        "libs/one/Dependencies",
        "libs/one/src/lib.rs",
        "libs/two/sub/Dependencies",
        "é/ü/Dependencies",
        long.as_str(),
        "notes/Dependencies.txt",
    ] {
        t.write(p, format!("{p}\n"));
    }
    git_in(t.path(), &["add", "-A"]);
    git_in(t.path(), &["commit", "-q", "-m", "c"]);
    t
}

fn is_manifest(p: &[u8]) -> bool {
    p == b"Dependencies" || p.ends_with(b"/Dependencies")
}

fn scan(t: &TestDir, prefix: &str, format: ObjectFormat) -> Option<Scan> {
    index_scan::scan_file(
        &t.join(".git/index"),
        prefix.as_bytes(),
        format,
        &is_manifest,
        Some(&|p: &[u8]| p.ends_with(b".rs")),
        None,
    )
}

/// Manifests (path, id), `.rs` files (path, mode, id), the working directory's tree id and its
/// manifests' directories' tree ids.
type Listing = (
    Vec<(String, String)>,
    Vec<(String, u32, String)>,
    Option<String>,
    BTreeMap<String, String>,
);

/// What gix-index and the cache-tree say: the manifests with their ids, the `.rs` files with mode
/// and id, the working directory's tree id and its manifests' directories' ids.
fn expected(t: &TestDir, prefix: &str, format: ObjectFormat) -> Listing {
    let s = Snapshot::read_index(&t.join(".git/index"), prefix, format)
        .unwrap()
        .unwrap();
    let text = |p: &[u8]| String::from_utf8(p.to_vec()).unwrap();
    let wanted: Vec<(String, String)> = s
        .files()
        .filter(|f| is_manifest(f.path))
        .map(|f| (text(f.path), f.id.to_string()))
        .collect();
    let global = s
        .files()
        .filter(|f| f.path.ends_with(b".rs"))
        .map(|f| (text(f.path), f.mode, f.id.to_string()))
        .collect();
    let (root, all) = s.tree_ids(Dirs::All);
    let trees = wanted
        .iter()
        .map(|(p, _)| index_scan::parent_dir(p))
        .map(|d| (d.to_string(), all[d].to_string()))
        .collect();
    (wanted, global, root.map(|r| r.to_string()), trees)
}

fn found(s: &Scan) -> Listing {
    (
        s.wanted
            .iter()
            .map(|(p, id)| (p.clone(), id.to_string()))
            .collect(),
        s.global
            .iter()
            .map(|(p, m, id)| (p.clone(), *m, id.to_string()))
            .collect(),
        s.root.map(|r| r.to_string()),
        s.trees
            .iter()
            .map(|(d, id)| (d.clone(), id.to_string()))
            .collect(),
    )
}

#[test]
fn a_version_2_index_gives_what_gix_index_and_the_cache_tree_give() {
    let t = repo("sha1");
    let s = scan(&t, "", ObjectFormat::Sha1).expect("quick pass");
    let want = expected(&t, "", ObjectFormat::Sha1);
    assert_eq!(found(&s), want);
    assert_eq!(want.0.len(), 7, "{:?}", want.0);
    assert_eq!(want.1.len(), 2);
    assert_eq!(
        want.2.as_deref(),
        Some(git_in(t.path(), &["rev-parse", "HEAD^{tree}"]).trim())
    );
    assert!(!s.conflicts);
}

#[test]
fn from_a_subdirectory_paths_and_ids_are_relative_to_it() {
    let t = repo("sha1");
    let s = scan(&t, "libs/", ObjectFormat::Sha1).expect("quick pass");
    assert_eq!(found(&s), expected(&t, "libs/", ObjectFormat::Sha1));
    let paths: Vec<&str> = s.wanted.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(paths, ["one/Dependencies", "two/sub/Dependencies"]);
    assert_eq!(
        s.root.map(|r| r.to_string()).as_deref(),
        Some(git_in(t.path(), &["rev-parse", "HEAD:libs"]).trim())
    );
}

#[test]
fn version_3_with_intent_to_add_and_version_4_read_the_same() {
    let t = repo("sha1");
    // `add -N` writes an extended flag (version 3); the entry is not part of any tree.
    t.write("new/Dependencies", "x\n");
    git_in(t.path(), &["add", "-N", "new/Dependencies"]);
    let version = |t: &TestDir| std::fs::read(t.join(".git/index")).unwrap()[7];
    assert_eq!(version(&t), 3);
    let s = scan(&t, "", ObjectFormat::Sha1).expect("quick pass over version 3");
    assert!(s.wanted.iter().all(|(p, _)| p != "new/Dependencies"));
    let (wanted, global, root, trees) = found(&s);
    let want = expected(&t, "", ObjectFormat::Sha1);
    assert_eq!((wanted, global), (want.0, want.1));
    // `add -N` invalidated the top's cache-tree node (the caller reads the index with
    // gix-index then); the nodes still valid hold git's ids.
    assert_eq!(root, None);
    assert!(trees.len() >= 5, "{trees:?}");
    assert!(trees.iter().all(|(d, id)| want.3[d] == *id));
    // Back to HEAD (read-tree writes a whole cache-tree), then version 4, which compresses each
    // path against the previous one.
    git_in(t.path(), &["read-tree", "HEAD"]);
    git_in(t.path(), &["update-index", "--index-version", "4"]);
    assert_eq!(version(&t), 4);
    let s = scan(&t, "", ObjectFormat::Sha1).expect("quick pass over version 4");
    assert_eq!(found(&s), expected(&t, "", ObjectFormat::Sha1));
    assert_eq!(s.wanted.len(), 7);
}

#[test]
fn a_sha256_index_gives_the_same() {
    let t = repo("sha256");
    let s = scan(&t, "", ObjectFormat::Sha256).expect("quick pass");
    assert_eq!(found(&s), expected(&t, "", ObjectFormat::Sha256));
    assert_eq!(s.root.unwrap().to_string().len(), 64);
}

#[test]
fn a_staged_change_leaves_its_directories_out_of_the_cache_tree() {
    let t = repo("sha1");
    t.write("libs/one/src/lib.rs", "changed\n");
    git_in(t.path(), &["add", "libs/one/src/lib.rs"]);
    let s = scan(&t, "", ObjectFormat::Sha1).expect("quick pass");
    // Invalidated: the file's ancestors, so the root and libs/one; the caller reads the index
    // with gix-index then.
    assert_eq!(s.root, None);
    assert!(!s.trees.contains_key("libs/one"));
    assert!(s.trees.contains_key("libs/two/sub"));
    assert!(s.trees.contains_key("a"));
}

#[test]
fn conflicts_are_reported_and_left_out() {
    let t = repo("sha1");
    t.git(&["checkout", "-q", "-b", "other"]);
    t.write("a/Dependencies", "other\n");
    t.commit_all("other");
    t.git(&["checkout", "-q", "main"]);
    t.write("a/Dependencies", "main\n");
    t.commit_all("main");
    let merge = microplatform_test_support::Cmd::new("git")
        .current_dir(t.path())
        .args(["merge", "-q", "other"])
        .run();
    assert_ne!(merge.code, Some(0), "the merge conflicts");
    let s = scan(&t, "", ObjectFormat::Sha1).expect("quick pass");
    assert!(s.conflicts);
    assert!(s.wanted.iter().all(|(p, _)| p != "a/Dependencies"));
}

#[test]
fn split_and_sparse_indexes_are_left_to_gix_index() {
    let t = repo("sha1");
    git_in(t.path(), &["update-index", "--split-index"]);
    assert!(scan(&t, "", ObjectFormat::Sha1).is_none(), "split index");
    git_in(t.path(), &["update-index", "--no-split-index"]);
    assert!(scan(&t, "", ObjectFormat::Sha1).is_some());
    git_in(
        t.path(),
        &["sparse-checkout", "set", "--cone", "--sparse-index", "a"],
    );
    assert!(scan(&t, "", ObjectFormat::Sha1).is_none(), "sparse index");
}

#[test]
fn a_truncated_or_foreign_file_is_refused_not_misread() {
    let t = repo("sha1");
    let index = std::fs::read(t.join(".git/index")).unwrap();
    let any = |_: &[u8]| true;
    for cut in [0, 11, 12, 70, index.len() / 2, index.len() - 21] {
        assert!(
            index_scan::scan(&index[..cut], b"", ObjectFormat::Sha1, &any, None).is_none(),
            "cut at {cut}"
        );
    }
    let mut foreign = index.clone();
    foreign[..4].copy_from_slice(b"DIRX");
    assert!(index_scan::scan(&foreign, b"", ObjectFormat::Sha1, &any, None).is_none());
    assert!(index_scan::scan(&index, b"", ObjectFormat::Sha1, &any, None).is_some());
}

/// `monobuild diff` of the committed state in `dir`, stdout.
fn analysis(dir: &std::path::Path) -> String {
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
    out.stdout
}

/// A sparse index ends with an extension the quick pass leaves to gix-index after it has handed
/// out hundreds of manifests to read: those are dropped and the analysis is the same.
#[test]
fn a_quick_pass_given_up_after_its_first_chunks_gives_the_same_analysis() {
    let t = TestDir::new();
    t.git_init();
    for i in 0..600 {
        let dep = if i > 0 {
            format!("a/c{:03}\n", i - 1)
        } else {
            String::new()
        };
        t.write(format!("a/c{i:03}/Dependencies"), dep);
    }
    t.write("b/x/Dependencies", "a/c599\n");
    git_in(t.path(), &["add", "-A"]);
    git_in(t.path(), &["commit", "-q", "-m", "c"]);
    let full = analysis(t.path());
    git_in(
        t.path(),
        &["sparse-checkout", "set", "--cone", "--sparse-index", "a"],
    );
    assert!(scan(&t, "", ObjectFormat::Sha1).is_none(), "sparse index");
    assert_eq!(analysis(t.path()), full);
    assert!(full.contains("\"b/x\""), "{full}");
    assert!(full.contains("\"a/c599\""));
}
