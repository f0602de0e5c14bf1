//! The shared registry client (`microplatform_common::registry`) against a real `docker-registry`: anonymous, Basic and Bearer.

use microplatform_common::io::sha256_digest;
use microplatform_common::reference::Reference;
use microplatform_common::registry::{ClientOptions, Platform, RegistryClient, RegistryError};
use microplatform_test_support::registry::{
    DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Registry, RegistryAuth,
};
use microplatform_test_support::token::TokenServer;
use microplatform_test_support::token::{HttpResponse, TinyServer};
use microplatform_test_support::{Cmd, Output, TestDir};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client_with(dir: &TestDir, config: &str) -> RegistryClient {
    let file = dir.write("config.json", config);
    RegistryClient::new(ClientOptions {
        auth_files: Some(vec![file]),
        max_retries: 1,
        retry_base_delay: std::time::Duration::from_millis(10),
        ..ClientOptions::default()
    })
    .unwrap()
}

fn auth_config(addr: &str, user: &str, pass: &str) -> String {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!(r#"{{"auths":{{"{addr}":{{"auth":"{auth}"}}}}}}"#)
}

/// An anonymous registry holding `app/oci:v1` (OCI manifest), `app/docker:v1` (Docker manifest)
/// and `app/multi:v1` (an index for linux/amd64 and linux/arm64), and a client without credentials.
struct Anonymous {
    reg: Registry,
    _dir: TestDir,
    client: RegistryClient,
    oci: String,
    docker: String,
    index: String,
    per_platform: Vec<(String, String)>,
}

impl Anonymous {
    fn new() -> Self {
        let reg = Registry::start();
        let dir = TestDir::new();
        let client = client_with(&dir, "{}");
        let (oci, _) = reg.push_image("app/oci", "v1", OCI_MANIFEST, "a");
        let (docker, _) = reg.push_image("app/docker", "v1", DOCKER_MANIFEST, "b");
        let (index, per_platform) = reg.push_index(
            "app/multi",
            "v1",
            "c",
            &[("linux", "amd64"), ("linux", "arm64")],
        );
        Self {
            reg,
            _dir: dir,
            client,
            oci,
            docker,
            index,
            per_platform,
        }
    }

    fn r(&self, s: &str) -> Reference {
        Reference::parse(&format!("{}/{s}", self.reg.addr)).unwrap()
    }
}

#[test]
fn head_and_get_manifest_give_the_digest_of_exactly_the_bytes_served() {
    let a = Anonymous::new();
    let served: Vec<Vec<u8>> = ["app/oci", "app/docker", "app/multi"]
        .iter()
        .map(|repo| a.reg.get_manifest(repo, "v1").2)
        .collect();
    rt().block_on(async {
        for (i, (name, want)) in [
            ("app/oci:v1", &a.oci),
            ("app/docker:v1", &a.docker),
            ("app/multi:v1", &a.index),
        ]
        .into_iter()
        .enumerate()
        {
            let info = a.client.head_manifest(&a.r(name)).await.unwrap().unwrap();
            assert_eq!(&info.digest, want);
            let (body, _, digest) = a.client.get_manifest(&a.r(name)).await.unwrap();
            assert_eq!(sha256_digest(&body), *want);
            assert_eq!(&digest, want);
            // The registry serves exactly these bytes.
            assert_eq!(served[i], body);
        }
    });
}

#[test]
fn head_of_an_index_reports_the_oci_index_media_type() {
    let a = Anonymous::new();
    let info = rt()
        .block_on(a.client.head_manifest(&a.r("app/multi:v1")))
        .unwrap()
        .unwrap();
    assert_eq!(info.media_type, OCI_INDEX);
}

#[test]
fn resolve_with_a_platform_picks_that_entry_of_an_index() {
    let a = Anonymous::new();
    let arm = Platform::parse("linux/arm64").unwrap();
    assert_eq!(
        rt().block_on(a.client.resolve(&a.r("app/multi:v1"), Some(&arm)))
            .unwrap(),
        a.per_platform[1].1
    );
}

#[test]
fn resolve_with_a_platform_accepts_a_single_manifest_for_that_platform() {
    let a = Anonymous::new();
    let amd = Platform::parse("linux/amd64").unwrap();
    assert_eq!(
        rt().block_on(a.client.resolve(&a.r("app/oci:v1"), Some(&amd)))
            .unwrap(),
        a.oci
    );
}

#[test]
fn resolve_with_another_platform_than_a_single_manifest_is_not_found() {
    let a = Anonymous::new();
    let arm = Platform::parse("linux/arm64").unwrap();
    assert!(matches!(
        rt().block_on(a.client.resolve(&a.r("app/oci:v1"), Some(&arm))),
        Err(RegistryError::NotFound { .. })
    ));
}

#[test]
fn head_of_a_missing_tag_is_none() {
    let a = Anonymous::new();
    assert_eq!(
        rt().block_on(a.client.head_manifest(&a.r("app/oci:nope")))
            .unwrap(),
        None
    );
}

#[test]
fn resolve_of_an_unknown_repository_exits_4_with_name_unknown() {
    let a = Anonymous::new();
    let e = rt()
        .block_on(a.client.resolve(&a.r("app/nothere:v1"), None))
        .unwrap_err();
    assert_eq!(e.exit_code(), 4, "{e}");
    assert!(e.to_string().contains("NAME_UNKNOWN"), "{e}");
}

#[test]
fn resolve_of_a_missing_tag_reports_manifest_unknown() {
    let a = Anonymous::new();
    let e = rt()
        .block_on(a.client.resolve(&a.r("app/oci:nope"), None))
        .unwrap_err();
    assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
}

#[test]
fn put_manifest_under_a_new_tag_keeps_the_digest() {
    let a = Anonymous::new();
    rt().block_on(async {
        let (body, mt, _) = a.client.get_manifest(&a.r("app/oci:v1")).await.unwrap();
        let d = a
            .client
            .put_manifest(&a.r("app/oci:copy"), &body, &mt)
            .await
            .unwrap();
        assert_eq!(d, a.oci);
    });
    assert!(a.reg.has("app/oci", "copy"));
}

#[test]
fn basic_auth_good_and_bad_credentials() {
    let reg = Registry::start_with(RegistryAuth::Basic {
        user: "alice".into(),
        password: "s3cret".into(),
    });
    let (d, _) = reg.push_image("team/app", "1.0", OCI_MANIFEST, "x");
    let r = Reference::parse(&format!("{}/team/app:1.0", reg.addr)).unwrap();
    let dir = TestDir::new();
    rt().block_on(async {
        let good = client_with(&dir, &auth_config(&reg.addr, "alice", "s3cret"));
        assert_eq!(good.resolve(&r, None).await.unwrap(), d);
        let bad = client_with(&dir, &auth_config(&reg.addr, "alice", "wrong"));
        let e = bad.resolve(&r, None).await.unwrap_err();
        assert_eq!(e.exit_code(), 7, "{e}");
        let none = client_with(&dir, "{}");
        let e = none.resolve(&r, None).await.unwrap_err();
        assert_eq!(e.exit_code(), 7, "{e}");
        assert!(e.to_string().contains("no credentials"), "{e}");
    });
}

#[test]
fn bearer_token_flow_reuses_one_token_per_scope() {
    let tokens = TokenServer::start("bob", "hunter2");
    let reg = Registry::start_with(tokens.registry_auth());
    let (d1, _) = tokens.push_image(&reg, "svc/one", "v1", OCI_MANIFEST, "1");
    let (d2, _) = tokens.push_image(&reg, "svc/one", "v2", DOCKER_MANIFEST, "2");
    let dir = TestDir::new();
    rt().block_on(async {
        let c = client_with(&dir, &auth_config(&reg.addr, "bob", "hunter2"));
        let r1 = Reference::parse(&format!("{}/svc/one:v1", reg.addr)).unwrap();
        let r2 = Reference::parse(&format!("{}/svc/one:v2", reg.addr)).unwrap();
        assert_eq!(c.resolve(&r1, None).await.unwrap(), d1);
        assert_eq!(c.resolve(&r2, None).await.unwrap(), d2);
        assert_eq!(c.resolve(&r1, None).await.unwrap(), d1);
        assert_eq!(
            tokens.scopes_requested(),
            vec!["repository:svc/one:pull".to_string()]
        );
        // Push needs a pull,push token.
        let (body, mt, _) = c.get_manifest(&r1).await.unwrap();
        let r3 = Reference::parse(&format!("{}/svc/one:v3", reg.addr)).unwrap();
        assert_eq!(c.put_manifest(&r3, &body, &mt).await.unwrap(), d1);
        assert!(
            tokens
                .scopes_requested()
                .contains(&"repository:svc/one:pull,push".to_string())
        );
        let bad = client_with(&dir, &auth_config(&reg.addr, "bob", "nope"));
        let e = bad.resolve(&r1, None).await.unwrap_err();
        assert_eq!(e.exit_code(), 7, "{e}");
        assert!(e.to_string().contains("/token"), "{e}");
    });
}

/// A client without credentials that retries 3 times, 10 ms apart at first.
fn retrying_client(dir: &TestDir) -> RegistryClient {
    let file = dir.write("config.json", "{}");
    RegistryClient::new(ClientOptions {
        auth_files: Some(vec![file]),
        max_retries: 3,
        retry_base_delay: std::time::Duration::from_millis(10),
        ..ClientOptions::default()
    })
    .unwrap()
}

/// A fake registry whose manifest HEAD answers 503, then 429 with `Retry-After: 1`, then the
/// digest of `b"manifest"`; with the digest and the count of manifest requests.
fn flaky_server() -> (TinyServer, String, Arc<AtomicUsize>) {
    let digest = sha256_digest(b"manifest");
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let d = digest.clone();
    let server = TinyServer::start(move |req| {
        if req.target == "/v2/" {
            return HttpResponse {
                status: 200,
                headers: vec![],
                body: b"{}".to_vec(),
            };
        }
        assert_eq!(req.method, "HEAD");
        assert!(
            req.header("accept")
                .is_some_and(|a| a.contains("image.index") && a.contains("manifest.v2"))
        );
        match h.fetch_add(1, Ordering::SeqCst) {
            0 => HttpResponse {
                status: 503,
                headers: vec![],
                body: vec![],
            },
            1 => HttpResponse {
                status: 429,
                headers: vec![("Retry-After".into(), "1".into())],
                body: vec![],
            },
            _ => HttpResponse {
                status: 200,
                headers: vec![
                    ("Docker-Content-Digest".into(), d.clone()),
                    ("Content-Type".into(), OCI_MANIFEST.into()),
                    ("Content-Length".into(), "8".into()),
                ],
                body: vec![],
            },
        }
    });
    (server, digest, hits)
}

#[test]
fn retries_503_and_429_then_resolves() {
    let (server, digest, hits) = flaky_server();
    let dir = TestDir::new();
    let client = retrying_client(&dir);
    let r = Reference::parse(&format!("{}/flaky/app:v1", server.addr)).unwrap();
    let got = rt().block_on(client.resolve(&r, None)).unwrap();
    assert_eq!(got, digest);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[test]
fn retry_after_is_honoured() {
    let (server, _digest, _hits) = flaky_server();
    let dir = TestDir::new();
    let client = retrying_client(&dir);
    let r = Reference::parse(&format!("{}/flaky/app:v1", server.addr)).unwrap();
    let start = std::time::Instant::now();
    rt().block_on(client.resolve(&r, None)).unwrap();
    // Retry-After: 1 was honoured (a lower bound, not a timing race).
    assert!(start.elapsed() >= std::time::Duration::from_secs(1));
}

#[test]
fn out_of_retries_is_a_network_error_naming_the_url() {
    let h2 = Arc::new(AtomicUsize::new(0));
    let h3 = h2.clone();
    let down = TinyServer::start(move |req| {
        if req.target == "/v2/" {
            return HttpResponse {
                status: 200,
                headers: vec![],
                body: vec![],
            };
        }
        h3.fetch_add(1, Ordering::SeqCst);
        HttpResponse {
            status: 502,
            headers: vec![],
            body: b"bad gateway".to_vec(),
        }
    });
    let dir = TestDir::new();
    let client = retrying_client(&dir);
    let r = Reference::parse(&format!("{}/flaky/app:v1", down.addr)).unwrap();
    let e = rt().block_on(client.resolve(&r, None)).unwrap_err();
    assert_eq!(e.exit_code(), 6, "{e}");
    assert!(e.to_string().contains("/v2/flaky/app/manifests/v1"), "{e}");
    assert_eq!(h2.load(Ordering::SeqCst), 4, "1 try + 3 retries");
}

/// A Basic-auth registry holding `h/app:v1`, and a directory with a `docker-credential-mpttest`
/// helper under `bin/` that knows its credentials; with the digest and a `PATH` that finds the helper.
fn registry_and_credential_helper() -> (Registry, TestDir, String, String) {
    let reg = Registry::start_with(RegistryAuth::Basic {
        user: "helper-user".into(),
        password: "helper-pass".into(),
    });
    let (d, _) = reg.push_image("h/app", "v1", OCI_MANIFEST, "h");
    let dir = TestDir::new();
    // A docker-credential-* helper on PATH, as docker runs it: `get` with the server on stdin.
    let helper = dir.write(
        "bin/docker-credential-mpttest",
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 1\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\necho '{{\"ServerURL\":\"'$server'\",\"Username\":\"helper-user\",\"Secret\":\"helper-pass\"}}'\n",
            reg.addr
        ),
    );
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&helper)
        .status()
        .unwrap();
    let path = format!(
        "{}:{}",
        dir.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    (reg, dir, d, path)
}

/// `digest-resolve` of a pod using `h/app:v1`, with `DOCKER_CONFIG` at `dir`.
fn resolve_with_docker_config(reg: &Registry, dir: &TestDir, path: &str) -> Output {
    Cmd::new(microplatform_test_support::bin("digest-resolve"))
        .env("PATH", path)
        .env("DOCKER_CONFIG", dir.path())
        .env_remove("REGISTRY_AUTH_FILE")
        .stdin(format!(
            "kind: Pod\nspec: {{containers: [{{image: {}/h/app:v1}}]}}\n",
            reg.addr
        ))
        .run()
}

#[test]
fn cred_helpers_entry_supplies_basic_credentials() {
    let (reg, dir, d, path) = registry_and_credential_helper();
    let config = dir.write(
        "config.json",
        format!(r#"{{"credHelpers":{{"{}":"mpttest"}}}}"#, reg.addr),
    );
    let out = resolve_with_docker_config(&reg, &dir, &path);
    assert!(config.exists());
    out.success().stdout_contains(&format!("h/app:v1@{d}"));
}

#[test]
fn creds_store_supplies_credentials_for_registries_without_a_cred_helpers_entry() {
    let (reg, dir, d, path) = registry_and_credential_helper();
    dir.write("config.json", r#"{"credsStore":"mpttest"}"#);
    resolve_with_docker_config(&reg, &dir, &path)
        .success()
        .stdout_contains(&format!("h/app:v1@{d}"));
}
