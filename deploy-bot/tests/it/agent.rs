//! `deploy-bot agent` with the kubectl applier: a fake `kubectl` (no API server can run here) and the fake GitHub API; real git.
//! Security and reliability: signatures, replays, oversized and malformed bodies, foreign pushes, serialisation, SIGKILL mid-apply.

use crate::support;

use std::time::Duration;

use microplatform_test_support::{TestDir, wait_until};
use support::{
    AgentProc, Cluster, ClusterRepo, FakeKubectl, IMAGE, applied_commit, deployment, pr_event,
    push_event,
};

const TOKEN: &str = "agent-token";
const WAIT: Duration = Duration::from_secs(60);

impl Cluster {
    /// Start an agent on the state directory with the kubectl applier and the GitHub forge,
    /// polling every `poll`, with `extra` flags.
    fn agent_polling(&self, poll: &str, extra: &[&str]) -> AgentProc {
        let (kubectl, api) = (self.k.path().to_string_lossy().into_owned(), self.gh.url());
        let mut args = vec![
            "--applier",
            "kubectl",
            "--kubectl",
            &kubectl,
            "--forge",
            "github",
            "--api-url",
            &api,
            "--environment-url",
            "https://{namespace}.apps.example.com",
        ];
        args.extend_from_slice(extra);
        AgentProc::follow(
            &self.st,
            &self.repo,
            poll,
            &args,
            &[("GITHUB_TOKEN", TOKEN)],
        )
    }

    /// [`Cluster::agent_polling`] with polling practically off (webhooks drive it).
    fn agent(&self, extra: &[&str]) -> AgentProc {
        self.agent_polling("1h", extra)
    }
}

/// An agent following a cluster repo with a fake kubectl, neither the kubectl applier nor a forge:
/// for the webhook endpoint itself.
struct WebhookAgent {
    agent: AgentProc,
    k: FakeKubectl,
    _state: TestDir,
    repo: ClusterRepo,
}

fn webhook_agent() -> WebhookAgent {
    let repo = ClusterRepo::new();
    let k = FakeKubectl::new();
    let state = TestDir::new();
    let agent = AgentProc::follow(
        &state.join("s"),
        &repo,
        "1h",
        &["--kubectl", &k.path().to_string_lossy()],
        &[],
    );
    WebhookAgent {
        agent,
        k,
        _state: state,
        repo,
    }
}

#[test]
fn a_missing_forged_or_mangled_signature_is_refused_and_counted() {
    let WebhookAgent { agent, k, .. } = &webhook_agent();
    let body = push_event("refs/heads/main", "a", "acme/cluster", "x");
    let good = deploy_bot::webhook::sign(support::SECRET.as_bytes(), &body);
    let forged = deploy_bot::webhook::sign(b"not the secret", &body);
    for (sig, what) in [
        (Some(""), "missing"),
        (Some(forged.as_str()), "forged"),
        (Some(&good[..good.len() - 1]), "truncated"),
        (Some(&good[..20]), "truncated short"),
        (Some("sha256="), "empty"),
        (Some(good.trim_start_matches("sha256=")), "no prefix"),
        (Some("sha1=0123"), "sha1"),
    ] {
        let (status, _) = agent.send("push", &format!("d-{what}"), &body, sig);
        assert_eq!(status, 401, "{what} signature accepted");
    }
    // A signature for another body.
    let other = deploy_bot::webhook::sign(support::SECRET.as_bytes(), b"{}");
    assert_eq!(agent.send("push", "d-other", &body, Some(&other)).0, 401);
    let (s, m) = agent.get("/metrics");
    assert_eq!(s, 200);
    assert!(
        m.contains("deploy_bot_webhook_requests_total{outcome=\"unauthorized\"} 8"),
        "{m}"
    );
    // No work was queued by any of it.
    assert!(m.contains("deploy_bot_queue_depth 0"), "{m}");
    assert_eq!(k.started("team"), 0);
}

#[test]
fn a_ping_is_answered_with_pong_and_counted() {
    let WebhookAgent { agent, .. } = &webhook_agent();
    let (s, b) = agent.send(
        "ping",
        "d-ping",
        br#"{"zen":"Keep it logically awesome."}"#,
        None,
    );
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("pong"));
    let (s, m) = agent.get("/metrics");
    assert_eq!(s, 200);
    assert!(
        m.contains("deploy_bot_webhook_requests_total{outcome=\"ping\"} 1"),
        "{m}"
    );
}

