//! build-with-cache against real components: Debian's dockerd (classic builder and `BuildKit`), buildah (vfs, chroot) and a real registry.
//! The key test per backend: build a three-stage Dockerfile, throw the engine's storage away, build again: every stage is a cache hit and the final image digest is the same.

mod common;

use common::{BuildResult, bwc, states, three_stage};
use microplatform_common::testing::dockerd::{Dockerd, docker_cli};
use microplatform_common::testing::registry::{Registry, RegistryAuth};
use microplatform_common::testing::{Cmd, TestDir, free_port, require};

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
            ("stage-3".to_string(), "miss".to_string())
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
            s.hit_from.as_deref().unwrap().contains(":cache-main-"),
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
    let src = format!("{}/team/skip:src-h1", reg.addr);
    assert_eq!(built.source_ref.as_deref(), Some(src.as_str()));
    assert!(built.cache_written.contains(&src));
    assert!(reg.has("team/skip", "src-h1"));

    // Same sources: no engine needed (DOCKER_HOST points nowhere), nothing built.
    let v2 = format!("{}/team/skip:v2", reg.addr);
    let v2b = format!("{}/team/skip:latest", reg.addr);
    let out = bwc(&dir)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["-t", &v2, "-t", &v2b, "--source-hash", "h1", "."])
        .run();
    out.success();
    let skipped: BuildResult = out.json();
    assert!(skipped.skipped);
    assert!(skipped.backend.is_none());
    assert!(skipped.stages.is_empty());
    assert_eq!(skipped.digest, built.digest);
    assert_eq!(skipped.tags, [v2.clone(), v2b]);
    for tag in ["v2", "latest"] {
        let (status, digest, _) = reg.get_manifest("team/skip", tag);
        assert_eq!(status, 200);
        assert_eq!(digest.as_deref(), Some(built.digest.as_str()));
    }

    // Other sources: built (here the engine is unreachable, so it fails with 9).
    let out = bwc(&dir)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["-t", &v2, "--source-hash", "h2", "."])
        .run();
    out.code(9).stdout_empty();
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

    // A failing RUN: the builder's own exit code, its output kept on stderr.
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
    assert_eq!(out.code, plain.code, "{}", out.stderr);
    out.stdout_empty().stderr_contains("about-to-fail");
    out.stderr_contains("build-with-cache: error: building stage one failed");
}
