//! `digest-resolve --promote-to` end to end: the real binary copying images between real `docker-registry` instances (one registry: blob mounts; two: streamed copies), a multi-arch index, a registry that refuses mounts, Bearer scopes for a mount, identical digests, a second run that copies nothing, and manifests rewritten to the release-candidate registry.

use base64::Engine as _;
use microplatform_common::io::sha256_digest;
use microplatform_test_support::registry::{DOCKER_MANIFEST, OCI_MANIFEST, Registry, RegistryAuth};
use microplatform_test_support::token::{HttpResponse, TinyServer, TokenServer};
use microplatform_test_support::{Cmd, TestDir};
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PromoteReport {
    schema_version: u32,
    destination: String,
    images: Vec<Image>,
    totals: Totals,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    source: String,
    target: String,
    digest: String,
    media_type: String,
    tag_updated: bool,
    manifests_copied: u64,
    manifests_present: u64,
    blobs_mounted: u64,
    blobs_copied: u64,
    blobs_present: u64,
    bytes_copied: u64,
    bytes_mounted: u64,
    manifest_bytes: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct Totals {
    images: u64,
    manifests_copied: u64,
    manifests_present: u64,
    blobs_mounted: u64,
    blobs_copied: u64,
    blobs_present: u64,
    bytes_copied: u64,
    bytes_mounted: u64,
    manifest_bytes: u64,
}

/// A command with an empty docker config (no credentials from the host).
fn tool(dir: &TestDir) -> Cmd {
    let cfg = dir.join(".docker-empty");
    std::fs::create_dir_all(&cfg).unwrap();
    dir.cmd("digest-resolve")
        .env("DOCKER_CONFIG", &cfg)
        .env_remove("REGISTRY_AUTH_FILE")
}

fn report(dir: &TestDir, name: &str) -> PromoteReport {
    let r: PromoteReport = serde_json::from_str(&dir.read(name)).expect("promote report");
    assert_eq!(r.schema_version, 1);
    r
}

fn image<'a>(r: &'a PromoteReport, source_prefix: &str) -> &'a Image {
    r.images
        .iter()
        .find(|i| i.source.starts_with(source_prefix))
        .unwrap_or_else(|| panic!("no image {source_prefix} in {r:#?}"))
}

/// Deterministic incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24).to_le_bytes()[0]
        })
        .collect()
}

/// Push an OCI image with one layer of `size` bytes; `(digest, blob bytes)`.
fn push_sized(reg: &Registry, repo: &str, tag: &str, size: usize, seed: u64) -> (String, u64) {
    let layer = noise(size, seed);
    let ld = reg.push_blob(repo, &layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [ld]}, "config": {"Labels": {"seed": seed.to_string()}}
    }))
    .unwrap();
    let cd = reg.push_blob(repo, &config);
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld, "size": layer.len()}]
    }))
    .unwrap();
    let d = reg.push_manifest(repo, tag, OCI_MANIFEST, &manifest);
    (d, (layer.len() + config.len()) as u64)
}

/// The sha256 of the manifest bytes served for repo:reference (asserting 200).
fn served(reg: &Registry, repo: &str, reference: &str) -> String {
    let (status, _, body) = reg.get_manifest(repo, reference);
    assert_eq!(status, 200, "{repo}:{reference} not served");
    sha256_digest(&body)
}

