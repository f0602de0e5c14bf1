//! `digest-resolve` end to end: the real binary against a real `docker-registry` (anonymous, Basic, Bearer), a proxy that strips `Docker-Content-Digest`, and a registry that is down.

use std::collections::BTreeMap;

use base64::Engine as _;
use microplatform_common::io::sha256_digest;
use microplatform_test_support::registry::{DOCKER_MANIFEST, OCI_MANIFEST, Registry, RegistryAuth};
use microplatform_test_support::token::{HttpResponse, TinyServer, TokenServer};
use microplatform_test_support::{Cmd, Output, TestDir, free_port};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    schema_version: u32,
    platform: Option<String>,
    images: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    file: String,
    document: usize,
    path: String,
    line: usize,
    original: String,
    reference: Option<String>,
    resolved: String,
    digest: Option<String>,
    changed: bool,
    source: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lock {
    schema_version: u32,
    platform: Option<String>,
    images: BTreeMap<String, String>,
}

/// The sha256 of the manifest bytes the registry serves for repo:tag.
fn served_digest(reg: &Registry, repo: &str, tag: &str) -> String {
    let (status, _, body) = reg.get_manifest(repo, tag);
    assert_eq!(status, 200, "{repo}:{tag} not served");
    sha256_digest(&body)
}

/// A command with an empty docker config (no credentials from the host).
fn tool(dir: &TestDir) -> Cmd {
    let cfg = dir.join(".docker-empty");
    std::fs::create_dir_all(&cfg).unwrap();
    dir.cmd("digest-resolve")
        .env("DOCKER_CONFIG", &cfg)
        .env_remove("REGISTRY_AUTH_FILE")
}

fn docker_config(dir: &TestDir, addr: &str, user: &str, pass: &str) -> std::path::PathBuf {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    dir.write(
        "dockercfg/config.json",
        format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#),
    );
    dir.join("dockercfg")
}

/// A local registry with an OCI image, a Docker image, a two-platform index and a `latest` tag, and
/// a multi-document YAML naming them with comments and quoting to preserve.
struct Pushed {
    reg: Registry,
    a: String,
    per: Vec<(String, String)>,
    oci: String,
    docker: String,
    multi: String,
    latest: String,
    input: String,
    dir: TestDir,
}

fn pushed() -> Pushed {
    let reg = Registry::start();
    reg.push_image("team/oci", "1.0", OCI_MANIFEST, "a");
    reg.push_image("team/docker", "2.0", DOCKER_MANIFEST, "b");
    let (_, per) = reg.push_index(
        "team/multi",
        "3.0",
        "c",
        &[("linux", "amd64"), ("linux", "arm64")],
    );
    reg.push_image("team/latest", "latest", OCI_MANIFEST, "d");
    let oci = served_digest(&reg, "team/oci", "1.0");
    let docker = served_digest(&reg, "team/docker", "2.0");
    let multi = served_digest(&reg, "team/multi", "3.0");
    let latest = served_digest(&reg, "team/latest", "latest");
    let a = reg.addr.clone();
    let input = format!(
        "# leading comment\napiVersion: apps/v1\nkind: Deployment   # trailing\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: init\n          image: '{a}/team/docker:2.0'  # quoted single\n      containers:\n        - name: app\n          image: {a}/team/oci:1.0\n        - name: multi\n          image: \"{a}/team/multi:3.0\"\n---\n# second\napiVersion: v1\nkind: ConfigMap\ndata:\n  image: {a}/team/oci:1.0\n---\nservices:\n  web:\n    image: {a}/team/latest\n"
    );
    Pushed {
        reg,
        a,
        per,
        oci,
        docker,
        multi,
        latest,
        input,
        dir: TestDir::new(),
    }
}

impl Pushed {
    /// The input with every image location pinned and nothing else changed.
    fn expected(&self) -> String {
        let Self {
            a,
            oci,
            docker,
            multi,
            latest,
            ..
        } = self;
        self.input
            .replace(
                &format!("'{a}/team/docker:2.0'"),
                &format!("'{a}/team/docker:2.0@{docker}'"),
            )
            .replace(
                &format!("image: {a}/team/oci:1.0\n        - name: multi"),
                &format!("image: {a}/team/oci:1.0@{oci}\n        - name: multi"),
            )
            .replace(
                &format!("\"{a}/team/multi:3.0\""),
                &format!("\"{a}/team/multi:3.0@{multi}\""),
            )
            .replace(
                &format!("image: {a}/team/latest\n"),
                &format!("image: {a}/team/latest:latest@{latest}\n"),
            )
    }

