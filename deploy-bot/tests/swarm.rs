//! The `swarm` applier for real: a hand-started dockerd in swarm mode, images in a real registry pinned by digest;
//! deploy, redeploy the same digests (no task restarts), deploy with one service removed (pruned).

mod support;

use std::fmt::Write as _;
use std::time::Duration;

use microplatform_test_support::dockerd::{Dockerd, docker_cli};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{TestDir, wait_until};
use support::{AgentProc, ClusterRepo, applied_commit, push_event};

const WAIT: Duration = Duration::from_secs(180);

fn compose(image: &str, services: &[&str]) -> String {
    let mut s = String::from("version: \"3.8\"\nservices:\n");
    for name in services {
        let _ = write!(
            s,
            "  {name}:\n    image: \"{image}\"\n    command: [\"sleep\", \"3600\"]\n    deploy:\n      replicas: 1\n"
        );
    }
    s
}

/// `name replicas` of the stack's services, sorted.
fn services(d: &Dockerd, stack: &str) -> Vec<String> {
    let out = d.run(&[
        "service",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--format",
        "{{.Name}} {{.Replicas}}",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// IDs of the stack's tasks that should be running, sorted.
fn running_tasks(d: &Dockerd, stack: &str) -> Vec<String> {
    let out = d.run(&[
        "stack",
        "ps",
        stack,
        "-q",
        "--filter",
        "desired-state=running",
    ]);
    let mut v: Vec<String> = out.lines().map(str::to_string).collect();
    v.sort();
    v
}

/// The swarm tests share one engine; `docker swarm init` must not race, so they run one at a time.
static SWARM: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn swarm() -> std::sync::MutexGuard<'static, ()> {
    SWARM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct StackGuard<'a>(&'a Dockerd, String);

impl Drop for StackGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.try_run(&["stack", "rm", &self.1]);
    }
}

