//! The `swarm` applier for real: a hand-started dockerd in swarm mode, images in a real registry pinned by digest;
//! deploy, redeploy the same digests (no task restarts), deploy with one service removed (pruned); `smoke --by-name`
//! calling a stack's services by name from its network; `notify --wait --removed` waiting for a torn-down stack.

use crate::support;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use microplatform_test_support::dockerd::{Dockerd, docker_cli};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, Output, TestDir, bin, wait_until};
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

/// `name spec` of the stack's services, sorted: the spec (image, env, labels, ...) is what a redeploy would
/// change, and a changed task spec is what makes Swarm replace tasks.
fn specs(d: &Dockerd, stack: &str) -> Vec<String> {
    let ids = d.run(&[
        "service",
        "ls",
        "-q",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
    ]);
    let mut v: Vec<String> = ids
        .lines()
        .map(|id| {
            d.run(&[
                "service",
                "inspect",
                "--format",
                "{{.Spec.Name}} {{json .Spec}}",
                id,
            ])
        })
        .collect();
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

/// Those of `tasks` that belong to the service named `service`.
fn tasks_of(d: &Dockerd, service: &str, tasks: &[String]) -> Vec<String> {
    let id = d.run(&["service", "inspect", "--format", "{{.ID}}", service]);
    tasks
        .iter()
        .filter(|t| d.run(&["inspect", "--format", "{{.ServiceID}}", t]) == id)
        .cloned()
        .collect()
}

/// `docker stack rm NAME` when dropped, also when the test fails.
struct StackGuard(&'static Dockerd, String);

impl Drop for StackGuard {
    fn drop(&mut self) {
        let _ = self.0.try_run(&["stack", "rm", &self.1]);
    }
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 100_000
}

/// A stack of its own on the shared engine (in swarm mode), removed on drop, and a fresh registry holding the
/// base image. Nothing is deployed yet.
struct Stack {
    _rm: StackGuard,
    d: &'static Dockerd,
    _reg: Registry,
    /// The base image by tag, `REGISTRY/base/busybox:1`.
    base: String,
    /// The base image pinned by digest.
    image: String,
    /// The stack's name (its directory in a cluster repo, its namespace): `PREFIX<pid>x<n>`.
    ns: String,
}

impl Stack {
    /// A stack named `PREFIX<pid>x<n>`.
    fn new(prefix: &str) -> Self {
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
        let ns = format!("{prefix}{}x{}", std::process::id(), rand_suffix());
        Self {
            _rm: StackGuard(d, ns.clone()),
            d,
            _reg: reg,
            base,
            image,
            ns,
        }
    }

    /// `name replicas` of the stack's services, sorted.
    fn services(&self) -> Vec<String> {
        services(self.d, &self.ns)
    }

    /// `NS_<name> 1/1` for each of `names`: what [`Stack::services`] is when the stack runs them.
    fn want(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|s| format!("{}_{s} 1/1", self.ns))
            .collect()
    }

    /// Wait until the stack runs exactly `names`, one replica each; false when it does not in time.
    fn wait_running(&self, names: &[&str]) -> bool {
        let want = self.want(names);
        wait_until(WAIT, || self.services() == want)
    }
}

/// A [`Stack`] deployed from its directory in a cluster repo by an agent with the swarm applier, and the
/// agent's state directory.
struct Followed {
    s: Stack,
    repo: ClusterRepo,
    st: PathBuf,
    _state: TestDir,
}

impl Followed {
    /// A stack named `PREFIX<pid>x<n>`, an empty cluster repo and no agent yet.
    fn new(prefix: &str) -> Self {
        let state = TestDir::new();
        Self {
            s: Stack::new(prefix),
            repo: ClusterRepo::new(),
            st: state.join("s"),
            _state: state,
        }
    }

    /// An agent following the repo's main branch every `poll`, applying the stack's directory to the engine.
    fn agent(&self, poll: &str) -> AgentProc {
        let docker = docker_cli().to_string_lossy().into_owned();
        AgentProc::follow(
            &self.st,
            &self.repo,
            poll,
            &[
                "--applier",
                "swarm",
                "--docker",
                &docker,
                "--namespace",
                &self.s.ns,
            ],
            &[("DOCKER_HOST", &self.s.d.host)],
        )
    }

    /// Commit `NS/compose.yaml` running `services` of `image` to main; returns the commit.
    fn commit_compose(&self, image: &str, services: &[&str], msg: &str) -> String {
        self.repo.commit(
            &[(
                &format!("{}/compose.yaml", self.s.ns),
                &compose(image, services),
            )],
            &[],
            msg,
        )
    }

    /// Wait until the agent recorded `commit` as applied to the stack; false when it did not in time.
    fn wait_applied(&self, commit: &str) -> bool {
        wait_until(WAIT, || {
            applied_commit(&self.st, &self.s.ns).as_deref() == Some(commit)
        })
    }

    /// A stack its agent (driven by webhooks: it polls hourly) deployed from a push (`s-1`) of `names`, pinned:
    /// the push accepted, the commit applied, every service running one task.
    fn pushed(prefix: &str, names: &[&str]) -> (Self, AgentProc) {
        let f = Self::new(prefix);
        let agent = f.agent("1h");
        let c1 = f.commit_compose(&f.s.image, names, "deploy");
        assert_eq!(push(&agent, "s-1", &c1), 202);
        assert!(f.wait_applied(&c1), "{}", agent.log());
        assert!(
            f.s.wait_running(names),
            "{:?}\n{}",
            f.s.services(),
            agent.log()
        );
        (f, agent)
    }

    /// A stack of `api` and `web`, pinned, its agent deployed on its first poll; the agent polls every second, so
    /// it checks the stack for drift every second.
    fn polled(prefix: &str) -> (Self, AgentProc) {
        let f = Self::new(prefix);
        let c1 = f.commit_compose(&f.s.image, &["api", "web"], "deploy");
        let agent = f.agent("1s");
        assert!(f.wait_applied(&c1), "{}", agent.log());
        assert!(f.s.wait_running(&["api", "web"]), "{:?}", f.s.services());
        (f, agent)
    }
}

/// Send the agent a push of `commit` to main as delivery `delivery`; returns the HTTP status.
fn push(agent: &AgentProc, delivery: &str, commit: &str) -> u16 {
    let body = push_event("refs/heads/main", commit, "acme/cluster", "x");
    agent.send("push", delivery, &body, None).0
}

/// A push of pinned services deploys them as the stack, one running task each.
#[test]
fn a_push_of_pinned_services_deploys_them_one_task_each() {
    let _serial = support::swarm_lock();
    let (f, _agent) = Followed::pushed("dbt", &["api", "web", "worker"]);
    assert_eq!(running_tasks(f.s.d, &f.s.ns).len(), 3);
}

/// A push that changes the stack's directory but no image is applied (a second `docker stack deploy`, not a
/// skip) and leaves the services' specs as they were: Swarm has nothing to roll, so the tasks are the same ones.
#[test]
fn redeploying_the_same_digests_restarts_no_task() {
    let _serial = support::swarm_lock();
    let (f, agent) = Followed::pushed("dbt", &["api", "web", "worker"]);
    let (tasks, before) = (running_tasks(f.s.d, &f.s.ns), specs(f.s.d, &f.s.ns));
    let notes = format!("{}/NOTES.md", f.s.ns);
    let c2 = f.repo.commit(&[(&notes, "same images\n")], &[], "redeploy");
    assert_eq!(push(&agent, "s-2", &c2), 202);
    assert!(f.wait_applied(&c2), "{}", agent.log());
    agent.wait_for_metric("deploy_bot_applies_total{result=\"success\"}", |n| n == 2);
    assert_eq!(
        specs(f.s.d, &f.s.ns),
        before,
        "the redeploy changed a service"
    );
    assert_eq!(running_tasks(f.s.d, &f.s.ns), tasks, "tasks were restarted");
    assert_eq!(f.s.services(), f.s.want(&["api", "web", "worker"]));
}

/// A push without one of the services removes it from the stack (pruned).
#[test]
fn a_service_dropped_from_the_compose_file_is_pruned() {
    let _serial = support::swarm_lock();
    let (f, agent) = Followed::pushed("dbt", &["api", "web", "worker"]);
    let c2 = f.commit_compose(&f.s.image, &["api", "web"], "drop worker");
    assert_eq!(push(&agent, "s-2", &c2), 202);
    assert!(f.wait_applied(&c2), "{}", agent.log());
    assert!(
        f.s.wait_running(&["api", "web"]),
        "{:?}\n{}",
        f.s.services(),
        agent.log()
    );
}

/// A push of an image by tag (not pinned) is rejected: the applied commit and the services stay as they were.
#[test]
fn an_unpinned_image_is_refused_and_changes_nothing() {
    let _serial = support::swarm_lock();
    let (f, agent) = Followed::pushed("dbt", &["api", "web"]);
    let applied = applied_commit(&f.st, &f.s.ns);
    let c2 = f.commit_compose(&f.s.base, &["api"], "unpinned");
    assert_eq!(push(&agent, "s-2", &c2), 202);
    let rejected = f.st.join(format!("rejected/{}.json", f.s.ns));
    assert!(wait_until(WAIT, || rejected.exists()), "{}", agent.log());
    assert_eq!(applied_commit(&f.st, &f.s.ns), applied);
    assert_eq!(f.s.services(), f.s.want(&["api", "web"]));
}

/// With nothing drifted, drift checks run on every reconcile, nothing is repaired and no task restarts.
#[test]
fn an_undrifted_stack_is_checked_on_every_reconcile_and_left_alone() {
    let _serial = support::swarm_lock();
    let (f, agent) = Followed::polled("dbh");
    let tasks = running_tasks(f.s.d, &f.s.ns);
    let checks = agent.metric("deploy_bot_drift_checks_total");
    assert!(wait_until(WAIT, || agent
        .metric("deploy_bot_drift_checks_total")
        >= checks + 3));
    assert_eq!(agent.metric("deploy_bot_drift_repairs_total"), 0);
    assert_eq!(
        running_tasks(f.s.d, &f.s.ns),
        tasks,
        "an undrifted stack was restarted"
    );
}

/// A service scaled to 0 by hand is brought back, counted (metric and applied record) and logged; the other
/// service keeps its task.
#[test]
fn a_service_scaled_down_by_hand_is_repaired_without_restarting_the_other() {
    let _serial = support::swarm_lock();
    let (f, agent) = Followed::polled("dbh");
    let (d, ns) = (f.s.d, &f.s.ns);
    let tasks = running_tasks(d, ns);
    d.run(&["service", "scale", "--detach", &format!("{ns}_web=0")]);
    assert!(
        wait_until(WAIT, || agent.metric("deploy_bot_drift_repairs_total") >= 1),
        "{}",
        agent.log()
    );
    assert!(f.s.wait_running(&["api", "web"]), "{:?}", f.s.services());
    let log = agent.log();
    assert!(
        log.contains(&format!("{ns}_web: replicas 0, want 1")),
        "{log}"
    );
    let api = format!("{ns}_api");
    assert_eq!(
        tasks_of(d, &api, &running_tasks(d, ns)),
        tasks_of(d, &api, &tasks),
        "the undrifted service was restarted"
    );
    let record = std::fs::read_to_string(f.st.join(format!("applied/{ns}.json"))).unwrap();
    let rec: serde_json::Value = serde_json::from_str(&record).unwrap();
    assert!(rec["drift_repairs"].as_u64() >= Some(1));
}

/// `request --delete` removes the stack's directory; the agent removes the stack, forgets it and counts the
/// teardown.
#[test]
fn deleting_the_directory_tears_the_stack_down() {
    let _serial = support::swarm_lock();
    let (f, agent) = Followed::polled("dbh");
    let out = f
        .repo
        .request(&f.s.ns)
        .args(["--delete", "--direct", "--forge", "none"])
        .run();
    out.success();
    let record = f.st.join(format!("applied/{}.json", f.s.ns));
    assert!(
        wait_until(WAIT, || f.s.services().is_empty() && !record.exists()),
        "{:?}\n{}",
        f.s.services(),
        agent.log()
    );
    assert_eq!(agent.metric("deploy_bot_teardowns_total"), 1);
}

/// A stand-in agent on loopback: answers every webhook 202 and counts them; the `remove_on`-th delivery (1-based;
/// 0: none) runs `docker stack rm NS` a second later, as the real agent does for a torn-down directory.
fn fake_agent(d: &Dockerd, ns: &str, remove_on: usize) -> (u16, Arc<AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let (host, ns) = (d.host.clone(), ns.to_string());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let (mut line, mut length) = (String::new(), 0usize);
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            if request_line.starts_with("GET /namespaces/") {
                // `notify --wait` asks the agent first: this one has applied the removal (its
                // `docker stack rm` runs on its own clock, below).
                let body = format!(
                    r#"{{"schema_version":1,"namespace":"{ns}","commit":"abc","state":"removed","tree":null,"applied":null,"reason":null}}"#
                );
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
                continue;
            }
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line.trim() != "" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            if seen.fetch_add(1, Ordering::SeqCst) + 1 == remove_on {
                let (host, ns) = (host.clone(), ns.clone());
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_secs(1));
                    let _ = std::process::Command::new(docker_cli())
                        .env("DOCKER_HOST", host)
                        .args(["stack", "rm", &ns])
                        .output();
                });
            }
        }
    });
    (port, count)
}

