//! The agent's own Kubernetes manifests (`deploy-bot/deploy/*.yaml`): schema-valid (kubernetes-validate --strict, offline),
//! RBAC scoped to the managed namespaces, and the Deployment's `--namespace` flags in step with the Roles.

use std::collections::BTreeSet;
use std::path::PathBuf;

use microplatform_test_support::Cmd;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn docs() -> Vec<Value> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        out.extend(
            deploy_bot::manifests::parse_documents(&text, &f.display().to_string()).unwrap(),
        );
    }
    out
}

#[test]
fn manifests_are_schema_valid() {
    let venv = std::env::var("MICROPLATFORM_VENV").map_or_else(
        |_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/microplatform/venv"),
        PathBuf::from,
    );
    let validator = venv.join("bin/kubernetes-validate");
    assert!(
        validator.exists(),
        "{} missing: run scripts/test.sh (it creates the venv with kubernetes-validate)",
        validator.display()
    );
    for e in std::fs::read_dir(deploy_dir()).unwrap() {
        let p = e.unwrap().path();
        Cmd::new(&validator).arg("--strict").arg(&p).run().success();
    }
}

#[test]
fn rbac_is_scoped_to_the_managed_namespaces() {
    let docs = docs();
    let kinds: BTreeSet<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for k in [
        "Deployment",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
    ] {
        assert!(kinds.contains(k), "no {k}");
    }
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let args: Vec<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let managed: BTreeSet<&str> = args
        .iter()
        .filter_map(|a| a.strip_prefix("--namespace="))
        .collect();
    assert!(!managed.is_empty());
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(deploy_bot::validate::is_pinned(image), "{image}");
    let role_ns: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "Role")
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(role_ns, managed);
    let binding_ns: BTreeSet<&str> = docs
        .iter()
        .filter(|d| d["kind"] == "RoleBinding")
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(binding_ns, managed);
    // No cluster-wide write access except creating namespaces; named namespaces only otherwise.
    for cr in docs.iter().filter(|d| d["kind"] == "ClusterRole") {
        for rule in cr["rules"].as_array().unwrap() {
            let resources: Vec<&str> = rule["resources"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                resources,
                ["namespaces"],
                "cluster-wide access beyond namespaces"
            );
            let verbs: Vec<&str> = rule["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if verbs != ["create"] {
                let names: BTreeSet<&str> = rule["resourceNames"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(Value::as_str)
                    .collect();
                assert_eq!(names, managed);
            }
        }
    }
}
