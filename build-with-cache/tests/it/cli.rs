//! build-with-cache without builds: the dry-run plan of every backend, `--target` pruning, and bad input (syntax errors, unknown stages, missing context, unreachable engine).

use crate::common;

use common::{Plan, bwc, three_stage};
use microplatform_common::registry::OCI_MANIFEST;
use microplatform_test_support::TestDir;
use microplatform_test_support::registry::Registry;

const IMAGE: &str = "127.0.0.1:5999/team/app:v1";

fn plan(dir: &TestDir, extra: &[&str]) -> Plan {
    let out = bwc(dir).args(extra).run();
    out.success();
    out.json()
}

/// The docker-classic dry-run plan of the three-stage Dockerfile, with a label, a build arg and
/// `--no-cache-write` on branch `feature/JIRA-7`.
fn docker_classic_plan() -> Plan {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    plan(
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
    )
}

#[test]
fn dry_run_plan_for_docker_classic_names_the_image_cache_repo_branches_and_cache_write() {
    let p = docker_classic_plan();
    assert_eq!(p.schema_version, 2);
    assert!(p.dry_run);
    assert_eq!(p.backend, "docker");
    assert_eq!(p.image, IMAGE);
    assert_eq!(p.tags, [IMAGE]);
    assert_eq!(p.cache_repo, "127.0.0.1:5999/team/app");
    assert_eq!(p.branch, "feature/JIRA-7");
    assert_eq!(p.fallback_branch, "main");
    assert!(!p.cache_write);
    assert!(p.cache_write_refs.is_empty());
}

#[test]
fn dry_run_plan_for_docker_classic_lists_the_needed_stages_and_prunes_the_others() {
    let p = docker_classic_plan();
    let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deps", "build", "3"]);
    assert_eq!(p.pruned, ["lint"]);
    assert_eq!(p.target, "3");
    assert_eq!(p.stages[0].base, "127.0.0.1:5999/base/busybox:1");
    assert_eq!(p.stages[1].depends_on, ["deps"]);
    assert_eq!(p.stages[1].line, 8);
}

#[test]
fn dry_run_plan_for_docker_classic_lists_the_copy_edges() {
    let p = docker_classic_plan();
    let edges: Vec<_> = p
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(edges, [("deps", "build", "copy"), ("build", "3", "copy")]);
}

#[test]
fn dry_run_plan_for_docker_classic_reads_per_branch_stage_refs_then_the_fallback_branchs() {
    let p = docker_classic_plan();
    let deps = &p.stages[0];
    let own = deps.cache_ref.clone().unwrap();
    assert!(
        own.starts_with("127.0.0.1:5999/team/app:cache-feature-JIRA-7-"),
        "{own}"
    );
    assert!(own.ends_with("--deps"), "{own}");
    assert_eq!(
        deps.cache_from[1],
        "127.0.0.1:5999/team/app:cache-main--deps"
    );
    assert_eq!(p.cache_read.len(), 6);
}

#[test]
fn dry_run_plan_for_docker_classic_pulls_every_cache_ref_and_builds_each_stage_with_its_target() {
    let p = docker_classic_plan();
    // Pull of every cache ref (if present), one build per stage with
    // --target and --iidfile, pass-through options in order.
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
}

#[test]
fn dry_run_plan_for_docker_classic_pushes_the_image_but_no_cache_without_cache_write() {
    let p = docker_classic_plan();
    assert!(
        p.commands
            .iter()
            .any(|c| c.step == "push" && c.argv.last().unwrap() == IMAGE)
    );
    assert!(!p.commands.iter().any(|c| c.step == "push-cache"));
}

/// The buildkit dry-run plan of the three-stage Dockerfile with `--target BUILD`.
fn target_plan() -> Plan {
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    plan(
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
    )
}

#[test]
fn dry_run_target_prunes_the_stages_it_does_not_need() {
    let p = target_plan();
    let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deps", "build"]);
    assert_eq!(p.pruned, ["lint", "3"]);
    assert!(p.stages[1].target);
}

#[test]
fn dry_run_target_is_built_by_buildkit_with_inline_cache() {
    let p = target_plan();
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
}