#[test]
fn a_malformed_body_is_a_bad_request_and_one_over_25_mb_is_refused() {
    let WebhookAgent { agent, k, .. } = &webhook_agent();
    // Malformed JSON, correctly signed.
    let (s, b) = agent.send("push", "d-bad", b"{not json", None);
    assert_eq!(s, 400, "{b}");
    // Over 25 MB: refused.
    let big = vec![b' '; 25 * 1024 * 1024 + 1];
    let (s, _) = agent.send("push", "d-big", &big, None);
    assert_eq!(s, 413);
    let (s, m) = agent.get("/metrics");
    assert_eq!(s, 200);
    assert!(
        m.contains("deploy_bot_webhook_requests_total{outcome=\"too_large\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("deploy_bot_webhook_requests_total{outcome=\"bad_request\"} 1"),
        "{m}"
    );
    assert!(m.contains("deploy_bot_queue_depth 0"), "{m}");
    assert_eq!(k.started("team"), 0);
}

#[test]
fn a_push_is_recognised_by_the_repository_url_and_ignored_when_neither_name_nor_url_match() {
    let WebhookAgent { agent, k, repo, .. } = &webhook_agent();
    // A full name that is not OWNER/NAME of --repo, but the clone URL is.
    let by_url = serde_json::json!({"ref": "refs/heads/main", "after": "1111111111111111111111111111111111111111",
        "repository": {"full_name": "local/cluster", "clone_url": repo.url()}});
    let (s, b) = agent.send("push", "d-url", &serde_json::to_vec(&by_url).unwrap(), None);
    assert_eq!((s, b.contains("queued")), (202, true), "{b}");
    let foreign = serde_json::json!({"ref": "refs/heads/main", "after": "1111111111111111111111111111111111111111",
        "repository": {"full_name": "local/cluster", "clone_url": "file:///elsewhere/cluster.git"}});
    let (s, b) = agent.send(
        "push",
        "d-foreign",
        &serde_json::to_vec(&foreign).unwrap(),
        None,
    );
    assert_eq!((s, b.contains("another repository")), (202, true), "{b}");
    // The queued commit does not exist: nothing is applied.
    assert_eq!(k.started("team"), 0);
}

#[test]
fn health_readiness_and_metrics_endpoints_answer() {
    let WebhookAgent { agent, k, .. } = &webhook_agent();
    assert_eq!(agent.get("/healthz").0, 200);
    assert!(wait_until(WAIT, || agent.get("/readyz").0 == 200));
    let (s, m) = agent.get("/metrics");
    assert_eq!(s, 200);
    assert!(m.contains("deploy_bot_queue_depth 0"), "{m}");
    assert_eq!(k.started("team"), 0);
}

#[test]
fn refuses_to_start_without_a_secret() {
    let repo = ClusterRepo::new();
    let t = TestDir::new();
    let url = repo.url();
    let agent = || {
        t.cmd("deploy-bot").args([
            "agent",
            "--repo",
            &url,
            "--branch",
            "main",
            "--state-dir",
            "s",
        ])
    };
    agent()
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("DEPLOY_BOT_WEBHOOK_SECRET")
        .run()
        .code(2)
        .stderr_one_line()
        .stderr_contains("no webhook secret");
    t.write("empty", "");
    agent().args(["--secret-file", "empty"]).run().code(2);
}

/// A started, ready agent on `cluster` (the startup reconcile found nothing to apply yet).
fn ready_agent(cluster: &Cluster) -> AgentProc {
    let agent = cluster.agent(&[]);
    assert!(wait_until(WAIT, || agent.get("/readyz").0 == 200));
    agent
}

/// A deploy branch for `team` and `shop` merged through a pull request: the pull request's number, the
/// branch head and the merge commit.
fn merged_deploy_branch(cluster: &Cluster) -> (u64, String, String) {
    let head = cluster.repo.branch(
        "deploy/team/v1",
        &[
            ("team/web.yaml", &deployment("team", "web", IMAGE)),
            ("shop/web.yaml", &deployment("shop", "web", IMAGE)),
        ],
    );
    let n = cluster.gh.open_pull("deploy/team/v1");
    let merged = cluster.gh.merge(n);
    (n, head, merged)
}

/// [`merged_deploy_branch`], its merge pushed to `agent` as delivery `d-1` and applied to `team` and
/// `shop`: the pull request's number, the merge commit and the push body.
fn deliver_merge(cluster: &Cluster, agent: &AgentProc) -> (u64, String, Vec<u8>) {
    let (n, _, merged) = merged_deploy_branch(cluster);
    let body = push_event(
        "refs/heads/main",
        &merged,
        "acme/cluster",
        &format!("Merge pull request #{n} from acme/deploy/team/v1"),
    );
    let (s, b) = agent.send("push", "d-1", &body, None);
    assert_eq!(s, 202, "{b}");
    assert!(b.contains("queued"));
    let st = &cluster.st;
    assert!(
        wait_until(WAIT, || applied_commit(st, "team").as_deref()
            == Some(merged.as_str())
            && applied_commit(st, "shop").as_deref() == Some(merged.as_str())),
        "{}",
        agent.log()
    );
    (n, merged, body)
}

#[test]
fn pushes_for_another_branch_or_another_repository_are_ignored() {
    let cluster = Cluster::new(TOKEN);
    let agent = ready_agent(&cluster);
    let (_, head, merged) = merged_deploy_branch(&cluster);
    let (s, b) = agent.send(
        "push",
        "d-other-branch",
        &push_event("refs/heads/dev", &head, "acme/cluster", "x"),
        None,
    );
    assert_eq!(s, 202);
    assert!(b.contains("another branch"), "{b}");
    let (s, b) = agent.send(
        "push",
        "d-other-repo",
        &push_event("refs/heads/main", &merged, "evil/cluster", "x"),
        None,
    );
    assert_eq!(s, 202);
    assert!(b.contains("another repository"), "{b}");
    // Both were handled as ignored and nothing was queued: only then is "no apply" meaningful.
    agent.wait_for_metric(
        "deploy_bot_webhook_requests_total{outcome=\"ignored\"}",
        |n| n == 2,
    );
    assert_eq!(
        agent.metric("deploy_bot_webhook_requests_total{outcome=\"queued\"}"),
        0
    );
    assert_eq!(cluster.k.started("team"), 0, "a foreign push was acted on");
}

#[test]
fn a_merge_push_applies_each_changed_namespace_server_side_pruning_by_inventory() {
    let cluster = Cluster::new(TOKEN);
    let agent = ready_agent(&cluster);
    deliver_merge(&cluster, &agent);
    let k = &cluster.k;
    assert_eq!(k.applies("team"), 1);
    assert_eq!(k.applies("shop"), 1);
    // Server-side apply with our field manager, pruning by inventory label; the namespace is ensured first.
    let log = k.log().join("\n");
    assert!(
        log.contains("apply --force-conflicts --server-side --field-manager deploy-bot -f -"),
        "{log}"
    );
    assert!(log.contains("--server-side --force-conflicts --field-manager deploy-bot --namespace team --prune --selector deploy-bot.microplatform.dev/inventory=team"), "{log}");
    assert!(log.contains("--prune-allowlist apps/v1/Deployment"));
}

#[test]
fn a_merge_push_reports_pending_then_success_per_namespace_and_comments_on_the_pull_request() {
    let cluster = Cluster::new(TOKEN);
    let agent = ready_agent(&cluster);
    let (n, merged, _) = deliver_merge(&cluster, &agent);
    let gh = &cluster.gh;
    // Statuses pending → success per namespace, with the environment URL; a comment on the merged pull request.
    assert!(wait_until(WAIT, || gh
        .statuses_for("deploy-bot/shop")
        .len()
        == 2
        && gh.with(|r| r.comments.len()) == 2));
    let st_team = gh.statuses_for("deploy-bot/team");
    assert_eq!(
        st_team.iter().map(|s| s.state.as_str()).collect::<Vec<_>>(),
        ["pending", "success"]
    );
    assert!(st_team.iter().all(
        |s| s.sha == merged && s.target_url.as_deref() == Some("https://team.apps.example.com")
    ));
    gh.with(|r| {
        assert!(r.comments.iter().all(|(num, _)| *num == n));
        assert!(r.comments.iter().any(|(_, b)| b.contains("`team`")
            && b.contains("**applied**")
            && b.contains("https://team.apps.example.com")));
    });
}

/// One test: a replay is only a replay of a delivery that came before, on this agent and then on
/// a restarted one over the same state directory.
#[test]
fn a_replayed_delivery_is_acted_on_once_also_after_a_restart() {
    let cluster = Cluster::new(TOKEN);
    let agent = ready_agent(&cluster);
    let (_, _, body) = deliver_merge(&cluster, &agent);
    let (s, b) = agent.send("push", "d-1", &body, None);
    assert_eq!(s, 200);
    assert!(b.contains("duplicate"));
    // The delivery ids are persisted.
    drop(agent);
    let agent = cluster.agent(&[]);
    let (s, b) = agent.send("push", "d-1", &body, None);
    assert_eq!((s, b.contains("duplicate")), (200, true));
    assert_eq!(cluster.k.applies("team"), 1);
    assert_eq!(cluster.k.applies("shop"), 1);
}

#[test]
fn a_new_delivery_of_an_applied_commit_and_the_startup_reconcile_apply_nothing_again() {
    let cluster = Cluster::new(TOKEN);
    let agent = ready_agent(&cluster);
    let (_, _, body) = deliver_merge(&cluster, &agent);
    // Restarted, so that its startup reconcile runs over the applied commit and its counters start at 0.
    drop(agent);
    let agent = cluster.agent(&[]);
    let (s, _) = agent.send("push", "d-2", &body, None);
    assert_eq!(s, 202);
    assert!(wait_until(WAIT, || agent
        .get("/metrics")
        .1
        .contains("deploy_bot_queue_depth 0")));
    // Both were processed: the push (queue drained) and the startup reconcile each skipped team and shop
    // as unchanged; only then is "no second apply" meaningful.
    agent.wait_for_metric("deploy_bot_applies_total{result=\"skipped\"}", |n| n >= 4);
    assert_eq!(
        agent.metric("deploy_bot_applies_total{result=\"success\"}"),
        0
    );
    assert_eq!(cluster.k.applies("team"), 1);
    assert_eq!(cluster.k.applies("shop"), 1);
}

#[test]
fn a_later_push_applies_only_the_changed_namespace_and_prunes_a_removed_one() {
    let cluster = Cluster::new(TOKEN);
    let agent = ready_agent(&cluster);
    deliver_merge(&cluster, &agent);
    let Cluster { repo, k, st, .. } = &cluster;
    let c2 = repo.commit(
        &[("team/web.yaml", &deployment("team", "web2", IMAGE))],
        &["shop"],
        "change team, drop shop",
    );
    assert_eq!(
        agent
            .send(
                "push",
                "d-3",
                &push_event("refs/heads/main", &c2, "acme/cluster", "x"),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || applied_commit(st, "team").as_deref()
            == Some(c2.as_str())),
        "{}",
        agent.log()
    );
    assert!(wait_until(WAIT, || !st.join("applied/shop.json").exists()));
    assert_eq!(k.applies("team"), 2);
    assert_eq!(k.applies("shop"), 1);
    assert!(k.log().iter().any(|l| l.starts_with("END") && l.contains("delete --namespace shop --ignore-not-found --selector deploy-bot.microplatform.dev/inventory=shop")));
}

#[test]
fn invalid_namespace_applies_nothing_and_reports_why() {
    let cluster = Cluster::new(TOKEN);
    let Cluster {
        repo, gh, k, st, ..
    } = &cluster;
    let c = repo.commit(
        &[
            ("good/web.yaml", &deployment("good", "web", IMAGE)),
            (
                "bad/web.yaml",
                &deployment("bad", "web", "registry.example.com/web:latest"),
            ),
            ("cross/web.yaml", &deployment("elsewhere", "web", IMAGE)),
            ("Not_A_Namespace/x.yaml", &deployment("x", "web", IMAGE)),
        ],
        &[],
        "mixed",
    );
    let agent = cluster.agent(&[]);
    // The startup reconcile applies the head.
    assert!(
        wait_until(WAIT, || applied_commit(st, "good").as_deref()
            == Some(c.as_str())),
        "{}",
        agent.log()
    );
    assert!(wait_until(WAIT, || gh.statuses_for("deploy-bot/bad").len()
        == 2
        && gh.statuses_for("deploy-bot/cross").len() == 2));
    let bad = gh.statuses_for("deploy-bot/bad");
    assert_eq!(bad[1].state, "failure");
    assert!(
        bad[1].description.contains("not pinned by digest"),
        "{}",
        bad[1].description
    );
    let cross = gh.statuses_for("deploy-bot/cross");
    assert!(
        cross[1].description.contains("namespace \"elsewhere\""),
        "{}",
        cross[1].description
    );
    assert_eq!(
        k.started("bad") + k.started("cross") + k.started("Not_A_Namespace"),
        0
    );
    assert!(k.log().iter().all(|l| !l.contains("Not_A_Namespace")));
    assert!(!st.join("applied/bad.json").exists());
}

/// A deploy branch `branch` for `team` with `image`, and an open pull request for it: the pull
/// request's number and the branch head.
fn team_pull(cluster: &Cluster, branch: &str, image: &str) -> (u64, String) {
    let head = cluster.repo.branch(
        branch,
        &[("team/web.yaml", &deployment("team", "web", image))],
    );
    (cluster.gh.open_pull(branch), head)
}

#[test]
fn a_pull_request_is_dry_run_on_the_server_and_reported_without_being_applied() {
    let cluster = Cluster::new(TOKEN);
    let Cluster { gh, k, .. } = &cluster;
    let agent = cluster.agent(&[]);
    let (n, good) = team_pull(&cluster, "deploy/team/good", IMAGE);
    assert_eq!(
        agent
            .send(
                "pull_request",
                "p-1",
                &pr_event("opened", n, "deploy/team/good", &good),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || gh.statuses_for("deploy-bot/team").len() == 2),
        "{}",
        agent.log()
    );
    let s = gh.statuses_for("deploy-bot/team");
    assert_eq!(
        (s[1].state.as_str(), s[1].sha.as_str()),
        ("success", good.as_str())
    );
    assert!(s[1].description.contains("dry run passed"));
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("--dry-run=server") && l.contains("--namespace team"))
    );
    assert_eq!(
        k.applies("team"),
        0,
        "a pull request was applied before merge"
    );
    assert!(wait_until(WAIT, || gh.with(|r| r
        .comments
        .iter()
        .any(|(num, b)| *num == n && b.contains("dry run passed")))));
}