#[test]
fn same_registry_mounts_rewrites_and_a_second_run_copies_nothing() {
    let reg = Registry::start();
    let (api, _) = reg.push_image("shop/api", "v1", OCI_MANIFEST, "api");
    let (web, children) = reg.push_index(
        "shop/web",
        "v2",
        "web",
        &[("linux", "amd64"), ("linux", "arm64")],
    );
    let a = &reg.addr;
    let input = format!(
        "# staging\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: shop}}\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: {a}/shop/api:v1   # the api\n        - name: web\n          image: \"{a}/shop/web:v2@{web}\"\n"
    );
    let dir = TestDir::new();
    let f = dir.write("staging/shop.yaml", &input);
    let out = tool(&dir)
        .args([
            "--promote-to",
            &format!("{a}/rc"),
            "--promote-report",
            "r1.json",
            "-i",
        ])
        .arg(&f)
        .run();
    out.success().stdout_empty();
    let expected = input
        .replace(
            &format!("image: {a}/shop/api:v1 "),
            &format!("image: {a}/rc/shop/api:v1@{api} "),
        )
        .replace(
            &format!("\"{a}/shop/web:v2@{web}\""),
            &format!("\"{a}/rc/shop/web:v2@{web}\""),
        );
    assert_eq!(dir.read("staging/shop.yaml"), expected);

    // Identical digests at the release-candidate location, by tag and by digest.
    assert_eq!(served(&reg, "rc/shop/api", "v1"), api);
    assert_eq!(served(&reg, "rc/shop/api", &api), api);
    assert_eq!(served(&reg, "rc/shop/web", "v2"), web);
    for (_, child) in &children {
        assert_eq!(served(&reg, "rc/shop/web", child), *child);
    }

    let r1 = report(&dir, "r1.json");
    assert_eq!(r1.destination, format!("{a}/rc"));
    let i = image(&r1, &format!("{a}/shop/api"));
    assert_eq!(i.source, format!("{a}/shop/api:v1@{api}"));
    assert_eq!(i.target, format!("{a}/rc/shop/api:v1@{api}"));
    assert_eq!(i.digest, api);
    assert_eq!(i.media_type, OCI_MANIFEST);
    assert!(i.tag_updated);
    assert_eq!((i.manifests_copied, i.manifests_present), (1, 0));
    assert_eq!(
        (i.blobs_mounted, i.blobs_copied, i.blobs_present),
        (2, 0, 0)
    );
    assert!(i.bytes_mounted > 0 && i.manifest_bytes > 0);
    let w = image(&r1, &format!("{a}/shop/web"));
    assert_eq!(w.target, format!("{a}/rc/shop/web:v2@{web}"));
    assert_eq!(w.media_type, "application/vnd.oci.image.index.v1+json");
    // The index and both platform manifests; two configs and two layers.
    assert_eq!(w.manifests_copied, 3);
    assert_eq!(w.blobs_mounted, 4);
    // Within one registry, nothing is streamed: every blob is mounted.
    assert_eq!(r1.totals.bytes_copied, 0);
    assert_eq!(r1.totals.blobs_copied, 0);
    assert_eq!(r1.totals.blobs_mounted, 6);
    assert_eq!(r1.totals.images, 2);

    // Again over the source manifests: nothing copied, same output bytes.
    let again = tool(&dir)
        .args([
            "--promote-to",
            &format!("{a}/rc"),
            "--promote-report",
            "r2.json",
        ])
        .stdin(input.clone())
        .run();
    again.success().stdout_eq(&expected);
    let r2 = report(&dir, "r2.json");
    assert_eq!(
        r2.totals,
        Totals {
            images: 2,
            manifests_copied: 0,
            manifests_present: 2,
            blobs_mounted: 0,
            blobs_copied: 0,
            blobs_present: 0,
            bytes_copied: 0,
            bytes_mounted: 0,
            manifest_bytes: 0,
        }
    );
    assert!(r2.images.iter().all(|i| !i.tag_updated));

    // Over the promoted manifests: they stay as they are (already under the destination).
    let third = tool(&dir)
        .args([
            "--promote-to",
            &format!("{a}/rc"),
            "--promote-report",
            "r3.json",
            "--check",
        ])
        .arg(&f)
        .run();
    third.code(2).stderr_contains("--check");
    let third = tool(&dir)
        .args([
            "--promote-to",
            &format!("{a}/rc/"),
            "--promote-report",
            "r3.json",
            "-i",
        ])
        .arg(&f)
        .run();
    third.success();
    assert_eq!(dir.read("staging/shop.yaml"), expected);
    let r3 = report(&dir, "r3.json");
    assert!(r3.images.iter().all(|i| i.source == i.target));
    assert_eq!(r3.totals.manifest_bytes + r3.totals.bytes_copied, 0);
}

