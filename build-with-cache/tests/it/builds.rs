//! build-with-cache against real components: Debian's dockerd (classic builder and `BuildKit`), buildah (vfs, chroot) and a real registry.
//! The key test per backend: build a three-stage Dockerfile, throw the engine's storage away, build again: every stage is a cache hit and the final image digest is the same.

use crate::common;

use common::{BuildResult, bwc, states, three_stage};
use microplatform_test_support::dockerd::{Dockerd, ImageCleanup, docker_cli};
use microplatform_test_support::registry::{Registry, RegistryAuth};
use microplatform_test_support::{Cmd, Output, TestDir, free_port, require};

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

/// A three-stage build with `--source-hash h1` (classic builder, shared engine) tagged `v1` in a
/// registry of its own, and its result.
struct SourceHashBuilt {
    reg: Registry,
    engine: &'static Dockerd,
    dir: TestDir,
    v1: String,
    built: BuildResult,
}

/// [`SourceHashBuilt`]: the build, with `--iidfile out/image.id`.
fn build_with_source_hash() -> SourceHashBuilt {
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
    SourceHashBuilt {
        reg,
        engine,
        dir,
        v1,
        built,
    }
}

/// `build-with-cache -t TAGS… --source-hash HASH .` in the build's context with no engine
/// (`DOCKER_HOST` points nowhere).
fn run_without_an_engine(s: &SourceHashBuilt, tags: &[&str], hash: &str) -> Output {
    let mut cmd = bwc(&s.dir).env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    for tag in tags {
        cmd = cmd.args(["-t", tag]);
    }
    cmd.args(["--source-hash", hash, "."]).run()
}

/// The source-hash skip: a build records its content key; the same sources later are not built
/// but tagged registry-side, with no engine; other sources are built.
///
/// The steps share one scenario: each needs the build before it (an engine build of three
/// stages), and the skip's checks need the skip's run.
#[test]
fn source_hash_skip_tags_registry_side_without_an_engine() {
    let s = build_with_source_hash();
    a_first_build_is_not_skipped_and_writes_the_iidfile(&s);
    the_build_pushes_its_content_ref(&s);
    the_key_covers_the_source_hash_and_the_base_image(&s);
    the_content_key_is_on_the_image_as_a_label(&s);
    let v2 = same_sources_are_skipped_without_an_engine(&s);
    the_skip_tags_every_tag_registry_side(&s);
    other_sources_are_built_so_need_the_engine(&s, &v2);
}

/// Nothing to skip the first time: built, and the image id written to `--iidfile`.
fn a_first_build_is_not_skipped_and_writes_the_iidfile(s: &SourceHashBuilt) {
    assert!(!s.built.skipped);
    assert!(s.dir.read("out/image.id").starts_with("sha256:"));
}

/// The build pushes its content ref, `content-<key hex>` in the image's repository.
fn the_build_pushes_its_content_ref(s: &SourceHashBuilt) {
    let key = s.built.content_key.clone().unwrap();
    let hex = key.strip_prefix("sha256:").unwrap();
    let content_ref = format!("{}/team/skip:content-{hex}", s.reg.addr);
    assert_eq!(s.built.content_ref.as_deref(), Some(content_ref.as_str()));
    assert!(s.built.cache_written.contains(&content_ref));
    assert!(s.reg.has("team/skip", &format!("content-{hex}")));
}

/// The key's inputs are the given source hash and the one base image.
fn the_key_covers_the_source_hash_and_the_base_image(s: &SourceHashBuilt) {
    let inputs = s.built.content_key_inputs.as_ref().unwrap();
    assert_eq!(inputs.sources.hash, "h1");
    assert_eq!(inputs.images.len(), 1);
}

/// The key is on the image as a label.
fn the_content_key_is_on_the_image_as_a_label(s: &SourceHashBuilt) {
    let label = s.engine.run(&[
        "image",
        "inspect",
        "--format",
        "{{index .Config.Labels \"dev.microplatform.content-key\"}}",
        &s.v1,
    ]);
    assert_eq!(Some(label.trim()), s.built.content_key.as_deref());
}

