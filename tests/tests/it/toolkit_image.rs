//! The toolkit's own image (root `Dockerfile`), built by `scripts/toolkit-image` with build-with-cache itself: every tool runs in it, and an unchanged toolkit is skipped by source hash.

use std::path::PathBuf;

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, bin};

use crate::platform::workspace_root;

/// The toolkit image's inputs: a registry, the engine, a busybox base image pushed to the
/// registry and the workspace's binaries.
struct Toolkit<'a> {
    reg: &'a Registry,
    dockerd: &'a Dockerd,
    base: String,
    bins: PathBuf,
}

impl<'a> Toolkit<'a> {
    /// Pushes the base image to `reg` (with `examples/shop/tools/make-base-image`).
    fn new(reg: &'a Registry, dockerd: &'a Dockerd) -> Self {
        let base = format!("{}/base/busybox:1", reg.addr);
        Cmd::new(workspace_root().join("examples/shop/tools/make-base-image"))
            .arg(&base)
            .env("DOCKER_HOST", &dockerd.host)
            .run()
            .success();
        let bins = bin("deploy-bot").parent().expect("bin dir").to_path_buf();
        Toolkit {
            reg,
            dockerd,
            base,
            bins,
        }
    }

    /// `scripts/toolkit-image` into the registry, tag `e2e`; asserts success.
    fn build(&self) -> serde_json::Value {
        let out = Cmd::new(workspace_root().join("scripts/toolkit-image"))
            .env("DOCKER_HOST", &self.dockerd.host)
            .env("MICROPLATFORM_STATE_DIR", "/nonexistent")
            .args([
                "--registry",
                &self.reg.addr,
                "--tag",
                "e2e",
                "--base-image",
                &self.base,
            ])
            .arg("--bin-dir")
            .arg(&self.bins)
            .run();
        out.success();
        out.json()
    }

    /// The image the build pushes.
    fn image(&self) -> String {
        format!("{}/microplatform/toolkit:e2e", self.reg.addr)
    }
}

/// The first build builds (not skipped) and pushes the image; returns its result.
fn first_build_pushes_the_image(toolkit: &Toolkit) -> serde_json::Value {
    let result = toolkit.build();
    assert_eq!(
        result["skipped"],
        serde_json::Value::Bool(false),
        "{result}"
    );
    assert!(toolkit.reg.has("microplatform/toolkit", "e2e"));
    result
}

/// Every tool and helper program starts inside the image, on its own.
fn every_tool_runs_inside_the_image(toolkit: &Toolkit) {
    let image = toolkit.image();
    toolkit.dockerd.run(&["pull", "-q", &image]);
    let versions = toolkit.dockerd.run(&[
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
}

/// Same binaries, same Dockerfile, same base: the second build is skipped by source hash and
/// names the first build's digest.
fn an_unchanged_toolkit_is_skipped(toolkit: &Toolkit, first: &serde_json::Value) {
    let again = toolkit.build();
    assert_eq!(again["skipped"], serde_json::Value::Bool(true), "{again}");
    assert_eq!(again["digest"], first["digest"], "{again}");
}

/// The steps share one test: each build of the toolkit image (the five tools on a base
/// image, by build-with-cache) takes tens of seconds, and the skip is only seen on a second
/// build of the very inputs of a first one, whose image the tools run in.
#[test]
fn toolkit_image_runs_every_tool_and_is_not_rebuilt_unchanged() {
    let reg = Registry::start();
    let dockerd = Dockerd::shared();
    let _images = ImageCleanup {
        dockerd,
        registry: reg.addr.clone(),
    };
    let toolkit = Toolkit::new(&reg, dockerd);
    let first = first_build_pushes_the_image(&toolkit);
    every_tool_runs_inside_the_image(&toolkit);
    an_unchanged_toolkit_is_skipped(&toolkit, &first);
}
