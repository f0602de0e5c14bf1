//! The compose output deployed for real: a hand-started dockerd in swarm mode,
//! two busybox images pushed to a local registry, `docker stack deploy`, the
//! services converging and healthy, reaching each other by name, reachable by
//! name from a one-off container on the stack's attachable overlay network,
//! the declared port published in host mode.
//!
//! The default `--endpoint-mode dnsrr` is what makes names work on this
//! machine's engine (no iptables, no IPVS): with `vip` the embedded DNS does not
//! answer and virtual IPs do not route here.

use crate::support;

use std::time::Duration;

use microplatform_test_support::dockerd::Dockerd;
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{TestDir, free_port, wait_until};

fn build_and_push(
    d: &Dockerd,
    dir: &TestDir,
    name: &str,
    dockerfile: &str,
    files: &[(&str, &str)],
    tag: &str,
) {
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
        &format!(
            "FROM {base}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
        &[("index.html", "hello from web\n")],
        &web_image,
    );
    // The client fetches http://web:8080/ by the service name, over and over,
    // and serves what it got, and its GREETING from the environment.
    let client_sh = "#!/bin/sh\nmkdir -p /www\necho \"$GREETING\" > /www/greeting.txt\nwhile true; do wget -q -O /www/upstream.tmp http://web:8080/index.html && mv /www/upstream.tmp /www/upstream.txt; sleep 1; done &\nexec httpd -f -p \"$1\" -h /www\n";
    build_and_push(
        d,
        &t,
        "client",
        &format!(
            "FROM {base}\nCOPY client.sh /client.sh\nENTRYPOINT [\"sh\", \"/client.sh\"]\nCMD [\"9000\"]\n"
        ),
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
    ingress: {{path: /}}
  unused:
    image: unused-never-built
environments:
  smoke:
    namespace: "{{stack}}-{{branch}}"
    host: "{{branch}}.swarmtest.localhost"
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
    let url = support::stackgen(&t, &["url", "--env", "smoke", "--branch", &branch]);
    url.success();
    let host = url
        .stdout
        .trim()
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    support::stackgen(
        &t,
        &[
            "compose",
            "--env",
            "smoke",
            "--branch",
            &branch,
            "--tag",
            tag,
            "-o",
            "stack.yml",
        ],
    )
    .success()
    .stdout_empty();
    let compose = t.read("stack.yml");
    assert!(!compose.contains("unused"), "{compose}");

    let deploy = d
        .docker()
        .args([
            "stack",
            "deploy",
            "-c",
            &t.join("stack.yml").to_string_lossy(),
            &alias,
        ])
        .run();
    deploy.success();

    let cleanup = || {
        let _ = d.try_run(&["stack", "rm", &alias]);
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Both services converge to their replicas.
        let running = wait_until(Duration::from_secs(180), || {
            let out = d.try_run(&[
                "stack",
                "services",
                &alias,
                "--format",
                "{{.Name}} {{.Replicas}}",
            ]);
            let lines: Vec<_> = out.stdout.lines().collect();
            lines.len() == 2 && lines.iter().all(|l| l.ends_with(" 1/1"))
        });
        let ps = d.try_run(&["stack", "ps", &alias, "--no-trunc"]);
        assert!(
            running,
            "services did not start:\n{}\n{}",
            ps.stdout, ps.stderr
        );

        // A one-off container on the attachable overlay `<alias>_default`
        // reaches `client` by name, and `client` has reached `web` by name.
        let net = format!("{alias}_default");
        let fetch = |host: &str, port: u16, path: &str| -> String {
            let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc {host} {port}");
            let out = d.try_run(&["run", "--rm", "--network", &net, &base, "sh", "-c", &script]);
            format!("{}{}", out.stdout, out.stderr)
        };
        let mut last = String::new();
        let reached = wait_until(Duration::from_secs(120), || {
            last = fetch("client", 8081, "/upstream.txt");
            last.contains("hello from web")
        });
        assert!(
            reached,
            "client did not reach web by name (or is not reachable by name on {net}): {last}"
        );
        let web = fetch("web", 8080, "/index.html");
        assert!(web.contains("hello from web"), "{web}");
        let greeting = fetch("client", 8081, "/greeting.txt");
        assert!(greeting.contains("from-env-override"), "{greeting}");

        // The declared port is published in host mode (and only that one).
        // Connecting to it is not checked here: engines of parallel tests share
        // the host's `docker_gwbridge`, so its proxy cannot be relied on.
        let ports = d.run(&[
            "service",
            "inspect",
            "--format",
            "{{range .Endpoint.Ports}}{{.TargetPort}}:{{.PublishedPort}}:{{.PublishMode}};{{end}}",
            &format!("{alias}_web"),
        ]);
        assert_eq!(ports, format!("8080:{host_port}:host;"));
        // client's ingress port is published in host mode with no fixed
        // number: Swarm accepts it and gives the task a free port, which
        // `deploy-bot ingress` finds by the labels.
        let client = format!("{alias}_client");
        let spec_ports = d.run(&[
            "service",
            "inspect",
            "--format",
            "{{range .Endpoint.Ports}}{{.TargetPort}}:{{.PublishedPort}}:{{.PublishMode}};{{end}}",
            &client,
        ]);
        assert_eq!(spec_ports, "8081:0:host;", "no fixed published port");
        let labels = d.run(&[
            "service",
            "inspect",
            "--format",
            "{{json .Spec.Labels}}",
            &client,
        ]);
        let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
        assert_eq!(labels["dev.microplatform.ingress.host"], host.as_str());
        assert_eq!(labels["dev.microplatform.ingress.path"], "/");
        assert_eq!(labels["dev.microplatform.ingress.port"], "8081");
        let task = d.run(&[
            "service",
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            &client,
        ]);
        let published = d.run(&[
            "inspect",
            "--type",
            "task",
            "--format",
            "{{range .Status.PortStatus.Ports}}{{.TargetPort}}:{{.PublishedPort}} {{end}}",
            task.lines().next().expect("a running task"),
        ]);
        let port: u16 = published
            .split_whitespace()
            .next()
            .and_then(|p| p.strip_prefix("8081:"))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no published port in {published:?}"));
        assert!(port > 0);

        // The health checks from the stack file run and pass.
        let healthy = wait_until(Duration::from_secs(90), || {
            let ids = d.try_run(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={alias}"),
            ]);
            let ids: Vec<&str> = ids.stdout.split_whitespace().collect();
            ids.len() == 2
                && ids.iter().all(|id| {
                    d.try_run(&["inspect", "--format", "{{.State.Health.Status}}", id])
                        .stdout
                        .trim()
                        == "healthy"
                })
        });
        assert!(healthy, "containers did not become healthy");
    }));
    cleanup();
    // Wait for the stack's network to go, so the engine is left clean.
    wait_until(Duration::from_secs(60), || {
        !d.try_run(&["network", "ls", "--format", "{{.Name}}"])
            .stdout
            .lines()
            .any(|l| l == format!("{alias}_default"))
    });
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// The running container of a stack's service (by its label).
fn container_of(d: &Dockerd, service: &str) -> Option<String> {
    let ids = d.try_run(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={service}"),
    ]);
    ids.stdout.split_whitespace().next().map(str::to_string)
}