    /// A pod running `image` under `a`.
    fn pod(&self, image: &str) -> String {
        format!(
            "kind: Pod\nspec: {{containers: [{{image: {}/{image}}}]}}\n",
            self.a
        )
    }
}

#[test]
fn pins_oci_docker_and_index_preserving_every_other_byte() {
    let p = pushed();
    let a = &p.a;
    let out = tool(&p.dir).stdin(p.input.clone()).run();
    out.success();
    assert_eq!(out.stdout, p.expected());
    // The ConfigMap's `image` key is not an image location.
    assert!(
        out.stdout
            .contains(&format!("  image: {a}/team/oci:1.0\n---"))
    );
}

#[test]
fn pinning_pinned_input_gives_the_same_bytes() {
    let p = pushed();
    // Idempotent: a second run gives the same bytes.
    let expected = p.expected();
    let again = tool(&p.dir).stdin(expected.clone()).run();
    again.success().stdout_eq(&expected);
}

#[test]
fn platform_picks_the_platform_manifest_out_of_an_index() {
    let p = pushed();
    let (a, per) = (&p.a, &p.per);
    // --platform picks the platform manifest out of the index.
    let multi_only = p.pod("team/multi:3.0");
    let arm = tool(&p.dir)
        .args(["--platform", "linux/arm64"])
        .stdin(multi_only.clone())
        .run();
    arm.success();
    assert!(
        arm.stdout
            .contains(&format!("{a}/team/multi:3.0@{}", per[1].1)),
        "{}",
        arm.stdout
    );
    let amd = tool(&p.dir)
        .args(["--platform", "linux/amd64"])
        .stdin(multi_only)
        .run();
    amd.success();
    assert!(
        amd.stdout
            .contains(&format!("{a}/team/multi:3.0@{}", per[0].1)),
        "{}",
        amd.stdout
    );
    assert_ne!(per[0].1, per[1].1);
    assert_eq!(per[1].1, served_digest(&p.reg, "team/multi", &per[1].1));
}

#[test]
fn platform_pins_a_single_platform_image_of_that_platform_to_its_own_manifest() {
    let p = pushed();
    // A single-platform image of the right platform pins its own manifest.
    tool(&p.dir)
        .args(["--platform", "linux/amd64"])
        .stdin(p.pod("team/oci:1.0"))
        .run()
        .success()
        .stdout_contains(&format!("team/oci:1.0@{}", p.oci));
}

#[test]
fn platform_does_not_match_a_single_platform_image_of_another_platform() {
    let p = pushed();
    // A single-platform image of another platform does not match.
    tool(&p.dir)
        .args(["--platform", "linux/s390x"])
        .stdin(p.pod("team/oci:1.0"))
        .run()
        .code(4)
        .stderr_contains("platform linux/s390x")
        .stdout_empty();
}

#[test]
fn drop_tag_writes_name_at_digest() {
    let p = pushed();
    let Pushed {
        a, docker, latest, ..
    } = &p;
    // --drop-tag writes name@digest.
    let dropped = tool(&p.dir).arg("--drop-tag").stdin(p.input.clone()).run();
    dropped.success();
    assert!(
        dropped
            .stdout
            .contains(&format!("'{a}/team/docker@{docker}'"))
    );
    assert!(
        dropped
            .stdout
            .contains(&format!("image: {a}/team/latest@{latest}\n"))
    );
}

/// A workflow template with two pinnable images and a parameter, resolved against a local
/// registry with `--report report.json --lock-output lock.json`: the online run.
struct Locked {
    reg: Registry,
    a: String,
    d: String,
    input: String,
    online: String,
    dir: TestDir,
}

