//! build-with-cache against real components: Debian's dockerd (classic builder and `BuildKit`), buildah (vfs, chroot) and a real registry.
//! The key test per backend: build a three-stage Dockerfile, throw the engine's storage away, build again: every stage is a cache hit and the final image digest is the same.

use crate::common;

use common::{BuildResult, bwc, states, three_stage};
use microplatform_test_support::dockerd::{Dockerd, ImageCleanup, docker_cli};
use microplatform_test_support::registry::{Registry, RegistryAuth};
use microplatform_test_support::{Cmd, TestDir, free_port, require};

fn all(r: &BuildResult, state: &str) -> bool {
    r.stages.iter().all(|s| s.cache == state)
}

fn docker_build(dir: &TestDir, engine: &Dockerd, backend: &str, extra: &[&str]) -> BuildResult {
    let out = bwc(dir)
        .env("DOCKER_HOST", &engine.host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args(["--backend", backend])
        .args(extra)
        .arg(".")
        .run();
    // Shown by the test harness when an assertion fails.
    eprintln!(
        "--- build-with-cache {backend} {extra:?} stderr ---\n{}",
        out.stderr
    );
    out.success();
    out.json()
}

/// Build, fresh engine, rebuild: all hits, same digest; then a feature branch
/// reads the main cache (fallback) in read-only mode.
fn fresh_engine_rebuild(backend: &str) {
    let reg = Registry::start();
    let base = Dockerd::shared().base_image(&reg.addr);
    let dir = three_stage(&base);
    let image = format!("{}/team/app:v1", reg.addr);

    let engine = Dockerd::fresh();
    let first = docker_build(&dir, &engine, backend, &["-t", &image]);
    drop(engine);
    assert_eq!(first.backend.as_deref(), Some(backend));
    assert!(!first.skipped);
    assert_eq!(first.image, image);
    assert_eq!(
        states(&first),
        [
            ("deps".to_string(), "miss".to_string()),
            ("build".to_string(), "miss".to_string()),
            ("3".to_string(), "miss".to_string())
        ]
    );
    assert!(first.cache_read.is_empty(), "{:?}", first.cache_read);
    assert_eq!(first.cache_written.len(), 3, "{:?}", first.cache_written);
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let (_, registry_digest, _) = reg.get_manifest("team/app", "v1");
    assert_eq!(registry_digest.as_deref(), Some(first.digest.as_str()));
    for s in &first.stages {
        let tag = s.cache_ref.as_ref().unwrap().rsplit_once(':').unwrap().1;
        assert!(reg.has("team/app", tag), "{tag} not pushed");
        assert!(s.digest.is_some());
    }

    // A new engine with an empty data root: everything comes from the registry.
    let engine = Dockerd::fresh();
    let second = docker_build(&dir, &engine, backend, &["-t", &image]);
    assert!(all(&second, "hit"), "{:?}", states(&second));
    assert_eq!(second.digest, first.digest);
    for (a, b) in first.stages.iter().zip(&second.stages) {
        assert_eq!(a.digest, b.digest, "stage {}", a.name);
        assert_eq!(b.hit_from, b.cache_ref);
    }
    assert!(
        second.cache_written.is_empty(),
        "{:?}",
        second.cache_written
    );
    assert_eq!(second.cache_read.len(), 3);

    // A feature branch, read-only: hits from the main branch, nothing written.
    let third = docker_build(
        &dir,
        &engine,
        backend,
        &[
            "-t",
            &format!("{}/team/app:pr-1", reg.addr),
            "--branch",
            "feature/x",
            "--no-cache-write",
        ],
    );
    assert!(all(&third, "hit"), "{:?}", states(&third));
    assert_eq!(third.digest, first.digest);
    assert!(third.cache_written.is_empty());
    for s in &third.stages {
        assert!(
            s.hit_from.as_deref().unwrap().contains(":cache-main--"),
            "{s:?}"
        );
        let own = s.cache_ref.as_ref().unwrap().rsplit_once(':').unwrap().1;
        assert!(
            !reg.has("team/app", own),
            "{own} written despite --no-cache-write"
        );
    }
}

#[test]
fn docker_classic_fresh_engine_rebuild_hits_every_stage() {
    fresh_engine_rebuild("docker");
}

#[test]
fn buildkit_fresh_engine_rebuild_hits_every_stage() {
    fresh_engine_rebuild("buildkit");
}

#[test]
fn buildah_fresh_storage_rebuild_hits_every_stage() {
    require("buildah", "buildah");
    let reg = Registry::start();
    let base = Dockerd::shared().base_image(&reg.addr);
    let dir = three_stage(&base);
    let image = format!("{}/team/app:v1", reg.addr);
    let build = |storage: &TestDir| -> BuildResult {
        let out = bwc(&dir)
            .args([
                "--backend",
                "buildah",
                "--root",
                &storage.join("root").display().to_string(),
                "--runroot",
                &storage.join("run").display().to_string(),
                "-t",
                &image,
                ".",
            ])
            .run();
        out.success();
        out.json()
    };
    let first = {
        let storage = TestDir::new();
        build(&storage)
    };
    assert!(all(&first, "miss"), "{:?}", states(&first));
    assert!(
        first
            .cache_written
            .contains(&format!("{}/team/app/layers-main", reg.addr))
    );
    let storage = TestDir::new();
    let second = build(&storage);
    assert_eq!(second.backend.as_deref(), Some("buildah"));
    assert!(all(&second, "hit"), "{:?}", states(&second));
    assert_eq!(second.digest, first.digest);
    let (_, registry_digest, _) = reg.get_manifest("team/app", "v1");
    assert_eq!(registry_digest.as_deref(), Some(first.digest.as_str()));
}

#[test]
fn source_hash_skip_tags_registry_side_without_an_engine() {
    let reg = Registry::start();
    let engine = Dockerd::shared();
    let base = engine.base_image(&reg.addr);
    let dir = three_stage(&base);
    let v1 = format!("{}/team/skip:v1", reg.addr);
    let iidfile = dir.join("out/image.id").display().to_string();
    let built = docker_build(
        &dir,
        engine,
        "docker",
        &["-t", &v1, "--source-hash", "h1", "--iidfile", &iidfile],
    );
    assert!(!built.skipped);
    assert!(dir.read("out/image.id").starts_with("sha256:"));
    let key = built.content_key.clone().unwrap();
    let hex = key.strip_prefix("sha256:").unwrap();
    let content_ref = format!("{}/team/skip:content-{hex}", reg.addr);
    assert_eq!(built.content_ref.as_deref(), Some(content_ref.as_str()));
    assert!(built.cache_written.contains(&content_ref));
    assert!(reg.has("team/skip", &format!("content-{hex}")));
    let inputs = built.content_key_inputs.as_ref().unwrap();
    assert_eq!(inputs.sources.hash, "h1");
    assert_eq!(inputs.images.len(), 1);
    // The key is on the image as a label.
    let label = engine.run(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"dev.microplatform.content-key\"}}",
        &v1,
    ]);
    assert_eq!(label.trim(), key);

    // Same sources: no engine needed (DOCKER_HOST points nowhere), nothing built.
    // A tag in another repository gets the layers by a cross-repository mount.
    let v2 = format!("{}/team/skip:v2", reg.addr);
    let v2b = format!("{}/team/skip:latest", reg.addr);
    let v2c = format!("{}/team/mirror:v2", reg.addr);
    let out = bwc(&dir)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args([
            "-t",
            &v2,
            "-t",
            &v2b,
            "-t",
            &v2c,
            "--source-hash",
            "h1",
            ".",
        ])
        .run();
    out.success();
    let skipped: BuildResult = out.json();
    assert!(skipped.skipped);
    assert!(skipped.backend.is_none());
    assert!(skipped.stages.is_empty());
    assert_eq!(skipped.digest, built.digest);
    assert_eq!(skipped.content_key.as_deref(), Some(key.as_str()));
    assert_eq!(skipped.content_key_inputs.as_ref(), Some(inputs));
    assert_eq!(skipped.tags, [v2.clone(), v2b, v2c]);
    for (repo, tag) in [
        ("team/skip", "v2"),
        ("team/skip", "latest"),
        ("team/mirror", "v2"),
    ] {
        let (status, digest, _) = reg.get_manifest(repo, tag);
        assert_eq!(status, 200, "{repo}:{tag}");
        assert_eq!(digest.as_deref(), Some(built.digest.as_str()));
    }

    // Other sources: built (here the engine is unreachable, so it fails with 9).
    let out = bwc(&dir)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["-t", &v2, "--source-hash", "h2", "."])
        .run();
    out.code(9).stdout_empty();
}

