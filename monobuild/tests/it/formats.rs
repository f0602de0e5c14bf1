//! Output formats beyond the original: the JSON contract (schedule stages and jobs), DOT and Mermaid highlighting, `why`, completions, man page and help.

use crate::common;

use common::{Doc, Why, mb, original_fixture, repo};
use microplatform_test_support::TestDir;

/// `monobuild print --format json` of the original fixture in a git repository.
fn print_json() -> Doc {
    let t = repo();
    let out = mb(&t).args(["print", "--format", "json"]).run();
    out.success();
    out.json()
}

#[test]
fn print_json_is_schema_1_in_print_mode_without_base_head_or_changed_files() {
    let doc = print_json();
    assert_eq!(doc.schema_version, 1);
    assert_eq!(doc.mode, "print");
    assert!(doc.base.is_none() && doc.head.is_none() && doc.changed_files.is_empty());
}

#[test]
fn print_json_selects_every_component_without_change_or_reason() {
    let doc = print_json();
    assert_eq!(doc.components.len(), 8);
    assert!(
        doc.components
            .values()
            .all(|c| c.selected && !c.changed && !c.affected && c.reasons.is_empty())
    );
}

#[test]
fn print_json_stages_are_the_applications_and_libraries_then_the_stack() {
    let doc = print_json();
    assert_eq!(
        doc.schedule.stages,
        vec![
            vec![
                "app1",
                "app2",
                "app3",
                "app4",
                "libs/lib1",
                "libs/lib2",
                "libs/lib3"
            ],
            vec!["stack1"]
        ]
    );
}

#[test]
fn print_json_stack_job_needs_its_strong_dependencies_in_the_second_stage() {
    let doc = print_json();
    let stack = doc
        .schedule
        .jobs
        .iter()
        .find(|j| j.name == "stack1")
        .unwrap();
    assert_eq!(stack.needs, ["app1", "app2", "app3"]);
    assert_eq!(stack.stage, 1);
    assert_eq!(stack.hash, doc.hash("stack1"));
}

#[test]
fn print_json_component_names_its_manifest_dependencies_and_dependents() {
    let doc = print_json();
    let app1 = &doc.components["app1"];
    assert_eq!(app1.manifest, "app1/Dependencies");
    assert_eq!(
        app1.dependencies,
        vec![
            common::Dep {
                name: "libs/lib1".into(),
                strong: false
            },
            common::Dep {
                name: "libs/lib2".into(),
                strong: false
            }
        ]
    );
    assert_eq!(app1.dependents, ["stack1"]);
}

/// `monobuild diff --format json <extra> -` of the original fixture with a changed library file
/// and a changed application file on stdin.
fn diff_json(extra: &[&str]) -> Doc {
    let t = TestDir::new();
    original_fixture(&t, "");
    let out = mb(&t)
        .args(["diff", "--format", "json"])
        .args(extra)
        .arg("-")
        .stdin("libs/lib2/change.txt\napp4/app.bin\n")
        .run();
    out.success();
    out.json()
}

#[test]
fn diff_json_names_the_changed_files_components_and_jobs() {
    let doc = diff_json(&[]);
    assert_eq!(doc.mode, "stdin");
    assert_eq!(doc.changed(), ["app4", "libs/lib2"]);
    assert_eq!(doc.jobs(), ["app1", "app2", "app4", "libs/lib2", "stack1"]);
    assert_eq!(doc.changed_files[0].status, "modified");
    assert_eq!(doc.changed_files[0].components, ["libs/lib2"]);
}

#[test]
fn diff_json_schedule_stages_and_needs_are_the_selection() {
    let doc = diff_json(&[]);
    assert_eq!(doc.schedule.stages[1], ["stack1"]);
    let stack = doc
        .schedule
        .jobs
        .iter()
        .find(|j| j.name == "stack1")
        .unwrap();
    assert_eq!(stack.needs, ["app1", "app2"]);
    assert!(!doc.components["app3"].selected);
}

#[test]
fn diff_json_rebuild_strong_selects_the_strong_dependency_with_a_reason() {
    // rebuild-strong adds app3 with a reason
    let doc = diff_json(&["--rebuild-strong"]);
    assert!(doc.components["app3"].selected && !doc.components["app3"].affected);
    assert_eq!(
        doc.components["app3"].reasons,
        ["strong dependency of stack1, rebuilt (--rebuild-strong)"]
    );
    assert_eq!(
        doc.schedule
            .jobs
            .iter()
            .find(|j| j.name == "stack1")
            .unwrap()
            .needs,
        ["app1", "app2", "app3"]
    );
}

#[test]
fn diff_json_top_level_narrows_the_schedule_but_not_the_component_flags() {
    // top-level and scope narrow the schedule but not the component flags
    let doc = diff_json(&["--top-level"]);
    assert_eq!(doc.jobs(), ["app4", "stack1"]);
    assert!(doc.schedule.jobs.iter().all(|j| j.needs.is_empty()));
    assert_eq!(doc.schedule.stages, vec![vec!["app4", "stack1"]]);
    assert!(doc.components["app1"].affected);
}

#[test]
fn diff_json_schedule_has_one_stage_per_level_of_a_deep_strong_chain() {
    // a deep strong chain gives one stage per level
    let t = TestDir::new();
    t.write("a/Dependencies", "!b\n");
    t.write("b/Dependencies", "!c\nd\n");
    t.write("c/Dependencies", "");
    t.write("d/Dependencies", "");
    let out = mb(&t)
        .args(["diff", "--format", "json", "-"])
        .stdin("c/x\nd/y\n")
        .run();
    let doc: Doc = out.json();
    assert_eq!(
        doc.schedule.stages,
        vec![vec!["c", "d"], vec!["b"], vec!["a"]]
    );
}