#[test]
fn a_pull_request_with_an_unpinned_image_fails_its_status() {
    let cluster = Cluster::new(TOKEN);
    let agent = cluster.agent(&[]);
    let (n2, bad) = team_pull(&cluster, "deploy/team/bad", "busybox:1");
    assert_eq!(
        agent
            .send(
                "pull_request",
                "p-2",
                &pr_event("synchronize", n2, "deploy/team/bad", &bad),
                None
            )
            .0,
        202
    );
    assert!(wait_until(WAIT, || cluster
        .gh
        .statuses_for("deploy-bot/team")
        .iter()
        .any(|s| s.sha == bad && s.state == "failure")));
    assert_eq!(cluster.k.applies("team"), 0);
}

/// One test: the teardown on close is of the preview environment the pull request's update created.
#[test]
fn with_previews_a_pull_request_gets_its_own_namespace_torn_down_on_close() {
    let cluster = Cluster::new(TOKEN);
    let k = &cluster.k;
    let (n, good) = team_pull(&cluster, "deploy/team/good", IMAGE);
    assert_eq!(n, 1, "the preview namespace is named after pull request 1");
    let agent = cluster.agent(&["--preview", "--teardown-on-close"]);
    assert_eq!(
        agent
            .send(
                "pull_request",
                "p-3",
                &pr_event("synchronize", n, "deploy/team/good", &good),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || k.applies("team-pr-1") == 1),
        "{}",
        agent.log()
    );
    assert_eq!(
        agent
            .send(
                "pull_request",
                "p-4",
                &pr_event("closed", n, "deploy/team/good", &good),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || k.log().iter().any(
            |l| l.starts_with("END") && l.contains("delete namespace team-pr-1")
        )),
        "{}",
        agent.log()
    );
    assert_eq!(k.applies("team"), 0);
}