#[test]
fn swarm_deploy_redeploy_without_restarts_and_prune() {
    let _serial = swarm();
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    let (status, digest, _) = reg.get_manifest("base/busybox", "1");
    assert_eq!(status, 200);
    let digest = digest.expect("digest");
    let image = format!("{}@{digest}", base.trim_end_matches(":1"));
    let ns = format!("dbt{}x{}", std::process::id(), rand_suffix());
    let _guard = StackGuard(d, ns.clone());

    let repo = ClusterRepo::new();
    let state = TestDir::new();
    let st = state.join("s");
    let docker = docker_cli().to_string_lossy().into_owned();
    let agent = AgentProc::follow(
        &st,
        &repo,
        "1h",
        &[
            "--applier",
            "swarm",
            "--docker",
            &docker,
            "--namespace",
            &ns,
        ],
        &[("DOCKER_HOST", &d.host)],
    );

    // Deploy three services.
    let c1 = repo.commit(
        &[(
            &format!("{ns}/compose.yaml"),
            &compose(&image, &["api", "web", "worker"]),
        )],
        &[],
        "deploy",
    );
    assert_eq!(
        agent
            .send(
                "push",
                "s-1",
                &push_event("refs/heads/main", &c1, "acme/cluster", "x"),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || applied_commit(&st, &ns).as_deref()
            == Some(c1.as_str())),
        "{}",
        agent.log()
    );
    let want: Vec<String> = ["api", "web", "worker"]
        .iter()
        .map(|s| format!("{ns}_{s} 1/1"))
        .collect();
    assert!(
        wait_until(WAIT, || services(d, &ns) == want),
        "{:?}\n{}",
        services(d, &ns),
        agent.log()
    );
    let tasks = running_tasks(d, &ns);
    assert_eq!(tasks.len(), 3);

    // Redeploy the same digests (the directory changed, the stack did not): no task restarts.
    let c2 = repo.commit(
        &[(&format!("{ns}/NOTES.md"), "same images\n")],
        &[],
        "redeploy",
    );
    assert_eq!(
        agent
            .send(
                "push",
                "s-2",
                &push_event("refs/heads/main", &c2, "acme/cluster", "x"),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || applied_commit(&st, &ns).as_deref()
            == Some(c2.as_str())),
        "{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(running_tasks(d, &ns), tasks, "tasks were restarted");
    assert_eq!(services(d, &ns), want);

    // One service removed: pruned.
    let c3 = repo.commit(
        &[(
            &format!("{ns}/compose.yaml"),
            &compose(&image, &["api", "web"]),
        )],
        &[],
        "drop worker",
    );
    assert_eq!(
        agent
            .send(
                "push",
                "s-3",
                &push_event("refs/heads/main", &c3, "acme/cluster", "x"),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || applied_commit(&st, &ns).as_deref()
            == Some(c3.as_str())),
        "{}",
        agent.log()
    );
    let want: Vec<String> = ["api", "web"]
        .iter()
        .map(|s| format!("{ns}_{s} 1/1"))
        .collect();
    assert!(
        wait_until(WAIT, || services(d, &ns) == want),
        "{:?}",
        services(d, &ns)
    );

    // An unpinned image is refused: nothing changes.
    let c4 = repo.commit(
        &[(&format!("{ns}/compose.yaml"), &compose(&base, &["api"]))],
        &[],
        "unpinned",
    );
    assert_eq!(
        agent
            .send(
                "push",
                "s-4",
                &push_event("refs/heads/main", &c4, "acme/cluster", "x"),
                None
            )
            .0,
        202
    );
    assert!(
        wait_until(WAIT, || st.join(format!("rejected/{ns}.json")).exists()),
        "{}",
        agent.log()
    );
    assert_eq!(applied_commit(&st, &ns).as_deref(), Some(c3.as_str()));
    assert_eq!(services(d, &ns), want);
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 100_000
}

fn metric(agent: &AgentProc, name: &str) -> u64 {
    let (_, text) = agent.get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

#[test]
fn swarm_drift_is_repaired_without_restarting_undrifted_services_and_delete_tears_the_stack_down() {
    let _serial = swarm();
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    let (status, digest, _) = reg.get_manifest("base/busybox", "1");
    assert_eq!(status, 200);
    let image = format!(
        "{}@{}",
        base.trim_end_matches(":1"),
        digest.expect("digest")
    );
    let ns = format!("dbh{}x{}", std::process::id(), rand_suffix());
    let _guard = StackGuard(d, ns.clone());

    let repo = ClusterRepo::new();
    let state = TestDir::new();
    let st = state.join("s");
    let docker = docker_cli().to_string_lossy().into_owned();
    let c1 = repo.commit(
        &[(
            &format!("{ns}/compose.yaml"),
            &compose(&image, &["api", "web"]),
        )],
        &[],
        "deploy",
    );
    let agent = AgentProc::follow(
        &st,
        &repo,
        "1s",
        &[
            "--applier",
            "swarm",
            "--docker",
            &docker,
            "--namespace",
            &ns,
        ],
        &[("DOCKER_HOST", &d.host)],
    );
    assert!(
        wait_until(WAIT, || applied_commit(&st, &ns).as_deref()
            == Some(c1.as_str())),
        "{}",
        agent.log()
    );
    let want: Vec<String> = ["api", "web"]
        .iter()
        .map(|s| format!("{ns}_{s} 1/1"))
        .collect();
    assert!(
        wait_until(WAIT, || services(d, &ns) == want),
        "{:?}",
        services(d, &ns)
    );
    let tasks = running_tasks(d, &ns);
    // Undrifted: drift checks run on every reconcile, nothing is applied, no task restarts.
    let checks = metric(&agent, "deploy_bot_drift_checks_total");
    assert!(wait_until(WAIT, || metric(
        &agent,
        "deploy_bot_drift_checks_total"
    ) >= checks + 3));
    assert_eq!(metric(&agent, "deploy_bot_drift_repairs_total"), 0);
    assert_eq!(
        running_tasks(d, &ns),
        tasks,
        "an undrifted stack was restarted"
    );

    // Drift: scaled to 0 by hand; the agent brings it back, counts it, logs it. The other service keeps its task.
    d.run(&["service", "scale", "--detach", &format!("{ns}_web=0")]);
    assert!(
        wait_until(WAIT, || metric(&agent, "deploy_bot_drift_repairs_total")
            >= 1),
        "{}",
        agent.log()
    );
    assert!(
        wait_until(WAIT, || services(d, &ns) == want),
        "{:?}",
        services(d, &ns)
    );
    assert!(
        agent
            .log()
            .contains(&format!("{ns}_web: replicas 0, want 1")),
        "{}",
        agent.log()
    );
    let api_task = |t: &[String]| -> Vec<String> {
        t.iter()
            .filter(|id| {
                d.run(&["inspect", "--format", "{{.ServiceID}}", id])
                    == d.run(&[
                        "service",
                        "inspect",
                        "--format",
                        "{{.ID}}",
                        &format!("{ns}_api"),
                    ])
            })
            .cloned()
            .collect()
    };
    assert_eq!(
        api_task(&running_tasks(d, &ns)),
        api_task(&tasks),
        "the undrifted service was restarted"
    );
    let rec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(st.join(format!("applied/{ns}.json"))).unwrap(),
    )
    .unwrap();
    assert!(rec["drift_repairs"].as_u64() >= Some(1));

    // Teardown: `request --delete` removes the directory; the agent removes the stack.
    let out = repo
        .request(&ns)
        .args(["--delete", "--direct", "--forge", "none"])
        .run();
    out.success();
    assert!(
        wait_until(WAIT, || services(d, &ns).is_empty()
            && !st.join(format!("applied/{ns}.json")).exists()),
        "{:?}\n{}",
        services(d, &ns),
        agent.log()
    );
    assert_eq!(metric(&agent, "deploy_bot_teardowns_total"), 1);
}