/// A running stack of one service, `web`: busybox httpd on 8080 serving `/` ("web page") and `/h/` ("healthy"),
/// by name on the stack's attachable overlay network (`NS_default`); and a directory for plans and answers.
struct Web {
    s: Stack,
    t: TestDir,
}

impl Web {
    /// Deploy it (`docker stack deploy`, no agent) and wait until `web` runs.
    fn deploy() -> Self {
        let s = Stack::new("dbn");
        let t = TestDir::new();
        let compose = format!(
            "version: \"3.8\"\nservices:\n  web:\n    image: \"{}\"\n    command: [\"sh\", \"-c\", \
             \"mkdir -p /w/h && echo web page > /w/index.html && echo healthy > /w/h/index.html && exec httpd -f -p 8080 -h /w\"]\n    \
             deploy:\n      endpoint_mode: dnsrr\nnetworks:\n  default:\n    driver: overlay\n    attachable: true\n",
            s.base
        );
        let compose_file = t.write("compose.yaml", compose);
        let file = compose_file.to_string_lossy();
        s.d.run(&["stack", "deploy", "-c", &file, &s.ns]);
        assert!(s.wait_running(&["web"]), "{:?}", s.services());
        Self { s, t }
    }

    /// `deploy-bot smoke --by-name` (every 200 ms, up to `timeout`) of a plan of these `services`; the answers go
    /// to `smoke/` of the directory.
    fn smoke(&self, services: &serde_json::Value, timeout: &str) -> Output {
        let plan = self.t.write(
            "plan.json",
            serde_json::json!({"namespace": self.s.ns, "environment": "dev", "services": services})
                .to_string(),
        );
        Cmd::new(bin("deploy-bot"))
            .env("DOCKER_HOST", &self.s.d.host)
            .args(["smoke", "--plan", &plan.to_string_lossy(), "--by-name"])
            .args(["--base-image", &self.s.base, "--timeout", timeout])
            .args([
                "--interval",
                "200ms",
                "--docker",
                &docker_cli().to_string_lossy(),
            ])
            .args(["--out-dir", &self.t.join("smoke").to_string_lossy()])
            .run()
    }

