//! `deploy-bot report` against the fake GitHub on loopback, backed by a real bare repo (the monorepo): commit status
//! with the environment URL, one pull-request comment created and then edited in place, failures, no pull request,
//! bad input.

use crate::support;

use microplatform_test_support::{Output, TestDir};
use serde_json::Value;
use support::ClusterRepo;
use support::fake_github::FakeGitHub;

const TOKEN: &str = "ghp_report_token_do_not_print";
const URL: &str = "http://feature-x.shop.dev.localhost:8088/";

/// A monorepo `acme/shop` with branch `feature-x` (one commit on top of main) and the fake GitHub serving it.
struct Setup {
    repo: ClusterRepo,
    gh: FakeGitHub,
    sha: String,
    dir: TestDir,
}

fn setup() -> Setup {
    let repo = ClusterRepo::new();
    let sha = repo.branch("feature-x", &[("web/index.html", "hello\n")]);
    let gh = FakeGitHub::start("acme", "shop", &repo.bare, TOKEN);
    Setup {
        repo,
        gh,
        sha,
        dir: TestDir::new(),
    }
}

impl Setup {
    /// `deploy-bot report` with the default flags; `over` replaces a default flag's value (`""`: leaves it out),
    /// `extra` is appended.
    fn report_with(&self, over: &[(&str, &str)], extra: &[&str]) -> Output {
        let api = self.gh.url();
        let defaults = [
            ("--repo", "acme/shop"),
            ("--api-url", api.as_str()),
            ("--commit", self.sha.as_str()),
            ("--branch", "feature-x"),
            ("--environment", "dev"),
            ("--url", URL),
        ];
        let mut cmd = self.dir.cmd("deploy-bot").arg("report");
        for (k, v) in defaults {
            let v = over.iter().find(|(o, _)| *o == k).map_or(v, |(_, x)| *x);
            if !v.is_empty() {
                cmd = cmd.args([k, v]);
            }
        }
        cmd.args(extra).env("GITHUB_TOKEN", TOKEN).run()
    }

    fn report(&self, extra: &[&str]) -> Output {
        self.report_with(&[], extra)
    }

    fn smoke_file(&self, body: &str) -> String {
        let checks = format!(
            r#"{{"schema_version":1,"checks":[{{"service":"api","url":"{URL}cgi-bin/greet","status":200,"body":"{body}","attempts":1,"seconds":0.1}},{{"service":"web","url":"{URL}","status":200,"body":"status: ok","attempts":3,"seconds":2.0}}],"seconds":2.0}}"#
        );
        self.dir
            .write("smoke.json", checks)
            .to_string_lossy()
            .into_owned()
    }

    fn comments(&self) -> Vec<(u64, String)> {
        self.gh.with(|r| r.comments.clone())
    }
}

/// The setup with a pull request for `feature-x` holding 120 comments of someone else's (more than
/// one page of them), and a first passing report with a smoke file: the pull request, the smoke
/// file, and the report's JSON.
fn first_report() -> (Setup, u64, String, Output) {
    let s = setup();
    let pr = s.gh.open_pull("feature-x");
    // Someone else's comments come first, more than one page of them: the marked one must be found on page 2.
    for i in 0..120 {
        s.gh.add_comment(pr, &format!("review note {i}"));
    }
    let smoke = s.smoke_file("greeting");
    let out = s.report(&["--smoke", &smoke]);
    out.success();
    (s, pr, smoke, out)
}

#[test]
fn smoke_passed_reports_a_success_status_and_a_created_comment_without_printing_the_token() {
    let (_s, pr, _, out) = first_report();
    assert!(!out.stdout.contains(TOKEN) && !out.stderr.contains(TOKEN));
    let v: Value = out.json();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["forge"], "github");
    assert_eq!(v["repo"], "acme/shop");
    assert_eq!(v["status"]["context"], "microplatform/dev");
    assert_eq!(v["status"]["state"], "success");
    assert_eq!(v["status"]["description"], "smoke passed: 2 checks");
    assert_eq!(v["status"]["posted"], true);
    assert_eq!(v["pull_request"]["number"], pr);
    assert_eq!(v["comment"]["action"], "created");
    assert_eq!(v["skipped"], serde_json::json!([]));
}

