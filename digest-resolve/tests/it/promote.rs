//! `digest-resolve --promote-to` end to end: the real binary copying images between real `docker-registry` instances (one registry: blob mounts; two: streamed copies), a multi-arch index, a registry that refuses mounts, Bearer scopes for a mount, identical digests, a second run that copies nothing, and manifests rewritten to the release-candidate registry.

use base64::Engine as _;
use microplatform_common::io::sha256_digest;
use microplatform_test_support::registry::{DOCKER_MANIFEST, OCI_MANIFEST, Registry, RegistryAuth};
use microplatform_test_support::token::{HttpResponse, TinyServer, TokenServer};
use microplatform_test_support::{Cmd, Output, TestDir};
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

/// One registry holding `shop/api:v1` (an OCI manifest) and `shop/web:v2` (a two-platform index),
/// and `staging/shop.yaml` using both (web pinned by digest); `expected` is that file promoted to `rc`.
struct SameRegistry {
    reg: Registry,
    api: String,
    web: String,
    children: Vec<(String, String)>,
    input: String,
    expected: String,
    dir: TestDir,
    file: std::path::PathBuf,
}

impl SameRegistry {
    fn new() -> Self {
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
        let expected = input
            .replace(
                &format!("image: {a}/shop/api:v1 "),
                &format!("image: {a}/rc/shop/api:v1@{api} "),
            )
            .replace(
                &format!("\"{a}/shop/web:v2@{web}\""),
                &format!("\"{a}/rc/shop/web:v2@{web}\""),
            );
        let dir = TestDir::new();
        let file = dir.write("staging/shop.yaml", &input);
        Self {
            reg,
            api,
            web,
            children,
            input,
            expected,
            dir,
            file,
        }
    }

    /// `--promote-to <reg>/rc --promote-report r1.json -i staging/shop.yaml`, which must succeed silently.
    fn promote_in_place(&self) -> PromoteReport {
        tool(&self.dir)
            .args([
                "--promote-to",
                &format!("{}/rc", self.reg.addr),
                "--promote-report",
                "r1.json",
                "-i",
            ])
            .arg(&self.file)
            .run()
            .success()
            .stdout_empty();
        report(&self.dir, "r1.json")
    }
}

#[test]
fn promoting_in_place_rewrites_each_image_to_the_destination_with_its_digest() {
    let s = SameRegistry::new();
    s.promote_in_place();
    assert_eq!(s.dir.read("staging/shop.yaml"), s.expected);
}

#[test]
fn promoted_images_are_served_with_identical_digests_by_tag_and_by_digest() {
    let s = SameRegistry::new();
    s.promote_in_place();
    let (reg, api, web) = (&s.reg, &s.api, &s.web);
    assert_eq!(served(reg, "rc/shop/api", "v1"), *api);
    assert_eq!(served(reg, "rc/shop/api", api), *api);
    assert_eq!(served(reg, "rc/shop/web", "v2"), *web);
    for (_, child) in &s.children {
        assert_eq!(served(reg, "rc/shop/web", child), *child);
    }
}

#[test]
fn the_report_describes_a_promoted_single_manifest_image() {
    let s = SameRegistry::new();
    let r1 = s.promote_in_place();
    let (a, api) = (&s.reg.addr, &s.api);
    assert_eq!(r1.destination, format!("{a}/rc"));
    let i = image(&r1, &format!("{a}/shop/api"));
    assert_eq!(i.source, format!("{a}/shop/api:v1@{api}"));
    assert_eq!(i.target, format!("{a}/rc/shop/api:v1@{api}"));
    assert_eq!(i.digest, *api);
    assert_eq!(i.media_type, OCI_MANIFEST);
    assert!(i.tag_updated);
    assert_eq!((i.manifests_copied, i.manifests_present), (1, 0));
    assert_eq!(
        (i.blobs_mounted, i.blobs_copied, i.blobs_present),
        (2, 0, 0)
    );
    assert!(i.bytes_mounted > 0 && i.manifest_bytes > 0);
}

