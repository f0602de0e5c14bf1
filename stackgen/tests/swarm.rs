//! The compose output deployed for real: a hand-started dockerd in swarm mode,
//! two busybox images pushed to a local registry, `docker stack deploy`, and
//! the services reaching each other by name.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use microplatform_common::testing::dockerd::Dockerd;
use microplatform_common::testing::registry::Registry;
use microplatform_common::testing::{TestDir, free_port, wait_until};

fn build_and_push(d: &Dockerd, dir: &TestDir, name: &str, dockerfile: &str, files: &[(&str, &str)], tag: &str) {
    let ctx = dir.join(name);
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), dockerfile).unwrap();
    for (f, body) in files {
        std::fs::write(ctx.join(f), body).unwrap();
    }
    d.docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag, &ctx.to_string_lossy()])
        .run()
        .success();
    d.run(&["push", tag]);
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn compose_output_deploys_to_swarm_and_services_reach_each_other_by_name() {
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    let t = TestDir::new();
    let tag = "t1";
    let web_image = format!("{}/swarmtest/web:{tag}", reg.addr);
    let client_image = format!("{}/swarmtest/client:{tag}", reg.addr);
    build_and_push(
        d,
        &t,
        "web",
        &format!("FROM {base}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"),
        &[("index.html", "hello from web\n")],
        &web_image,
    );
    // The client fetches http://web:8080/ by the service name, over and
    // over, and serves what it got (and its GREETING from the environment).
    let client_sh = "#!/bin/sh\nmkdir -p /www\necho \"$GREETING\" > /www/greeting.txt\nwhile true; do wget -q -O /www/upstream.tmp http://web:8080/ && mv /www/upstream.tmp /www/upstream.txt; sleep 1; done &\nexec httpd -f -p \"$1\" -h /www\n";
    build_and_push(
        d,
        &t,
        "client",
        &format!("FROM {base}\nCOPY client.sh /client.sh\nENTRYPOINT [\"sh\", \"/client.sh\"]\nCMD [\"9000\"]\n"),
        &[("client.sh", client_sh)],
        &client_image,
    );

    let host_port = free_port();
    let stack = format!(
        r#"name: swarmtest
registry: {reg}/swarmtest
services:
  web:
    component: services/web
    image: web
    ports:
      - port: 8080
        published: {host_port}
    health:
      http: {{path: /index.html, port: 8080}}
      interval_seconds: 2
    resources:
      limits: {{cpu: 500m, memory: 64Mi}}
  client:
    image: client
    args: ["8081"]
    ports:
      - port: 8081
    env:
      GREETING: base
    health:
      command: ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/greeting.txt"]
      interval_seconds: 2
  unused:
    image: unused-never-built
environments:
  smoke:
    namespace: "{{stack}}-{{branch}}"
    services:
      client:
        env: {{GREETING: from-env-override}}
    omit: [unused]
"#,
        reg = reg.addr
    );
    t.write("stack.yaml", &stack);
    // A unique alias per run.
    let branch = format!("Test/Run-{}-{}", std::process::id(), free_port());
    let alias = support::stackgen(&t, &["namespace", "--env", "smoke", "--branch", &branch]);
    alias.success();
    let alias = alias.stdout.trim().to_string();
    assert!(alias.starts_with("swarmtest-test-run-"), "{alias}");
    support::stackgen(
        &t,
        &["compose", "--env", "smoke", "--branch", &branch, "--tag", tag, "-o", "stack.yml"],
    )
    .success()
    .stdout_empty();
    let compose = t.read("stack.yml");
    assert!(!compose.contains("unused"), "{compose}");

    let deploy = d
        .docker()
        .args(["stack", "deploy", "-c", &t.join("stack.yml").to_string_lossy(), &alias])
        .run();
    deploy.success();

    let cleanup = || {
        let _ = d.try_run(&["stack", "rm", &alias]);
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Both services converge to their replicas.
        let running = wait_until(Duration::from_secs(180), || {
            let out = d.try_run(&["stack", "services", &alias, "--format", "{{.Name}} {{.Replicas}}"]);
            let lines: Vec<_> = out.stdout.lines().collect();
            lines.len() == 2 && lines.iter().all(|l| l.ends_with(" 1/1"))
        });
        let ps = d.try_run(&["stack", "ps", &alias, "--no-trunc"]);
        assert!(running, "services did not start:\n{}\n{}", ps.stdout, ps.stderr);

        // A one-off container on the attachable overlay reaches `client` by
        // name, and `client` has reached `web` by name.
        let net = format!("{alias}_default");
        let mut last = String::new();
        let reached = wait_until(Duration::from_secs(120), || {
            let out = d.try_run(&["run", "--rm", "--network", &net, &base, "wget", "-q", "-O-", "http://client:8081/upstream.txt"]);
            last = format!("{}{}", out.stdout, out.stderr);
            out.stdout.contains("hello from web")
        });
        assert!(reached, "client did not reach web by name: {last}");
        let greeting = d.try_run(&["run", "--rm", "--network", &net, &base, "wget", "-q", "-O-", "http://client:8081/greeting.txt"]);
        assert_eq!(greeting.stdout.trim(), "from-env-override", "{greeting:?}");

        // The declared host-mode port answers on 127.0.0.1.
        let mut body = String::new();
        let published = wait_until(Duration::from_secs(60), || {
            body = http_get(host_port, "/index.html").unwrap_or_default();
            body.contains("hello from web")
        });
        assert!(published, "published port {host_port}: {body}");

        // The health checks from the stack file run and pass.
        let healthy = wait_until(Duration::from_secs(90), || {
            let ids = d.try_run(&["ps", "-q", "--filter", &format!("label=com.docker.stack.namespace={alias}")]);
            let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
            ids.len() == 2
                && ids.iter().all(|id| {
                    d.try_run(&["inspect", "--format", "{{.State.Health.Status}}", id]).stdout.trim() == "healthy"
                })
        });
        assert!(healthy, "containers did not become healthy");
    }));
    cleanup();
    // Wait for the stack's network to go, so the engine is left clean.
    wait_until(Duration::from_secs(60), || {
        !d.try_run(&["network", "ls", "--format", "{{.Name}}"]).stdout.lines().any(|l| l == format!("{alias}_default"))
    });
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
