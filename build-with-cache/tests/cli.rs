//! build-with-cache without builds: the dry-run plan of every backend, `--target` pruning, and bad input (syntax errors, unknown stages, missing context, unreachable engine).

mod common;

use common::{Plan, bwc, three_stage};
use microplatform_common::testing::TestDir;

const IMAGE: &str = "127.0.0.1:5999/team/app:v1";

fn plan(dir: &TestDir, extra: &[&str]) -> Plan {
    let out = bwc(dir).args(extra).run();
    out.success();
    out.json()
}

#[test]
fn dry_run_plan_for_docker_classic_lists_stages_edges_refs_and_commands() {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    let p = plan(
        &dir,
        &[
            "--label",
            "a=b",
            "--dry-run",
            "-t",
            IMAGE,
            "--backend",
            "docker",
            "--branch",
            "feature/JIRA-7",
            "--build-arg",
            "X=1",
            "--no-cache-write",
            ".",
        ],
    );
    assert_eq!(p.schema_version, 1);
    assert!(p.dry_run);
    assert_eq!(p.backend, "docker");
    assert_eq!(p.image, IMAGE);
    assert_eq!(p.tags, [IMAGE]);
    assert_eq!(p.cache_repo, "127.0.0.1:5999/team/app");
    assert_eq!(p.branch, "feature/JIRA-7");
    assert_eq!(p.fallback_branch, "main");
    assert!(!p.cache_write);
    assert!(p.cache_write_refs.is_empty());
    let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deps", "build", "stage-3"]);
    assert_eq!(p.pruned, ["lint"]);
    assert_eq!(p.target, "stage-3");
    assert_eq!(p.stages[0].base, "127.0.0.1:5999/base/busybox:1");
    assert_eq!(p.stages[1].depends_on, ["deps"]);
    assert_eq!(p.stages[1].line, 8);
    let edges: Vec<_> = p
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        edges,
        [("deps", "build", "copy"), ("build", "stage-3", "copy")]
    );
    let deps = &p.stages[0];
    let own = deps.cache_ref.clone().unwrap();
    assert!(
        own.starts_with("127.0.0.1:5999/team/app:cache-feature-JIRA-7-"),
        "{own}"
    );
    assert!(own.ends_with("-deps"), "{own}");
    assert_eq!(
        deps.cache_from[1],
        "127.0.0.1:5999/team/app:cache-main-deps"
    );
    assert_eq!(p.cache_read.len(), 6);
    // Pull of every cache ref (if present), one build per stage with
    // --target and --iidfile, pass-through options in order, then the push.
    let pulls = p.commands.iter().filter(|c| c.step == "pull-cache").count();
    assert_eq!(pulls, 6);
    let builds: Vec<_> = p
        .commands
        .iter()
        .filter(|c| c.step.starts_with("build"))
        .collect();
    assert_eq!(builds.len(), 3);
    for b in &builds {
        assert_eq!(b.env.get("DOCKER_BUILDKIT").map(String::as_str), Some("0"));
        let argv = b.argv.join(" ");
        assert!(
            argv.contains(" build --label a=b --build-arg X=1 --cache-from "),
            "{argv}"
        );
        assert!(argv.contains("--iidfile <tmp>/"), "{argv}");
    }
    assert!(builds[0].argv.join(" ").contains("--target deps"));
    assert!(builds[1].argv.join(" ").contains("--target build"));
    assert!(!builds[2].argv.join(" ").contains("--target"));
    assert!(builds[2].argv.join(" ").contains(&format!("-t {IMAGE}")));
    assert!(
        p.commands
            .iter()
            .any(|c| c.step == "push" && c.argv.last().unwrap() == IMAGE)
    );
    assert!(!p.commands.iter().any(|c| c.step == "push-cache"));
}