/// Three commits to `team` in turn, each pushed as three simultaneous deliveries, the next commit's
/// deliveries arriving while `k` holds the previous apply: the last commit.
fn push_three_commits_concurrently(
    repo: &ClusterRepo,
    k: &FakeKubectl,
    agent: &AgentProc,
) -> String {
    let mut last = String::new();
    for i in 0..3 {
        last = repo.commit(
            &[(
                "team/web.yaml",
                &deployment("team", &format!("web{i}"), IMAGE),
            )],
            &[],
            &format!("c{i}"),
        );
        let body = push_event("refs/heads/main", &last, "acme/cluster", "x");
        // Several deliveries at once for the same namespace.
        std::thread::scope(|s| {
            for j in 0..3 {
                let (agent, body) = (&agent, &body);
                s.spawn(move || {
                    assert_eq!(agent.send("push", &format!("c-{i}-{j}"), body, None).0, 202);
                });
            }
        });
        // The next deliveries arrive while this commit's apply is being held by kubectl.
        assert!(
            wait_until(WAIT, || k.started("team") > i),
            "{}",
            agent.log()
        );
    }
    last
}

#[test]
fn concurrent_deliveries_for_one_namespace_are_serialised() {
    let repo = ClusterRepo::new();
    let k = FakeKubectl::new();
    k.dir.write("sleep", "1");
    k.dir.write("sleep-ns", "team");
    let state = TestDir::new();
    let st = state.join("s");
    let kp = k.path().to_string_lossy().into_owned();
    let agent = AgentProc::follow(&st, &repo, "1s", &["--kubectl", &kp], &[]);
    let last = push_three_commits_concurrently(&repo, &k, &agent);
    assert!(
        wait_until(WAIT, || applied_commit(&st, "team").as_deref()
            == Some(last.as_str())),
        "{}",
        agent.log()
    );
    let log = k.log();
    let team: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("--namespace team --prune"))
        .collect();
    assert!(team.len() >= 6, "{team:#?}");
    // Every START is followed by its END before the next START: never two applies at once.
    for pair in team.chunks(2) {
        assert!(pair[0].starts_with("START"), "{team:#?}");
        assert!(pair.len() == 2 && pair[1].starts_with("END"), "{team:#?}");
        assert_eq!(
            pair[0].split(' ').nth(1),
            pair[1].split(' ').nth(1),
            "{team:#?}"
        );
    }
}

