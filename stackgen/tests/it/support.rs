//! Helpers shared by stackgen's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use microplatform_test_support::{Cmd, Output, TestDir};

/// The example stack file of `docs/stackgen.md` (its first YAML block), so the docs stay true.
pub fn docs_example() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/stackgen.md"))
        .expect("docs/stackgen.md");
    let start = doc.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
    let end = start + doc[start..].find("```").expect("block end");
    doc[start..end].to_string()
}

/// A test dir holding `stack.yaml`.
pub fn with_stack(text: &str) -> TestDir {
    let t = TestDir::new();
    t.write("stack.yaml", text);
    t
}

/// `stackgen ARGS` in `t`.
pub fn stackgen(t: &TestDir, args: &[&str]) -> Output {
    t.cmd("stackgen").args(args).run()
}

/// The validator venv (made by scripts/test.sh): `MICROPLATFORM_VENV`, else ~/.cache/microplatform/venv.
pub fn venv() -> PathBuf {
    let dir = std::env::var_os("MICROPLATFORM_VENV").map_or_else(
        || PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/microplatform/venv"),
        PathBuf::from,
    );
    assert!(
        dir.join("bin/kubernetes-validate").exists(),
        "validator venv missing at {}: run scripts/test.sh, or python3 -m venv {0} && {0}/bin/pip install kubernetes-validate jsonschema pyyaml hera-workflows",
        dir.display()
    );
    dir
}

/// Run `kubernetes-validate --strict` on files; asserts success.
pub fn kubernetes_validate(files: &[PathBuf]) {
    let out = Cmd::new(venv().join("bin/kubernetes-validate"))
        .arg("--strict")
        .args(files)
        .run();
    out.success();
    assert!(
        !out.stdout.contains("ERROR") && !out.stderr.contains("ERROR"),
        "{out:?}"
    );
    let passed = out.stdout.matches(" passed for resource ").count()
        + out.stderr.matches(" passed for resource ").count();
    assert!(passed > 0, "kubernetes-validate checked nothing: {out:?}");
}

/// Run the Argo validator (hera's models of Argo's schema plus DAG rules) on files.
pub fn argo_validate(files: &[PathBuf]) -> Output {
    Cmd::new(venv().join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/argo_validate.py"
        ))
        .args(files)
        .run()
}

/// A 64-hex hash from a seed.
pub fn hash(seed: &str) -> String {
    microplatform_common::io::sha256_digest(seed.as_bytes())["sha256:".len()..].to_string()
}

/// monobuild's JSON for jobs `(name, needs)`; every job is a component.
pub fn monobuild_json(jobs: &[(&str, &[&str])]) -> String {
    let mut components = serde_json::Map::new();
    for (name, needs) in jobs {
        let deps: Vec<_> = needs
            .iter()
            .map(|n| serde_json::json!({"name": n, "strong": true}))
            .collect();
        components.insert(
            (*name).to_string(),
            serde_json::json!({"changed": true, "affected": true, "hash": hash(name), "dependencies": deps, "reasons": ["changed"]}),
        );
    }
    let job_list: Vec<_> = jobs
        .iter()
        .map(|(n, needs)| serde_json::json!({"name": n, "needs": needs}))
        .collect();
    serde_json::json!({
        "schema_version": 1,
        "base": {"ref": "main", "commit": "0".repeat(40)},
        "head": {"commit": "1".repeat(40)},
        "changed_files": [{"path": "x", "status": "modified", "old_path": null, "components": []}],
        "components": components,
        "schedule": {"stages": [jobs.iter().map(|j| j.0).collect::<Vec<_>>()], "jobs": job_list},
    })
    .to_string()
}