fn locked() -> Locked {
    let reg = Registry::start();
    reg.push_image("svc/api", "v1", OCI_MANIFEST, "api");
    let d = served_digest(&reg, "svc/api", "v1");
    let a = reg.addr.clone();
    let dir = TestDir::new();
    let input = format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n  - name: a\n    container: {{image: {a}/svc/api:v1}}\n  - name: b\n    script: {{image: \"{{{{inputs.parameters.img}}}}\", source: echo}}\n  - name: c\n    containerSet:\n      containers:\n      - image: {a}/svc/api:v1\n"
    );
    dir.write("wf.yaml", &input);
    let out = tool(&dir)
        .args([
            "--report",
            "report.json",
            "--lock-output",
            "lock.json",
            "wf.yaml",
        ])
        .run();
    out.success();
    Locked {
        reg,
        a,
        d,
        input,
        online: out.stdout,
        dir,
    }
}

#[test]
fn report_names_file_document_path_line_digest_and_source_of_every_image() {
    let Locked { a, d, dir, .. } = locked();
    let report: Report = serde_json::from_str(&dir.read("report.json")).unwrap();
    assert_eq!(report.schema_version, 1);
    assert_eq!(report.platform, None);
    assert_eq!(report.images.len(), 3);
    let e = &report.images[0];
    assert_eq!(
        (e.file.as_str(), e.document, e.path.as_str(), e.line),
        ("wf.yaml", 0, "spec.templates[0].container.image", 6)
    );
    assert_eq!(e.original, format!("{a}/svc/api:v1"));
    assert_eq!(
        e.reference.as_deref(),
        Some(format!("{a}/svc/api:v1").as_str())
    );
    assert_eq!(e.resolved, format!("{a}/svc/api:v1@{d}"));
    assert_eq!(e.digest.as_deref(), Some(d.as_str()));
    assert!(e.changed);
    assert_eq!(e.source, "registry");
    assert_eq!(report.images[1].source, "skipped");
    assert!(!report.images[1].changed);
    assert_eq!(
        report.images[2].path,
        "spec.templates[2].containerSet.containers[0].image"
    );
}

#[test]
fn lock_output_maps_each_reference_to_its_digest() {
    let Locked { a, d, dir, .. } = locked();
    let lock: Lock = serde_json::from_str(&dir.read("lock.json")).unwrap();
    assert_eq!(lock.schema_version, 1);
    assert_eq!(lock.platform, None);
    assert_eq!(
        lock.images,
        BTreeMap::from([(format!("{a}/svc/api:v1"), d)])
    );
}

#[test]
fn check_exits_1_with_the_difference_on_stderr_and_writes_nothing() {
    // Bound whole: the registry must outlive the run.
    let l = locked();
    let (input, dir) = (&l.input, &l.dir);
    // --check: exit 1 with the difference on stderr, nothing written.
    tool(dir)
        .args(["--check", "wf.yaml"])
        .run()
        .code(1)
        .stdout_empty()
        .stderr_contains("spec.templates[0].container.image");
    assert_eq!(&dir.read("wf.yaml"), input);
}

#[test]
fn lock_resolves_offline_to_the_same_bytes_as_online_and_reports_the_lock_as_source() {
    let Locked {
        reg, online, dir, ..
    } = locked();
    // Offline from the lock: same bytes as online, with the registry gone.
    drop(reg);
    let offline = tool(&dir).args(["--lock", "lock.json", "wf.yaml"]).run();
    offline.success().stdout_eq(&online);
    let rep = tool(&dir)
        .args(["--lock", "lock.json", "--report", "-", "wf.yaml"])
        .run();
    rep.success();
    assert!(
        rep.stderr.contains("\"source\": \"lock\""),
        "{}",
        rep.stderr
    );
}

#[test]
fn lock_without_the_image_is_one_line_with_exit_code_4() {
    let Locked { reg, a, dir, .. } = locked();
    drop(reg);
    // An image missing from the lock.
    tool(&dir)
        .args(["--lock", "lock.json"])
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {a}/svc/other:v1}}]}}\n"
        ))
        .run()
        .code(4)
        .stderr_one_line()
        .stderr_contains("is not in the lock");
}

/// One behaviour over two runs: the in-place rewrite is what `--check` then finds clean.
#[test]
fn lock_in_place_writes_the_online_bytes_and_then_check_is_clean() {
    let Locked {
        reg, online, dir, ..
    } = locked();
    drop(reg);
    // In place, then --check is clean.
    tool(&dir)
        .args(["--lock", "lock.json", "-i", "wf.yaml", "."])
        .run()
        .success()
        .stdout_empty();
    assert_eq!(dir.read("wf.yaml"), online);
    tool(&dir)
        .args(["--lock", "lock.json", "--check", "wf.yaml"])
        .run()
        .success();
}