/// Push `image` as a new image (one more layer) under the same tag.
fn push_new_image_under_same_tag(engine: &Dockerd, image: &str, salt: &str) {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        format!("FROM {image}\nRUN echo {salt} > /salt\n"),
    );
    engine
        .docker()
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(dir.path())
        .args(["build", "-q", "-t", image, "."])
        .run()
        .success();
    engine.run(&["push", image]);
}

#[test]
fn a_new_base_image_under_the_same_tag_rebuilds_exactly_the_images_built_from_it() {
    let reg = Registry::start();
    let engine = Dockerd::shared();
    let _cleanup = ImageCleanup {
        dockerd: engine,
        registry: reg.addr.clone(),
    };
    let base = engine.base_image(&reg.addr);
    let other_base = format!("{}/base/other:1", reg.addr);
    engine.run(&["tag", &base, &other_base]);
    engine.run(&["push", &other_base]);
    let app = three_stage(&base);
    let tool = TestDir::new();
    tool.write(
        "Dockerfile",
        format!("FROM {other_base}\nCOPY app.txt /app.txt\n"),
    );
    tool.write("app.txt", "the tool\n");
    let build = |dir: &TestDir, name: &str, rev: &str| -> BuildResult {
        docker_build(
            dir,
            engine,
            "buildkit",
            &[
                "-t",
                &format!("{}/team/{name}:{rev}", reg.addr),
                "--source-hash",
                "same-sources",
            ],
        )
    };
    let first = build(&app, "app", "r1");
    assert!(!first.skipped);
    let tool_first = build(&tool, "tool", "r1");
    assert!(!tool_first.skipped);
    // The same sources on the same bases: both skipped.
    let again = build(&app, "app", "r2");
    assert!(again.skipped);
    assert_eq!(again.digest, first.digest);
    assert!(build(&tool, "tool", "r2").skipped);

    // A new image under the app's base tag: the app is built again, with
    // another key; the tool, built from another base, is still skipped.
    push_new_image_under_same_tag(engine, &base, "v2");
    let rebuilt = build(&app, "app", "r3");
    assert!(!rebuilt.skipped, "a new base image must rebuild");
    assert_ne!(rebuilt.content_key, first.content_key);
    assert_ne!(rebuilt.digest, first.digest);
    let digests: Vec<_> = rebuilt
        .content_key_inputs
        .as_ref()
        .unwrap()
        .images
        .values()
        .cloned()
        .collect();
    assert_ne!(
        digests,
        first
            .content_key_inputs
            .as_ref()
            .unwrap()
            .images
            .values()
            .cloned()
            .collect::<Vec<_>>()
    );
    let tool_again = build(&tool, "tool", "r3");
    assert!(tool_again.skipped, "an image not built from the new base");
    assert_eq!(tool_again.digest, tool_first.digest);
    // And the rebuilt app is skipped from now on.
    assert!(build(&app, "app", "r4").skipped);
}

