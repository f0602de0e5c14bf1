//! Compatibility with the original monobuild: the same commands print exactly the same lines
//! (the cases of its test/e2e.sh), full-manifest files, and stdin mode.

use crate::common;

use common::{mb, original_fixture};
use microplatform_test_support::TestDir;

fn fixture() -> TestDir {
    let t = TestDir::new();
    original_fixture(&t, "");
    t
}

#[test]
fn print_outputs_match_the_original() {
    let t = fixture();
    let cases: &[(&[&str], &str)] = &[
        (
            &["print"],
            "app1: \napp2: \napp3: \napp4: \nlibs/lib1: \nlibs/lib2: \nlibs/lib3: \nstack1: app1, app2, app3\n",
        ),
        (&["print", "--top-level"], "app4: \nstack1: \n"),
        (
            &["print", "--dependencies"],
            "app1: libs/lib1, libs/lib2\napp2: libs/lib2, libs/lib3\napp3: libs/lib3\napp4: \nlibs/lib1: libs/lib3\nlibs/lib2: libs/lib3\nlibs/lib3: \nstack1: app1, app2, app3\n",
        ),
        (
            &["print", "--dependencies", "--top-level"],
            "app4: \nstack1: \n",
        ),
        (
            &["print", "--dependencies", "--scope", "app1"],
            "app1: libs/lib1, libs/lib2\nlibs/lib1: libs/lib3\nlibs/lib2: libs/lib3\nlibs/lib3: \n",
        ),
        (
            &["print", "--full"],
            "app1: libs/lib1, libs/lib2\napp2: libs/lib2, libs/lib3\napp3: libs/lib3\napp4: \nlibs/lib1: libs/lib3\nlibs/lib2: libs/lib3\nlibs/lib3: \nstack1: !app1, !app2, !app3\n",
        ),
        // Persistent flags before the subcommand work too, as in the original.
        (&["--top-level", "print"], "app4: \nstack1: \n"),
    ];
    for (args, expected) in cases {
        mb(&t).args(*args).run().success().stdout_eq(expected);
    }
}

/// Each `(args, expected)` of `monobuild` on the fixture, with `changes` on stdin, prints `expected`.
fn assert_diff_from_stdin(changes: &str, cases: &[(&[&str], &str)]) {
    let t = fixture();
    for (args, expected) in cases {
        mb(&t)
            .args(*args)
            .stdin(changes)
            .run()
            .success()
            .stdout_eq(expected);
    }
}

/// A changed library file and a changed application file.
const CHANGES: &str = "libs/lib2/change.txt\napp4/app.bin\n";

#[test]
fn diff_from_stdin_lists_the_affected_components_like_the_original() {
    assert_diff_from_stdin(
        CHANGES,
        &[
            (
                &["diff", "-"],
                "app1: \napp2: \napp4: \nlibs/lib2: \nstack1: app1, app2\n",
            ),
            (&["diff", "--scope", "app2", "-"], "app2: \nlibs/lib2: \n"),
        ],
    );
}

#[test]
fn diff_from_stdin_rebuild_strong_matches_the_original() {
    assert_diff_from_stdin(
        CHANGES,
        &[
            (
                &["diff", "--rebuild-strong", "-"],
                "app1: \napp2: \napp3: \napp4: \nlibs/lib2: \nstack1: app1, app2, app3\n",
            ),
            (
                &["diff", "--rebuild-strong", "--scope", "app2", "-"],
                "app2: \nlibs/lib2: \n",
            ),
        ],
    );
}

#[test]
fn diff_from_stdin_top_level_matches_the_original() {
    assert_diff_from_stdin(
        CHANGES,
        &[(&["diff", "--top-level", "-"], "app4: \nstack1: \n")],
    );
}

#[test]
fn diff_from_stdin_dependencies_match_the_original() {
    assert_diff_from_stdin(
        CHANGES,
        &[
            (
                &["diff", "--dependencies", "-"],
                "app1: libs/lib2\napp2: libs/lib2\napp4: \nlibs/lib2: \nstack1: app1, app2\n",
            ),
            (
                &["diff", "--dependencies", "--scope", "app2", "-"],
                "app2: libs/lib2\nlibs/lib2: \n",
            ),
            (
                &["diff", "--dependencies", "--rebuild-strong", "-"],
                "app1: libs/lib2\napp2: libs/lib2\napp3: \napp4: \nlibs/lib2: \nstack1: app1, app2, app3\n",
            ),
            (
                &[
                    "diff",
                    "--dependencies",
                    "--rebuild-strong",
                    "--scope",
                    "app2",
                    "-",
                ],
                "app2: libs/lib2\nlibs/lib2: \n",
            ),
            (
                &["diff", "--dependencies", "--top-level", "-"],
                "app4: \nstack1: \n",
            ),
            (
                &[
                    "diff",
                    "--dependencies",
                    "--top-level",
                    "--scope",
                    "app4",
                    "-",
                ],
                "app4: \n",
            ),
        ],
    );
}

#[test]
fn diff_from_stdin_full_marks_match_the_original() {
    assert_diff_from_stdin(
        CHANGES,
        &[(
            &["diff", "--full", "-"],
            "app1: libs/lib2\napp2: libs/lib2\napp4: \nlibs/lib2: \nstack1: !app1, !app2\n",
        )],
    );
}