#[test]
fn dry_run_target_pushes_stage_images_on_a_miss_or_when_the_registry_side_copy_fails() {
    let p = target_plan();
    // Stage images are written for every stage: pushed on a miss, copied
    // registry-side on a hit from the fallback; the target's is copied
    // registry-side from the pushed image, pushed only if that fails.
    let pushes: Vec<_> = p
        .commands
        .iter()
        .filter(|c| c.step == "push-cache")
        .map(|c| c.argv.last().unwrap().as_str())
        .collect();
    let conditions: Vec<_> = p
        .commands
        .iter()
        .filter(|c| c.step == "push-cache")
        .map(|c| c.condition.clone().unwrap())
        .collect();
    assert_eq!(
        conditions,
        [
            "deps is a cache miss",
            "the registry-side copy to 127.0.0.1:5999/team/app:cache-main--build failed"
        ]
    );
    assert_eq!(
        pushes,
        [
            "127.0.0.1:5999/team/app:cache-main--deps",
            "127.0.0.1:5999/team/app:cache-main--build"
        ]
    );
}

#[test]
fn dry_run_target_steps_check_build_copy_and_push_in_order() {
    let p = target_plan();
    let steps: Vec<_> = p.commands.iter().map(|c| c.step.as_str()).collect();
    assert_eq!(
        steps,
        [
            "registry-check",
            "build-stage",
            "build",
            "inspect",
            "registry-copy",
            "tag",
            "push-cache",
            "inspect",
            "registry-copy",
            "push",
            "registry-digest",
            "registry-copy",
            "tag",
            "push-cache"
        ]
    );
}

/// A local registry holding the base image, and the buildx dry-run plan (branch `dev`, a separate
/// cache repository, a source hash) of the three-stage Dockerfile built on it.
struct Buildx {
    reg: Registry,
    dir: TestDir,
    base: String,
    base_digest: String,
    image: String,
    plan: Plan,
}

fn buildx_plan() -> Buildx {
    let reg = Registry::start();
    let (base_digest, _) = reg.push_image("base/busybox", "1", OCI_MANIFEST, "v1");
    let base = format!("{}/base/busybox:1", reg.addr);
    let dir = three_stage(&base);
    let image = format!("{}/team/app:v1", reg.addr);
    let plan = plan(
        &dir,
        &[
            "--dry-run",
            "--backend=buildx",
            "--branch",
            "dev",
            "--cache-repo",
            "127.0.0.1:5999/caches/app",
            "-t",
            &image,
            "--source-hash",
            "abc123",
            ".",
        ],
    );
    Buildx {
        reg,
        dir,
        base,
        base_digest,
        image,
        plan,
    }
}

#[test]
fn dry_run_buildx_skips_existing_by_a_content_key_of_sources_dockerfile_and_needed_images() {
    let Buildx {
        base,
        base_digest,
        plan: p,
        ..
    } = buildx_plan();
    assert_eq!(p.backend, "buildx");
    assert!(p.skip_existing);
    let inputs = p.content_key_inputs.as_ref().unwrap();
    assert_eq!(
        inputs.domain,
        "dev.microplatform.build-with-cache.content-key"
    );
    assert_eq!(inputs.version, 1);
    assert_eq!(inputs.sources.kind, "source-hash");
    assert_eq!(inputs.sources.hash, "abc123");
    assert!(inputs.dockerfile.starts_with("sha256:"));
    // Only the needed stages' images (`lint` is pruned but uses the same base).
    assert_eq!(inputs.images, [(base, Some(base_digest))].into());
}

#[test]
fn dry_run_buildx_content_ref_is_the_image_repository_tagged_with_the_key() {
    let b = buildx_plan();
    let key = b.plan.content_key.clone().unwrap();
    let content_ref = format!(
        "{}/team/app:content-{}",
        b.reg.addr,
        key.strip_prefix("sha256:").unwrap()
    );
    assert_eq!(b.plan.content_ref.as_deref(), Some(content_ref.as_str()));
}

#[test]
fn dry_run_buildx_uses_registry_cache_with_mode_max_and_labels_the_content_key() {
    let p = buildx_plan().plan;
    let key = p.content_key.clone().unwrap();
    let build = p.commands.iter().find(|c| c.step == "build").unwrap();
    let argv = build.argv.join(" ");
    assert!(argv.contains(" buildx build "), "{argv}");
    assert!(
        argv.contains(&format!("--label dev.microplatform.content-key={key}")),
        "{argv}"
    );
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
}