#[test]
fn smoke_passed_sets_the_commit_status_with_the_url() {
    let (s, ..) = first_report();
    let st = s.gh.statuses_for("microplatform/dev");
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].sha, s.sha);
    assert_eq!(st[0].state, "success");
    assert_eq!(st[0].target_url.as_deref(), Some(URL));
}

#[test]
fn smoke_passed_adds_one_marked_comment_after_a_page_of_others_listing_every_check() {
    let (s, pr, _, out) = first_report();
    let v: Value = out.json();
    let all = s.comments();
    assert_eq!(all.len(), 121);
    let (on, body) = all.last().unwrap().clone();
    assert_eq!(on, pr);
    assert_eq!(v["comment"]["id"], 121);
    assert!(body.starts_with("<!-- microplatform:dev -->"), "{body}");
    assert!(body.contains(URL) && body.contains(&s.sha), "{body}");
    assert!(
        body.contains("| web | http://feature-x.shop.dev.localhost:8088/ | 200, body matches `status: ok` | 3 |"),
        "{body}"
    );
}

/// Builds on the first run's comment: one behaviour over two runs.
#[test]
fn smoke_passed_rerun_with_the_same_result_leaves_the_comment_alone() {
    let (s, _, smoke, _) = first_report();
    // The same result again: the comment is found and left alone; the status is posted again.
    let again = s.report(&["--smoke", &smoke]);
    again.success();
    let v2: Value = again.json();
    assert_eq!(v2["comment"]["action"], "unchanged");
    assert_eq!(v2["comment"]["id"], 121);
    assert_eq!(s.comments().len(), 121);
}

/// Builds on the first run's comment: one behaviour over two runs.
#[test]
fn smoke_passed_rerun_with_a_different_result_edits_the_same_comment() {
    let (s, ..) = first_report();
    // A different result: the same comment is edited (PATCH), not a second one added.
    let smoke = s.smoke_file("Hello");
    let third = s.report(&["--smoke", &smoke]);
    third.success();
    let v3: Value = third.json();
    assert_eq!(v3["comment"]["action"], "updated");
    assert_eq!(v3["comment"]["id"], 121);
    let all = s.comments();
    assert_eq!(all.len(), 121);
    assert!(
        all[120].1.contains("body matches `Hello`"),
        "{}",
        all[120].1
    );
    assert_eq!(
        all.iter()
            .filter(|(_, b)| b.contains("<!-- microplatform:dev -->"))
            .count(),
        1
    );
    let patches = s.gh.with(|r| {
        r.requests
            .iter()
            .filter(|l| l.starts_with("PATCH /repos/acme/shop/issues/comments/121"))
            .count()
    });
    assert_eq!(patches, 1);
    assert!(s.gh.with(|r| r.auth.iter().all(|a| a == &format!("Bearer {TOKEN}"))));
}

/// Builds on the first run's comment: the second environment's is added beside it.
#[test]
fn another_environment_gets_its_own_comment_and_status_context() {
    let (s, ..) = first_report();
    // Another environment gets its own comment and status context.
    let out = s
        .dir
        .cmd("deploy-bot")
        .args(["report", "--repo", "https://github.com/acme/shop.git"])
        .args(["--api-url", &s.gh.url(), "--commit", &s.sha])
        .args(["--branch", "feature-x", "--environment", "staging"])
        .args(["--state", "success"])
        .env("GITHUB_TOKEN", TOKEN)
        .run();
    out.success();
    let v4: Value = out.json();
    assert_eq!(v4["comment"]["action"], "created");
    assert_eq!(v4["status"]["context"], "microplatform/staging");
    assert_eq!(v4["status"]["target_url"], Value::Null);
    assert_eq!(s.comments().len(), 122);
}

