//! Generated stack files and manifests checked with the real references: the
//! compose-spec JSON Schema and docker/cli's compose v3.8 schema (with
//! `jsonschema` and `PyYAML`), `docker stack config` of the 28.x docker CLI (its
//! parser, schema and interpolation), and `kubernetes-validate --strict`.
//! The inputs are the documented example and `tests/data/stress.yaml`: a
//! 63-character service name, `$` in values, control characters.

use crate::support;

use std::path::{Path, PathBuf};

use microplatform_test_support::{Cmd, TestDir};
use support::{docs_example, kubernetes_validate, stackgen, venv};

const STRESS: &str = include_str!("../data/stress.yaml");

/// The branches rendered: a plain one, one that is not its own slug, and one
/// whose slug is longer than an alias.
const BRANCHES: [&str; 3] = [
    "main",
    "fix/JIRA-123",
    "feature/a-branch-name-long-enough-to-fill-every-alias-and-more-of-it",
];

/// `../shared/realworld` beside the checkout (`MICROPLATFORM_REALWORLD` overrides).
fn realworld() -> PathBuf {
    std::env::var_os("MICROPLATFORM_REALWORLD").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/realworld"),
        PathBuf::from,
    )
}

/// The compose-spec schema: Debian's `docker-compose` package ships one;
/// else the copy in `../shared/realworld/schemas`.
fn compose_spec_schema() -> PathBuf {
    let candidates = [
        realworld().join("schemas/compose-spec.json"),
        PathBuf::from("/usr/lib/python3/dist-packages/compose/config/compose_spec.json"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the compose-spec schema is missing: looked for {candidates:?} (set MICROPLATFORM_REALWORLD to the realworld corpus, or apt-get install docker-compose)"
            )
        })
}

/// docker/cli's compose v3.8 schema, from `../shared/realworld/schemas`.
fn v38_schema() -> PathBuf {
    let p = realworld().join("schemas/docker-cli-config_schema_v3.8.json");
    assert!(
        p.is_file(),
        "{} is missing (set MICROPLATFORM_REALWORLD to the realworld corpus)",
        p.display()
    );
    p
}

/// A docker CLI that has `docker stack config` (28.x in /usr/local/bin here;
/// Debian's 20.10 lacks it).
fn docker_with_stack_config() -> PathBuf {
    let candidates = [
        PathBuf::from("/usr/local/bin/docker"),
        PathBuf::from("/usr/bin/docker"),
    ];
    for c in &candidates {
        if c.is_file()
            && Cmd::new(c)
                .args(["stack", "config", "--help"])
                .run()
                .stdout
                .contains("Outputs the final config file")
        {
            return c.clone();
        }
    }
    panic!(
        "no docker CLI with `docker stack config` among {candidates:?}: install docker-ce-cli 25 or later"
    );
}

/// Write the compose files of `stack` for every branch; returns their paths.
fn compose_files(t: &TestDir, stack: &str, env: &str, tag: &str) -> Vec<PathBuf> {
    BRANCHES
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let name = format!("{stack}-{i}.compose.yml");
            stackgen(
                t,
                &[
                    "--stack", stack, "compose", "-e", env, "-b", b, "-t", tag, "-o", &name,
                ],
            )
            .success();
            t.join(&name)
        })
        .collect()
}

fn setup() -> TestDir {
    let t = TestDir::new();
    t.write("shop.yaml", docs_example());
    t.write("stress.yaml", STRESS);
    t
}

#[test]
fn compose_output_validates_against_the_compose_spec_and_v3_8_schemas() {
    let t = setup();
    let mut files = compose_files(&t, "shop.yaml", "dev", "v1");
    files.extend(compose_files(&t, "stress.yaml", "dev", "v1"));
    let out = Cmd::new(venv().join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/compose_validate.py"
        ))
        .arg("--schema")
        .arg(compose_spec_schema())
        .arg("--schema")
        .arg(v38_schema())
        .args(&files)
        .run();
    out.success()
        .stdout_contains(&format!("outputs={0} valid={0} invalid=0", files.len()));
}

#[test]
fn the_schemas_are_not_rubber_stamps() {
    let t = setup();
    let files = compose_files(&t, "shop.yaml", "dev", "v1");
    let broken =
        std::fs::read_to_string(&files[0])
            .unwrap()
            .replacen("    replicas: ", "    replica: ", 1);
    let f = t.write("broken.yml", broken);
    let out = Cmd::new(venv().join("bin/python"))
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/compose_validate.py"
        ))
        .arg("--schema")
        .arg(compose_spec_schema())
        .arg("--schema")
        .arg(v38_schema())
        .arg(&f)
        .run();
    out.failure().stdout_contains("invalid=1");
}

/// `docker stack config -c FILE` with `docker`, without an engine (`DOCKER_HOST` points nowhere)
/// and with a `HOME` of its own, so the deployer's environment cannot leak in.
fn docker_stack_config(docker: &Path, file: &Path) -> microplatform_test_support::Output {
    Cmd::new(docker)
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .env("HOME", "/deployer-home")
        .args(["stack", "config", "-c"])
        .arg(file)
        .run()
}

/// The stress stack's service with the 63-character name: its name and its declaration.
fn stress_long_service() -> (String, serde_json::Value) {
    let stack: serde_json::Value = serde_saphyr::from_str(STRESS).unwrap();
    stack["services"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str().len() == 63)
        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
        .unwrap()
}