/// A run over `good.yaml` (resolvable) and `sub/bad.yaml` (a missing tag in its document 1 and a
/// missing repository), with what the files held before it.
struct FailingRun {
    _reg: Registry,
    dir: TestDir,
    good: String,
    bad: String,
    out: Output,
}

fn failing_run() -> FailingRun {
    let reg = Registry::start();
    reg.push_image("ok/app", "v1", OCI_MANIFEST, "ok");
    let a = &reg.addr;
    let dir = TestDir::new();
    let good = format!("kind: Pod\nspec:\n  containers:\n  - image: {a}/ok/app:v1\n");
    dir.write("good.yaml", &good);
    let bad = format!(
        "kind: Pod\nspec:\n  containers:\n  - image: {a}/ok/app:v1\n---\nkind: Job\napiVersion: batch/v1\nspec:\n  template:\n    spec:\n      containers:\n      - image: {a}/ok/app:missing\n      - image: {a}/no/such-repo:v1\n"
    );
    dir.write("sub/bad.yaml", &bad);
    let out = tool(&dir).args(["-i", "good.yaml", "sub"]).run();
    FailingRun {
        _reg: reg,
        dir,
        good,
        bad,
        out,
    }
}

impl FailingRun {
    /// The run's stderr lines, after checking it exited 4 with nothing on stdout and one line per
    /// failing image.
    fn failure_lines(&self) -> Vec<&str> {
        self.out.code(4).stdout_empty();
        let lines: Vec<&str> = self.out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "{}", self.out.stderr);
        lines
    }
}

