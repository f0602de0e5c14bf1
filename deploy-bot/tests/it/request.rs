//! `deploy-bot request` against real git (bare repos on disk and `git daemon`) and the fake GitHub API.

use crate::support;

use std::time::Duration;

use microplatform_test_support::{Output, TestDir, free_port, git_in, require, wait_until};
use serde::Deserialize;
use support::fake_github::FakeGitHub;
use support::{ClusterRepo, IMAGE, deployment};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Pushed {
    schema_version: u32,
    branch: String,
    commit: String,
    pull_request: Option<Pr>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Pr {
    number: u64,
    url: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Unchanged {
    schema_version: u32,
    unchanged: bool,
}

const TOKEN: &str = "ghp_test_token_do_not_print";

/// `request` for `team` from stdin, with a sha and two labels, opening a pull request on the fake GitHub.
fn stdin_request(repo: &ClusterRepo, gh: &FakeGitHub) -> Output {
    repo.request("team")
        .args(["--sha", "abc123"])
        .args([
            "--label",
            "app=web",
            "--label",
            "pipeline=42",
            "--api-url",
            &gh.url(),
        ])
        .env("GITHUB_TOKEN", TOKEN)
        .stdin(deployment("team", "web", IMAGE))
        .run()
}

/// A fresh cluster repo and fake GitHub, after one successful [`stdin_request`].
fn after_stdin_request() -> (ClusterRepo, FakeGitHub, Pushed) {
    let repo = ClusterRepo::new();
    let gh = FakeGitHub::start("acme", "cluster", &repo.bare, TOKEN);
    let out = stdin_request(&repo, &gh);
    out.success();
    assert!(!out.stderr.contains(TOKEN) && !out.stdout.contains(TOKEN));
    let p: Pushed = out.json();
    (repo, gh, p)
}

#[test]
fn stdin_request_opens_a_pull_request_from_the_sha_branch_without_printing_the_token() {
    let (_repo, gh, p) = after_stdin_request();
    assert_eq!(p.schema_version, 1);
    assert_eq!(p.branch, "deploy/team/abc123");
    let pr = p.pull_request.expect("pull request");
    assert_eq!(
        pr,
        Pr {
            number: 1,
            url: format!("{}/acme/cluster/pull/1", gh.url())
        }
    );
}

#[test]
fn stdin_request_commits_the_split_files_to_the_branch() {
    let (repo, _gh, p) = after_stdin_request();
    assert_eq!(
        repo.git(&["rev-parse", "refs/heads/deploy/team/abc123"]),
        p.commit
    );
    let files = repo.git(&["ls-tree", "-r", "--name-only", &p.commit, "team"]);
    assert_eq!(files, "team/deployment-web.yaml\nteam/service-web.yaml");
}

#[test]
fn stdin_request_commit_is_by_the_bot_with_sha_and_labels_in_the_message() {
    let (repo, _gh, p) = after_stdin_request();
    let author = repo.git(&["log", "-1", "--format=%an <%ae>|%B", &p.commit]);
    assert!(
        author.starts_with("deploy-bot <deploy-bot@users.noreply.invalid>|deploy team: abc123"),
        "{author}"
    );
    assert!(
        author.contains("Deploy-Sha: abc123")
            && author.contains("Deploy-Label: app=web")
            && author.contains("Deploy-Label: pipeline=42")
    );
}

/// Needs the first request's pull request and commit to exist, so both requests stay in one test.
#[test]
fn repeated_stdin_request_reuses_the_open_pull_request_and_commit() {
    let (repo, gh, p) = after_stdin_request();
    let again: Pushed = stdin_request(&repo, &gh).json();
    assert_eq!(again.commit, p.commit);
    assert_eq!(again.pull_request.unwrap().number, 1);
    gh.with(|r| {
        assert_eq!(r.pulls.len(), 1);
        assert!(
            r.requests
                .iter()
                .any(|q| q.contains("GET /repos/acme/cluster/pulls")
                    && q.contains("acme:deploy/team/abc123"))
        );
        assert!(r.auth.iter().all(|a| a == &format!("Bearer {TOKEN}")));
    });
}

/// Needs the first request's pull request to be merged, so request, merge and request stay together.
#[test]
fn stdin_request_after_the_merge_is_unchanged_and_pushes_or_opens_nothing() {
    let (repo, gh, _p) = after_stdin_request();
    gh.merge(1);
    let refs_before = repo.git(&["for-each-ref"]);
    let out = stdin_request(&repo, &gh);
    out.success();
    let u: Unchanged = out.json();
    assert!(u.unchanged && u.schema_version == 1);
    assert_eq!(repo.git(&["for-each-ref"]), refs_before);
    assert_eq!(gh.with(|r| r.pulls.len()), 1);
}

/// A cluster repo holding `team/old.yaml` and `other/keep.yaml`, and a directory with `out/team/{web,sub/cm}.yaml`.
fn seeded_repo_and_dir() -> (ClusterRepo, TestDir) {
    let repo = ClusterRepo::new();
    repo.commit(
        &[
            ("team/old.yaml", "kind: ConfigMap\n"),
            ("other/keep.yaml", "kind: ConfigMap\n"),
        ],
        &[],
        "seed",
    );
    let src = TestDir::new();
    src.write("out/team/web.yaml", deployment("team", "web", IMAGE));
    src.write(
        "out/team/sub/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    (repo, src)
}

/// `request --dir out --direct --forge none` for `team`, against `repo_arg`.
fn direct_dir_request(src: &TestDir, repo_arg: &str) -> Output {
    src.cmd("deploy-bot")
        .args([
            "request",
            "--repo",
            repo_arg,
            "--namespace",
            "team",
            "--dir",
            "out",
            "--direct",
            "--forge",
            "none",
        ])
        .run()
}

#[test]
fn direct_dir_request_pushes_to_the_default_branch_without_a_pull_request() {
    let (repo, src) = seeded_repo_and_dir();
    let out = direct_dir_request(&src, &repo.bare.to_string_lossy());
    out.success();
    let p: Pushed = out.json();
    assert_eq!(p.branch, "main");
    assert!(p.pull_request.is_none());
    assert_eq!(repo.git(&["rev-parse", "main"]), p.commit);
}

#[test]
fn dir_request_replaces_the_namespace_directory_as_a_whole() {
    let (repo, src) = seeded_repo_and_dir();
    direct_dir_request(&src, &repo.bare.to_string_lossy()).success();
    let files = repo.git(&["ls-tree", "-r", "--name-only", "main"]);
    assert_eq!(
        files,
        "README.md\nother/keep.yaml\nteam/sub/cm.yaml\nteam/web.yaml"
    );
}

/// Needs the first request to have landed, so both requests stay in one test.
#[test]
fn repeated_direct_dir_request_is_unchanged() {
    let (repo, src) = seeded_repo_and_dir();
    direct_dir_request(&src, &repo.bare.to_string_lossy()).success();
    let u: Unchanged = direct_dir_request(&src, &repo.url()).json();
    assert!(u.unchanged);
}

/// A cluster repo with a `release` branch one commit behind `main`, the fake GitHub, and what
/// `request --base release` pushed over `git daemon` with an enterprise-style `/api/v3` API URL.
fn request_over_git_daemon_onto_release() -> (ClusterRepo, FakeGitHub, Pushed) {
    require("git", "git");
    let repo = ClusterRepo::new();
    git_in(&repo.bare, &["config", "daemon.receivepack", "true"]);
    repo.commit(&[], &[], "second");
    git_in(&repo.work, &["push", "-q", "origin", "main:release"]);
    let port = free_port();
    // Run git-daemon itself (not the `git` wrapper), so killing it by PID stops the server.
    let exec_path = git_in(repo.dir.path(), &["--exec-path"]);
    let mut daemon = std::process::Command::new(format!("{exec_path}/git-daemon"))
        .args([
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            "--export-all",
            "--enable=receive-pack",
            "--reuseaddr",
        ])
        .arg(format!("--base-path={}", repo.dir.path().display()))
        .arg(repo.dir.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("git://127.0.0.1:{port}/acme/cluster.git");
    assert!(wait_until(Duration::from_secs(10), || {
        std::process::Command::new("git")
            .args(["ls-remote", &url])
            .output()
            .is_ok_and(|o| o.status.success())
    }));
    let gh = FakeGitHub::start("acme", "cluster", &repo.bare, TOKEN);
    let out = repo
        .dir
        .cmd("deploy-bot")
        .args([
            "request",
            "--repo",
            &url,
            "--namespace",
            "team",
            "--base",
            "release",
            "--api-url",
            &format!("{}/api/v3", gh.url()),
        ])
        .env("GITHUB_TOKEN", TOKEN)
        .stdin(deployment("team", "web", IMAGE))
        .run();
    let _ = daemon.kill();
    let _ = daemon.wait();
    out.success();
    let p: Pushed = out.json();
    (repo, gh, p)
}

#[test]
fn request_without_sha_over_git_daemon_names_the_branch_after_a_12_character_hash() {
    let (_repo, _gh, p) = request_over_git_daemon_onto_release();
    assert!(
        p.branch.starts_with("deploy/team/") && p.branch.len() == "deploy/team/".len() + 12,
        "{}",
        p.branch
    );
}

#[test]
fn request_over_git_daemon_commits_on_top_of_the_base_branch() {
    let (repo, _gh, p) = request_over_git_daemon_onto_release();
    assert_eq!(
        repo.git(&["rev-parse", &format!("{}^", p.commit)]),
        repo.git(&["rev-parse", "release"])
    );
}

#[test]
fn enterprise_api_url_pull_request_targets_the_base_branch_from_the_pushed_branch() {
    let (_repo, gh, p) = request_over_git_daemon_onto_release();
    gh.with(|r| {
        assert_eq!(r.pulls[0].base, "release");
        assert_eq!(r.pulls[0].head, p.branch);
    });
}

/// Runs `refuse` against a fresh cluster repo and a scratch directory, then checks no ref moved.
fn refused_without_pushing(refuse: impl FnOnce(&ClusterRepo, &TestDir)) {
    let repo = ClusterRepo::new();
    let refs = repo.git(&["for-each-ref"]);
    let t = TestDir::new();
    refuse(&repo, &t);
    assert_eq!(repo.git(&["for-each-ref"]), refs);
}

#[test]
fn bad_namespaces_are_a_usage_error_naming_the_flag_and_nothing_is_pushed() {
    refused_without_pushing(|repo, t| {
        for ns in [
            "../etc",
            "/abs",
            "a/b",
            "..",
            "Team",
            "a_b",
            "-x",
            &"x".repeat(64),
        ] {
            let out = t
                .cmd("deploy-bot")
                .args([
                    "request",
                    "--repo",
                    &repo.url(),
                    &format!("--namespace={ns}"),
                    "--forge",
                    "none",
                ])
                .stdin(deployment("x", "web", IMAGE))
                .run();
            // A bad flag value is a usage error (2), as in every tool.
            out.code(2)
                .stdout_empty()
                .stderr_contains("--namespace")
                .stderr_contains("DNS-1123");
        }
    });
}

#[test]
fn an_object_in_another_namespace_is_refused_and_nothing_is_pushed() {
    refused_without_pushing(|repo, t| {
        repo.request_in(t, "team")
            .args(["--forge", "none"])
            .stdin(deployment("other", "web", IMAGE))
            .run()
            .code(10)
            .stderr_contains("namespace \"other\"");
    });
}

#[test]
fn malformed_yaml_is_an_input_error_naming_stdin_and_nothing_is_pushed() {
    refused_without_pushing(|repo, t| {
        repo.request_in(t, "team")
            .args(["--forge", "none"])
            .stdin("kind: [\n")
            .run()
            .code(3)
            .stdout_empty()
            .stderr_one_line()
            .stderr_contains("<stdin>:");
    });
}

#[test]
fn a_bad_sha_is_refused_and_nothing_is_pushed() {
    refused_without_pushing(|repo, t| {
        repo.request_in(t, "team")
            .args(["--sha", "../../x", "--forge", "none"])
            .stdin(deployment("team", "web", IMAGE))
            .run()
            .code(10)
            .stderr_contains("invalid sha");
    });
}

#[test]
fn a_symlink_in_the_manifest_dir_is_refused_and_nothing_is_pushed() {
    refused_without_pushing(|repo, t| {
        t.write("d/a.yaml", "kind: ConfigMap\n");
        std::os::unix::fs::symlink("/etc/passwd", t.join("d/passwd.yaml")).unwrap();
        repo.request_in(t, "team")
            .args(["--dir", "d", "--forge", "none"])
            .run()
            .code(10)
            .stderr_contains("symlinks are refused");
    });
}

#[test]
fn a_label_without_a_value_is_refused_and_nothing_is_pushed() {
    refused_without_pushing(|repo, t| {
        repo.request_in(t, "team")
            .args(["--label", "novalue", "--forge", "none"])
            .stdin(deployment("team", "web", IMAGE))
            .run()
            .code(10);
    });
}

#[test]
fn a_refused_token_exits_7_and_is_never_printed_even_at_trace_level() {
    let repo = ClusterRepo::new();
    let gh = FakeGitHub::start("acme", "cluster", &repo.bare, "the-right-token");
    let secret = "ghp_wrong_but_secret_value";
    let out = repo
        .dir
        .cmd("deploy-bot")
        .args([
            "-vv",
            "request",
            "--repo",
            &repo.url(),
            "--namespace",
            "team",
            "--api-url",
            &gh.url(),
        ])
        .env("GITHUB_TOKEN", secret)
        .env("RUST_LOG", "trace")
        .stdin(deployment("team", "web", IMAGE))
        .run();
    out.code(7).stdout_empty();
    assert!(!out.stderr.contains(secret), "token leaked: {}", out.stderr);
}

#[test]
fn a_missing_github_token_exits_7_naming_the_variable() {
    let repo = ClusterRepo::new();
    let out = repo
        .dir
        .cmd("deploy-bot")
        .args(["request", "--repo", &repo.url(), "--namespace", "team"])
        .env_remove("GITHUB_TOKEN")
        .stdin(deployment("team", "web", IMAGE))
        .run();
    out.code(7).stderr_contains("GITHUB_TOKEN");
}

#[test]
fn a_missing_base_branch_exits_4_naming_it() {
    let repo = ClusterRepo::new();
    repo.request("team")
        .args(["--base", "nope", "--forge", "none"])
        .stdin(deployment("team", "web", IMAGE))
        .run()
        .code(4)
        .stderr_contains("nope");
}

#[test]
fn help_completions_and_man() {
    let t = TestDir::new();
    t.cmd("deploy-bot")
        .arg("--help")
        .run()
        .success()
        .stdout_contains("Exit codes:")
        .stdout_contains("request");
    t.cmd("deploy-bot")
        .args(["request", "--help"])
        .run()
        .success()
        .stdout_contains("--namespace")
        .stdout_contains("10  validation");
    t.cmd("deploy-bot")
        .args(["agent", "--help"])
        .run()
        .success()
        .stdout_contains("--poll-interval");
    t.cmd("deploy-bot")
        .args(["completions", "bash"])
        .run()
        .success()
        .stdout_contains("deploy-bot");
    t.cmd("deploy-bot")
        .arg("man")
        .run()
        .success()
        .stdout_contains(".TH");
    t.cmd("deploy-bot").arg("--bogus").run().code(2);
}

/// A cluster repo holding `team/web.yaml` and `other/web.yaml`, and the fake GitHub.
fn repo_with_two_namespaces() -> (ClusterRepo, FakeGitHub) {
    let repo = ClusterRepo::new();
    let gh = FakeGitHub::start("acme", "cluster", &repo.bare, TOKEN);
    repo.commit(
        &[
            ("team/web.yaml", &deployment("team", "web", IMAGE)),
            ("other/web.yaml", &deployment("other", "web", IMAGE)),
        ],
        &[],
        "seed",
    );
    (repo, gh)
}

/// `request --delete` for `team` through a pull request.
fn delete_through_pull_request(repo: &ClusterRepo, gh: &FakeGitHub) -> Pushed {
    let out = repo
        .request("team")
        .args(["--delete", "--api-url", &gh.url()])
        .env("GITHUB_TOKEN", TOKEN)
        .run();
    out.success();
    out.json()
}

/// `request --delete --direct --forge none` for `other`.
fn delete_other_directly(repo: &ClusterRepo) -> Output {
    repo.request("other")
        .args(["--delete", "--direct", "--forge", "none"])
        .run()
}

#[test]
fn delete_opens_a_teardown_pull_request_from_the_delete_branch() {
    let (repo, gh) = repo_with_two_namespaces();
    let p = delete_through_pull_request(&repo, &gh);
    assert_eq!(p.branch, "deploy/team/delete");
    assert_eq!(p.pull_request.as_ref().map(|p| p.number), Some(1));
    gh.with(|r| assert_eq!(r.pulls[0].title, "Tear down team"));
}

#[test]
fn delete_commit_removes_only_the_namespace_directory_and_says_so() {
    let (repo, gh) = repo_with_two_namespaces();
    let p = delete_through_pull_request(&repo, &gh);
    let files = repo.git(&["ls-tree", "-r", "--name-only", &p.commit]);
    assert_eq!(files, "README.md\nother/web.yaml");
    let msg = repo.git(&["log", "-1", "--format=%B", &p.commit]);
    assert!(
        msg.starts_with("teardown team") && msg.contains("Deploy-Action: delete"),
        "{msg}"
    );
}

#[test]
fn direct_delete_removes_the_directory_on_the_default_branch() {
    let (repo, _gh) = repo_with_two_namespaces();
    let out = delete_other_directly(&repo);
    out.success();
    let p: Pushed = out.json();
    assert_eq!(p.branch, "main");
    assert_eq!(
        repo.git(&["ls-tree", "-r", "--name-only", "main"]),
        "README.md\nteam/web.yaml"
    );
}

/// Needs the first delete to have landed, so both deletes stay in one test.
#[test]
fn direct_delete_with_nothing_left_to_delete_is_unchanged() {
    let (repo, _gh) = repo_with_two_namespaces();
    delete_other_directly(&repo).success();
    let u: Unchanged = delete_other_directly(&repo).json();
    assert!(u.unchanged);
}

#[test]
fn delete_reads_no_manifests_so_dir_is_a_usage_error() {
    let (repo, _gh) = repo_with_two_namespaces();
    repo.request("team")
        .args(["--delete", "--dir", "x", "--forge", "none"])
        .run()
        .code(2);
}

const CONCURRENT_NAMESPACES: [&str; 6] = ["ns-a", "ns-b", "ns-c", "ns-d", "ns-e", "ns-f"];

/// Starts one direct request per namespace in [`CONCURRENT_NAMESPACES`] at once, waits for all,
/// and checks each succeeded.
fn concurrent_direct_requests() -> ClusterRepo {
    let repo = ClusterRepo::new();
    let children: Vec<_> = CONCURRENT_NAMESPACES
        .iter()
        .map(|ns| {
            let mut child =
                std::process::Command::new(microplatform_test_support::bin("deploy-bot"))
                    .args([
                        "request",
                        "--repo",
                        &repo.url(),
                        "--namespace",
                        ns,
                        "--direct",
                        "--forge",
                        "none",
                    ])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
            std::io::Write::write_all(
                child.stdin.as_mut().unwrap(),
                deployment(ns, "web", IMAGE).as_bytes(),
            )
            .unwrap();
            drop(child.stdin.take());
            child
        })
        .collect();
    for (ns, child) in CONCURRENT_NAMESPACES.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{ns}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    repo
}

#[test]
fn concurrent_direct_requests_all_land_by_rebasing_their_directory() {
    let repo = concurrent_direct_requests();
    let files = repo.git(&["ls-tree", "-r", "--name-only", "main"]);
    for ns in CONCURRENT_NAMESPACES {
        assert!(
            files.contains(&format!("{ns}/deployment-web.yaml")),
            "{ns} lost:\n{files}"
        );
    }
}

#[test]
fn concurrent_direct_requests_leave_linear_history_and_no_branch_behind() {
    let repo = concurrent_direct_requests();
    // Linear history: each request on top of the previous one.
    assert_eq!(repo.git(&["rev-list", "--count", "main"]), "7");
    assert_eq!(
        repo.git(&["for-each-ref", "--format=%(refname)"]),
        "refs/heads/main"
    );
}

#[test]
fn a_failed_pull_request_leaves_no_branch_behind() {
    let repo = ClusterRepo::new();
    let gh = FakeGitHub::start("acme", "cluster", &repo.bare, "the-right-token");
    repo.request("team")
        .args(["--api-url", &gh.url()])
        .env("GITHUB_TOKEN", "a-refused-token")
        .stdin(deployment("team", "web", IMAGE))
        .run()
        .code(7);
    assert_eq!(
        repo.git(&["for-each-ref", "--format=%(refname)"]),
        "refs/heads/main"
    );
    // A branch that existed before is put back as it was.
    let before = repo.branch(
        "deploy/team/v1",
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
    );
    repo.request("team")
        .args(["--sha", "v1", "--api-url", &gh.url()])
        .env("GITHUB_TOKEN", "a-refused-token")
        .stdin(deployment("team", "api", IMAGE))
        .run()
        .code(7);
    assert_eq!(
        repo.git(&["rev-parse", "refs/heads/deploy/team/v1"]),
        before
    );
}

/// A loopback HTTP server that demands Basic auth and records the `Authorization` headers git sends.
fn basic_auth_recorder() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let rec = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().take(20) {
            let Ok(mut conn) = conn else { continue };
            let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
            let mut auth = None;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("authorization: ") {
                    let _ = v;
                    auth = Some(line["authorization: ".len()..].trim().to_string());
                }
            }
            if let Some(a) = auth {
                rec.lock().unwrap().push(a);
                let _ = conn.write_all(
                    b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            } else {
                let _ = conn.write_all(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        }
    });
    (port, seen)
}

#[test]
fn git_over_http_gets_the_token_through_askpass_and_never_prints_it() {
    use base64::Engine as _;
    let secret = "ghp_askpass_secret_value";
    let (port, seen) = basic_auth_recorder();
    let dir = TestDir::new();
    let out = dir
        .cmd("deploy-bot")
        .args([
            "-vv",
            "request",
            "--repo",
            &format!("http://127.0.0.1:{port}/acme/cluster.git"),
            "--namespace",
            "team",
            "--forge",
            "none",
        ])
        .env("GITHUB_TOKEN", secret)
        .env_remove("GIT_ASKPASS")
        .env("HOME", dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(deployment("team", "web", IMAGE))
        .run();
    out.code(5);
    assert!(!out.stderr.contains(secret), "token leaked: {}", out.stderr);
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{secret}"))
    );
    assert!(
        seen.lock().unwrap().contains(&want),
        "git did not send the token: {:?}\n{}",
        seen.lock().unwrap(),
        out.stderr
    );
}

#[test]
fn credentials_in_the_repo_url_are_refused_before_git_runs_and_not_echoed() {
    let secret = "ghp_askpass_secret_value";
    let out = TestDir::new()
        .cmd("deploy-bot")
        .args([
            "request",
            "--repo",
            &format!("https://x-access-token:{secret}@github.com/acme/cluster.git"),
            "--namespace",
            "team",
            "--forge",
            "none",
        ])
        .stdin(deployment("team", "web", IMAGE))
        .run();
    out.code(2)
        .stderr_contains("credentials in the URL are refused");
    assert!(!out.stderr.contains(secret), "{}", out.stderr);
}

/// A cluster repo, the fake GitHub, and a directory holding `promote.json`, a promotion report
/// for `shop/api` into `127.0.0.1:5125`.
struct ReleaseCandidate {
    repo: ClusterRepo,
    gh: FakeGitHub,
    dir: TestDir,
    digest: String,
    target: String,
}

impl ReleaseCandidate {
    fn new() -> Self {
        let repo = ClusterRepo::new();
        let gh = FakeGitHub::start("acme", "cluster", &repo.bare, TOKEN);
        let dir = TestDir::new();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let target = format!("127.0.0.1:5125/shop/api:main@{digest}");
        dir.write(
            "promote.json",
            serde_json::json!({
                "schema_version": 1,
                "destination": "127.0.0.1:5125",
                "images": [{
                    "source": format!("127.0.0.1:5025/shop/api:main@{digest}"),
                    "target": target,
                    "digest": digest,
                    "bytes_copied": 0
                }],
                "totals": {"images": 1}
            })
            .to_string(),
        );
        Self {
            repo,
            gh,
            dir,
            digest,
            target,
        }
    }

    /// `request --release-candidate RC` for `shop` with the promoted image's manifests.
    fn run(&self, rc: &str) -> Output {
        self.repo
            .request_in(&self.dir, "shop")
            .args(["--sha", "abc123", "--release-candidate", rc])
            .args(["--api-url", &self.gh.url()])
            .env("GITHUB_TOKEN", TOKEN)
            .stdin(deployment("shop", "api", &self.target))
            .run()
    }

    fn pushed(&self) -> Pushed {
        let out = self.run("promote.json");
        out.success();
        out.json()
    }
}

#[test]
fn a_release_candidate_is_linked_from_the_pull_request() {
    let rc = ReleaseCandidate::new();
    let p = rc.pushed();
    assert_eq!(p.pull_request.expect("pull request").number, 1);
    // The pull request links the image's manifest in the release-candidate registry.
    let body = rc.gh.with(|r| r.pulls[0].body.clone());
    assert!(body.contains("### Release candidate"), "{body}");
    let (target, digest) = (&rc.target, &rc.digest);
    assert!(
        body.contains(&format!(
            "[`{target}`](http://127.0.0.1:5125/v2/shop/api/manifests/{digest}) (from `127.0.0.1:5025/shop/api:main@{digest}`)"
        )),
        "{body}"
    );
}

#[test]
fn a_release_candidate_is_recorded_in_the_commit_message() {
    let rc = ReleaseCandidate::new();
    let p = rc.pushed();
    let msg = rc.repo.git(&["log", "-1", "--format=%B", &p.commit]);
    assert!(
        msg.contains(&format!("Release-Candidate: {}", rc.target)),
        "{msg}"
    );
}

/// Needs the first request's branch and pull request to exist, so both requests stay in one test.
#[test]
fn a_repeated_release_candidate_request_reuses_the_branch_and_pull_request() {
    let rc = ReleaseCandidate::new();
    let p = rc.pushed();
    let again: Pushed = rc.run("promote.json").json();
    assert_eq!(again.commit, p.commit);
    assert_eq!(rc.gh.with(|r| r.pulls.len()), 1);
}

#[test]
fn a_release_candidate_that_is_not_a_promotion_report_is_refused_naming_it_and_nothing_is_pushed() {
    let rc = ReleaseCandidate::new();
    rc.dir.write("bad.json", "{\"images\": 3}");
    let refs = rc.repo.git(&["for-each-ref"]);
    let out = rc.run("bad.json");
    out.code(3).stderr_contains("bad.json");
    assert_eq!(rc.repo.git(&["for-each-ref"]), refs);
}