/// Docker's (Go's) YAML `text` read with a YAML 1.1 reader (`PyYAML`), as Go wrote it: Go breaks
/// lines at U+2028 and U+2029 inside quoted scalars, which YAML 1.1 folds away and YAML 1.2
/// (`serde_saphyr`) keeps as text.
fn read_go_yaml(t: &TestDir, text: &str) -> serde_json::Value {
    let config = t.write("stack-config.yaml", text);
    let json = Cmd::new(venv().join("bin/python"))
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
        ])
        .arg(&config)
        .run();
    json.success();
    serde_json::from_str(&json.stdout).unwrap()
}

/// For each branch's compose file of the stress stack: `docker stack config`'s output (asserted
/// successful), and its service that is the stress stack's long one (see [`stress_long_service`]).
fn stress_stack_configs(t: &TestDir, long: &str) -> Vec<(PathBuf, String, serde_json::Value)> {
    let docker = docker_with_stack_config();
    compose_files(t, "stress.yaml", "dev", "v1")
        .into_iter()
        .map(|f| {
            let out = docker_stack_config(&docker, &f);
            out.success();
            let config = read_go_yaml(t, &out.stdout);
            let (_, svc) = config["services"]
                .as_object()
                .unwrap()
                .iter()
                .find(|(_, s)| {
                    s["networks"]["default"]["aliases"][0].as_str() == Some(long)
                        || s["environment"]["PRICE"].is_string()
                })
                .expect("the long service");
            let svc = svc.clone();
            (f, out.stdout, svc)
        })
        .collect()
}

/// `docker stack config` reads the file as `docker stack deploy` does (YAML
/// parser, v3.8 schema, interpolation): every environment value comes back exactly as the
/// stack file wrote it, `$` and control characters included. Docker's output is
/// read with `PyYAML` (YAML 1.1, like Go's writer).
#[test]
fn docker_stack_config_reads_environment_values_back_literally() {
    let t = setup();
    let (long, declared) = stress_long_service();
    for (f, _, svc) in stress_stack_configs(&t, &long) {
        for (k, v) in declared["env"].as_object().unwrap() {
            assert_eq!(
                svc["environment"][k.as_str()].as_str(),
                v.as_str(),
                "{}: env {k:?}",
                f.display()
            );
        }
    }
}

/// `docker stack config` reads the service's command back as the stack file's `args`.
#[test]
fn docker_stack_config_reads_the_command_back_literally() {
    let t = setup();
    let (long, declared) = stress_long_service();
    for (f, _, svc) in stress_stack_configs(&t, &long) {
        assert_eq!(svc["command"], declared["args"], "{}", f.display());
    }
}

/// Nothing of the environment `docker stack config` runs in (its `HOME`) reaches the config.
#[test]
fn docker_stack_config_output_holds_nothing_of_the_deployers_environment() {
    let t = setup();
    let (long, _) = stress_long_service();
    for (_, stdout, _) in stress_stack_configs(&t, &long) {
        assert!(!stdout.contains("/deployer-home"), "{stdout}");
    }
}

/// The escaping is needed: unescaped, `$5` is refused (and `${HOME}` would be replaced).
#[test]
fn docker_stack_config_refuses_an_unescaped_dollar() {
    let t = setup();
    let raw = t.write(
        "raw.yml",
        "version: \"3.8\"\nservices:\n  a:\n    image: x\n    environment:\n      P: \"$5\"\n",
    );
    docker_stack_config(&docker_with_stack_config(), &raw)
        .failure()
        .stderr_contains("invalid interpolation format for services.a.environment.P");
}

/// `PyYAML`, an independent parser, reads stackgen's YAML to the same values as
/// `serde_saphyr` (the saphyr parser): control characters survive the round trip.
#[test]
fn pyyaml_reads_the_same_values() {
    let t = setup();
    let mut files = compose_files(&t, "stress.yaml", "dev", "v1");
    let m = stackgen(
        &t,
        &[
            "--stack",
            "stress.yaml",
            "manifests",
            "-e",
            "dev",
            "-b",
            BRANCHES[2],
            "-t",
            "v1",
        ],
    );
    m.success();
    files.push(t.write("stress-manifests.yaml", &m.stdout));
    for f in &files {
        let out = Cmd::new(venv().join("bin/python"))
            .args([
                "-c",
                "import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1], encoding='utf-8')))))",
            ])
            .arg(f)
            .run();
        out.success();
        let py: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let text = std::fs::read_to_string(f).unwrap();
        let ours: Vec<serde_json::Value> = text
            .split("\n---\n")
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert_eq!(py, serde_json::Value::from(ours), "{}", f.display());
    }
    // The stress values are there, escaped, not raw.
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains(r#"DEL: "a\x7Fb""#), "{text}");
    assert!(text.contains(r#"NEL: "line\x85next""#), "{text}");
    assert!(text.contains(r#"LS: "a\u2028b\u2029c""#), "{text}");
}

#[test]
fn stress_manifests_pass_kubernetes_validate_strict() {
    let t = setup();
    let mut files = Vec::new();
    for (i, b) in BRANCHES.iter().enumerate() {
        let out = stackgen(
            &t,
            &[
                "--stack",
                "stress.yaml",
                "manifests",
                "-e",
                "dev",
                "-b",
                b,
                "-t",
                "v1",
            ],
        );
        out.success();
        files.push(t.write(format!("stress-{i}.yaml"), &out.stdout));
    }
    kubernetes_validate(&files);
}
