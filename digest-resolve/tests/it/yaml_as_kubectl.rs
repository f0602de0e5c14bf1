//! `digest-resolve` reads YAML as kubectl and docker compose do (libyaml / go-yaml): non-ASCII block scalars, lax flow collections, block-scalar images, Argo inline templates and merge keys; offline, from `--lock`, and `--list`.

use std::collections::BTreeMap;

use microplatform_test_support::{Cmd, TestDir};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Listing {
    schema_version: u32,
    images: Vec<ListEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListEntry {
    file: String,
    document: usize,
    path: String,
    line: usize,
    image: String,
    reference: Option<String>,
    pinned: bool,
}

/// A made-up digest per image.
fn digest(n: u8) -> String {
    format!("sha256:{}", format!("{n:02x}").repeat(32))
}

/// A directory with a lock naming `refs` (fully qualified) with digests 1, 2, …
fn with_lock(refs: &[&str]) -> TestDir {
    let dir = TestDir::new();
    let images: BTreeMap<&str, String> = refs
        .iter()
        .zip(1u8..)
        .map(|(r, n)| (*r, digest(n)))
        .collect();
    dir.write(
        "lock.json",
        serde_json::json!({"schema_version": 1, "platform": null, "images": images}).to_string(),
    );
    dir
}

fn tool(dir: &TestDir) -> Cmd {
    dir.cmd("digest-resolve")
        .env("DOCKER_CONFIG", dir.join(".no-docker-config"))
        .env_remove("REGISTRY_AUTH_FILE")
}

/// Pin `input` from the lock; the output must be `expected`.
fn pins(dir: &TestDir, input: &str, expected: &str) {
    tool(dir)
        .args(["--lock", "lock.json"])
        .stdin(input)
        .run()
        .success()
        .stdout_eq(expected);
}

fn list(dir: &TestDir, input: &str) -> Vec<(usize, String, String)> {
    let out = tool(dir).arg("--list").stdin(input).run();
    out.success();
    let l: Listing = out.json();
    assert_eq!(l.schema_version, 1);
    l.images
        .into_iter()
        .map(|e| (e.document, e.path, e.image))
        .collect()
}

#[test]
fn non_ascii_text_in_a_block_scalar_keeps_later_images_splicable() {
    let dir = with_lock(&["docker.io/library/nginx:1.25", "quay.io/a/b:v2"]);
    let (d1, d2) = (digest(1), digest(2));
    let input = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  annotations:\n    description: |\n      Zertifikate für Dienste – «ok» ✓\n    note: >\n      x é\nspec:\n  template:\n    spec:\n      containers:\n      - image: nginx:1.25\n      - image: 'quay.io/a/b:v2' # ü\n";
    let expected = input
        .replace("image: nginx:1.25", &format!("image: nginx:1.25@{d1}"))
        .replace("'quay.io/a/b:v2'", &format!("'quay.io/a/b:v2@{d2}'"));
    pins(&dir, input, &expected);
}

#[test]
fn flow_collection_closed_at_its_key_indentation() {
    let dir = with_lock(&["docker.io/library/redis:7"]);
    let d = digest(1);
    // As the OpenTelemetry demo writes its compose file.
    let input = "services:\n  cache:\n    command: [\n      \"redis-server\",\n      \"--save\", \"\"\n    ]\n    deploy: {resources: {\n      limits: {memory: 20M}\n    }}\n    image: redis:7\n  other:\n    environment: {\n  A: b\n}\n";
    let expected = input.replace("image: redis:7", &format!("image: redis:7@{d}"));
    pins(&dir, input, &expected);
}

#[test]
fn multi_line_quoted_scalar_in_a_flow_sequence() {
    let dir = with_lock(&["docker.io/library/alpine:3.19"]);
    let d = digest(1);
    // As Argo's examples write their args.
    let input = "apiVersion: argoproj.io/v1alpha1\nkind: Workflow\nspec:\n  templates:\n  - name: main\n    container:\n      image: alpine:3.19\n      command: [sh, -c]\n      args: [\"echo one;\n        echo two\", 'three\n  four']\n";
    let expected = input.replace("image: alpine:3.19", &format!("image: alpine:3.19@{d}"));
    pins(&dir, input, &expected);
}

#[test]
fn block_scalar_images_are_rewritten_in_their_style() {
    let dir = with_lock(&[
        "docker.io/library/nginx:1.25",
        "docker.io/library/redis:latest",
        "ghcr.io/o/app:v1",
    ]);
    let (d1, d2, d3) = (digest(1), digest(2), digest(3));
    let input = "kind: Pod\nspec:\n  containers:\n  - image: |\n      nginx:1.25\n  - image: >-\n      redis\n    name: r\n  - image: |2-\n\n        ghcr.io/o/app:v1   \n  - image: nginx:1.25\n";
    let expected = format!(
        "kind: Pod\nspec:\n  containers:\n  - image: |\n      nginx:1.25@{d1}\n  - image: >-\n      redis:latest@{d2}\n    name: r\n  - image: |2-\n\n        ghcr.io/o/app:v1@{d3}   \n  - image: nginx:1.25@{d1}\n"
    );
    pins(&dir, input, &expected);
    let found = list(&dir, input);
    assert_eq!(
        found,
        [
            (0, "spec.containers[0].image".into(), "nginx:1.25".into()),
            (0, "spec.containers[1].image".into(), "redis".into()),
            (
                0,
                "spec.containers[2].image".into(),
                "ghcr.io/o/app:v1".into()
            ),
            (0, "spec.containers[3].image".into(), "nginx:1.25".into()),
        ]
    );
    // A block scalar over two lines is no reference.
    tool(&dir)
        .args(["--lock", "lock.json"])
        .stdin("kind: Pod\nspec:\n  containers:\n  - image: |\n      nginx\n      :1.25\n")
        .run()
        .code(3)
        .stderr_one_line()
        .stderr_contains("-: document 0: line 5: spec.containers[0].image");
}

#[test]
fn argo_inline_templates_are_searched() {
    let dir = with_lock(&[
        "docker.io/library/alpine:3",
        "docker.io/library/python:3.12",
        "docker.io/library/busybox:1",
    ]);
    let (d1, d2, d3) = (digest(1), digest(2), digest(3));
    let input = "apiVersion: argoproj.io/v1alpha1\nkind: WorkflowTemplate\nspec:\n  templates:\n  - name: main\n    dag:\n      tasks:\n      - name: a\n        inline:\n          container: {image: alpine:3}\n      - name: b\n        template: other\n  - name: s\n    steps:\n    - - name: c\n        inline:\n          script:\n            image: python:3.12\n            source: print(1)\n      - name: d\n        inline:\n          sidecars: [{name: x, image: busybox:1}]\n";
    let expected = input
        .replace("alpine:3}", &format!("alpine:3@{d1}}}"))
        .replace("python:3.12", &format!("python:3.12@{d2}"))
        .replace("busybox:1}", &format!("busybox:1@{d3}}}"));
    pins(&dir, input, &expected);
    let paths: Vec<String> = list(&dir, input).into_iter().map(|(_, p, _)| p).collect();
    assert_eq!(
        paths,
        [
            "spec.templates[0].dag.tasks[0].inline.container.image",
            "spec.templates[1].steps[0][0].inline.script.image",
            "spec.templates[1].steps[0][1].inline.sidecars[0].image",
        ]
    );
}

#[test]
fn merge_keys_are_followed_and_rewritten_once_where_written() {
    let dir = with_lock(&[
        "docker.io/library/app:1",
        "docker.io/library/web:2",
        "docker.io/library/side:3",
    ]);
    let (d1, d2, d3) = (digest(1), digest(2), digest(3));
    // Compose: an x- extension merged into services, one overriding the image.
    let compose = "x-base: &base\n  image: app:1\n  restart: always\nx-log: &log\n  logging: {driver: json-file}\nservices:\n  a:\n    <<: *base\n  b:\n    <<: [*log, *base]\n  c:\n    <<: *base\n    image: web:2\n";
    let expected = compose
        .replace("image: app:1", &format!("image: app:1@{d1}"))
        .replace("image: web:2", &format!("image: web:2@{d2}"));
    pins(&dir, compose, &expected);
    assert_eq!(
        list(&dir, compose),
        [
            (0, "services.a.image".into(), "app:1".into()),
            (0, "services.b.image".into(), "app:1".into()),
            (0, "services.c.image".into(), "web:2".into()),
        ]
    );
    // Kubernetes: a container and a whole pod spec reached through merges.
    let k8s = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: &c\n    image: side:3\nspec:\n  containers:\n  - <<: *c\n    name: s\n---\nkind: Job\napiVersion: batch/v1\nx: &tmpl\n  spec:\n    containers: [{image: 'app:1'}]\nspec:\n  template:\n    <<: *tmpl\n";
    let expected = k8s
        .replace("image: side:3", &format!("image: side:3@{d3}"))
        .replace("'app:1'", &format!("'app:1@{d1}'"));
    pins(&dir, k8s, &expected);
    assert_eq!(
        list(&dir, k8s),
        [
            (0, "spec.containers[0].image".into(), "side:3".into()),
            (
                1,
                "spec.template.spec.containers[0].image".into(),
                "app:1".into()
            ),
        ]
    );
}

#[test]
fn list_names_images_without_network_and_refuses_invalid_references() {
    let dir = TestDir::new();
    let input = "kind: Pod\nspec:\n  containers:\n  - image: nginx\n  - image: \"{{inputs.image}}\"\n  - image: ghcr.io/o/a@sha256:0000000000000000000000000000000000000000000000000000000000000000\n";
    let out = tool(&dir).arg("--list").stdin(input).run();
    out.success();
    let l: Listing = out.json();
    let e = &l.images[0];
    assert_eq!(
        (e.file.as_str(), e.document, e.path.as_str(), e.line),
        ("-", 0, "spec.containers[0].image", 4)
    );
    assert_eq!(
        (e.image.as_str(), e.reference.as_deref(), e.pinned),
        ("nginx", Some("docker.io/library/nginx:latest"), false)
    );
    assert_eq!(
        (l.images[1].reference.as_deref(), l.images[1].pinned),
        (None, false)
    );
    assert!(l.images[2].pinned);
    // Placeholders in image positions are refused, naming document and path.
    let out = tool(&dir)
        .arg("--list")
        .stdin("kind: Pod\nspec: {containers: [{image: nginx}]}\n---\nkind: Pod\nspec:\n  containers:\n  - image: ko://example.com/cmd/app\n  - image: <PLACEHOLDER>\n")
        .run();
    out.code(3).stdout_empty();
    assert_eq!(out.stderr.lines().count(), 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("-: document 1: line 7: spec.containers[0].image: image \"ko://"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("-: document 1: line 8: spec.containers[1].image: image \"<PLACEHOLDER>\""),
        "{}",
        out.stderr
    );
    // --list does not combine with rewriting flags.
    tool(&dir)
        .args(["--list", "--check"])
        .stdin("a: 1\n")
        .run()
        .code(2);
}

#[test]
fn byte_order_mark_quoted_continuation_lines_and_tight_comments_as_libyaml_reads_them() {
    let dir = with_lock(&["docker.io/library/nginx:1.25"]);
    let d = digest(1);
    // A BOM is no part of the first key (the file stays as it was, BOM included).
    let input = "\u{feff}kind: Pod\nspec:\n  containers:\n  - image: nginx:1.25\n";
    let expected = input.replace("nginx:1.25", &format!("nginx:1.25@{d}"));
    pins(&dir, input, &expected);
    // Quoted scalars continued on a line indented less than their block, or led by a tab.
    let input = "kind: Pod\nmetadata:\n  annotations:\n    a: \"one\ntwo\"\n    b: 'x\n\ty'\nspec:\n  containers:\n  - image: \"nginx:1.25\"\n";
    let expected = input.replace("\"nginx:1.25\"", &format!("\"nginx:1.25@{d}\""));
    pins(&dir, input, &expected);
    // A comment right after a quoted scalar or a flow collection.
    let input = "kind: Pod\nspec:\n  containers:\n  - image: 'nginx:1.25'# web\n    args: [a]# b\n";
    let expected = input.replace("'nginx:1.25'", &format!("'nginx:1.25@{d}'"));
    pins(&dir, input, &expected);
}
