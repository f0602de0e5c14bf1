//! The agent under hostile or unusual input and load, with the fake `kubectl` and the fake GitHub API (real git):
//! form-encoded deliveries, a bad tree entry outside a namespace, deeply nested YAML, slow connections, statuses
//! without local paths, the cluster-scope gate, self-heal, and the info/JSON log.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use microplatform_test_support::{git_in, wait_until};
use support::{AgentProc, Cluster, ClusterRepo, IMAGE, applied_commit, deployment, push_event};

const TOKEN: &str = "hardening-token";
const WAIT: Duration = Duration::from_secs(60);

impl Cluster {
    fn args(&self, poll: &str, extra: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = [
            "--repo",
            &self.repo.url(),
            "--branch",
            "main",
            "--poll-interval",
            poll,
            "--applier",
            "kubectl",
            "--kubectl",
            &self.k.path().to_string_lossy(),
            "--forge",
            "github",
            "--api-url",
            &self.gh.url(),
        ]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
        v.extend(extra.iter().map(|s| (*s).to_string()));
        v
    }

    fn agent_with(&self, global: &[&str], poll: &str, extra: &[&str]) -> AgentProc {
        let args = self.args(poll, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        AgentProc::start_with(&self.st, global, &args, &[("GITHUB_TOKEN", TOKEN)])
    }

    fn verbose_agent(&self, poll: &str, extra: &[&str]) -> AgentProc {
        self.agent_with(&["-vv"], poll, extra)
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn form_encoded_deliveries_are_verified_over_the_raw_body_and_applied() {
    let c = Cluster::new(TOKEN);
    let agent = c.verbose_agent("1h", &[]);
    let commit = c.repo.commit(
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
        &[],
        "deploy",
    );
    let json =
        String::from_utf8(push_event("refs/heads/main", &commit, "acme/cluster", "x")).unwrap();
    let form = format!("payload={}", urlencode(&json));
    let ctype = "application/x-www-form-urlencoded";
    // Signed over the JSON instead of the raw form body: refused.
    let wrong = deploy_bot::webhook::sign(support::SECRET.as_bytes(), json.as_bytes());
    let (s, _) = agent.send_as("push", "f-0", form.as_bytes(), Some(&wrong), ctype);
    assert_eq!(s, 401);
    // A form body without `payload`: 400.
    let (s, b) = agent.send_as("push", "f-1", b"other=1", None, ctype);
    assert_eq!(s, 400, "{b}");
    // Signed over the raw form body, as GitHub does: queued and applied.
    let (s, b) = agent.send_as("push", "f-2", form.as_bytes(), None, ctype);
    assert_eq!(s, 202, "{b}");
    assert!(b.contains("queued"), "{b}");
    assert!(
        wait_until(WAIT, || applied_commit(&c.st, "team").as_deref()
            == Some(commit.as_str())),
        "{}",
        agent.log()
    );
    // ping in the form content type too.
    let ping = format!("payload={}", urlencode(r#"{"zen":"x"}"#));
    let (s, b) = agent.send_as(
        "ping",
        "f-3",
        ping.as_bytes(),
        None,
        &format!("{ctype}; charset=utf-8"),
    );
    assert_eq!((s, b.contains("pong")), (200, true), "{b}");
    // JSON still works.
    let (s, _) = agent.send("push", "f-4", json.as_bytes(), None);
    assert_eq!(s, 202);
}

/// A commit whose root tree holds `team/` (valid), `links/` (a symlink), `dots/` (an entry named `..`), and an
/// entry named `..` at the top: built with `git mktree`, as no checkout could hold it.
fn crafted_commit(repo: &ClusterRepo) -> String {
    let bare = &repo.bare;
    let blob = |content: &str| {
        let f = repo.dir.write("blob.tmp", content);
        git_in(bare, &["hash-object", "-w", &f.to_string_lossy()])
    };
    let mktree = |entries: &str| {
        let f = repo.dir.write("tree.tmp", entries);
        let out = std::process::Command::new("git")
            .args(["--git-dir", &bare.to_string_lossy(), "mktree"])
            .stdin(std::fs::File::open(f).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let web = blob(&deployment("team", "web", IMAGE));
    let team = mktree(&format!("100644 blob {web}\tweb.yaml\n"));
    let target = blob("/etc/passwd");
    let links = mktree(&format!(
        "100644 blob {web}\tweb.yaml\n120000 blob {target}\tlink.yaml\n"
    ));
    let evil = mktree(&format!("100644 blob {target}\tpasswd\n"));
    let dots = mktree(&format!(
        "100644 blob {web}\tweb.yaml\n040000 tree {evil}\t..\n"
    ));
    let readme = blob("cluster repo\n");
    let root = mktree(&format!(
        "040000 tree {evil}\t..\n100644 blob {readme}\tREADME.md\n040000 tree {dots}\tdots\n040000 tree {links}\tlinks\n040000 tree {team}\tteam\n"
    ));
    let parent = git_in(bare, &["rev-parse", "refs/heads/main"]);
    let commit = git_in(
        bare,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "commit-tree",
            &root,
            "-p",
            &parent,
            "-m",
            "crafted",
        ],
    );
    git_in(bare, &["update-ref", "refs/heads/main", &commit]);
    commit
}

/// A cluster whose `main` is [`crafted_commit`] and a verbose agent on it: the cluster, the commit and the agent.
fn crafted_cluster() -> (Cluster, String, AgentProc) {
    let c = Cluster::new(TOKEN);
    let commit = crafted_commit(&c.repo);
    let agent = c.verbose_agent("1h", &[]);
    (c, commit, agent)
}

#[test]
fn a_bad_tree_entry_elsewhere_leaves_the_valid_namespace_applied_once() {
    let (c, commit, agent) = crafted_cluster();
    assert!(
        wait_until(WAIT, || applied_commit(&c.st, "team").as_deref()
            == Some(commit.as_str())),
        "{}",
        agent.log()
    );
    assert_eq!(c.k.applies("team"), 1);
}

#[test]
fn namespaces_with_a_symlink_or_a_dot_dot_entry_are_rejected_and_nothing_escapes() {
    let (c, _commit, _agent) = crafted_cluster();
    assert!(wait_until(WAIT, || c
        .st
        .join("rejected/links.json")
        .exists()
        && c.st.join("rejected/dots.json").exists()));
    assert_eq!(c.k.started("links"), 0);
    assert_eq!(c.k.started("dots"), 0);
    // Nothing was written outside the extraction directory.
    assert!(!c.st.join("passwd").exists() && !c.st.join("work/passwd").exists());
}

#[test]
fn failure_statuses_for_bad_tree_entries_name_repo_relative_paths_only() {
    let (c, _commit, _agent) = crafted_cluster();
    assert!(wait_until(WAIT, || c
        .gh
        .statuses_for("deploy-bot/links")
        .len()
        == 2
        && c.gh.statuses_for("deploy-bot/dots").len() == 2));
    let links = c.gh.statuses_for("deploy-bot/links");
    let dots = c.gh.statuses_for("deploy-bot/dots");
    assert_eq!(links[1].state, "failure");
    assert!(
        links[1]
            .description
            .contains("links/link.yaml: symlinks are not allowed"),
        "{:?}",
        links[1]
    );
    assert!(
        dots[1]
            .description
            .contains("dots/../passwd: invalid path entry"),
        "{:?}",
        dots[1]
    );
    let state = c.st.display().to_string();
    c.gh.with(|r| {
        for s in &r.statuses {
            assert!(!s.description.contains(&state), "local path in {s:?}");
            assert!(!s.description.contains("/work/"), "local path in {s:?}");
        }
    });
}

/// A commit with a valid `team/web.yaml` beside deeply nested flow and block YAML in `team`, and a valid `good`.
fn hostile_commit(c: &Cluster) -> String {
    let hostile = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let mut deep_block = String::new();
    for i in 0..200 {
        deep_block.push_str(&" ".repeat(i));
        deep_block.push_str("k:\n");
    }
    c.repo.commit(
        &[
            ("team/web.yaml", &deployment("team", "web", IMAGE)),
            ("team/flow.yaml", &hostile),
            ("team/block.yaml", &deep_block),
            ("good/web.yaml", &deployment("good", "web", IMAGE)),
        ],
        &[],
        "hostile",
    )
}

fn healthz_client() -> reqwest::blocking::Client {
    microplatform_test_support::blocking_client_builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

#[test]
fn deeply_nested_yaml_is_refused_before_parsing_while_healthz_answers() {
    let c = Cluster::new(TOKEN);
    let agent = c.verbose_agent("1h", &[]);
    let commit = hostile_commit(&c);
    let (s, _) = agent.send(
        "push",
        "y-1",
        &push_event("refs/heads/main", &commit, "acme/cluster", "x"),
        None,
    );
    assert_eq!(s, 202);
    let client = healthz_client();
    let mut answered = 0;
    let done = wait_until(WAIT, || {
        let ok = client
            .get(agent.url("/healthz"))
            .send()
            .is_ok_and(|r| r.status() == 200);
        assert!(ok, "healthz did not answer while validating");
        answered += 1;
        c.st.join("rejected/team.json").exists()
    });
    assert!(done, "{}", agent.log());
    assert!(answered > 0);
    let rejected = std::fs::read_to_string(c.st.join("rejected/team.json")).unwrap();
    assert!(
        rejected.contains("team/flow.yaml:1:") && rejected.contains("nested deeper than 64"),
        "{rejected}"
    );
    assert!(rejected.contains("team/block.yaml:"), "{rejected}");
    assert_eq!(c.k.started("team"), 0);
}

#[test]
fn a_namespace_beside_deeply_nested_yaml_is_still_applied() {
    let c = Cluster::new(TOKEN);
    let agent = c.verbose_agent("1h", &[]);
    let commit = hostile_commit(&c);
    let (s, b) = agent.send(
        "push",
        "y-1",
        &push_event("refs/heads/main", &commit, "acme/cluster", "x"),
        None,
    );
    assert_eq!(s, 202, "{b}");
    assert!(wait_until(WAIT, || applied_commit(&c.st, "good")
        .as_deref()
        == Some(commit.as_str())));
}

fn slow_connection(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .unwrap();
    s
}

/// A verbose agent on `c` taking at most 32 connections, with a 2 s header and a 1 s body timeout.
fn limited_agent(c: &Cluster) -> AgentProc {
    c.verbose_agent(
        "1h",
        &[
            "--max-connections",
            "32",
            "--header-timeout",
            "2s",
            "--body-timeout",
            "1s",
        ],
    )
}

#[test]
fn healthz_answers_and_excess_connections_are_shed_under_100_slow_connections() {
    let c = Cluster::new(TOKEN);
    let agent = limited_agent(&c);
    let _slow: Vec<TcpStream> = (0..100).map(|_| slow_connection(agent.port)).collect();
    let client = healthz_client();
    for _ in 0..20 {
        let r = client
            .get(agent.url("/healthz"))
            .send()
            .expect("healthz under slow connections");
        assert_eq!(r.status(), 200);
    }
    assert!(agent.metric("deploy_bot_connections_shed_total") > 0);
}

#[test]
fn a_delivery_is_applied_while_100_slow_connections_are_open() {
    let c = Cluster::new(TOKEN);
    let agent = limited_agent(&c);
    let _slow: Vec<TcpStream> = (0..100).map(|_| slow_connection(agent.port)).collect();
    let commit = c.repo.commit(
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
        &[],
        "deploy",
    );
    let (s, b) = agent.send(
        "push",
        "slow-1",
        &push_event("refs/heads/main", &commit, "acme/cluster", "x"),
        None,
    );
    assert_eq!(s, 202, "{b}");
    assert!(wait_until(WAIT, || applied_commit(&c.st, "team")
        .as_deref()
        == Some(commit.as_str())));
}

#[test]
fn slow_connections_are_closed_at_the_limit_or_after_the_header_timeout() {
    let c = Cluster::new(TOKEN);
    let agent = limited_agent(&c);
    let mut slow: Vec<TcpStream> = (0..100).map(|_| slow_connection(agent.port)).collect();
    let closed = wait_until(Duration::from_secs(20), || {
        slow.iter_mut().all(|s| {
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            let mut buf = [0u8; 512];
            matches!(s.read(&mut buf), Ok(0)) || matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
        })
    });
    assert!(closed, "slow connections left open");
    assert!(agent.metric("deploy_bot_connections_timed_out_total") > 0);
}

#[test]
fn a_body_that_stops_arriving_gets_408_after_the_body_timeout() {
    let c = Cluster::new(TOKEN);
    let agent = limited_agent(&c);
    let mut s = TcpStream::connect(("127.0.0.1", agent.port)).unwrap();
    s.write_all(b"POST /webhooks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: slow-body\r\nContent-Length: 100\r\n\r\n{\"ref\":").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = vec![0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(agent.metric("deploy_bot_webhook_requests_total{outcome=\"timeout\"}") >= 1);
}

#[test]
fn allow_kind_of_a_cluster_scoped_kind_needs_allow_cluster_scoped() {
    let c = Cluster::new(TOKEN);
    let args = c.args("1h", &["--allow-kind", "CertificateSigningRequest"]);
    let st = c.st.to_string_lossy().into_owned();
    let out = c
        .repo
        .dir
        .cmd("deploy-bot")
        .arg("agent")
        .args(["--state-dir", &st])
        .args(&args)
        .env("DEPLOY_BOT_WEBHOOK_SECRET", support::SECRET)
        .run();
    out.code(2)
        .stderr_one_line()
        .stderr_contains("--allow-kind CertificateSigningRequest: cluster-scoped; pass --allow-cluster-scoped as well");
    // With both, a CertificateSigningRequest is applied (cluster-scoped: no namespace is set on it).
    let csr = "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: c}\nspec: {request: eA==, signerName: example.com/x, usages: [client auth]}\n";
    let commit = c.repo.commit(&[("team/csr.yaml", csr)], &[], "csr");
    let agent = c.verbose_agent(
        "1h",
        &[
            "--allow-kind",
            "CertificateSigningRequest",
            "--allow-cluster-scoped",
        ],
    );
    assert!(
        wait_until(WAIT, || applied_commit(&c.st, "team").as_deref()
            == Some(commit.as_str())),
        "{}",
        agent.log()
    );
}

/// `team` committed and applied by a verbose agent on `c` polling every 300ms with `extra` flags:
/// the commit and the agent.
fn team_applied(c: &Cluster, extra: &[&str]) -> (String, AgentProc) {
    let commit = c.repo.commit(
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
        &[],
        "deploy",
    );
    let agent = c.verbose_agent("300ms", extra);
    assert!(
        wait_until(WAIT, || applied_commit(&c.st, "team").as_deref()
            == Some(commit.as_str())),
        "{}",
        agent.log()
    );
    (commit, agent)
}

#[test]
fn self_heal_checks_an_undrifted_namespace_for_drift_and_leaves_it_alone() {
    let c = Cluster::new(TOKEN);
    let (_, agent) = team_applied(&c, &[]);
    // In sync: several drift checks, no apply.
    assert!(wait_until(WAIT, || agent
        .metric("deploy_bot_drift_checks_total")
        >= 3));
    assert_eq!(c.k.applies("team"), 1);
    assert_eq!(agent.metric("deploy_bot_drift_repairs_total"), 0);
    assert!(c.k.log().iter().any(|l| l.contains(
        "diff --server-side --force-conflicts --field-manager deploy-bot --namespace team -f -"
    )));
}

/// One test: "not applied again" is about the drift checks that follow the repair.
#[test]
fn self_heal_repairs_drift_once_counts_it_and_reports_it_on_the_applied_commit() {
    let c = Cluster::new(TOKEN);
    let (commit, agent) = team_applied(&c, &[]);
    // Drift: repaired once, counted, reported on the applied commit.
    c.k.dir.write("drift", "");
    assert!(
        wait_until(WAIT, || c.k.applies("team") == 2),
        "{}",
        agent.log()
    );
    assert!(wait_until(WAIT, || agent
        .metric("deploy_bot_drift_repairs_total")
        == 1));
    assert!(wait_until(WAIT, || c
        .gh
        .statuses_for("deploy-bot/team")
        .iter()
        .any(|s| s.description.contains("drift repaired"))));
    let st = c.gh.statuses_for("deploy-bot/team");
    let repaired = st
        .iter()
        .find(|s| s.description.contains("drift repaired"))
        .unwrap();
    assert_eq!(
        (repaired.sha.as_str(), repaired.state.as_str()),
        (commit.as_str(), "success")
    );
    assert!(
        repaired
            .description
            .contains("drift repaired (#1): apps.v1.Deployment.team.web differs"),
        "{repaired:?}"
    );
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.st.join("applied/team.json")).unwrap())
            .unwrap();
    assert_eq!(rec["drift_repairs"], 1);
    // A drift check after the repair found the namespace in sync (it counts as a skip): only then is
    // "not applied again" meaningful.
    let skipped = agent.metric("deploy_bot_applies_total{result=\"skipped\"}");
    agent.wait_for_metric("deploy_bot_applies_total{result=\"skipped\"}", |n| {
        n > skipped
    });
    assert_eq!(c.k.applies("team"), 2, "applied again without drift");
}

#[test]
fn self_heal_keeps_the_last_applied_commit_healed_after_a_rejected_commit() {
    let c = Cluster::new(TOKEN);
    let (commit, agent) = team_applied(&c, &[]);
    // A rejected commit applies nothing.
    c.repo.commit(
        &[("team/web.yaml", &deployment("team", "web", "busybox:1"))],
        &[],
        "unpinned",
    );
    assert!(wait_until(WAIT, || c
        .st
        .join("rejected/team.json")
        .exists()));
    assert_eq!(c.k.applies("team"), 1);
    c.k.dir.write("drift", "");
    assert!(
        wait_until(WAIT, || c.k.applies("team") == 2),
        "{}",
        agent.log()
    );
    assert!(wait_until(WAIT, || agent
        .metric("deploy_bot_drift_repairs_total")
        == 1));
    assert_eq!(
        applied_commit(&c.st, "team").as_deref(),
        Some(commit.as_str())
    );
}

#[test]
fn with_no_self_heal_drift_stays_and_reconciles_only_skip() {
    let c = Cluster::new(TOKEN);
    let (_, agent) = team_applied(&c, &[]);
    drop(agent);
    // Restarted with --no-self-heal over the applied namespace, now drifted.
    let before = c.k.log().len();
    c.k.dir.write("drift", "");
    let agent = c.verbose_agent("300ms", &["--no-self-heal"]);
    assert!(wait_until(WAIT, || agent
        .metric("deploy_bot_reconciles_total")
        >= 4));
    assert_eq!(agent.metric("deploy_bot_drift_checks_total"), 0);
    assert_eq!(c.k.applies("team"), 1);
    assert!(!c.k.log()[before..].iter().any(|l| l.contains(" diff ")));
    assert!(c.k.dir.join("drift").exists(), "the drift was repaired");
}

/// A commit with a valid `team` and an invalid `bad` namespace, delivered as a push (`delivery`) to an
/// agent on `c` with these `global` flags and polling every 300ms without self-heal: the commit and the agent.
fn logged_delivery(c: &Cluster, global: &[&str], delivery: &str) -> (String, AgentProc) {
    let commit = c.repo.commit(
        &[
            ("team/web.yaml", &deployment("team", "web", IMAGE)),
            ("bad/web.yaml", &deployment("bad", "web", "busybox:1")),
        ],
        &[],
        "deploy",
    );
    let agent = c.agent_with(global, "300ms", &["--no-self-heal"]);
    let (s, _) = agent.send(
        "push",
        delivery,
        &push_event("refs/heads/main", &commit, "acme/cluster", "x"),
        None,
    );
    assert_eq!(s, 202);
    (commit, agent)
}

#[test]
fn the_agent_logs_deliveries_applies_skips_and_failures_at_info_by_default_as_text() {
    let c = Cluster::new(TOKEN);
    let (_, agent) = logged_delivery(&c, &[], "log-1");
    assert!(wait_until(WAIT, || agent.log().contains("skip: unchanged")
        && agent.log().contains("skip: tree")));
    let log = agent.log();
    for want in [
        "INFO",
        "delivery",
        "log-1",
        "applied: 2 objects",
        "namespace=\"team\"",
        "validation failed",
        "namespace=\"bad\"",
        "skip: unchanged",
    ] {
        assert!(log.contains(want), "{want:?} missing from\n{log}");
    }
    assert!(!log.contains("DEBUG"), "{log}");
}

#[test]
fn with_log_format_json_the_agent_logs_one_object_per_line_with_the_same_fields() {
    let c = Cluster::new(TOKEN);
    let (commit, agent) = logged_delivery(&c, &["--log-format", "json"], "log-2");
    assert!(wait_until(WAIT, || agent.log().contains("skip: unchanged")));
    let lines: Vec<serde_json::Value> = agent
        .log()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |msg: &str| {
        lines
            .iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.starts_with(msg)))
            .unwrap_or_else(|| panic!("no {msg:?} in {lines:#?}"))
    };
    let d = find("delivery");
    assert_eq!(
        (
            d["level"].as_str(),
            d["delivery"].as_str(),
            d["status"].as_u64()
        ),
        (Some("INFO"), Some("log-2"), Some(202))
    );
    let a = find("applied: ");
    assert_eq!(
        (a["namespace"].as_str(), a["commit"].as_str()),
        (Some("team"), Some(commit.as_str()))
    );
    assert_eq!(find("validation failed")["namespace"].as_str(), Some("bad"));
    assert!(find("skip: unchanged")["timestamp"].is_string());
}

#[test]
fn with_96_file_descriptors_120_slow_connections_do_not_stop_healthz_or_deliveries() {
    let prlimit = microplatform_test_support::require("prlimit", "util-linux");
    let c = Cluster::new(TOKEN);
    let args = c.args("1h", &["--header-timeout", "30s"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The default connection limit follows the open-files limit: 96 - 64 = 32 connections.
    let agent = AgentProc::start_wrapped(
        &[&prlimit.to_string_lossy(), "--nofile=96:96"],
        &c.st,
        &["-vv"],
        &args,
        &[("GITHUB_TOKEN", TOKEN)],
    );
    let slow: Vec<TcpStream> = (0..120).map(|_| slow_connection(agent.port)).collect();
    let client = microplatform_test_support::blocking_client_builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..20 {
        let r = client
            .get(agent.url("/healthz"))
            .send()
            .expect("healthz with 120 slow connections and 96 descriptors");
        assert_eq!(r.status(), 200);
    }
    let commit = c.repo.commit(
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
        &[],
        "deploy",
    );
    let (s, b) = agent.send(
        "push",
        "fd-1",
        &push_event("refs/heads/main", &commit, "acme/cluster", "x"),
        None,
    );
    assert_eq!(s, 202, "{b}");
    assert!(
        wait_until(WAIT, || applied_commit(&c.st, "team").as_deref()
            == Some(commit.as_str())),
        "{}",
        agent.log()
    );
    assert!(agent.metric("deploy_bot_connections_open") <= 32);
    assert!(agent.metric("deploy_bot_connections_shed_total") >= 88);
    drop(slow);
}
