//! Self-tests of the shared harness: a real registry and a real dockerd come up and work.

use microplatform_common::io::sha256_digest;
use microplatform_test_support::dockerd::Dockerd;
use microplatform_test_support::registry::{DOCKER_MANIFEST, OCI_MANIFEST, Registry, RegistryAuth};

#[test]
fn registry_serves_pushed_manifests_by_digest() {
    let reg = Registry::start();
    let (digest, bytes) = reg.push_image("demo/app", "v1", OCI_MANIFEST, "a");
    let (status, header, body) = reg.get_manifest("demo/app", "v1");
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    assert_eq!(header.as_deref(), Some(digest.as_str()));
    assert_eq!(sha256_digest(&body), digest);
    let (d2, _) = reg.push_image("demo/app", "v2", DOCKER_MANIFEST, "b");
    assert_ne!(d2, digest);
    assert!(!reg.has("demo/app", "missing"));
}

#[test]
fn basic_auth_registry_refuses_anonymous() {
    let reg = Registry::start_with(RegistryAuth::Basic {
        user: "u".into(),
        password: "p".into(),
    });
    let (digest, _) = reg.push_image("x/y", "t", OCI_MANIFEST, "c");
    assert!(digest.starts_with("sha256:"));
    let status = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("{}/v2/", reg.url()),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "401");
}

#[test]
fn shared_dockerd_runs_a_busybox_base_image() {
    let reg = Registry::start();
    let d = Dockerd::shared();
    let base = d.base_image(&reg.addr);
    let out = d.run(&["run", "--rm", "--network", "none", &base, "echo", "hello"]);
    assert_eq!(out, "hello");
}