/// Names Swarm refuses over 63 characters (`<alias>_<service>`,
/// `<alias>_default`) fit for a 63-character service name on `main` and for a
/// branch whose slug is longer than any alias; values with `$` and control
/// characters reach the container's environment exactly as written.
#[test]
fn long_names_deploy_and_values_reach_the_container_literally() {
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    assert_eq!(base, format!("{}/base/busybox:1", reg.addr));
    let t = TestDir::new();
    let long = format!("l{}", "o".repeat(61) + "g");
    assert_eq!(long.len(), 63);
    let stack_name = format!("names{}", free_port());
    let stack = format!(
        r#"name: {stack_name}
registry: {reg}/base
services:
  {long}:
    image: busybox
    args: ["sleep", "3600"]
    env:
      PRICE: "$5"
      SUBSHELL: "$(id -u)"
      HOME_X: "${{HOME}}/x"
      DOUBLE: "$$"
      DEL: "a\x7Fb"
      NEL: "a\x85b"
  web:
    image: busybox
    args: ["sleep", "3600"]
environments:
  smoke:
    namespace: "{{stack}}-{{branch}}"
    host: "{{branch}}.swarmtest.localhost"
"#,
        reg = reg.addr
    );
    t.write("stack.yaml", &stack);
    let long_branch = format!("feature/{}", "a-long-branch-name-".repeat(4));
    for branch in ["main", long_branch.as_str()] {
        let alias = support::stackgen(&t, &["namespace", "-e", "smoke", "-b", branch]);
        alias.success();
        let alias = alias.stdout.trim().to_string();
        support::stackgen(
            &t,
            &[
                "compose",
                "-e",
                "smoke",
                "-b",
                branch,
                "-t",
                "1",
                "-o",
                "stack.yml",
            ],
        )
        .success();
        let deploy = d
            .docker()
            .args([
                "stack",
                "deploy",
                "-c",
                &t.join("stack.yml").to_string_lossy(),
                &alias,
            ])
            .run();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            deploy.success();
            let mut names = Vec::new();
            let running = wait_until(Duration::from_secs(180), || {
                let out = d.try_run(&[
                    "stack",
                    "services",
                    &alias,
                    "--format",
                    "{{.Name}} {{.Replicas}}",
                ]);
                names = out.stdout.lines().map(str::to_string).collect();
                names.len() == 2 && names.iter().all(|l| l.ends_with(" 1/1"))
            });
            let ps = d.try_run(&["stack", "ps", &alias, "--no-trunc"]);
            assert!(running, "{branch}: {names:?}\n{}{}", ps.stdout, ps.stderr);
            for n in &names {
                let name = n.split(' ').next().unwrap();
                assert!(name.len() <= 63, "{name}");
            }
            let long_service = names
                .iter()
                .map(|n| n.split(' ').next().unwrap().to_string())
                .find(|n| !n.ends_with("_web"))
                .unwrap();
            assert_eq!(
                long_service,
                stackgen::compose::swarm_service_name(&alias, &long)
            );
            // The declared name is the service's alias on the stack network.
            let nets = d.run(&[
                "service",
                "inspect",
                "--format",
                "{{json .Spec.TaskTemplate.Networks}}",
                &long_service,
            ]);
            assert!(nets.contains(&format!("\"{long}\"")), "{nets}");
            let net = d.run(&["network", "ls", "--format", "{{.Name}}"]);
            assert!(
                net.lines().any(|l| l == format!("{alias}_default")),
                "{net}"
            );
            // The environment inside the container, exactly as written.
            let id = container_of(d, &long_service).expect("a running container");
            let env = d.run(&["exec", &id, "env"]);
            for line in [
                "PRICE=$5",
                "SUBSHELL=$(id -u)",
                "HOME_X=${HOME}/x",
                "DOUBLE=$$",
                "DEL=a\u{7f}b",
                "NEL=a\u{85}b",
            ] {
                assert!(env.lines().any(|l| l == line), "{line:?} not in {env:?}");
            }
        }));
        let _ = d.try_run(&["stack", "rm", &alias]);
        wait_until(Duration::from_secs(60), || {
            !d.try_run(&["network", "ls", "--format", "{{.Name}}"])
                .stdout
                .lines()
                .any(|l| l == format!("{alias}_default"))
        });
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    }
}