/// The changed file fed on stdin to the DOT and Mermaid diffs.
const LIB2_CHANGE: &str = "libs/lib2/change.txt\n";

/// The stdout of a successful `monobuild <args>` on the original fixture, with `stdin` fed if given.
fn graph_output(args: &[&str], stdin: Option<&str>) -> String {
    let t = TestDir::new();
    original_fixture(&t, "");
    let mut cmd = mb(&t).args(args);
    if let Some(stdin) = stdin {
        cmd = cmd.stdin(stdin);
    }
    cmd.run().success().stdout.clone()
}

#[test]
fn diff_dot_is_a_left_to_right_schedule_digraph() {
    let dot = graph_output(&["diff", "--dot", "-"], Some(LIB2_CHANGE));
    assert!(
        dot.starts_with("digraph schedule {\n  rankdir=\"LR\"\n  node [shape=box]\n"),
        "{dot}"
    );
    assert!(dot.contains("  \"app1\" -> \"stack1\"\n"));
}

#[test]
fn diff_dot_fills_changed_and_affected_components() {
    let dot = graph_output(&["diff", "--dot", "-"], Some(LIB2_CHANGE));
    assert!(dot.contains("  \"libs/lib2\" [style=filled, fillcolor=\"#f8b4b4\"]\n"));
    assert!(dot.contains("  \"app1\" [style=filled, fillcolor=\"#fde68a\"]\n"));
}

#[test]
fn diff_format_dot_is_the_same_as_the_dot_flag() {
    let dot = graph_output(&["diff", "--dot", "-"], Some(LIB2_CHANGE));
    let same = graph_output(&["diff", "--format", "dot", "-"], Some(LIB2_CHANGE));
    assert_eq!(dot, same);
}

#[test]
fn print_dependencies_dot_draws_weak_edges_dashed_without_highlighting() {
    let deps = graph_output(&["print", "--dependencies", "--dot"], None);
    assert!(deps.starts_with("digraph dependencies {\n"));
    assert!(deps.contains("  \"app1\" -> \"libs/lib1\" [style=dashed]\n"));
    assert!(deps.contains("  \"stack1\" -> \"app1\"\n"));
    assert!(!deps.contains("fillcolor"));
}

#[test]
fn diff_mermaid_dependencies_draws_weak_edges_dotted_and_classes_changed_and_affected() {
    let mm = graph_output(
        &["diff", "--format", "mermaid", "--dependencies", "-"],
        Some(LIB2_CHANGE),
    );
    assert!(mm.starts_with("graph LR\n"));
    assert!(mm.contains("-.->"));
    assert!(mm.contains("classDef changed"));
    assert!(mm.contains(" changed\n") && mm.contains(" affected\n"));
}

#[test]
fn why_explains_the_path_from_a_changed_file() {
    let t = repo();
    t.git(&["checkout", "-q", "-b", "f"]);
    t.write("libs/lib3/core.rs", "x");
    t.commit_all("lib3");
    let out = mb(&t).args(["why", "stack1"]).run();
    out.success().stdout_eq(
        // The shortest path (stack1 -> app1 -> libs/lib1 -> libs/lib3 is longer).
        "stack1 is affected:\n  stack1 depends on app2 (strong, stack1/Dependencies:3)\n  app2 depends on libs/lib3 (weak, app2/Dependencies:2)\n  libs/lib3 is changed: libs/lib3/core.rs was added\n",
    );
    mb(&t)
        .args(["why", "app4"])
        .run()
        .success()
        .stdout_eq("app4 is not affected\n");
    mb(&t)
        .args(["why", "libs/lib3/"])
        .run()
        .success()
        .stdout_eq("libs/lib3 is changed: libs/lib3/core.rs was added\n");
    let out = mb(&t).args(["why", "app3", "--format", "json"]).run();
    out.success();
    let w: Why = out.json();
    assert_eq!(w.schema_version, 1);
    assert!(w.affected && !w.changed);
    assert_eq!(w.path.len(), 2);
    assert_eq!(w.path[0].depends_on.as_deref(), Some("libs/lib3"));
    assert_eq!(
        w.path[0].declared_at.as_deref(),
        Some("app3/Dependencies:1")
    );
    assert_eq!(w.path[1].component, "libs/lib3");
    assert_eq!(w.cause.as_deref(), Some("libs/lib3/core.rs was added"));
    // stdin mode works for why too
    mb(&t)
        .args(["why", "app2", "-"])
        .stdin("libs/lib2/x\n")
        .run()
        .success()
        .stdout_contains("app2 depends on libs/lib2");
}

#[test]
fn completions_man_and_help() {
    let t = TestDir::new();
    mb(&t)
        .args(["completions", "bash"])
        .run()
        .success()
        .stdout_contains("monobuild");
    mb(&t)
        .args(["completions", "zsh"])
        .run()
        .success()
        .stdout_contains("#compdef monobuild");
    mb(&t)
        .arg("man")
        .run()
        .success()
        .stdout_contains(".TH monobuild");
    let help = mb(&t).arg("--help").run();
    help.success()
        .stdout_contains("Exit codes:")
        .stdout_contains("8   invalid graph: a cycle of strong dependencies");
    mb(&t)
        .args(["diff", "--help"])
        .run()
        .success()
        .stdout_contains("--base-commit")
        .stdout_contains("--rebuild-strong");
    mb(&t)
        .arg("--version")
        .run()
        .success()
        .stdout_contains("monobuild");
}
