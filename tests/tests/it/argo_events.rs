//! The Argo Events manifests of `scripts/argo/events/` (the CI trigger on Kubernetes): valid for Argo Events' schema (hera's models of its published `OpenAPI`, unknown fields refused), referring to `WorkflowTemplate`s and parameters that exist, and routing each GitHub event fixture to the right flow.

use std::path::{Path, PathBuf};

use microplatform_test_support::{Cmd, require};

use crate::platform::workspace_root;

fn venv_bin(name: &str) -> PathBuf {
    let venv = std::env::var("MICROPLATFORM_VENV").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/microplatform/venv"),
        PathBuf::from,
    );
    let bin = venv.join("bin").join(name);
    assert!(
        bin.exists(),
        "no {name} in the validator venv {} (scripts/test.sh creates it)",
        venv.display()
    );
    bin
}

fn workflow_templates(root: &Path) -> Vec<PathBuf> {
    let mut templates: Vec<PathBuf> = std::fs::read_dir(root.join("scripts/argo"))
        .expect("scripts/argo")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    templates.sort();
    templates
}

#[test]
fn event_source_and_sensors_pass_schema_references_and_routing() {
    require("python3", "python3");
    let root = workspace_root();
    let mut cmd = Cmd::new(venv_bin("python"))
        .arg(root.join("tests/argo_events_validate.py"))
        .arg("--templates");
    for t in workflow_templates(&root) {
        cmd = cmd.arg(t);
    }
    cmd.arg("--fixtures")
        .arg(root.join("tests/fixtures/github"))
        .arg(root.join("scripts/argo/events/eventsource.yaml"))
        .arg(root.join("scripts/argo/events/sensors.yaml"))
        .run()
        .success()
        .stdout_contains("ok: 2 file(s), 7 event(s)");
}

#[test]
fn sensor_rbac_passes_kubernetes_validate_strict() {
    let root = workspace_root();
    Cmd::new(venv_bin("kubernetes-validate"))
        .arg("--strict")
        .arg(root.join("scripts/argo/events/rbac.yaml"))
        .run()
        .success();
}

#[test]
fn the_validator_refuses_an_unknown_field_and_a_misrouted_event() {
    require("python3", "python3");
    let root = workspace_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let sensors = std::fs::read_to_string(root.join("scripts/argo/events/sensors.yaml"))
        .expect("sensors.yaml");
    // A typo'd field the schema does not know, and a filter that lets tags through.
    let broken = sensors
        .replacen(
            "serviceAccountName: microplatform-sensor",
            "serviceAccount: microplatform-sensor",
            1,
        )
        .replacen("\"^refs/heads/.\"", "\"^refs/\"", 1);
    assert_ne!(broken, sensors, "the mutations must apply");
    let path = dir.path().join("sensors.yaml");
    std::fs::write(&path, broken).expect("write");
    let mut cmd = Cmd::new(venv_bin("python"))
        .arg(root.join("tests/argo_events_validate.py"))
        .arg("--templates");
    for t in workflow_templates(&root) {
        cmd = cmd.arg(t);
    }
    cmd.arg("--fixtures")
        .arg(root.join("tests/fixtures/github"))
        .arg(root.join("scripts/argo/events/eventsource.yaml"))
        .arg(&path)
        .run()
        .failure()
        .stderr_contains("serviceAccount: not in the schema")
        .stderr_contains("push-tag.json: triggers");
}