    /// `deploy-bot notify --removed` of the stack at commit `abc`, to an agent on loopback `port`, with `extra` flags.
    fn notify(&self, port: u16, extra: &[&str]) -> Output {
        let secret = self.t.write("secret", support::SECRET);
        Cmd::new(bin("deploy-bot"))
            .env("DOCKER_HOST", &self.s.d.host)
            .args(["notify", "--agent-url", &format!("http://127.0.0.1:{port}")])
            .args(["--repo", "file:///cluster.git", "--commit", "abc"])
            .args(["--namespace", &self.s.ns, "--removed"])
            .args([
                "--secret-file",
                &secret.to_string_lossy(),
                "--docker",
                &docker_cli().to_string_lossy(),
            ])
            .args(extra)
            .run()
    }
}

/// `smoke --by-name` calls each service's health and ingress path by name from the stack's network (a service
/// with neither is not called) and saves each answer.
#[test]
fn smoke_calls_every_service_by_name_and_saves_the_answers() {
    let _serial = support::swarm_lock();
    let web = Web::deploy();
    let out = web.smoke(
        &serde_json::json!([
            {"name": "web", "health": {"port": 8080, "path": "/h/"}, "ingress": {"port": 8080, "path": "/"}, "smoke": null},
            {"name": "worker", "health": null, "ingress": null, "smoke": null}
        ]),
        "60s",
    );
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let calls: Vec<(String, String)> = v["by_name"]
        .as_array()
        .expect("by_name")
        .iter()
        .map(|c| {
            (
                c["kind"].as_str().unwrap().into(),
                c["url"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("health".to_string(), "http://web:8080/h/".to_string()),
            ("ingress".to_string(), "http://web:8080/".to_string())
        ]
    );
    assert_eq!(v["by_name"][1]["bytes"], 9);
    assert_eq!(web.t.read("smoke/web-health.txt"), "healthy\n");
    assert_eq!(web.t.read("smoke/web-ingress.txt"), "web page\n");
}

/// `smoke --by-name` of a path the service does not have fails (exit 1) with one line naming the service, the
/// URL, the network and the answer.
#[test]
fn smoke_by_name_names_service_and_url_of_a_wrong_answer() {
    let _serial = support::swarm_lock();
    let web = Web::deploy();
    web.smoke(
        &serde_json::json!([{"name": "web", "health": null, "ingress": {"port": 8080, "path": "/missing"}}]),
        "2s",
    )
    .code(1)
    .stderr_one_line()
    .stderr_contains(&format!(
        "smoke check failed: service web: GET http://web:8080/missing (ingress check, by name on network {}_default) wget: server returned error: HTTP/1.1 404",
        web.s.ns
    ));
}

/// `smoke --by-name` of a service that is not on the stack's network gets no answer (exit 6), naming it and the URL.
#[test]
fn smoke_by_name_gets_no_answer_from_a_service_not_on_the_network() {
    let _serial = support::swarm_lock();
    let web = Web::deploy();
    web.smoke(
        &serde_json::json!([{"name": "ghost", "health": {"port": 80, "path": "/"}, "ingress": null}]),
        "2s",
    )
    .code(6)
    .stderr_one_line()
    .stderr_contains("smoke check got no answer: service ghost: GET http://ghost:80/ (health check");
}

/// `notify --removed --wait` sends the webhook, then fails (exit 9) naming the stack and its services when they
/// are still there at the deadline.
#[test]
fn notify_removed_fails_naming_the_services_still_there_after_the_wait() {
    let _serial = support::swarm_lock();
    let web = Web::deploy();
    let (port, deliveries) = fake_agent(web.s.d, &web.s.ns, 0);
    let ns = &web.s.ns;
    web.notify(port, &["--wait", "1"])
        .code(9)
        .stderr_one_line()
        .stderr_contains(&format!("stack {ns} still has services after 1s: {ns}_web"));
    assert_eq!(deliveries.load(Ordering::SeqCst), 1);
}

/// `notify --removed --wait` returns once the agent it notified removed the stack: sent, applied, no services left.
#[test]
fn notify_removed_waits_until_the_agent_removed_the_stack() {
    let _serial = support::swarm_lock();
    let web = Web::deploy();
    let (port, deliveries) = fake_agent(web.s.d, &web.s.ns, 1);
    let out = web.notify(port, &["--wait", "120"]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        (v["sent"].as_bool(), v["applied"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(web.s.services().is_empty(), "{:?}", web.s.services());
    assert_eq!(deliveries.load(Ordering::SeqCst), 1);
}

/// `notify --removed --if-needed` sends no webhook for a stack that was removed already.
#[test]
fn notify_removed_if_needed_sends_nothing_for_a_removed_stack() {
    let _serial = support::swarm_lock();
    let web = Web::deploy();
    web.s.d.run(&["stack", "rm", &web.s.ns]);
    assert!(
        wait_until(WAIT, || web.s.services().is_empty()),
        "{:?}",
        web.s.services()
    );
    let (port, deliveries) = fake_agent(web.s.d, &web.s.ns, 0);
    let out = web.notify(port, &["--wait", "5", "--if-needed"]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["sent"], false);
    assert_eq!(deliveries.load(Ordering::SeqCst), 0);
}
