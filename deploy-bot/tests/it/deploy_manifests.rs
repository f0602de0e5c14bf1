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

fn str_list(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect()
}

fn deployment(docs: &[Value]) -> &Value {
    docs.iter().find(|d| d["kind"] == "Deployment").unwrap()
}

/// The namespaces named by the Deployment's `--namespace=` flags.
fn managed_namespaces(docs: &[Value]) -> BTreeSet<&str> {
    str_list(&deployment(docs)["spec"]["template"]["spec"]["containers"][0]["args"])
        .into_iter()
        .filter_map(|a| a.strip_prefix("--namespace="))
        .collect()
}

fn namespaces_of<'a>(docs: &'a [Value], kind: &str) -> BTreeSet<&'a str> {
    docs.iter()
        .filter(|d| d["kind"] == kind)
        .map(|d| d["metadata"]["namespace"].as_str().unwrap())
        .collect()
}

#[test]
fn manifests_include_every_kind_the_agent_needs() {
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
}

#[test]
fn deployment_manages_named_namespaces_with_a_pinned_image() {
    let docs = docs();
    assert!(!managed_namespaces(&docs).is_empty());
    let image = deployment(&docs)["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap();
    assert!(deploy_bot::validate::is_pinned(image), "{image}");
}

#[test]
fn roles_and_role_bindings_cover_exactly_the_managed_namespaces() {
    let docs = docs();
    let managed = managed_namespaces(&docs);
    assert_eq!(namespaces_of(&docs, "Role"), managed);
    assert_eq!(namespaces_of(&docs, "RoleBinding"), managed);
}

/// No cluster-wide write access except creating namespaces; named namespaces only otherwise.
#[test]
fn cluster_roles_reach_only_the_managed_namespaces() {
    let docs = docs();
    let managed = managed_namespaces(&docs);
    for cr in docs.iter().filter(|d| d["kind"] == "ClusterRole") {
        for rule in cr["rules"].as_array().unwrap() {
            assert_eq!(
                str_list(&rule["resources"]),
                ["namespaces"],
                "cluster-wide access beyond namespaces"
            );
            if str_list(&rule["verbs"]) != ["create"] {
                let names: BTreeSet<&str> = str_list(&rule["resourceNames"]).into_iter().collect();
                assert_eq!(names, managed);
            }
        }
    }
}