/// The skeleton of docker/buildx's Dockerfile: ten stages, several
/// independent ones merged at the end, an unnamed intermediate stage read by
/// index (`COPY --from=5`) and a stage named like an unnamed one's label.
fn wide_graph(base: &str) -> TestDir {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        format!(
            "ARG BASE={base}\n\
             FROM $BASE AS xx\nRUN echo xx > /xx\n\
             FROM $BASE AS golatest\nRUN echo go > /go\n\
             FROM golatest AS gobase\nCOPY --from=xx /xx /xx\nRUN echo gobase > /gobase\n\
             FROM gobase AS buildx-version\nCOPY version.txt /version\n\
             FROM gobase AS buildx-build\nCOPY --from=buildx-version /version /version\n\
             RUN cat /version /gobase > /buildx\n\
             FROM $BASE\nRUN echo unnamed > /unnamed\n\
             FROM gobase AS stage-5\nCOPY --from=5 /unnamed /u\nRUN echo test > /test\n\
             FROM scratch AS binaries-unix\nCOPY --from=buildx-build /buildx /buildx\n\
             FROM binaries-unix AS binaries\n\
             FROM $BASE\nCOPY --from=binaries /buildx /buildx\nCOPY --from=stage-5 /test /test\n\
             COPY --from=5 /unnamed /unnamed\n"
        ),
    );
    dir.write("version.txt", "v1\n");
    dir
}

