//! The Argo `WorkflowTemplate`s of `scripts/argo/` (branch flow, main-branch flow): valid for Argo's schema (hera's models of it, via stackgen's validator script) and its DAG rules, and every step runs the toolkit's own image.

use std::path::{Path, PathBuf};

use microplatform_test_support::{Cmd, require};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

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
fn argo_templates_are_well_formed_workflow_templates() {
    for name in ["branch-flow.yaml", "main-flow.yaml", "teardown-flow.yaml"] {
        let path = workspace_root().join("scripts/argo").join(name);
        let text = std::fs::read_to_string(&path).expect("template");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
        assert_eq!(
            doc["apiVersion"].as_str(),
            Some("argoproj.io/v1alpha1"),
            "{name}"
        );
        assert_eq!(doc["kind"].as_str(), Some("WorkflowTemplate"), "{name}");
        let meta_name = doc["metadata"]["name"].as_str().expect("name");
        assert!(meta_name.len() <= 63, "{name}: name too long");
        let spec = &doc["spec"];
        let entry = spec["entrypoint"].as_str().expect("entrypoint");
        let templates = spec["templates"].as_array().expect("templates");
        let names: Vec<&str> = templates
            .iter()
            .map(|t| t["name"].as_str().expect("template name"))
            .collect();
        assert!(
            names.contains(&entry),
            "{name}: entrypoint {entry} undefined"
        );
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "{name}: duplicate template names"
        );
        for t in templates {
            let n = t["name"].as_str().expect("name");
            assert!(
                n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    && n.starts_with(|c: char| c.is_ascii_alphanumeric()),
                "{name}: template name {n}"
            );
            if let Some(dag) = t["dag"]["tasks"].as_array() {
                assert!(!dag.is_empty(), "{name}: empty DAG");
                let tasks: Vec<&str> = dag
                    .iter()
                    .map(|d| d["name"].as_str().expect("task"))
                    .collect();
                for d in dag {
                    assert!(
                        names.contains(&d["template"].as_str().expect("task template")),
                        "{name}: task {:?} uses an undefined template",
                        d["name"]
                    );
                    if let Some(dep) = d["depends"].as_str() {
                        for word in dep
                            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                        {
                            let task = word.split('.').next().unwrap_or("");
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
            if let Some(image) = t["container"]["image"].as_str() {
                assert_eq!(
                    image, "{{workflow.parameters.toolkit-image}}",
                    "{name}: template {n} does not run the toolkit image"
                );
            }
        }
    }
}