#[test]
fn dry_run_buildx_checks_for_the_content_ref_first_and_copies_the_image_to_it_last() {
    let Buildx {
        reg,
        image,
        plan: p,
        ..
    } = buildx_plan();
    let content_ref = format!(
        "{}/team/app:content-{}",
        reg.addr,
        p.content_key
            .as_deref()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap()
    );
    // The skip check comes first, the content ref last.
    assert_eq!(p.commands[0].step, "registry-copy");
    assert!(p.commands[0].condition.is_some());
    assert_eq!(
        p.commands.last().unwrap().argv,
        ["registry-copy", image.as_str(), content_ref.as_str()]
    );
}

#[test]
fn dry_run_buildx_content_key_changes_with_a_build_arg_a_target_or_a_platform() {
    let Buildx {
        dir,
        image,
        plan: p,
        ..
    } = buildx_plan();
    let key = p.content_key.unwrap();
    // The same plan with a build arg, a target or a platform: another key.
    for extra in [
        &["--build-arg", "X=1"][..],
        &["--target", "build"],
        &["--platform", "linux/amd64"],
    ] {
        let other = plan(
            &dir,
            &[
                &["--dry-run", "--backend=buildx", "-t", &image][..],
                extra,
                &["--source-hash", "abc123", "."],
            ]
            .concat(),
        );
        assert_ne!(
            other.content_key.as_deref(),
            Some(key.as_str()),
            "{extra:?}"
        );
    }
}

#[test]
fn dry_run_buildx_with_an_unreachable_base_has_no_content_key_so_never_skips() {
    // An unreachable base: no key, so no skip (never a stale image).
    let dir = three_stage("127.0.0.1:5999/base/busybox:1");
    let p = plan(
        &dir,
        &[
            "--dry-run",
            "--backend=buildx",
            "-t",
            IMAGE,
            "--source-hash",
            "abc123",
            ".",
        ],
    );
    assert!(p.content_key.is_none());
    assert!(p.content_ref.is_none());
    let inputs = p.content_key_inputs.unwrap();
    assert_eq!(
        inputs.images,
        [("127.0.0.1:5999/base/busybox:1".to_string(), None)].into()
    );
    assert!(!p.commands.iter().any(|c| c.step == "registry-copy"));
}

#[test]
fn skip_existing_without_a_source_hash_hashes_the_context_honouring_dockerignore() {
    let reg = Registry::start();
    reg.push_image("base/busybox", "1", OCI_MANIFEST, "v1");
    let dir = three_stage(&format!("{}/base/busybox:1", reg.addr));
    dir.write(".dockerignore", "*.log\nnode_modules\n");
    let image = format!("{}/team/app:v1", reg.addr);
    let key = || -> (String, String) {
        let p = plan(
            &dir,
            &[
                "--dry-run",
                "--backend",
                "buildkit",
                "-t",
                &image,
                "--skip-existing",
                ".",
            ],
        );
        let i = p.content_key_inputs.unwrap();
        assert_eq!(i.sources.kind, "context");
        (i.sources.hash, p.content_key.unwrap())
    };
    let (h0, k0) = key();
    assert!(h0.starts_with("sha256:"), "{h0}");
    dir.write("build.log", "noise");
    dir.write("node_modules/x/index.js", "noise");
    assert_eq!(
        key(),
        (h0.clone(), k0.clone()),
        "ignored files changed the key"
    );
    dir.write("app.txt", "changed\n");
    let (h1, k1) = key();
    assert_ne!(h1, h0);
    assert_ne!(k1, k0);
    // Without --skip-existing or --source-hash: no key.
    let p = plan(
        &dir,
        &["--dry-run", "--backend", "buildkit", "-t", &image, "."],
    );
    assert!(!p.skip_existing);
    assert!(p.content_key_inputs.is_none());
}

/// A Dockerfile with unnamed stages 0, 2 and 3 and a stage named `stage-0`, copying by index and name.
fn unnamed_stages() -> TestDir {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        "FROM a:1\nRUN echo zero > /0\n\
         FROM a:1 AS stage-0\nRUN echo named > /n\n\
         FROM a:1\nCOPY --from=0 /0 /0\n\
         FROM a:1\nCOPY --from=1 /n /n\nCOPY --from=2 /0 /0\nCOPY --from=stage-0 /n /m\n",
    );
    dir
}