/// Same sources: no engine needed, nothing built, the build's digest, key and inputs reported
/// for the new tags (one in another repository); returns the first new tag.
fn same_sources_are_skipped_without_an_engine(s: &SourceHashBuilt) -> String {
    let v2 = format!("{}/team/skip:v2", s.reg.addr);
    let v2b = format!("{}/team/skip:latest", s.reg.addr);
    let v2c = format!("{}/team/mirror:v2", s.reg.addr);
    let out = run_without_an_engine(s, &[&v2, &v2b, &v2c], "h1");
    out.success();
    let skipped: BuildResult = out.json();
    assert!(skipped.skipped);
    assert!(skipped.backend.is_none());
    assert!(skipped.stages.is_empty());
    assert_eq!(skipped.digest, s.built.digest);
    assert_eq!(skipped.content_key, s.built.content_key);
    assert_eq!(
        skipped.content_key_inputs.as_ref(),
        s.built.content_key_inputs.as_ref()
    );
    assert_eq!(skipped.tags, [v2.clone(), v2b, v2c]);
    v2
}

/// The skip's tags are in the registry as the built image; the one in another repository got
/// the layers by a cross-repository mount.
fn the_skip_tags_every_tag_registry_side(s: &SourceHashBuilt) {
    for (repo, tag) in [
        ("team/skip", "v2"),
        ("team/skip", "latest"),
        ("team/mirror", "v2"),
    ] {
        let (status, digest, _) = s.reg.get_manifest(repo, tag);
        assert_eq!(status, 200, "{repo}:{tag}");
        assert_eq!(digest.as_deref(), Some(s.built.digest.as_str()));
    }
}