#[test]
fn smoke_failed_is_a_failure_status_and_comment_and_the_token_may_come_from_a_file() {
    let s = setup();
    let pr = s.gh.open_pull("feature-x");
    // An earlier success, then the smoke test fails on a rerun: the comment turns into the failure.
    s.report(&["--state", "success"]).success();
    let why = "service web: GET http://feature-x.shop.dev.localhost:8088/ answered 200 with a body not matching /status: ok/: \"status: degraded\"";
    let token_file = s.dir.write("token", format!("{TOKEN}\n"));
    let out = s
        .dir
        .cmd("deploy-bot")
        .args(["report", "--repo", "acme/shop", "--api-url", &s.gh.url()])
        .args(["--commit", &s.sha, "--branch", "feature-x"])
        .args(["--environment", "dev", "--url", URL])
        .args(["--state", "failure", "--description", why])
        .arg("--token-file")
        .arg(&token_file)
        .env_remove("GITHUB_TOKEN")
        .run();
    out.success();
    let v: Value = out.json();
    assert_eq!(v["status"]["state"], "failure");
    assert_eq!(v["comment"]["action"], "updated");
    let st = s.gh.statuses_for("microplatform/dev");
    assert_eq!(
        st.iter().map(|x| x.state.as_str()).collect::<Vec<_>>(),
        ["success", "failure"]
    );
    assert_eq!(st[1].description, why.chars().take(140).collect::<String>());
    assert_eq!(st[1].target_url.as_deref(), Some(URL));
    let all = s.comments();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, pr);
    assert!(all[0].1.contains("❌ `dev`: failure"), "{}", all[0].1);
    assert!(
        all[0].1.contains("body not matching /status: ok/"),
        "{}",
        all[0].1
    );
}

#[test]
fn without_an_open_pull_request_only_the_status_is_posted() {
    let s = setup();
    // A closed pull request for the branch does not count.
    let n = s.gh.open_pull("feature-x");
    s.gh.merge(n);
    let out = s.report(&["--state", "success"]);
    out.success();
    let v: Value = out.json();
    assert_eq!(v["status"]["posted"], true);
    assert_eq!(v["pull_request"], Value::Null);
    assert_eq!(v["comment"], Value::Null);
    assert_eq!(
        v["skipped"],
        serde_json::json!(["no open pull request for branch feature-x: commit status only"])
    );
    assert_eq!(s.gh.statuses_for("microplatform/dev").len(), 1);
    assert!(s.comments().is_empty());
}

#[test]
fn forge_none_posts_nothing_and_prints_what_it_would() {
    let s = setup();
    s.gh.open_pull("feature-x");
    let out = s
        .dir
        .cmd("deploy-bot")
        .args(["report", "--forge", "none", "--repo", "/srv/git/shop"])
        .args(["--commit", &s.sha, "--branch", "feature-x"])
        .args(["--environment", "dev", "--url", URL, "--state", "success"])
        .env_remove("GITHUB_TOKEN")
        .run();
    out.success();
    let v: Value = out.json();
    assert_eq!(v["forge"], "none");
    assert_eq!(v["status"]["posted"], false);
    assert_eq!(v["status"]["target_url"], URL);
    assert_eq!(s.gh.with(|r| r.requests.len()), 0);
}

/// The setup with an open pull request for `feature-x`: where a bad report must post nothing.
fn bad_input_setup() -> Setup {
    let s = setup();
    s.gh.open_pull("feature-x");
    s
}

/// `report_with(over, args)` fails with `code`, one stderr line holding `needle`, and no token.
fn bad(s: &Setup, over: &[(&str, &str)], args: &[&str], code: i32, needle: &str) {
    let out = s.report_with(over, args);
    out.code(code).stdout_empty().stderr_one_line();
    out.stderr_contains(needle);
    assert!(!out.stderr.contains(TOKEN));
}

/// Nothing reached the forge: no status, no comment.
fn assert_posted_nothing(s: Setup) {
    assert!(s.gh.with(|r| r.statuses.is_empty() && r.comments.is_empty()));
    drop(s.repo);
}