#[test]
fn diff_from_stdin_of_no_changes_prints_nothing() {
    // Nothing changed: nothing printed.
    assert_diff_from_stdin("", &[(&["diff", "-"], "")]);
}

#[test]
fn diff_from_stdin_of_files_outside_components_marks_nothing() {
    // Files outside components mark nothing.
    assert_diff_from_stdin("README.md\ndocs/x.md\n", &[(&["diff", "-"], "")]);
}

#[test]
fn diff_from_stdin_matches_a_component_only_at_a_directory_boundary() {
    // A prefix that is not a directory boundary does not match (app1 vs app10).
    assert_diff_from_stdin("app10/x\n", &[(&["diff", "-"], "")]);
}

#[test]
fn stdin_paths_may_be_nul_separated_and_crlf() {
    let t = fixture();
    mb(&t)
        .args(["diff", "-z", "-"])
        .stdin("app4/a b.txt\0libs/lib3/ü\0")
        .run()
        .success()
        .stdout_eq("app1: \napp2: \napp3: \napp4: \nlibs/lib1: \nlibs/lib2: \nlibs/lib3: \nstack1: app1, app2, app3\n");
    mb(&t)
        .args(["diff", "-"])
        .stdin("./app4/x\r\n")
        .run()
        .success()
        .stdout_eq("app4: \n");
}

#[test]
fn full_manifest_file_round_trips_and_replaces_the_manifests() {
    let t = fixture();
    let full = mb(&t)
        .args(["print", "--full"])
        .run()
        .success()
        .stdout
        .clone();
    let other = TestDir::new();
    other.write(
        "deps.monobuild",
        format!("# generated by monobuild print --full\n\n{full}"),
    );
    mb(&other)
        .args(["print", "-f", "deps.monobuild", "--full"])
        .run()
        .success()
        .stdout_eq(&full);
    let deps = mb(&t)
        .args(["print", "--dependencies"])
        .run()
        .success()
        .stdout
        .clone();
    mb(&other)
        .args(["-f", "deps.monobuild", "print", "--dependencies"])
        .run()
        .success()
        .stdout_eq(&deps);
    mb(&other)
        .args(["diff", "-f", "deps.monobuild", "-"])
        .stdin("libs/lib2/change.txt\napp4/app.bin\n")
        .run()
        .success()
        .stdout_eq("app1: \napp2: \napp4: \nlibs/lib2: \nstack1: app1, app2\n");
}

#[test]
fn manifest_syntax_details() {
    let t = TestDir::new();
    t.write("a/Dependencies", "# comment\n\n  !  b/  \nc//\n");
    t.write("b/Dependencies", "");
    t.write("c/Dependencies", "\n");
    mb(&t)
        .args(["print", "--full"])
        .run()
        .success()
        .stdout_eq("a: !b, c\nb: \nc: \n");
}

#[test]
fn custom_dependency_file_glob() {
    let t = TestDir::new();
    t.write("svc/a/deps.txt", "!lib/b\n");
    t.write("lib/b/deps.txt", "");
    t.write("lib/c/Dependencies", "");
    mb(&t)
        .args(["print", "--dependency-files", "**/deps.txt"])
        .run()
        .success()
        .stdout_eq("lib/b: \nsvc/a: lib/b\n");
    // The same inside git (manifests come from the listing), also with a non-basename glob.
    t.git_init();
    t.write("x/deps.txt.bak", "!nope\n");
    t.commit_all("init");
    mb(&t)
        .args([
            "diff",
            "--main-branch",
            "--base-commit",
            "HEAD",
            "--dependency-files",
            "**/deps.txt",
            "--uncommitted",
        ])
        .run()
        .success()
        .stdout_eq("");
    t.write("svc/a/code", "1");
    t.commit_all("two");
    mb(&t)
        .args(["diff", "--main-branch", "--dependency-files", "**/deps.txt"])
        .run()
        .success()
        .stdout_eq("svc/a: \n");
    mb(&t)
        .args([
            "diff",
            "--main-branch",
            "--dependency-files",
            "svc/*/deps.txt",
            "--allow-unknown",
        ])
        .run()
        .success()
        .stdout_eq("svc/a: \n")
        .stderr_contains("unknown dependency 'lib/b'");
}

#[test]
fn nested_components_are_both_marked() {
    let t = TestDir::new();
    t.write("platform/Dependencies", "");
    t.write("platform/db/Dependencies", "");
    t.write("app/Dependencies", "platform/db\n");
    mb(&t)
        .args(["diff", "--dependencies", "-"])
        .stdin("platform/db/schema.sql\n")
        .run()
        .success()
        .stdout_eq("app: platform/db\nplatform: \nplatform/db: \n");
    mb(&t)
        .args(["diff", "-"])
        .stdin("platform/README\n")
        .run()
        .success()
        .stdout_eq("platform: \n");
}

#[test]
fn weak_cycles_are_allowed() {
    let t = TestDir::new();
    t.write("a/Dependencies", "b\n");
    t.write("b/Dependencies", "a\n!c\n");
    t.write("c/Dependencies", "");
    mb(&t)
        .arg("print")
        .run()
        .success()
        .stdout_eq("a: \nb: c\nc: \n");
    mb(&t)
        .args(["diff", "-"])
        .stdin("a/x\n")
        .run()
        .success()
        .stdout_eq("a: \nb: \n");
}