#[test]
fn cross_registry_streams_blobs_and_copies_indexes() {
    let src = Registry::start();
    // The release-candidate registry wants Basic credentials (from the docker config).
    let rc = Registry::start_with(RegistryAuth::Basic {
        user: "rc".into(),
        password: "rc-secret".into(),
    });
    let mut sources = Vec::new();
    let mut blob_bytes = 0;
    for n in 0..3u16 {
        let (d, bytes) = push_sized(
            &src,
            &format!("shop/svc{n}"),
            "1.0",
            600_000 + 1000 * usize::from(n),
            u64::from(n),
        );
        blob_bytes += bytes;
        sources.push(d);
    }
    let (docker, _) = src.push_image("shop/legacy", "0.9", DOCKER_MANIFEST, "legacy");
    let (multi, children) = src.push_index(
        "shop/multi",
        "3.0",
        "m",
        &[("linux", "amd64"), ("linux", "arm64")],
    );
    let s = &src.addr;
    let input = format!(
        "services:\n  legacy: {{image: {s}/shop/legacy:0.9}}\n  svc0: {{image: {s}/shop/svc0:1.0}}\n  svc1: {{image: '{s}/shop/svc1:1.0'}}\n  svc2:\n    image: {s}/shop/svc2:1.0\n  multi:\n    image: {s}/shop/multi:3.0\n"
    );
    let dir = TestDir::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("rc:rc-secret");
    dir.write(
        "cfg/config.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, rc.addr),
    );
    let run = |report_name: &str| {
        tool(&dir)
            .env("DOCKER_CONFIG", dir.join("cfg"))
            .args([
                "--promote-to",
                &rc.addr,
                "--drop-tag",
                "--promote-report",
                report_name,
            ])
            .stdin(input.clone())
            .run()
    };
    let out = run("r1.json");
    out.success();
    let r = &rc.addr;
    let mut expected = input.clone();
    for (n, d) in sources.iter().enumerate() {
        expected = expected.replace(
            &format!("{s}/shop/svc{n}:1.0"),
            &format!("{r}/shop/svc{n}@{d}"),
        );
    }
    expected = expected.replace(
        &format!("{s}/shop/multi:3.0"),
        &format!("{r}/shop/multi@{multi}"),
    );
    expected = expected.replace(
        &format!("{s}/shop/legacy:0.9"),
        &format!("{r}/shop/legacy@{docker}"),
    );
    assert_eq!(out.stdout, expected);

    let r1 = report(&dir, "r1.json");
    // Streamed: every blob of the single-platform images came through, byte for byte.
    let svc_bytes: u64 = (0..3)
        .map(|n| image(&r1, &format!("{s}/shop/svc{n}")).bytes_copied)
        .sum();
    assert_eq!(svc_bytes, blob_bytes);
    assert_eq!(r1.totals.blobs_mounted, 0);
    assert_eq!(r1.totals.blobs_copied, 3 * 2 + 4 + 2);
    // A Docker v2 manifest keeps its media type, hence its digest.
    let legacy = image(&r1, &format!("{s}/shop/legacy"));
    assert_eq!(legacy.media_type, DOCKER_MANIFEST);
    assert_eq!(served(&rc, "shop/legacy", "0.9"), docker);
    let m = image(&r1, &format!("{s}/shop/multi"));
    assert_eq!(m.manifests_copied, 3);
    assert_eq!(m.target, format!("{r}/shop/multi:3.0@{multi}"));

    // Identical digests in the other registry (read with its credentials).
    for (n, d) in sources.iter().enumerate() {
        assert_eq!(served(&rc, &format!("shop/svc{n}"), "1.0"), *d);
    }
    assert_eq!(served(&rc, "shop/multi", "3.0"), multi);
    for (_, child) in &children {
        assert_eq!(served(&rc, "shop/multi", child), *child);
    }

    // A second promotion copies 0 bytes.
    let again = run("r2.json");
    again.success().stdout_eq(&expected);
    let r2 = report(&dir, "r2.json");
    assert_eq!(r2.totals.bytes_copied, 0);
    assert_eq!(r2.totals.manifest_bytes, 0);
    assert_eq!(r2.totals.manifests_copied, 0);
    assert_eq!(r2.totals.manifests_present, 5);

    // A changed image: only its new blobs move.
    push_sized(&src, "shop/svc1", "1.0", 50_000, 99);
    let third = run("r3.json");
    third.success();
    let r3 = report(&dir, "r3.json");
    assert_eq!(r3.totals.manifests_copied, 1);
    let changed = image(&r3, &format!("{s}/shop/svc1"));
    assert_eq!(changed.blobs_copied, 2);
    assert!(changed.bytes_copied > 50_000 && changed.bytes_copied < 52_000);
}