#[test]
fn a_missing_tag_is_reported_with_its_document_path_and_registry_error() {
    let run = failing_run();
    let lines = run.failure_lines();
    assert!(
        lines[0].contains("document 1")
            && lines[0].contains("spec.template.spec.containers[0].image"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("MANIFEST_UNKNOWN"), "{}", lines[0]);
}

#[test]
fn a_missing_repository_is_reported_with_its_path_and_registry_error() {
    let run = failing_run();
    let lines = run.failure_lines();
    assert!(
        lines[1].contains("spec.template.spec.containers[1].image"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("NAME_UNKNOWN") && lines[1].contains("repository"),
        "{}",
        lines[1]
    );
}

#[test]
fn a_failing_image_writes_nothing_not_even_the_good_files() {
    // All or nothing: the good file is untouched too.
    let run = failing_run();
    run.out.code(4);
    assert_eq!(run.dir.read("good.yaml"), run.good);
    assert_eq!(run.dir.read("sub/bad.yaml"), run.bad);
    assert_eq!(
        std::fs::read_dir(run.dir.path()).unwrap().count(),
        3,
        "no temp files left"
    );
}

#[test]
fn invalid_references_exit_3_with_one_line_each_naming_document_and_path() {
    let dir = TestDir::new();
    let out = tool(&dir)
        .stdin("kind: Pod\nspec:\n  containers:\n  - image: Bad/Name:x\n  - image: 'nginx:'\n")
        .run();
    out.code(3).stdout_empty();
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("-: document 0: line 4: spec.containers[0].image"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("must be lowercase"), "{}", out.stderr);
}

#[test]
fn malformed_yaml_names_the_document_and_line() {
    let dir = TestDir::new();
    tool(&dir)
        .stdin("a: 1\n---\nkind: Pod\nspec: {containers: [\n")
        .run()
        .code(3)
        .stderr_one_line()
        .stderr_contains("-: document 1: line");
}

#[test]
fn malformed_json_names_the_line() {
    let dir = TestDir::new();
    tool(&dir)
        .stdin("{\"kind\": \"Pod\",\n \"spec\": nope}\n")
        .run()
        .code(3)
        .stderr_one_line()
        .stderr_contains("line 2");
}

#[test]
fn json_input_keeps_its_formatting() {
    let reg = Registry::start();
    reg.push_image("j/app", "v1", DOCKER_MANIFEST, "j");
    let d = served_digest(&reg, "j/app", "v1");
    let a = &reg.addr;
    let input = format!(
        "{{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n    {{\"apiVersion\": \"apps/v1\", \"kind\": \"DaemonSet\", \"spec\": {{\"template\": {{\"spec\": {{\"containers\": [{{\"name\": \"x\", \"image\": \"{a}/j/app:v1\"}}]}}}}}}}}\n  ]\n}}\n"
    );
    let dir = TestDir::new();
    tool(&dir)
        .stdin(input.clone())
        .run()
        .success()
        .stdout_eq(&input.replace(&format!("{a}/j/app:v1"), &format!("{a}/j/app:v1@{d}")));
}

#[test]
fn image_path_rules_and_verify_pinned() {
    let reg = Registry::start();
    reg.push_image("c/r", "v1", OCI_MANIFEST, "c");
    let d = served_digest(&reg, "c/r", "v1");
    let a = &reg.addr;
    let dir = TestDir::new();
    let input =
        format!("apiVersion: example.com/v1\nkind: App\nspec:\n  workers:\n  - img: {a}/c/r:v1\n");
    tool(&dir)
        .stdin(input.clone())
        .run()
        .success()
        .stdout_eq(&input);
    tool(&dir)
        .args(["--image-path", "example.com/v1/App:spec.workers[*].img"])
        .stdin(input.clone())
        .run()
        .success()
        .stdout_eq(
            &input
                .replace("v1\n", &format!("v1@{d}\n"))
                .replace(&format!("example.com/v1@{d}"), "example.com/v1"),
        );
    tool(&dir)
        .args(["--image-path", "nonsense"])
        .stdin(input)
        .run()
        .code(2);

    let missing = format!("sha256:{}", "0".repeat(64));
    let pinned = format!(
        "kind: Pod\nspec: {{containers: [{{image: '{a}/c/r:v1@{d}'}}, {{image: '{a}/c/r@{missing}'}}]}}\n"
    );
    tool(&dir)
        .stdin(pinned.clone())
        .run()
        .success()
        .stdout_eq(&pinned);
    tool(&dir)
        .arg("--verify-pinned")
        .stdin(pinned)
        .run()
        .code(4)
        .stderr_one_line()
        .stderr_contains("spec.containers[1].image");
}

#[test]
fn basic_auth_from_docker_config() {
    let reg = Registry::start_with(RegistryAuth::Basic {
        user: "ci".into(),
        password: "pw".into(),
    });
    reg.push_image("private/app", "v1", OCI_MANIFEST, "p");
    let d = served_digest(&reg, "private/app", "v1");
    let dir = TestDir::new();
    let input = format!(
        "services:\n  app:\n    image: {}/private/app:v1\n",
        reg.addr
    );
    let good = docker_config(&dir, &reg.addr, "ci", "pw");
    tool(&dir)
        .env("DOCKER_CONFIG", &good)
        .stdin(input.clone())
        .run()
        .success()
        .stdout_contains(&format!("private/app:v1@{d}"));
    let bad_dir = TestDir::new();
    let bad = docker_config(&bad_dir, &reg.addr, "ci", "wrong");
    tool(&dir)
        .env("DOCKER_CONFIG", &bad)
        .stdin(input.clone())
        .run()
        .code(7)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("credentials rejected");
    tool(&dir)
        .stdin(input)
        .run()
        .code(7)
        .stderr_contains("no credentials configured");
}

#[test]
fn bearer_token_flow_with_registry_auth_file() {
    let tokens = TokenServer::start("robot", "t0ken");
    let reg = Registry::start_with(tokens.registry_auth());
    let (d1, _) = tokens.push_image(&reg, "secure/one", "v1", OCI_MANIFEST, "1");
    let (d2, _) = tokens.push_image(&reg, "secure/two", "v1", DOCKER_MANIFEST, "2");
    let dir = TestDir::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("robot:t0ken");
    let file = dir.write(
        "auth.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    );
    let input = format!(
        "kind: Pod\nspec:\n  containers:\n  - image: {a}/secure/one:v1\n  - image: {a}/secure/two:v1\n  - image: {a}/secure/one:v1\n",
        a = reg.addr
    );
    let out = tool(&dir)
        .env("REGISTRY_AUTH_FILE", &file)
        .stdin(input)
        .run();
    out.success();
    assert_eq!(
        out.stdout.matches(&format!("secure/one:v1@{d1}")).count(),
        2
    );
    assert!(out.stdout.contains(&format!("secure/two:v1@{d2}")));
    // One token per scope; each unique reference resolved once.
    let mut scopes = tokens.scopes_requested();
    scopes.sort();
    assert_eq!(
        scopes,
        ["repository:secure/one:pull", "repository:secure/two:pull"]
    );
    let bad = dir.write(
        "bad.json",
        format!(
            r#"{{"auths":{{"{}":{{"username":"robot","password":"x"}}}}}}"#,
            reg.addr
        ),
    );
    tool(&dir)
        .env("REGISTRY_AUTH_FILE", &bad)
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {}/secure/one:v1}}]}}\n",
            reg.addr
        ))
        .run()
        .code(7)
        .stderr_one_line()
        .stderr_contains("/token");
}