#[test]
fn the_report_counts_an_index_with_its_platform_manifests_configs_and_layers() {
    let s = SameRegistry::new();
    let r1 = s.promote_in_place();
    let (a, web) = (&s.reg.addr, &s.web);
    let w = image(&r1, &format!("{a}/shop/web"));
    assert_eq!(w.target, format!("{a}/rc/shop/web:v2@{web}"));
    assert_eq!(w.media_type, "application/vnd.oci.image.index.v1+json");
    // The index and both platform manifests; two configs and two layers.
    assert_eq!(w.manifests_copied, 3);
    assert_eq!(w.blobs_mounted, 4);
}

#[test]
fn within_one_registry_every_blob_is_mounted_and_nothing_is_streamed() {
    let s = SameRegistry::new();
    let r1 = s.promote_in_place();
    assert_eq!(r1.totals.bytes_copied, 0);
    assert_eq!(r1.totals.blobs_copied, 0);
    assert_eq!(r1.totals.blobs_mounted, 6);
    assert_eq!(r1.totals.images, 2);
}

/// Needs the first promotion to have copied everything, so both promotions stay in one test.
#[test]
fn a_second_promotion_of_the_source_manifests_copies_nothing_and_prints_the_same_bytes() {
    let s = SameRegistry::new();
    s.promote_in_place();
    let again = tool(&s.dir)
        .args([
            "--promote-to",
            &format!("{}/rc", s.reg.addr),
            "--promote-report",
            "r2.json",
        ])
        .stdin(s.input.clone())
        .run();
    again.success().stdout_eq(&s.expected);
    let r2 = report(&s.dir, "r2.json");
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
}

#[test]
fn promote_to_with_check_is_a_usage_error() {
    let s = SameRegistry::new();
    let third = tool(&s.dir)
        .args([
            "--promote-to",
            &format!("{}/rc", s.reg.addr),
            "--promote-report",
            "r3.json",
            "--check",
        ])
        .arg(&s.file)
        .run();
    third.code(2).stderr_contains("--check");
}

/// Needs manifests that the first promotion rewrote, so both promotions stay in one test.
#[test]
fn promoting_already_promoted_manifests_leaves_them_as_they_are() {
    let s = SameRegistry::new();
    s.promote_in_place();
    let third = tool(&s.dir)
        .args([
            "--promote-to",
            &format!("{}/rc/", s.reg.addr),
            "--promote-report",
            "r3.json",
            "-i",
        ])
        .arg(&s.file)
        .run();
    third.success();
    assert_eq!(s.dir.read("staging/shop.yaml"), s.expected);
    let r3 = report(&s.dir, "r3.json");
    assert!(r3.images.iter().all(|i| i.source == i.target));
    assert_eq!(r3.totals.manifest_bytes + r3.totals.bytes_copied, 0);
}

/// A source registry holding `shop/svc{0,1,2}:1.0` (one sizeable layer each), `shop/legacy:0.9`
/// (a Docker v2 manifest) and `shop/multi:3.0` (a two-platform index); a release-candidate
/// registry that wants Basic credentials, which the docker config in `dir/cfg` holds; and a
/// compose-style input using all five.
struct CrossRegistry {
    src: Registry,
    rc: Registry,
    sources: Vec<String>,
    blob_bytes: u64,
    docker: String,
    multi: String,
    children: Vec<(String, String)>,
    input: String,
    dir: TestDir,
}

impl CrossRegistry {
    fn new() -> Self {
        let src = Registry::start();
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
        Self {
            src,
            rc,
            sources,
            blob_bytes,
            docker,
            multi,
            children,
            input,
            dir,
        }
    }

    /// `--promote-to <rc> --drop-tag --promote-report REPORT` over the input on stdin.
    fn run(&self, report_name: &str) -> Output {
        tool(&self.dir)
            .env("DOCKER_CONFIG", self.dir.join("cfg"))
            .args([
                "--promote-to",
                &self.rc.addr,
                "--drop-tag",
                "--promote-report",
                report_name,
            ])
            .stdin(self.input.clone())
            .run()
    }