#[test]
fn a_refused_mount_falls_back_to_a_streamed_copy() {
    let reg = Registry::start();
    let (d, bytes) = push_sized(&reg, "shop/api", "v1", 300_000, 7);
    // A registry that refuses cross-repository mounts, as some do: it answers the
    // mount with 202 and an upload session (a plain POST upstream).
    let upstream = reg.url();
    let proxy = TinyServer::start(move |req| {
        let http = microplatform_test_support::blocking_client_builder()
            .build()
            .expect("client");
        let target = if req.method == "POST" && req.target.contains("mount=") {
            req.target.split('?').next().unwrap().to_string()
        } else {
            req.target.clone()
        };
        let mut rb = http.request(req.method.parse().unwrap(), format!("{upstream}{target}"));
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
            .filter(|(k, _)| req.method == "HEAD" || *k != "content-length")
            .filter(|(k, _)| *k != "connection" && *k != "transfer-encoding")
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        HttpResponse {
            status,
            headers,
            body: resp.bytes().unwrap().to_vec(),
        }
    });
    let p = &proxy.addr;
    let dir = TestDir::new();
    let out = tool(&dir)
        .args(["--promote-to", &format!("{p}/rc"), "--promote-report", "-"])
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {p}/shop/api:v1}}]}}\n"
        ))
        .run();
    out.success().stdout_eq(&format!(
        "kind: Pod\nspec: {{containers: [{{image: {p}/rc/shop/api:v1@{d}}}]}}\n"
    ));
    let r: PromoteReport = serde_json::from_str(&out.stderr).expect("report on stderr");
    assert_eq!(r.totals.blobs_mounted, 0);
    assert_eq!(r.totals.blobs_copied, 2);
    assert_eq!(r.totals.bytes_copied, bytes);
    assert_eq!(served(&reg, "rc/shop/api", "v1"), d);
}

#[test]
fn a_mount_asks_one_token_for_push_on_the_target_and_pull_on_the_source() {
    let tokens = TokenServer::start("alice", "secret");
    let reg = Registry::start_with(tokens.registry_auth());
    let (d, _) = tokens.push_image(&reg, "demo", "v1", OCI_MANIFEST, "t");
    let dir = TestDir::new();
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:secret");
    dir.write(
        "auth.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.addr),
    );
    let a = &reg.addr;
    let out = tool(&dir)
        .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .args([
            "--promote-to",
            &format!("{a}/rc"),
            "--promote-report",
            "r.json",
        ])
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {a}/demo:v1}}]}}\n"
        ))
        .run();
    out.success()
        .stdout_contains(&format!("{a}/rc/demo:v1@{d}"));
    let r = report(&dir, "r.json");
    assert_eq!(r.totals.blobs_mounted, 2);
    assert_eq!(r.totals.bytes_copied, 0);
    let scopes = tokens.scopes_requested();
    assert!(
        scopes.contains(&"repository:rc/demo:pull,push repository:demo:pull".to_string()),
        "{scopes:?}"
    );
    let seeded = reg.with_token(tokens.mint("rc/demo"));
    let (status, _, body) = seeded.get_manifest("rc/demo", "v1");
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&body), d);
}

#[test]
fn failures_name_the_image_and_write_nothing() {
    let reg = Registry::start();
    let (api, _) = reg.push_image("shop/api", "v1", OCI_MANIFEST, "x");
    let a = &reg.addr;
    let dir = TestDir::new();
    let input = format!(
        "kind: Pod\nspec: {{containers: [{{image: {a}/shop/api:v1}}, {{image: {a}/shop/gone:v1}}]}}\n"
    );
    let f = dir.write("pod.yaml", &input);
    // A missing image: exit 4, no file changed, no report, nothing copied.
    let out = tool(&dir)
        .args([
            "--promote-to",
            &format!("{a}/rc"),
            "--promote-report",
            "r.json",
            "-i",
        ])
        .arg(&f)
        .run();
    out.code(4).stderr_contains("shop/gone:v1");
    assert_eq!(dir.read("pod.yaml"), input);
    assert!(!dir.join("r.json").exists());
    assert!(!reg.has("rc/shop/api", &api));

    // A pinned digest that the source does not have: the copy fails (exit 4).
    let bogus = format!("sha256:{}", "0".repeat(64));
    let out = tool(&dir)
        .args(["--promote-to", &format!("{a}/rc")])
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {a}/shop/api@{bogus}}}]}}\n"
        ))
        .run();
    out.code(4)
        .stderr_contains(&format!("promoting to {a}/rc/shop/api@{bogus}"))
        .stdout_empty();

    // Usage errors: not a registry; a report without a destination.
    tool(&dir)
        .args(["--promote-to", "rc"])
        .stdin("kind: Pod\nspec: {containers: [{image: a.io/b:c}]}\n")
        .run()
        .code(2)
        .stderr_contains("--promote-to");
    tool(&dir)
        .args(["--promote-report", "r.json"])
        .stdin("")
        .run()
        .code(2);
}
