//! Bad input: each failure is one line on stderr naming the file/line or ref, a distinct exit code, and nothing on stdout.

use crate::common;

use common::{mb, repo};
use microplatform_test_support::TestDir;

#[track_caller]
fn fails(out: &microplatform_test_support::Output, code: i32, needle: &str) {
    out.code(code)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains(needle);
}

#[test]
fn strong_cycle_prints_the_path_with_files_and_lines() {
    let t = TestDir::new();
    t.write("a/Dependencies", "x\n!b\n");
    t.write("b/Dependencies", "# c\n!c\n");
    t.write("c/Dependencies", "!a\n");
    t.write("x/Dependencies", "");
    for args in [
        &["print"][..],
        &["diff", "-"],
        &["print", "--format", "json"],
    ] {
        let out = mb(&t).args(args).stdin("a/1\n").run();
        fails(
            &out,
            8,
            "strong dependency cycle: a -> b (a/Dependencies:2) -> c (b/Dependencies:2) -> a (c/Dependencies:1)",
        );
    }
    // A strong self-dependency is a cycle too.
    let t = TestDir::new();
    t.write("a/Dependencies", "!a\n");
    fails(&mb(&t).arg("print").run(), 8, "a -> a (a/Dependencies:1)");
}

#[test]
fn unknown_dependency_names_file_and_line_unless_allowed() {
    let t = TestDir::new();
    t.write("a/Dependencies", "b\n\n!libs/nope\n");
    t.write("b/Dependencies", "");
    fails(
        &mb(&t).arg("print").run(),
        4,
        "a/Dependencies:3: unknown dependency 'libs/nope' of 'a'",
    );
    let out = mb(&t)
        .args(["print", "--allow-unknown", "--dependencies"])
        .run();
    out.success()
        .stdout_eq("a: b\nb: \n")
        .stderr_contains("warning: a/Dependencies:3: unknown dependency");
}

#[test]
fn malformed_manifest_lines_name_file_and_line() {
    let t = TestDir::new();
    t.write("a/Dependencies", "b\n!\n");
    t.write("b/Dependencies", "");
    fails(
        &mb(&t).arg("print").run(),
        3,
        "a/Dependencies:2: '!': no component name",
    );
    t.write("a/Dependencies", "../b\n");
    fails(&mb(&t).arg("print").run(), 3, "a/Dependencies:1:");
    t.write("a/Dependencies", b"b\n\xff\xfe\n");
    fails(
        &mb(&t).arg("print").run(),
        3,
        "a/Dependencies:2: not valid UTF-8",
    );
}

#[test]
fn malformed_full_manifest() {
    let t = TestDir::new();
    t.write("m.txt", "a: b\nb:\nthis line has no colon\n");
    fails(
        &mb(&t).args(["print", "-f", "m.txt"]).run(),
        3,
        "m.txt:3: expected 'component: dependency",
    );
    t.write("m.txt", "a: b\na: c\n");
    fails(
        &mb(&t).args(["print", "-f", "m.txt"]).run(),
        3,
        "m.txt:2: component 'a' is defined twice",
    );
    // A missing one is not found (4), as in every tool.
    fails(
        &mb(&t).args(["print", "-f", "missing.txt"]).run(),
        4,
        "cannot read missing.txt",
    );
}

#[test]
fn unreadable_manifest() {
    let t = TestDir::new();
    // A manifest that is a symlink to a directory cannot be read.
    t.write("b/Dependencies", "");
    std::fs::create_dir_all(t.join("a")).unwrap();
    std::os::unix::fs::symlink("../b", t.join("a/Dependencies")).unwrap();
    fails(&mb(&t).arg("print").run(), 3, "cannot read a/Dependencies");
}

#[test]
fn not_a_git_repository() {
    let t = TestDir::new();
    t.write("a/Dependencies", "");
    fails(&mb(&t).arg("diff").run(), 5, "not a git repository");
    fails(
        &mb(&t).args(["diff", "--main-branch"]).run(),
        5,
        "not a git repository",
    );
    // print and stdin mode do not need git.
    mb(&t).arg("print").run().success().stdout_eq("a: \n");
    mb(&t)
        .args(["diff", "-"])
        .stdin("a/x\n")
        .run()
        .success()
        .stdout_eq("a: \n");
}

#[test]
fn missing_base_branch_and_commit() {
    let t = repo();
    fails(
        &mb(&t).args(["diff", "--base-branch", "develop"]).run(),
        4,
        "base branch 'develop' does not exist",
    );
    fails(
        &mb(&t)
            .args(["diff", "--main-branch", "--base-commit", "v9.9"])
            .run(),
        4,
        "base commit 'v9.9' does not exist",
    );
    fails(
        &mb(&t)
            .args(["diff", "--main-branch", "--base-commit", "HEAD~5"])
            .run(),
        4,
        "HEAD~5",
    );
}

#[test]
fn no_default_base() {
    let t = TestDir::new();
    t.git(&["init", "-q", "-b", "trunk"]);
    t.git(&["config", "user.email", "t@e"]);
    t.git(&["config", "user.name", "T"]);
    t.write("a/Dependencies", "");
    t.commit_all("one");
    fails(&mb(&t).arg("diff").run(), 4, "no --base-branch given");
}

#[test]
fn unknown_scope_and_why_component() {
    let t = repo();
    fails(
        &mb(&t).args(["print", "--scope", "nope"]).run(),
        4,
        "unknown component 'nope'",
    );
    fails(
        &mb(&t).args(["why", "nope", "-"]).stdin("").run(),
        4,
        "unknown component 'nope'",
    );
}

/// The original fixture's repository with `.monobuild.toml` holding `toml`.
fn repo_with_config(toml: &str) -> TestDir {
    let t = repo();
    t.write(".monobuild.toml", toml);
    t
}

#[test]
fn an_unknown_config_key_names_the_config_file_and_line() {
    let t = repo_with_config("global_inputs = [\"Cargo.lock\"]\nbase_brunch = \"main\"\n");
    fails(&mb(&t).arg("print").run(), 3, ".monobuild.toml:2:");
}

#[test]
fn an_invalid_glob_in_the_config_file_is_a_config_error() {
    let t = repo_with_config("global_inputs = [\"a/{b\"]\n");
    fails(&mb(&t).arg("print").run(), 3, "invalid glob");
}

#[test]
fn a_bad_glob_flag_is_a_usage_error() {
    let t = repo();
    let out = mb(&t).args(["print", "--dependency-files", "a/{b"]).run();
    out.code(2)
        .stdout_empty()
        .stderr_contains("--dependency-files");
}

#[test]
fn repository_without_commits() {
    let t = TestDir::new();
    t.git_init();
    t.write("a/Dependencies", "");
    fails(&mb(&t).arg("diff").run(), 5, "no commits yet");
}

#[test]
fn usage_errors_exit_2() {
    let t = repo();
    mb(&t).args(["diff", "extra"]).run().code(2).stdout_empty();
    mb(&t)
        .args(["print", "--format", "yaml"])
        .run()
        .code(2)
        .stdout_empty();
}

#[test]
fn a_missing_input_file_is_not_found_as_in_every_tool() {
    let t = TestDir::new();
    t.write("a/Dependencies", "");
    fails(
        &mb(&t).args(["print", "-f", "no-such-manifest"]).run(),
        4,
        "cannot read no-such-manifest",
    );
    fails(
        &mb(&t).args(["print", "--config", "no-such.toml"]).run(),
        4,
        "no-such.toml",
    );
}