type SeenMethods = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A proxy in front of `upstream` that forwards every request but strips `Docker-Content-Digest`
/// from the responses, and records each request's method.
fn digest_stripping_proxy(upstream: String) -> (TinyServer, SeenMethods) {
    let seen = SeenMethods::default();
    let seen2 = seen.clone();
    let proxy = TinyServer::start(move |req| {
        seen2.lock().unwrap().push(req.method.clone());
        let http = microplatform_test_support::blocking_client_builder()
            .build()
            .expect("client");
        let mut rb = http.request(
            req.method.parse().unwrap(),
            format!("{upstream}{}", req.target),
        );
        for (k, v) in &req.headers {
            if k != "host" && k != "content-length" {
                rb = rb.header(k, v);
            }
        }
        let resp = rb.body(req.body.clone()).send().unwrap();
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .filter(|(k, _)| {
                *k != "docker-content-digest" && (req.method == "HEAD" || *k != "content-length")
            })
            .filter(|(k, _)| *k != "connection" && *k != "transfer-encoding")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: resp.bytes().unwrap().to_vec(),
        }
    });
    (proxy, seen)
}

#[test]
fn a_registry_that_is_down_exits_6_naming_its_v2_url() {
    let dir = TestDir::new();
    let port = free_port();
    tool(&dir)
        .args(["--retries", "1"])
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: 127.0.0.1:{port}/x/y:1}}]}}\n"
        ))
        .run()
        .code(6)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains(&format!("http://127.0.0.1:{port}/v2/"));
}

#[test]
fn a_proxy_without_the_digest_header_still_pins_to_the_served_digest() {
    let dir = TestDir::new();
    let reg = Registry::start();
    reg.push_image("p/app", "v1", OCI_MANIFEST, "p");
    let d = served_digest(&reg, "p/app", "v1");
    let (proxy, seen) = digest_stripping_proxy(reg.url());
    let input = format!(
        "kind: Pod\nspec: {{containers: [{{image: {}/p/app:v1}}]}}\n",
        proxy.addr
    );
    let out = tool(&dir).stdin(input).run();
    out.success().stdout_contains(&format!("p/app:v1@{d}}}"));
    let methods = seen.lock().unwrap().clone();
    assert!(
        methods.contains(&"HEAD".to_string()) && methods.contains(&"GET".to_string()),
        "{methods:?}"
    );
}

#[test]
fn help_completions_and_man() {
    let dir = TestDir::new();
    tool(&dir)
        .arg("--help")
        .run()
        .success()
        .stdout_contains("Exit codes:")
        .stdout_contains("--platform");
    for args in [&["completions", "bash"][..], &["--completions", "bash"]] {
        tool(&dir)
            .args(args)
            .run()
            .success()
            .stdout_contains("digest-resolve");
    }
    for args in [&["man"][..], &["--man"]] {
        tool(&dir).args(args).run().success().stdout_contains(".TH");
    }
    // A missing input file: 4 (not found), as in every tool.
    tool(&dir)
        .arg("no-such.yaml")
        .run()
        .code(4)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("cannot read no-such.yaml");
    tool(&dir)
        .arg("-V")
        .run()
        .success()
        .stdout_contains("digest-resolve 0.");
    tool(&dir)
        .args(["--in-place"])
        .run()
        .code(2)
        .stderr_contains("--in-place");
}
