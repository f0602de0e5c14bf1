//! The toolkit's own image (root `Dockerfile`), built by `scripts/toolkit-image` with build-with-cache itself: every tool runs in it, and an unchanged toolkit is skipped by source hash.

use std::path::{Path, PathBuf};

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, bin};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn toolkit_image_runs_every_tool_and_is_not_rebuilt_unchanged() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let base = format!("{}/base/busybox:1", reg.addr);
    Cmd::new(workspace_root().join("examples/shop/tools/make-base-image"))
        .arg(&base)
        .env("DOCKER_HOST", &dockerd.host)
        .run()
        .success();
    let bins = bin("deploy-bot").parent().expect("bin dir").to_path_buf();
    let build = || {
        Cmd::new(workspace_root().join("scripts/toolkit-image"))
            .env("DOCKER_HOST", &dockerd.host)
            .env("MICROPLATFORM_STATE_DIR", "/nonexistent")
            .args([
                "--registry",
                &reg.addr,
                "--tag",
                "e2e",
                "--base-image",
                &base,
            ])
            .arg("--bin-dir")
            .arg(&bins)
            .run()
    };
    let first = build();
    first.success();
    let result: serde_json::Value = first.json();
    assert_eq!(
        result["skipped"],
        serde_json::Value::Bool(false),
        "{result}"
    );
    let image = format!("{}/microplatform/toolkit:e2e", reg.addr);
    assert!(reg.has("microplatform/toolkit", "e2e"));

    // Every tool and helper program starts inside the image, on its own.
    dockerd.run(&["pull", "-q", &image]);
    let versions = dockerd.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "for t in monobuild build-with-cache digest-resolve stackgen deploy-bot; do $t --version; done; \
         git --version; docker --version; cat /usr/share/microplatform/checked | wc -l",
    ]);
    for tool in [
        "monobuild",
        "build-with-cache",
        "digest-resolve",
        "stackgen",
        "deploy-bot",
        "git version",
        "Docker version",
    ] {
        assert!(versions.contains(tool), "{tool} missing in:\n{versions}");
    }
    assert!(versions.trim_end().ends_with('7'), "{versions}");

    // Same binaries, same Dockerfile, same base: skipped by source hash.
    let second = build();
    second.success();
    let again: serde_json::Value = second.json();
    assert_eq!(again["skipped"], serde_json::Value::Bool(true), "{again}");
    assert_eq!(again["digest"], result["digest"], "{again}");
}
