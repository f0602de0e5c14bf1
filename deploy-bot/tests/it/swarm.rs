//! The `swarm` applier for real: a hand-started dockerd in swarm mode, images in a real registry pinned by digest;
//! deploy, redeploy the same digests (no task restarts), deploy with one service removed (pruned); `smoke --by-name`
//! calling a stack's services by name from its network; `notify --wait --removed` waiting for a torn-down stack.

use crate::support;

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

struct StackGuard<'a>(&'a Dockerd, String);

impl Drop for StackGuard<'_> {
    fn drop(&mut self) {
        let _ = self.0.try_run(&["stack", "rm", &self.1]);
    }
}

#[test]
fn swarm_deploy_redeploy_without_restarts_and_prune() {
    let _serial = support::swarm_lock();
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
    let before = specs(d, &ns);

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
    // The agent applied it (a second `docker stack deploy`, not a skip) and the services' specs are what
    // they were: Swarm has nothing to roll, so the tasks are the same ones.
    agent.wait_for_metric("deploy_bot_applies_total{result=\"success\"}", |n| n == 2);
    assert_eq!(specs(d, &ns), before, "the redeploy changed a service");
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

#[test]
fn swarm_drift_is_repaired_without_restarting_undrifted_services_and_delete_tears_the_stack_down() {
    let _serial = support::swarm_lock();
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
    let checks = agent.metric("deploy_bot_drift_checks_total");
    assert!(wait_until(WAIT, || agent
        .metric("deploy_bot_drift_checks_total")
        >= checks + 3));
    assert_eq!(agent.metric("deploy_bot_drift_repairs_total"), 0);
    assert_eq!(
        running_tasks(d, &ns),
        tasks,
        "an undrifted stack was restarted"
    );

    // Drift: scaled to 0 by hand; the agent brings it back, counts it, logs it. The other service keeps its task.
    d.run(&["service", "scale", "--detach", &format!("{ns}_web=0")]);
    assert!(
        wait_until(WAIT, || agent.metric("deploy_bot_drift_repairs_total") >= 1),
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
    assert_eq!(agent.metric("deploy_bot_teardowns_total"), 1);
}

/// A stand-in agent on loopback: answers every webhook 202 and counts them; the n-th delivery (1-based) for each
/// n in `remove_on` runs `docker stack rm NS` a second later, as the real agent does for a torn-down directory.
fn fake_agent(
    d: &Dockerd,
    ns: &str,
    remove_on: usize,
) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
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

#[test]
fn smoke_calls_every_service_by_name_and_notify_waits_for_a_removed_stack() {
    let _serial = support::swarm_lock();
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    let ns = format!("dbn{}x{}", std::process::id(), rand_suffix());
    let _guard = StackGuard(d, ns.clone());
    let t = TestDir::new();
    // web serves two pages (busybox httpd), by name on the stack's attachable overlay network.
    let compose = format!(
        "version: \"3.8\"\nservices:\n  web:\n    image: \"{base}\"\n    command: [\"sh\", \"-c\", \
         \"mkdir -p /w/h && echo web page > /w/index.html && echo healthy > /w/h/index.html && exec httpd -f -p 8080 -h /w\"]\n    \
         deploy:\n      endpoint_mode: dnsrr\nnetworks:\n  default:\n    driver: overlay\n    attachable: true\n"
    );
    let compose_file = t.write("compose.yaml", compose);
    d.run(&[
        "stack",
        "deploy",
        "-c",
        &compose_file.to_string_lossy(),
        &ns,
    ]);
    assert!(
        wait_until(WAIT, || services(d, &ns) == [format!("{ns}_web 1/1")]),
        "{:?}",
        services(d, &ns)
    );
    let plan = |services: serde_json::Value| {
        let p = t.write(
            "plan.json",
            serde_json::json!({"namespace": ns, "environment": "dev", "services": services})
                .to_string(),
        );
        p.to_string_lossy().into_owned()
    };
    let smoke = |plan: &str, timeout: &str| {
        microplatform_test_support::Cmd::new(microplatform_test_support::bin("deploy-bot"))
            .env("DOCKER_HOST", &d.host)
            .args([
                "smoke",
                "--plan",
                plan,
                "--by-name",
                "--base-image",
                &base,
                "--timeout",
                timeout,
            ])
            .args([
                "--interval",
                "200ms",
                "--docker",
                &docker_cli().to_string_lossy(),
            ])
            .args(["--out-dir", &t.join("smoke").to_string_lossy()])
            .run()
    };
    let good = plan(serde_json::json!([
        {"name": "web", "health": {"port": 8080, "path": "/h/"}, "ingress": {"port": 8080, "path": "/"}, "smoke": null},
        {"name": "worker", "health": null, "ingress": null, "smoke": null}
    ]));
    let out = smoke(&good, "60s");
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
    assert_eq!(t.read("smoke/web-health.txt"), "healthy\n");
    assert_eq!(t.read("smoke/web-ingress.txt"), "web page\n");

    // A path the service does not have: a wrong answer naming service and URL; a service not on the network: no answer.
    let missing = plan(serde_json::json!([
        {"name": "web", "health": null, "ingress": {"port": 8080, "path": "/missing"}}
    ]));
    smoke(&missing, "2s")
        .code(1)
        .stderr_one_line()
        .stderr_contains(&format!(
            "smoke check failed: service web: GET http://web:8080/missing (ingress check, by name on network {ns}_default) wget: server returned error: HTTP/1.1 404"
        ));
    let ghost = plan(serde_json::json!([
        {"name": "ghost", "health": {"port": 80, "path": "/"}, "ingress": null}
    ]));
    smoke(&ghost, "2s")
        .code(6)
        .stderr_one_line()
        .stderr_contains(
            "smoke check got no answer: service ghost: GET http://ghost:80/ (health check",
        );

    // notify --removed: still there after --wait is a failure naming the stack and its services; once the agent
    // removed it, --wait returns; with --if-needed a removed stack gets no webhook.
    let (port, deliveries) = fake_agent(d, &ns, 2);
    let secret = t.write("secret", support::SECRET);
    let notify = |extra: &[&str]| {
        microplatform_test_support::Cmd::new(microplatform_test_support::bin("deploy-bot"))
            .env("DOCKER_HOST", &d.host)
            .args(["notify", "--agent-url", &format!("http://127.0.0.1:{port}")])
            .args([
                "--repo",
                "file:///cluster.git",
                "--commit",
                "abc",
                "--namespace",
                &ns,
                "--removed",
            ])
            .args([
                "--secret-file",
                &secret.to_string_lossy(),
                "--docker",
                &docker_cli().to_string_lossy(),
            ])
            .args(extra)
            .run()
    };
    notify(&["--wait", "1"])
        .code(9)
        .stderr_one_line()
        .stderr_contains(&format!("stack {ns} still has services after 1s: {ns}_web"));
    let out = notify(&["--wait", "120"]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(
        (v["sent"].as_bool(), v["applied"].as_bool()),
        (Some(true), Some(true))
    );
    assert!(services(d, &ns).is_empty(), "{:?}", services(d, &ns));
    let out = notify(&["--wait", "5", "--if-needed"]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["sent"], false);
    assert_eq!(deliveries.load(std::sync::atomic::Ordering::SeqCst), 2);
}