/// The dry-run plan of `unnamed_stages` on every backend.
fn unnamed_stage_plans() -> Vec<(&'static str, Plan)> {
    let dir = unnamed_stages();
    ["buildkit", "docker", "buildah"]
        .into_iter()
        .map(|backend| {
            let p = plan(&dir, &["--dry-run", "--backend", backend, "-t", IMAGE, "."]);
            (backend, p)
        })
        .collect()
}

#[test]
fn unnamed_stages_are_named_by_index_and_tracked_on_every_backend() {
    for (backend, p) in unnamed_stage_plans() {
        let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["0", "stage-0", "2", "3"], "{backend}");
        assert_eq!(p.target, "3", "{backend}");
        assert!(p.stages.iter().all(|s| s.tracked), "{backend}");
    }
}

#[test]
fn unnamed_stages_are_cached_by_index_without_colliding_with_stage_names() {
    for (backend, p) in unnamed_stage_plans() {
        let refs: Vec<_> = p
            .stages
            .iter()
            .map(|s| s.cache_ref.clone().unwrap())
            .collect();
        assert_eq!(
            refs,
            [
                "127.0.0.1:5999/team/app:cache-main--0",
                "127.0.0.1:5999/team/app:cache-main--stage-0",
                "127.0.0.1:5999/team/app:cache-main--2",
                "127.0.0.1:5999/team/app:cache-main--3",
            ],
            "{backend}"
        );
    }
}

#[test]
fn unnamed_stages_are_built_by_generated_targets_from_a_rewritten_dockerfile() {
    for (backend, p) in unnamed_stage_plans() {
        let targets: Vec<_> = p.stages.iter().map(|s| s.build_target.as_deref()).collect();
        assert_eq!(
            targets,
            [
                Some("bwc-stage-0"),
                Some("stage-0"),
                Some("bwc-stage-2"),
                None
            ],
            "{backend}"
        );
        assert_eq!(p.build_dockerfile, "<tmp>/Dockerfile", "{backend}");
        let builds: Vec<_> = p
            .commands
            .iter()
            .filter(|c| c.step.starts_with("build"))
            .collect();
        assert_eq!(builds.len(), 4, "{backend}");
        for b in &builds {
            assert!(
                b.argv.join(" ").contains("-f <tmp>/Dockerfile"),
                "{:?}",
                b.argv
            );
        }
    }
}

#[test]
fn dry_run_plans_one_job_by_default_on_every_backend() {
    for (backend, p) in unnamed_stage_plans() {
        assert_eq!(p.jobs.to_string(), "1", "{backend}");
    }
}

#[test]
fn dry_run_jobs_option_sets_the_parallel_builds() {
    let p = plan(
        &unnamed_stages(),
        &[
            "--dry-run",
            "--backend",
            "buildkit",
            "--jobs",
            "3",
            "-t",
            IMAGE,
            ".",
        ],
    );
    assert_eq!(p.jobs, 3);
}

#[test]
fn dry_run_jobs_zero_is_a_usage_error() {
    bwc(&unnamed_stages())
        .args(["--dry-run", "--jobs", "0", "-t", IMAGE, "."])
        .run()
        .code(2);
}

#[test]
fn a_dockerfile_whose_stages_are_all_named_is_given_to_the_builder_as_it_is() {
    // A Dockerfile whose stages are all named is given to the builder as it is.
    let named = three_stage("a:1");
    let p = plan(
        &named,
        &[
            "--dry-run",
            "--backend",
            "buildkit",
            "--target",
            "build",
            "-t",
            IMAGE,
            ".",
        ],
    );
    assert_eq!(p.build_dockerfile, p.dockerfile);
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
    // The subcommand shape of every tool, and the older flags.
    for args in [&["completions", "bash"][..], &["--completions", "bash"]] {
        bwc(&dir)
            .args(args)
            .run()
            .success()
            .stdout_contains("--cache-repo");
    }
    for args in [&["man"][..], &["--man"]] {
        bwc(&dir).args(args).run().success().stdout_contains(".TH");
    }
    bwc(&dir)
        .args(["completions", "tcsh"])
        .run()
        .code(2)
        .stderr_contains("completions SHELL");
    for flag in ["-V", "--version"] {
        bwc(&dir)
            .arg(flag)
            .run()
            .success()
            .stdout_contains("build-with-cache 0.");
    }
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
    microplatform_test_support::git_in(
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