#[test]
fn report_without_a_smoke_file_or_state_or_with_both_or_an_unknown_state_is_a_usage_error() {
    let s = bad_input_setup();
    // Neither a smoke file nor a state; both; an unknown state: clap's usage errors (exit 2, usage lines follow).
    for (args, needle) in [
        (&[][..], "--smoke"),
        (&["--smoke", "x.json", "--state", "success"][..], "--state"),
        (&["--state", "green"][..], "green"),
    ] {
        let out = s.report(args);
        out.code(2).stdout_empty().stderr_contains(needle);
    }
    assert_posted_nothing(s);
}

#[test]
fn report_url_that_is_not_http_or_repo_without_owner_and_name_is_a_usage_error() {
    let s = bad_input_setup();
    // A URL that is not http(s), a repo that names no OWNER/NAME: usage errors.
    bad(
        &s,
        &[("--url", "ftp://x/")],
        &["--state", "success"],
        2,
        "--url",
    );
    bad(
        &s,
        &[("--repo", "acme")],
        &["--state", "success"],
        2,
        "--repo",
    );
    assert_posted_nothing(s);
}

#[test]
fn report_smoke_file_not_json_of_another_schema_or_missing_is_one_line() {
    let s = bad_input_setup();
    let not_json = s.dir.write("bad.json", "status: ok\n");
    let other = s
        .dir
        .write("other.json", r#"{"schema_version":2,"checks":[]}"#);
    // Smoke files: not JSON, another schema, missing.
    bad(
        &s,
        &[],
        &["--smoke", &not_json.to_string_lossy()],
        3,
        "bad.json",
    );
    bad(
        &s,
        &[],
        &["--smoke", &other.to_string_lossy()],
        3,
        "schema_version 2",
    );
    bad(&s, &[], &["--smoke", "missing.json"], 4, "missing.json");
    assert_posted_nothing(s);
}

#[test]
fn report_short_sha_bad_environment_label_or_bad_branch_is_invalid_input() {
    let s = bad_input_setup();
    // Names: a short sha, an environment that is not a label, a branch git refuses.
    bad(
        &s,
        &[("--commit", "abc123")],
        &["--state", "success"],
        10,
        "commit",
    );
    bad(
        &s,
        &[("--environment", "Dev_1")],
        &["--state", "success"],
        10,
        "environment",
    );
    bad(
        &s,
        &[("--branch", "a..b")],
        &["--state", "success"],
        10,
        "branch",
    );
    assert_posted_nothing(s);
}

#[test]
fn report_with_a_refused_token_exits_7_without_printing_it() {
    let s = bad_input_setup();
    // A refused token.
    let wrong = s.dir.write("wrong-token", "ghp_wrong\n");
    let out = s.report(&[
        "--state",
        "success",
        "--token-file",
        &wrong.to_string_lossy(),
    ]);
    out.code(7).stderr_one_line();
    assert!(!out.stderr.contains("ghp_wrong"));
    assert_posted_nothing(s);
}

#[test]
fn report_to_a_repository_the_forge_does_not_know_exits_4() {
    let s = bad_input_setup();
    bad(
        &s,
        &[("--repo", "acme/other")],
        &["--state", "success"],
        4,
        "Not Found",
    );
    assert_posted_nothing(s);
}

#[test]
fn report_on_a_commit_the_forge_does_not_have_exits_6() {
    let s = bad_input_setup();
    // A commit it does not have (GitHub answers 422).
    let unknown = "f".repeat(40);
    bad(
        &s,
        &[("--commit", &unknown)],
        &["--state", "success"],
        6,
        "422",
    );
    assert_posted_nothing(s);
}

#[test]
fn report_without_any_token_exits_7_naming_github_token() {
    let s = bad_input_setup();
    // No token at all.
    let out = s
        .dir
        .cmd("deploy-bot")
        .args(["report", "--repo", "acme/shop", "--api-url", &s.gh.url()])
        .args(["--commit", &s.sha, "--branch", "feature-x"])
        .args(["--environment", "dev", "--state", "success"])
        .env_remove("GITHUB_TOKEN")
        .run();
    out.code(7)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("GITHUB_TOKEN");
    assert_posted_nothing(s);
}