/// An agent killed (with its kubectl) in the middle of applying `team` (commit `c2`), after it had
/// applied `alpha` (commit `c1`).
struct KilledMidApply {
    repo: ClusterRepo,
    k: FakeKubectl,
    _state: TestDir,
    st: std::path::PathBuf,
    kubectl: String,
    c1: String,
    c2: String,
}

impl KilledMidApply {
    fn new() -> Self {
        let repo = ClusterRepo::new();
        let k = FakeKubectl::new();
        let state = TestDir::new();
        let st = state.join("s");
        let kubectl = k.path().to_string_lossy().into_owned();
        let mut agent = AgentProc::follow(&st, &repo, "1h", &["--kubectl", &kubectl], &[]);
        let c1 = repo.commit(
            &[("alpha/web.yaml", &deployment("alpha", "web", IMAGE))],
            &[],
            "alpha",
        );
        assert_eq!(
            agent
                .send(
                    "push",
                    "k-1",
                    &push_event("refs/heads/main", &c1, "acme/cluster", "x"),
                    None
                )
                .0,
            202
        );
        assert!(wait_until(WAIT, || applied_commit(&st, "alpha").as_deref()
            == Some(c1.as_str())));
        // Hold the apply of `team` and kill the agent (and its kubectl) in the middle of it.
        k.dir.write("sleep", "30");
        k.dir.write("sleep-ns", "team");
        let c2 = repo.commit(
            &[("team/web.yaml", &deployment("team", "web", IMAGE))],
            &[],
            "team",
        );
        assert_eq!(
            agent
                .send(
                    "push",
                    "k-2",
                    &push_event("refs/heads/main", &c2, "acme/cluster", "x"),
                    None
                )
                .0,
            202
        );
        assert!(
            wait_until(WAIT, || k.started("team") == 1),
            "{}",
            agent.log()
        );
        agent.kill();
        Self {
            repo,
            k,
            _state: state,
            st,
            kubectl,
            c1,
            c2,
        }
    }