#[test]
fn dry_run_target_prunes_stages() {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    let p = plan(
        &dir,
        &[
            "--dry-run",
            "--backend",
            "buildkit",
            "-t",
            IMAGE,
            "--target",
            "BUILD",
            ".",
        ],
    );
    let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deps", "build"]);
    assert_eq!(p.pruned, ["lint", "stage-3"]);
    assert!(p.stages[1].target);
    let build = p.commands.iter().find(|c| c.step == "build").unwrap();
    let argv = build.argv.join(" ");
    assert!(
        argv.contains("--network host --build-arg BUILDKIT_INLINE_CACHE=1"),
        "{argv}"
    );
    assert!(argv.contains("--target build"), "{argv}");
    assert_eq!(
        build.env.get("DOCKER_BUILDKIT").map(String::as_str),
        Some("1")
    );
    // Stage images are pushed for every stage.
    let pushes: Vec<_> = p
        .commands
        .iter()
        .filter(|c| c.step == "push-cache")
        .map(|c| c.argv.last().unwrap().as_str())
        .collect();
    assert_eq!(
        pushes,
        [
            "127.0.0.1:5999/team/app:cache-main-deps",
            "127.0.0.1:5999/team/app:cache-main-build"
        ]
    );
}

#[test]
fn dry_run_buildx_uses_registry_cache_with_mode_max() {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    let p = plan(
        &dir,
        &[
            "--dry-run",
            "--backend=buildx",
            "--branch",
            "dev",
            "--cache-repo",
            "127.0.0.1:5999/caches/app",
            "-t",
            IMAGE,
            "--source-hash",
            "abc123",
            ".",
        ],
    );
    assert_eq!(p.backend, "buildx");
    assert_eq!(
        p.source_ref.as_deref(),
        Some("127.0.0.1:5999/team/app:src-abc123")
    );
    let build = p.commands.iter().find(|c| c.step == "build").unwrap();
    let argv = build.argv.join(" ");
    assert!(argv.contains(" buildx build "), "{argv}");
    assert!(
        argv.contains(
            "--cache-from type=registry,ref=127.0.0.1:5999/caches/app:cache-dev-buildx \
             --cache-from type=registry,ref=127.0.0.1:5999/caches/app:cache-main-buildx"
        ),
        "{argv}"
    );
    assert!(
        argv.contains(
            "--cache-to type=registry,ref=127.0.0.1:5999/caches/app:cache-dev-buildx,\
             mode=max,image-manifest=true,oci-mediatypes=true"
        ),
        "{argv}"
    );
    assert!(argv.contains("--push"), "{argv}");
    // The skip check comes first, the src tag last.
    assert_eq!(p.commands[0].step, "registry-copy");
    assert!(p.commands[0].condition.is_some());
    assert_eq!(
        p.commands.last().unwrap().argv,
        ["registry-copy", IMAGE, "127.0.0.1:5999/team/app:src-abc123"]
    );
}

#[test]
fn dry_run_buildah_command_line() {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    let p = plan(
        &dir,
        &[
            "--dry-run",
            "--backend",
            "buildah",
            "--root",
            "/tmp/x/root",
            "-t",
            IMAGE,
            ".",
        ],
    );
    let build = p.commands.iter().find(|c| c.step == "build").unwrap();
    let argv = build.argv[1..].join(" ");
    assert!(
        argv.starts_with(
            "--storage-driver vfs --root /tmp/x/root bud --isolation chroot --layers \
             --cache-from 127.0.0.1:5999/team/app/layers-main \
             --cache-to 127.0.0.1:5999/team/app/layers-main --tls-verify=false"
        ),
        "{argv}"
    );
}

#[test]
fn dockerfile_from_stdin_and_heredocs() {
    let dir = TestDir::new();
    let out = bwc(&dir)
        .args(["--dry-run", "--backend", "docker", "-t", IMAGE, "-"])
        .stdin("FROM a:1 AS one\nRUN <<EOF\nFROM not-a-stage\nEOF\nFROM one\nRUN true\n")
        .run();
    out.success();
    let p: Plan = out.json();
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[1].base, "stage:one");
}