    /// A first promotion, which must succeed; its report.
    fn promote(&self) -> PromoteReport {
        self.run("r1.json").success();
        report(&self.dir, "r1.json")
    }

    /// The input with every image at the release-candidate registry, by digest only.
    fn expected(&self) -> String {
        let (s, r) = (&self.src.addr, &self.rc.addr);
        let mut expected = self.input.clone();
        for (n, d) in self.sources.iter().enumerate() {
            expected = expected.replace(
                &format!("{s}/shop/svc{n}:1.0"),
                &format!("{r}/shop/svc{n}@{d}"),
            );
        }
        expected = expected.replace(
            &format!("{s}/shop/multi:3.0"),
            &format!("{r}/shop/multi@{}", self.multi),
        );
        expected.replace(
            &format!("{s}/shop/legacy:0.9"),
            &format!("{r}/shop/legacy@{}", self.docker),
        )
    }
}

#[test]
fn cross_registry_promotion_with_drop_tag_rewrites_images_by_digest_only() {
    let c = CrossRegistry::new();
    let out = c.run("r1.json");
    out.success();
    assert_eq!(out.stdout, c.expected());
}

#[test]
fn cross_registry_promotion_streams_every_blob_byte_for_byte() {
    let c = CrossRegistry::new();
    let r1 = c.promote();
    let s = &c.src.addr;
    let svc_bytes: u64 = (0..3)
        .map(|n| image(&r1, &format!("{s}/shop/svc{n}")).bytes_copied)
        .sum();
    assert_eq!(svc_bytes, c.blob_bytes);
    assert_eq!(r1.totals.blobs_mounted, 0);
    assert_eq!(r1.totals.blobs_copied, 3 * 2 + 4 + 2);
}

#[test]
fn a_docker_v2_manifest_keeps_its_media_type_hence_its_digest() {
    let c = CrossRegistry::new();
    let r1 = c.promote();
    let legacy = image(&r1, &format!("{}/shop/legacy", c.src.addr));
    assert_eq!(legacy.media_type, DOCKER_MANIFEST);
    assert_eq!(served(&c.rc, "shop/legacy", "0.9"), c.docker);
}

#[test]
fn an_index_is_copied_across_registries_with_its_platform_manifests() {
    let c = CrossRegistry::new();
    let r1 = c.promote();
    let m = image(&r1, &format!("{}/shop/multi", c.src.addr));
    assert_eq!(m.manifests_copied, 3);
    assert_eq!(
        m.target,
        format!("{}/shop/multi:3.0@{}", c.rc.addr, c.multi)
    );
    assert_eq!(served(&c.rc, "shop/multi", "3.0"), c.multi);
    for (_, child) in &c.children {
        assert_eq!(served(&c.rc, "shop/multi", child), *child);
    }
}

#[test]
fn cross_registry_copies_are_served_with_identical_digests_under_the_source_tag() {
    let c = CrossRegistry::new();
    c.promote();
    // Read with the release-candidate registry's credentials.
    for (n, d) in c.sources.iter().enumerate() {
        assert_eq!(served(&c.rc, &format!("shop/svc{n}"), "1.0"), *d);
    }
}

/// Needs the first promotion to have copied everything, so both promotions stay in one test.
#[test]
fn a_second_cross_registry_promotion_copies_0_bytes() {
    let c = CrossRegistry::new();
    c.promote();
    let again = c.run("r2.json");
    again.success().stdout_eq(&c.expected());
    let r2 = report(&c.dir, "r2.json");
    assert_eq!(r2.totals.bytes_copied, 0);
    assert_eq!(r2.totals.manifest_bytes, 0);
    assert_eq!(r2.totals.manifests_copied, 0);
    assert_eq!(r2.totals.manifests_present, 5);
}