    /// Release kubectl's hold and start the agent again on the same state directory, waiting until
    /// it has applied `c2`.
    fn restart_and_converge(&self) -> AgentProc {
        std::fs::remove_file(self.k.dir.join("sleep")).unwrap();
        let agent = AgentProc::follow(
            &self.st,
            &self.repo,
            "1h",
            &["--kubectl", &self.kubectl],
            &[],
        );
        assert!(
            wait_until(WAIT, || applied_commit(&self.st, "team").as_deref()
                == Some(self.c2.as_str())),
            "{}",
            agent.log()
        );
        agent
    }
}

#[test]
fn killed_mid_apply_leaves_the_namespace_unapplied_and_the_delivery_journaled() {
    let killed = KilledMidApply::new();
    assert_eq!(killed.k.applies("team"), 0);
    assert!(applied_commit(&killed.st, "team").is_none());
    // The journal still holds the accepted delivery.
    let journal = std::fs::read_to_string(killed.st.join("queue/queue.journal")).unwrap();
    assert!(journal.contains(&killed.c2), "{journal}");
}

/// One test with the kill: the restart is what has to recover from the state the kill left.
#[test]
fn killed_mid_apply_converges_after_restart_without_reapplying_the_rest() {
    let killed = KilledMidApply::new();
    let agent = killed.restart_and_converge();
    assert!(wait_until(WAIT, || agent
        .get("/metrics")
        .1
        .contains("deploy_bot_queue_depth 0")));
    assert_eq!(killed.k.applies("team"), 1);
    assert_eq!(killed.k.applies("alpha"), 1, "alpha was applied again");
    assert!(applied_commit(&killed.st, "alpha").as_deref() == Some(killed.c1.as_str()));
}