#[test]
fn buildkit_wide_graph_builds_within_the_safe_parallelism_and_caches_unnamed_stages() {
    let reg = Registry::start();
    let base = Dockerd::shared().base_image(&reg.addr);
    let dir = wide_graph(&base);
    let image = format!("{}/team/wide:v1", reg.addr);
    let engine = Dockerd::fresh();
    let out = bwc(&dir)
        .env("DOCKER_HOST", &engine.host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args(["--backend", "buildkit", "-t", &image, "."])
        .run();
    eprintln!("{}", out.stderr);
    out.success();
    // Debian's dockerd 20.10: one stage build at a time by default.
    out.stderr_contains("(1 at a time)");
    let first: BuildResult = out.json();
    let names: Vec<_> = first.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "xx",
            "golatest",
            "gobase",
            "buildx-version",
            "buildx-build",
            "5",
            "stage-5",
            "binaries-unix",
            "binaries",
            "9"
        ]
    );
    assert!(all(&first, "miss"), "{:?}", states(&first));
    let refs: std::collections::BTreeSet<_> =
        first.stages.iter().map(|s| s.cache_ref.clone()).collect();
    assert_eq!(refs.len(), 10, "cache refs must be distinct: {refs:?}");
    // The engine survived the build.
    engine.run(&["version"]);
    drop(engine);

    // A fresh engine: every stage, the unnamed one included, is a cache hit.
    let engine = Dockerd::fresh();
    let second = docker_build(&dir, &engine, "buildkit", &["-t", &image]);
    assert!(all(&second, "hit"), "{:?}", states(&second));
    assert_eq!(second.digest, first.digest);
    assert!(
        second.cache_written.is_empty(),
        "{:?}",
        second.cache_written
    );

    // A change in one branch of the graph rebuilds that branch only. (On a
    // fresh engine again: dockerd 20.10's BuildKit cannot re-key a
    // `COPY --from` of a stage it took lazily from an inline cache in an
    // earlier build, even with a plain `docker build`; see the docs.)
    drop(engine);
    let engine = Dockerd::fresh();
    dir.write("version.txt", "v2\n");
    let third = docker_build(&dir, &engine, "buildkit", &["-t", &image]);
    let missed: Vec<_> = third
        .stages
        .iter()
        .filter(|s| s.cache == "miss")
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        missed,
        [
            "buildx-version",
            "buildx-build",
            "binaries-unix",
            "binaries",
            "9"
        ]
    );
}

#[test]
fn unreachable_cache_repo_is_a_warning() {
    let reg = Registry::start();
    let engine = Dockerd::shared();
    let base = engine.base_image(&reg.addr);
    let dir = three_stage(&base);
    let image = format!("{}/team/warn:v1", reg.addr);
    let nowhere = format!("127.0.0.1:{}/cache/app", free_port());
    let out = bwc(&dir)
        .env("DOCKER_HOST", &engine.host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args([
            "--backend",
            "buildkit",
            "-t",
            &image,
            "--cache-repo",
            &nowhere,
            ".",
        ])
        .run();
    out.success().stderr_contains("WARN");
    let r: BuildResult = out.json();
    assert!(all(&r, "miss"));
    assert!(r.cache_read.is_empty());
    assert!(r.cache_written.is_empty());
    assert!(
        r.warnings.iter().any(|w| w.contains("cannot be read")),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings.iter().any(|w| w.contains("not used/written")),
        "{:?}",
        r.warnings
    );
    assert!(reg.has("team/warn", "v1"));
}

#[test]
fn refused_push_fails_with_its_own_code_and_builder_failure_passes_its_code() {
    let open = Registry::start();
    let engine = Dockerd::shared();
    let base = engine.base_image(&open.addr);
    let dir = three_stage(&base);
    let locked = Registry::start_with(RegistryAuth::Basic {
        user: "ci".into(),
        password: "secret".into(),
    });
    let image = format!("{}/team/app:v1", locked.addr);
    let out = bwc(&dir)
        .env("DOCKER_HOST", &engine.host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args(["--backend", "docker", "-t", &image, "."])
        .run();
    out.code(7).stdout_empty();
    let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.starts_with(&format!("build-with-cache: error: push of {image} failed")),
        "{last}"
    );

    // A failing RUN: exit 9 (an external tool failed) with the builder's own code in the message and in a
    // failure document on stdout, its output kept on stderr.
    dir.write(
        "Dockerfile",
        format!("FROM {base} AS one\nRUN echo about-to-fail && exit 3\nFROM one\n"),
    );
    let plain = Cmd::new(docker_cli())
        .env("DOCKER_HOST", &engine.host)
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(dir.path())
        .args(["build", "."])
        .run();
    plain.failure();
    let out = bwc(&dir)
        .env("DOCKER_HOST", &engine.host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args([
            "--backend",
            "docker",
            "-t",
            &format!("{}/team/fail:v1", open.addr),
            ".",
        ])
        .run();
    assert_eq!(out.code, Some(9), "{}", out.stderr);
    let code = plain.code.expect("docker build's exit code");
    assert!(
        out.stderr
            .contains(&format!("failed: the builder exited with code {code}")),
        "{}",
        out.stderr
    );
    out.stderr_contains("about-to-fail");
    out.stderr_contains("build-with-cache: error: building stage one failed");
    // The builder's code, machine-readable, on stdout.
    let doc: common::BuilderFailure = out.json();
    assert_eq!(doc.schema_version, 2);
    assert_eq!(doc.error.class, "builder");
    assert_eq!(doc.error.step, "building stage one");
    assert_eq!(doc.error.builder_exit_code, code);
    assert_eq!(doc.error.exit_code, 9);
    assert!(
        out.stderr.contains(&doc.error.message),
        "the document's message is the stderr line's: {}",
        doc.error.message
    );
}