/// Other sources: built (here the engine is unreachable, so it fails with 9).
fn other_sources_are_built_so_need_the_engine(s: &SourceHashBuilt, v2: &str) {
    run_without_an_engine(s, &[v2], "h2").code(9).stdout_empty();
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

/// Two images built with the same `--source-hash` (`BuildKit`, shared engine): the three-stage
/// `app` on the base image, the `tool` on `base/other:1`, at first the same image under a tag of
/// its own.
struct TwoBases {
    /// Dropped first: the engine's images of the registry go, also when a step failed.
    _cleanup: ImageCleanup<'static>,
    reg: Registry,
    engine: &'static Dockerd,
    base: String,
    app: TestDir,
    tool: TestDir,
}

/// [`TwoBases`]: both bases pushed, nothing built yet.
fn two_bases() -> TwoBases {
    let reg = Registry::start();
    let engine = Dockerd::shared();
    let cleanup = ImageCleanup {
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
    TwoBases {
        _cleanup: cleanup,
        reg,
        engine,
        base,
        app,
        tool,
    }
}

impl TwoBases {
    /// Build the context `dir` as `team/NAME:REV` with the same source hash as ever.
    fn build(&self, dir: &TestDir, name: &str, rev: &str) -> BuildResult {
        let tag = format!("{}/team/{name}:{rev}", self.reg.addr);
        let args = ["-t", &tag, "--source-hash", "same-sources"];
        docker_build(dir, self.engine, "buildkit", &args)
    }

    /// Build the app as `team/app:REV`.
    fn app(&self, rev: &str) -> BuildResult {
        self.build(&self.app, "app", rev)
    }

    /// Build the tool as `team/tool:REV`.
    fn tool(&self, rev: &str) -> BuildResult {
        self.build(&self.tool, "tool", rev)
    }
}

/// A new image under the app's base tag rebuilds the app, with another key; the tool, built from
/// another base, is still skipped.
///
/// The steps share one scenario: each needs the builds and the base image push before it (engine
/// builds).
#[test]
fn a_new_base_image_under_the_same_tag_rebuilds_exactly_the_images_built_from_it() {
    let s = two_bases();
    let (first, tool_first) = first_builds_are_not_skipped(&s);
    the_same_sources_on_the_same_bases_are_skipped(&s, &first);
    push_new_image_under_same_tag(s.engine, &s.base, "v2");
    let rebuilt = a_new_base_rebuilds_the_app(&s);
    the_rebuild_has_another_key_and_digest(&first, &rebuilt);
    an_image_from_another_base_is_still_skipped(&s, &tool_first);
    the_rebuilt_app_is_skipped_from_now_on(&s);
}

/// Nothing to skip the first time: the app and the tool are built; returns both results.
fn first_builds_are_not_skipped(s: &TwoBases) -> (BuildResult, BuildResult) {
    let first = s.app("r1");
    assert!(!first.skipped);
    let tool_first = s.tool("r1");
    assert!(!tool_first.skipped);
    (first, tool_first)
}

/// The same sources on the same bases: both skipped, the app as its first build.
fn the_same_sources_on_the_same_bases_are_skipped(s: &TwoBases, first: &BuildResult) {
    let again = s.app("r2");
    assert!(again.skipped);
    assert_eq!(again.digest, first.digest);
    assert!(s.tool("r2").skipped);
}

/// The app, built from the base whose tag now names a new image, is built again.
fn a_new_base_rebuilds_the_app(s: &TwoBases) -> BuildResult {
    let rebuilt = s.app("r3");
    assert!(!rebuilt.skipped, "a new base image must rebuild");
    rebuilt
}

/// The rebuilt app has another content key, digest and base image digest.
fn the_rebuild_has_another_key_and_digest(first: &BuildResult, rebuilt: &BuildResult) {
    assert_ne!(rebuilt.content_key, first.content_key);
    assert_ne!(rebuilt.digest, first.digest);
    let base_digests = |r: &BuildResult| -> Vec<Option<String>> {
        let inputs = r.content_key_inputs.as_ref().unwrap();
        inputs.images.values().cloned().collect()
    };
    assert_ne!(base_digests(rebuilt), base_digests(first));
}

/// The tool, not built from the new base, is still skipped, as its first build.
fn an_image_from_another_base_is_still_skipped(s: &TwoBases, tool_first: &BuildResult) {
    let tool_again = s.tool("r3");
    assert!(tool_again.skipped, "an image not built from the new base");
    assert_eq!(tool_again.digest, tool_first.digest);
}

/// The rebuilt app is skipped from now on.
fn the_rebuilt_app_is_skipped_from_now_on(s: &TwoBases) {
    assert!(s.app("r4").skipped);
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

/// The [`wide_graph`] context on the base image of a registry of its own, and its image's tag.
struct WideGraph {
    _reg: Registry,
    dir: TestDir,
    image: String,
}

/// [`WideGraph`]: nothing built yet.
fn wide_graph_context() -> WideGraph {
    let reg = Registry::start();
    let base = Dockerd::shared().base_image(&reg.addr);
    let dir = wide_graph(&base);
    let image = format!("{}/team/wide:v1", reg.addr);
    WideGraph {
        _reg: reg,
        dir,
        image,
    }
}

/// The wide graph built with `BuildKit`, cached, rebuilt from the cache, then changed in one
/// branch.
///
/// The steps share one scenario: each build needs the cache the one before it wrote, and each
/// is an engine build of ten stages on a fresh engine.
#[test]
fn buildkit_wide_graph_builds_within_the_safe_parallelism_and_caches_unnamed_stages() {
    let w = wide_graph_context();
    let first = a_fresh_engine_builds_one_stage_at_a_time_and_survives(&w);
    every_stage_is_reported_in_the_dockerfiles_order(&first);
    every_stage_misses_into_a_cache_ref_of_its_own(&first);
    a_fresh_engine_hits_every_stage_the_unnamed_one_included(&w, &first);
    a_change_in_one_branch_rebuilds_that_branch_only(&w);
}

/// Debian's dockerd 20.10 builds one stage at a time by default, and the engine survives the
/// build; returns the result.
fn a_fresh_engine_builds_one_stage_at_a_time_and_survives(w: &WideGraph) -> BuildResult {
    let engine = Dockerd::fresh();
    let out = bwc(&w.dir)
        .env("DOCKER_HOST", &engine.host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args(["--backend", "buildkit", "-t", &w.image, "."])
        .run();
    eprintln!("{}", out.stderr);
    out.success();
    out.stderr_contains("(1 at a time)");
    engine.run(&["version"]);
    out.json()
}

/// Every stage is in the result in the Dockerfile's order, unnamed ones by index.
fn every_stage_is_reported_in_the_dockerfiles_order(first: &BuildResult) {
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
}

/// The first build misses every stage, each cached under a ref of its own.
fn every_stage_misses_into_a_cache_ref_of_its_own(first: &BuildResult) {
    assert!(all(first, "miss"), "{:?}", states(first));
    let refs: std::collections::BTreeSet<_> =
        first.stages.iter().map(|s| s.cache_ref.clone()).collect();
    assert_eq!(refs.len(), 10, "cache refs must be distinct: {refs:?}");
}

/// A fresh engine: every stage, the unnamed one included, is a cache hit, nothing is written,
/// the image is the same.
fn a_fresh_engine_hits_every_stage_the_unnamed_one_included(w: &WideGraph, first: &BuildResult) {
    let engine = Dockerd::fresh();
    let second = docker_build(&w.dir, &engine, "buildkit", &["-t", &w.image]);
    assert!(all(&second, "hit"), "{:?}", states(&second));
    assert_eq!(second.digest, first.digest);
    assert!(
        second.cache_written.is_empty(),
        "{:?}",
        second.cache_written
    );
}

/// A change in one branch of the graph rebuilds that branch only. (On a fresh engine again:
/// dockerd 20.10's `BuildKit` cannot re-key a `COPY --from` of a stage it took lazily from an
/// inline cache in an earlier build, even with a plain `docker build`; see the docs.)
fn a_change_in_one_branch_rebuilds_that_branch_only(w: &WideGraph) {
    let engine = Dockerd::fresh();
    w.dir.write("version.txt", "v2\n");
    let third = docker_build(&w.dir, &engine, "buildkit", &["-t", &w.image]);
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

/// The shared engine's base image in `open`, a registry of its own, and a three-stage context on
/// it.
fn three_stage_on_the_shared_engine() -> (Registry, String, TestDir) {
    let open = Registry::start();
    let base = Dockerd::shared().base_image(&open.addr);
    let dir = three_stage(&base);
    (open, base, dir)
}

/// `build-with-cache --backend docker -t IMAGE .` in `dir` on the shared engine.
fn classic_build(dir: &TestDir, image: &str) -> Output {
    bwc(dir)
        .env("DOCKER_HOST", &Dockerd::shared().host)
        .env("BUILD_WITH_CACHE_DOCKER", docker_cli())
        .args(["--backend", "docker", "-t", image, "."])
        .run()
}

/// A push the registry refuses (no credentials): exit 7, its own error last on stderr.
#[test]
fn refused_push_fails_with_its_own_code() {
    let (_open, _, dir) = three_stage_on_the_shared_engine();
    let locked = Registry::start_with(RegistryAuth::Basic {
        user: "ci".into(),
        password: "secret".into(),
    });
    let image = format!("{}/team/app:v1", locked.addr);
    let out = classic_build(&dir, &image);
    out.code(7).stdout_empty();
    let last = out.stderr.lines().rfind(|l| !l.trim().is_empty()).unwrap();
    assert!(
        last.starts_with(&format!("build-with-cache: error: push of {image} failed")),
        "{last}"
    );
}

/// A Dockerfile whose `RUN` prints `about-to-fail` and exits 3: the exit code of a plain
/// `docker build` of it (classic builder, which must fail), and build-with-cache's run of it.
fn failing_run() -> (i32, Output) {
    let (open, base, dir) = three_stage_on_the_shared_engine();
    dir.write(
        "Dockerfile",
        format!("FROM {base} AS one\nRUN echo about-to-fail && exit 3\nFROM one\n"),
    );
    let plain = Cmd::new(docker_cli())
        .env("DOCKER_HOST", &Dockerd::shared().host)
        .env("DOCKER_BUILDKIT", "0")
        .current_dir(dir.path())
        .args(["build", "."])
        .run();
    plain.failure();
    let code = plain.code.expect("docker build's exit code");
    (
        code,
        classic_build(&dir, &format!("{}/team/fail:v1", open.addr)),
    )
}

/// A failing `RUN`: exit 9 (an external tool failed) with the builder's own code in the message,
/// its output kept on stderr.
#[test]
fn builder_failure_exits_9_with_the_builders_code_in_the_message() {
    let (code, out) = failing_run();
    assert_eq!(out.code, Some(9), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("failed: the builder exited with code {code}")),
        "{}",
        out.stderr
    );
    out.stderr_contains("about-to-fail");
    out.stderr_contains("build-with-cache: error: building stage one failed");
}

/// A failing `RUN`: the builder's code, machine-readable, in a failure document on stdout whose
/// message is the stderr line's.
#[test]
fn builder_failure_document_on_stdout_carries_the_builders_code() {
    let (code, out) = failing_run();
    assert_eq!(out.code, Some(9), "{}", out.stderr);
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