/// One test with the kill and restart: the delivery must have been accepted before the crash.
#[test]
fn after_a_kill_mid_apply_and_restart_a_redelivery_is_recognised_as_a_duplicate() {
    let killed = KilledMidApply::new();
    let agent = killed.restart_and_converge();
    let (s, b) = agent.send(
        "push",
        "k-2",
        &push_event("refs/heads/main", &killed.c2, "acme/cluster", "x"),
        None,
    );
    assert_eq!((s, b.contains("duplicate")), (200, true));
}

#[test]
fn apply_failure_is_reported_and_retried_with_backoff_until_it_succeeds() {
    let cluster = Cluster::new(TOKEN);
    let Cluster {
        repo, gh, k, st, ..
    } = &cluster;
    k.dir.write("fail", "");
    let c = repo.commit(
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
        &[],
        "team",
    );
    let agent = cluster.agent_polling("1s", &[]);
    assert!(
        wait_until(WAIT, || gh.statuses_for("deploy-bot/team").iter().any(
            |s| s.state == "failure" && s.description.contains("server rejected")
        )),
        "{}",
        agent.log()
    );
    assert!(applied_commit(st, "team").is_none());
    std::fs::remove_file(k.dir.join("fail")).unwrap();
    assert!(
        wait_until(WAIT, || applied_commit(st, "team").as_deref()
            == Some(c.as_str())),
        "{}",
        agent.log()
    );
    // The success status is posted right after the apply is recorded.
    assert!(wait_until(WAIT, || gh
        .statuses_for("deploy-bot/team")
        .pop()
        .is_some_and(|s| s.state == "success")));
    let last = gh.statuses_for("deploy-bot/team").pop().unwrap();
    assert_eq!(
        (last.state.as_str(), last.sha.as_str()),
        ("success", c.as_str())
    );
}

/// `deploy-bot status`'s JSON (`deny_unknown_fields`).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Status {
    schema_version: u32,
    namespace: String,
    commit: Option<String>,
    state: String,
    tree: Option<String>,
    applied: Option<serde_json::Value>,
    reason: Option<String>,
}

/// An agent that has applied commit `c1` (namespace `good`) of `cluster`'s repo: the commit and the agent.
fn agent_with_good_applied(cluster: &Cluster) -> (String, AgentProc) {
    let c1 = cluster.repo.commit(
        &[("good/web.yaml", &deployment("good", "web", IMAGE))],
        &[],
        "one",
    );
    let agent = cluster.agent(&[]);
    assert!(
        wait_until(WAIT, || applied_commit(&cluster.st, "good").as_deref()
            == Some(c1.as_str())),
        "{}",
        agent.log()
    );
    (c1, agent)
}

/// `deploy-bot status --agent-url <agent> args…`.
fn status(agent: &AgentProc, args: &[&str]) -> microplatform_test_support::Output {
    microplatform_test_support::Cmd::new(microplatform_test_support::bin("deploy-bot"))
        .args(["status", "--agent-url", &agent.url("")])
        .args(args)
        .run()
}

#[test]
fn status_of_an_applied_commit_names_its_tree_and_the_recorded_apply() {
    let cluster = Cluster::new(TOKEN);
    let (c1, agent) = agent_with_good_applied(&cluster);
    let out = status(
        &agent,
        &["--namespace", "good", "--commit", &c1, "--wait", "30s"],
    );
    out.success();
    let s: Status = out.json();
    assert_eq!(
        (s.schema_version, s.namespace.as_str(), s.state.as_str()),
        (1, "good", "applied")
    );
    assert_eq!(s.commit.as_deref(), Some(c1.as_str()));
    assert_eq!(
        s.tree,
        Some(cluster.repo.git(&["rev-parse", &format!("{c1}:good")]))
    );
    assert_eq!(
        s.applied.as_ref().map(|a| a["commit"].clone()),
        Some(c1.clone().into())
    );
    assert_eq!(s.reason, None);
}

/// `deploy-bot -vv status --wait 60s` for `commit` of `good`, asking `agent` every 200ms, started in the
/// background with its log in `log`.
fn spawn_status_waiter(
    agent: &AgentProc,
    commit: &str,
    log: &std::path::Path,
) -> std::process::Child {
    std::process::Command::new(microplatform_test_support::bin("deploy-bot"))
        .args([
            "-vv",
            "status",
            "--agent-url",
            &agent.url(""),
            "--namespace",
            "good",
        ])
        .args(["--commit", commit, "--wait", "60s", "--interval", "200ms"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).expect("status log"))
        .spawn()
        .expect("deploy-bot status")
}

