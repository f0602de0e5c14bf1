//! The Argo `WorkflowTemplate`s of `scripts/argo/` (branch flow, main-branch flow): valid for Argo's schema (hera's models of it, via stackgen's validator script) and its DAG rules, and every step runs the toolkit's own image.

use std::path::PathBuf;

use microplatform_test_support::{Cmd, require};

use crate::platform::workspace_root;

fn venv_python() -> PathBuf {
    let venv = std::env::var("MICROPLATFORM_VENV").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/microplatform/venv"),
        PathBuf::from,
    );
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no validator venv at {} (scripts/test.sh creates it)",
        venv.display()
    );
    python
}

/// The Argo templates of `scripts/argo/`, by file name.
const TEMPLATES: [&str; 3] = ["branch-flow.yaml", "main-flow.yaml", "teardown-flow.yaml"];

/// Every template file's name and its parsed document.
fn documents() -> Vec<(&'static str, serde_json::Value)> {
    TEMPLATES
        .iter()
        .map(|name| {
            let path = workspace_root().join("scripts/argo").join(name);
            let text = std::fs::read_to_string(&path).expect("template");
            (*name, serde_saphyr::from_str(&text).expect("yaml"))
        })
        .collect()
}

/// The `spec.templates` of a document.
fn templates(doc: &serde_json::Value) -> &[serde_json::Value] {
    doc["spec"]["templates"].as_array().expect("templates")
}

/// The names of a document's templates, in order.
fn template_names(doc: &serde_json::Value) -> Vec<&str> {
    templates(doc)
        .iter()
        .map(|t| t["name"].as_str().expect("template name"))
        .collect()
}

/// The task lists of a document's DAG templates.
fn dags(doc: &serde_json::Value) -> impl Iterator<Item = &Vec<serde_json::Value>> {
    templates(doc)
        .iter()
        .filter_map(|t| t["dag"]["tasks"].as_array())
}

/// The task names a `depends` expression mentions (`a && (b.Succeeded || c)` gives `a`, `b`, `c`;
/// empty words left in).
fn depended_on(depends: &str) -> impl Iterator<Item = &str> {
    depends
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
        .map(|word| word.split('.').next().unwrap_or(""))
}

#[test]
fn argo_templates_pass_argo_schema_and_dag_validation() {
    require("python3", "python3");
    let root = workspace_root();
    Cmd::new(venv_python())
        .arg(root.join("stackgen/tests/argo_validate.py"))
        .arg(root.join("scripts/argo/branch-flow.yaml"))
        .arg(root.join("scripts/argo/main-flow.yaml"))
        .arg(root.join("scripts/argo/teardown-flow.yaml"))
        .run()
        .success()
        .stdout_contains("ok: 3 file(s)");
}

#[test]
fn every_file_is_an_argo_workflow_template_with_a_dns_sized_name() {
    for (name, doc) in documents() {
        assert_eq!(
            doc["apiVersion"].as_str(),
            Some("argoproj.io/v1alpha1"),
            "{name}"
        );
        assert_eq!(doc["kind"].as_str(), Some("WorkflowTemplate"), "{name}");
        let meta_name = doc["metadata"]["name"].as_str().expect("name");
        assert!(meta_name.len() <= 63, "{name}: name too long");
    }
}

#[test]
fn every_entrypoint_is_a_template_of_its_file() {
    for (name, doc) in documents() {
        let entry = doc["spec"]["entrypoint"].as_str().expect("entrypoint");
        assert!(
            template_names(&doc).contains(&entry),
            "{name}: entrypoint {entry} undefined"
        );
    }
}

#[test]
fn template_names_are_unique_within_a_file() {
    for (name, doc) in documents() {
        let names = template_names(&doc);
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "{name}: duplicate template names"
        );
    }
}

#[test]
fn template_names_are_alphanumeric_with_dashes() {
    for (name, doc) in documents() {
        for n in template_names(&doc) {
            assert!(
                n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && n.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}: template name {n}"
            );
        }
    }
}

#[test]
fn dag_tasks_run_defined_templates() {
    for (name, doc) in documents() {
        let names = template_names(&doc);
        for dag in dags(&doc) {
            assert!(!dag.is_empty(), "{name}: empty DAG");
            for d in dag {
                assert!(
                    names.contains(&d["template"].as_str().expect("task template")),
                    "{name}: task {:?} uses an undefined template",
                    d["name"]
                );
            }
        }
    }
}

#[test]
fn dag_tasks_depend_only_on_tasks_of_their_dag() {
    for (name, doc) in documents() {
        for dag in dags(&doc) {
            let tasks: Vec<&str> = dag
                .iter()
                .map(|d| d["name"].as_str().expect("task"))
                .collect();
            for dep in dag.iter().filter_map(|d| d["depends"].as_str()) {
                for task in depended_on(dep) {
                    assert!(
                        task.is_empty()
                            || tasks.contains(&task)
                            || ["Succeeded", "Failed"].contains(&task),
                        "{name}: depends on undefined task {task}"
                    );
                }
            }
        }
    }
}

#[test]
fn every_container_step_runs_the_toolkit_image() {
    for (name, doc) in documents() {
        for t in templates(&doc) {
            if let Some(image) = t["container"]["image"].as_str() {
                assert_eq!(
                    image,
                    "{{workflow.parameters.toolkit-image}}",
                    "{name}: template {} does not run the toolkit image",
                    t["name"].as_str().expect("name")
                );
            }
        }
    }
}