#[test]
fn syntax_error_names_file_and_line() {
    let dir = TestDir::new();
    dir.write("Dockerfile", "FROM a:1\nRUN true\nCOPPY x y\n");
    let out = bwc(&dir).args(["-t", IMAGE, "."]).run();
    out.code(3).stdout_empty().stderr_one_line();
    out.stderr_contains("Dockerfile:3: unknown instruction `COPPY`");
}

#[test]
fn unknown_from_stage_is_an_error() {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        "FROM a:1 AS one\nFROM a:1\nCOPY --from=2 /x /x\n",
    );
    let out = bwc(&dir).args(["-t", IMAGE, "--dry-run", "."]).run();
    out.code(4).stdout_empty().stderr_one_line();
    out.stderr_contains(":3: unknown stage \"2\"");
    dir.write(
        "Dockerfile",
        "FROM a:1 AS one\nFROM a:1\nCOPY --from=one /x /x\n",
    );
    let out = bwc(&dir).args(["-t", IMAGE, "--target", "nope", "."]).run();
    out.code(4).stdout_empty().stderr_one_line();
    out.stderr_contains("target stage \"nope\" not found");
}

#[test]
fn missing_context_and_missing_tag() {
    let dir = TestDir::new();
    let out = bwc(&dir).args(["-t", IMAGE, "no-such-dir"]).run();
    out.code(4).stdout_empty().stderr_one_line();
    out.stderr_contains("build context no-such-dir");
    let out = bwc(&dir).args(["-t", IMAGE, "."]).run();
    out.code(4).stdout_empty().stderr_one_line();
    out.stderr_contains("Dockerfile");
    let out = bwc(&dir).args(["."]).run();
    out.code(2).stdout_empty();
    out.stderr_contains("-t/--tag is required");
}

#[test]
fn unreachable_engine_is_one_line_with_its_own_code() {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    for backend in ["docker", "auto"] {
        let out = bwc(&dir)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .args(["--backend", backend, "-t", IMAGE, "."])
            .run();
        out.code(9).stdout_empty().stderr_one_line();
        out.stderr_contains("is not usable");
    }
}

#[test]
fn completions_and_man() {
    let dir = TestDir::new();
    bwc(&dir)
        .args(["--completions", "bash"])
        .run()
        .success()
        .stdout_contains("--cache-repo");
    bwc(&dir)
        .arg("--man")
        .run()
        .success()
        .stdout_contains(".TH");
    bwc(&dir)
        .arg("--help")
        .run()
        .success()
        .stdout_contains("Exit codes");
}

#[test]
fn git_url_context_is_cloned_with_ref_and_subdirectory() {
    let repo = TestDir::new();
    repo.git_init();
    repo.write("svc/Dockerfile", "FROM a:1 AS one\nFROM one AS two\n");
    repo.commit_all("first");
    repo.git(&["branch", "release"]);
    repo.write("svc/Dockerfile", "FROM a:1 AS changed\n");
    repo.commit_all("second");
    let bare = TestDir::new();
    let url = format!("file://{}/repo.git", bare.path().display());
    microplatform_common::testing::git_in(
        bare.path(),
        &[
            "clone",
            "-q",
            "--bare",
            &repo.path().display().to_string(),
            "repo.git",
        ],
    );
    let dir = TestDir::new();
    let p = plan(
        &dir,
        &[
            "--dry-run",
            "--backend",
            "docker",
            "-t",
            IMAGE,
            &format!("{url}#release:svc"),
        ],
    );
    let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(p.context.ends_with("/src/svc"), "{}", p.context);
    let out = bwc(&dir)
        .args(["--dry-run", "--backend", "docker", "-t", IMAGE])
        .arg(format!("{url}#no-such-ref"))
        .run();
    out.code(4).stdout_empty().stderr_one_line();
    out.stderr_contains("build context file://");
}