/// Needs the first promotion to have copied the old image, so promote, change and promote stay together.
#[test]
fn after_a_change_to_one_image_only_its_new_blobs_move() {
    let c = CrossRegistry::new();
    c.promote();
    push_sized(&c.src, "shop/svc1", "1.0", 50_000, 99);
    let third = c.run("r3.json");
    third.success();
    let r3 = report(&c.dir, "r3.json");
    assert_eq!(r3.totals.manifests_copied, 1);
    let changed = image(&r3, &format!("{}/shop/svc1", c.src.addr));
    assert_eq!(changed.blobs_copied, 2);
    assert!(changed.bytes_copied > 50_000 && changed.bytes_copied < 52_000);
}

/// A registry holding `shop/api:v1` (one 300 kB layer) behind a proxy that refuses
/// cross-repository mounts; the promotion of a pod using it through the proxy to `<proxy>/rc`,
/// with the report on stderr. Returns the registry, the proxy, the digest, the blob bytes and the output.
fn promote_through_a_mount_refusing_proxy() -> (Registry, TinyServer, String, u64, Output) {
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
    (reg, proxy, d, bytes, out)
}

#[test]
fn a_refused_mount_still_rewrites_the_image_to_the_destination() {
    let (_reg, proxy, d, _bytes, out) = promote_through_a_mount_refusing_proxy();
    let p = &proxy.addr;
    out.success().stdout_eq(&format!(
        "kind: Pod\nspec: {{containers: [{{image: {p}/rc/shop/api:v1@{d}}}]}}\n"
    ));
}

#[test]
fn a_refused_mount_falls_back_to_a_streamed_copy() {
    let (_reg, _proxy, _d, bytes, out) = promote_through_a_mount_refusing_proxy();
    let r: PromoteReport = serde_json::from_str(&out.stderr).expect("report on stderr");
    assert_eq!(r.totals.blobs_mounted, 0);
    assert_eq!(r.totals.blobs_copied, 2);
    assert_eq!(r.totals.bytes_copied, bytes);
}

#[test]
fn a_streamed_copy_after_a_refused_mount_is_served_with_the_same_digest() {
    let (reg, _proxy, d, _bytes, out) = promote_through_a_mount_refusing_proxy();
    out.success();
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
fn a_missing_image_exits_4_naming_it_and_writes_copies_and_reports_nothing() {
    let reg = Registry::start();
    let (api, _) = reg.push_image("shop/api", "v1", OCI_MANIFEST, "x");
    let a = &reg.addr;
    let dir = TestDir::new();
    let input = format!(
        "kind: Pod\nspec: {{containers: [{{image: {a}/shop/api:v1}}, {{image: {a}/shop/gone:v1}}]}}\n"
    );
    let f = dir.write("pod.yaml", &input);
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
}

#[test]
fn a_pinned_digest_the_source_does_not_have_fails_the_copy_with_exit_4() {
    let reg = Registry::start();
    reg.push_image("shop/api", "v1", OCI_MANIFEST, "x");
    let a = &reg.addr;
    let bogus = format!("sha256:{}", "0".repeat(64));
    let out = tool(&TestDir::new())
        .args(["--promote-to", &format!("{a}/rc")])
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {a}/shop/api@{bogus}}}]}}\n"
        ))
        .run();
    out.code(4)
        .stderr_contains(&format!("promoting to {a}/rc/shop/api@{bogus}"))
        .stdout_empty();
}

#[test]
fn promote_to_without_a_registry_is_a_usage_error() {
    tool(&TestDir::new())
        .args(["--promote-to", "rc"])
        .stdin("kind: Pod\nspec: {containers: [{image: a.io/b:c}]}\n")
        .run()
        .code(2)
        .stderr_contains("--promote-to");
}

#[test]
fn a_promote_report_without_a_destination_is_a_usage_error() {
    tool(&TestDir::new())
        .args(["--promote-report", "r.json"])
        .stdin("")
        .run()
        .code(2);
}