/// The output of a [`spawn_status_waiter`] once it exits.
fn waited_output(
    waiter: std::process::Child,
    log: &std::path::Path,
) -> microplatform_test_support::Output {
    let out = waiter.wait_with_output().expect("waiter");
    microplatform_test_support::Output {
        command: "deploy-bot -vv status --wait 60s".into(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: std::fs::read_to_string(log).unwrap_or_default(),
    }
}

/// A new commit the agent has not heard of: pending; a waiting status returns once the push webhook
/// made the agent apply it.
#[test]
fn a_waiting_status_returns_once_the_push_made_the_agent_apply_a_pending_commit() {
    let cluster = Cluster::new(TOKEN);
    let (_, agent) = agent_with_good_applied(&cluster);
    let c2 = cluster.repo.commit(
        &[("good/api.yaml", &deployment("good", "api", IMAGE))],
        &[],
        "two",
    );
    let pending: Status = status(&agent, &["--namespace", "good", "--commit", &c2]).json();
    assert_eq!((pending.state.as_str(), pending.tree), ("pending", None));
    let waiter_dir = TestDir::new();
    let waiter_log = waiter_dir.join("status.log");
    let waiter = spawn_status_waiter(&agent, &c2, &waiter_log);
    // The waiter asked and was told pending before the push: it really waits for the apply.
    assert!(
        wait_until(WAIT, || std::fs::read_to_string(&waiter_log)
            .is_ok_and(|l| l.contains("waiting for the agent"))),
        "{}",
        std::fs::read_to_string(&waiter_log).unwrap_or_default()
    );
    let (code, _) = agent.send(
        "push",
        "d-status-2",
        &push_event("refs/heads/main", &c2, "acme/cluster", "two"),
        None,
    );
    assert_eq!(code, 202);
    let result = waited_output(waiter, &waiter_log);
    result.success();
    let s: Status = result.json();
    assert_eq!(
        (s.state.as_str(), s.commit.as_deref()),
        ("applied", Some(c2.as_str()))
    );
}

#[test]
fn a_waiting_status_fails_at_once_with_the_reason_the_agent_refused_the_tree() {
    let cluster = Cluster::new(TOKEN);
    let (_, agent) = agent_with_good_applied(&cluster);
    let c3 = cluster.repo.commit(
        &[(
            "bad/web.yaml",
            &deployment("bad", "web", "registry.example.com/web:latest"),
        )],
        &[],
        "three",
    );
    let (code, _) = agent.send(
        "push",
        "d-status-3",
        &push_event("refs/heads/main", &c3, "acme/cluster", "three"),
        None,
    );
    assert_eq!(code, 202);
    // Exit 10.
    status(
        &agent,
        &[
            "--namespace",
            "bad",
            "--commit",
            &c3,
            "--wait",
            "60s",
            "--interval",
            "200ms",
        ],
    )
    .code(10)
    .stderr_contains("not pinned by digest");
}

#[test]
fn status_of_a_namespace_with_no_directory_and_nothing_applied_is_removed_at_the_branch_head() {
    let cluster = Cluster::new(TOKEN);
    let (c1, agent) = agent_with_good_applied(&cluster);
    // The branch head is the default commit.
    let gone: Status = status(&agent, &["--namespace", "nowhere"]).json();
    assert_eq!(
        (gone.state.as_str(), gone.commit.as_deref()),
        ("removed", Some(c1.as_str()))
    );
}

#[test]
fn namespace_names_are_checked_by_both_the_agent_and_status() {
    let cluster = Cluster::new(TOKEN);
    let (_, agent) = agent_with_good_applied(&cluster);
    assert_eq!(agent.get("/namespaces/Not_A_Namespace").0, 400);
    assert_eq!(agent.get("/namespaces/good?commit=HEAD%7E1").0, 400);
    status(&agent, &["--namespace", "Not_A_Namespace"]).code(2);
}

#[test]
fn status_of_a_request_that_opened_a_pull_request_is_refused_until_merged() {
    let cluster = Cluster::new(TOKEN);
    let (_, agent) = agent_with_good_applied(&cluster);
    let req = TestDir::new();
    let file = req.write(
        "request.json",
        r#"{"schema_version":1,"branch":"deploy/good/abc","commit":"0123abcd","pull_request":null}"#,
    );
    status(
        &agent,
        &[
            "--namespace",
            "good",
            "--request",
            file.to_str().expect("utf-8"),
        ],
    )
    .code(2)
    .stderr_contains("once merged");
}
