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

/// Build the context `dir/name` (`dockerfile` and `files`) with the classic builder as `tag` and
/// push it.
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

/// The tag of the images of the `swarmtest` stack.
const TAG: &str = "t1";

/// A branch of its own per call, so each run deploys under an alias of its own.
fn unique_branch() -> String {
    format!("Test/Run-{}-{}", std::process::id(), free_port())
}

/// `stackgen namespace --env smoke --branch BRANCH` in `t`: the stack's alias.
fn namespace(t: &TestDir, branch: &str) -> String {
    let alias = support::stackgen(t, &["namespace", "--env", "smoke", "--branch", branch]);
    alias.success();
    alias.stdout.trim().to_string()
}

/// `stackgen compose --env smoke --branch BRANCH --tag TAG -o stack.yml` in `t` (nothing on
/// stdout); returns the compose file.
fn compose(t: &TestDir, branch: &str, tag: &str) -> String {
    support::stackgen(
        t,
        &[
            "compose",
            "--env",
            "smoke",
            "--branch",
            branch,
            "--tag",
            tag,
            "-o",
            "stack.yml",
        ],
    )
    .success()
    .stdout_empty();
    t.read("stack.yml")
}

/// Whether the engine has a network called `name`.
fn network_exists(d: &Dockerd, name: &str) -> bool {
    d.try_run(&["network", "ls", "--format", "{{.Name}}"])
        .stdout
        .lines()
        .any(|l| l == name)
}

/// A stack deployed on the shared swarm as `alias`: removed when dropped (also when a step
/// failed), its network waited for, so the engine is left clean.
struct Deployed {
    d: &'static Dockerd,
    alias: String,
}

impl Drop for Deployed {
    fn drop(&mut self) {
        let _ = self.d.try_run(&["stack", "rm", &self.alias]);
        let net = format!("{}_default", self.alias);
        wait_until(Duration::from_secs(60), || !network_exists(self.d, &net));
    }
}

/// `docker stack deploy -c stack.yml ALIAS` of `t`'s compose file; asserts success.
fn deploy(d: &'static Dockerd, t: &TestDir, alias: String) -> Deployed {
    let out = d
        .docker()
        .args([
            "stack",
            "deploy",
            "-c",
            &t.join("stack.yml").to_string_lossy(),
            &alias,
        ])
        .run();
    let deployed = Deployed { d, alias };
    out.success();
    deployed
}

/// Every one of the `count` services of the stack converges to its one replica; returns their
/// names.
fn services_converge(stack: &Deployed, count: usize) -> Vec<String> {
    let (d, alias) = (stack.d, &stack.alias);
    let mut names = Vec::new();
    let running = wait_until(Duration::from_secs(180), || {
        let out = d.try_run(&[
            "stack",
            "services",
            alias,
            "--format",
            "{{.Name}} {{.Replicas}}",
        ]);
        names = out.stdout.lines().map(str::to_string).collect();
        names.len() == count && names.iter().all(|l| l.ends_with(" 1/1"))
    });
    let ps = d.try_run(&["stack", "ps", alias, "--no-trunc"]);
    assert!(
        running,
        "services did not start: {names:?}\n{}{}",
        ps.stdout, ps.stderr
    );
    names
        .iter()
        .map(|n| n.split(' ').next().unwrap().to_string())
        .collect()
}

/// A service's published ports, `TARGET:PUBLISHED:MODE;` each, from its spec.
fn spec_ports(d: &Dockerd, service: &str) -> String {
    d.run(&[
        "service",
        "inspect",
        "--format",
        "{{range .Endpoint.Ports}}{{.TargetPort}}:{{.PublishedPort}}:{{.PublishMode}};{{end}}",
        service,
    ])
}

/// The `swarmtest` stack file: `web` (httpd, its port published on `host_port`), `client`
/// (fetching `web` by name, with an ingress route) and `unused`, which the `smoke` environment
/// omits.
fn swarmtest_stack(registry: &str, host_port: u16) -> String {
    format!(
        r#"name: swarmtest
registry: {registry}/swarmtest
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
"#
    )
}

/// The `swarmtest` stack's `web` and `client` images on `base`, pushed to `registry`.
fn build_swarmtest_images(d: &Dockerd, t: &TestDir, registry: &str, base: &str) {
    build_and_push(
        d,
        t,
        "web",
        &format!(
            "FROM {base}\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
        ),
        &[("index.html", "hello from web\n")],
        &format!("{registry}/swarmtest/web:{TAG}"),
    );
    // The client fetches http://web:8080/ by the service name, over and over,
    // and serves what it got, and its GREETING from the environment.
    let client_sh = "#!/bin/sh\nmkdir -p /www\necho \"$GREETING\" > /www/greeting.txt\nwhile true; do wget -q -O /www/upstream.tmp http://web:8080/index.html && mv /www/upstream.tmp /www/upstream.txt; sleep 1; done &\nexec httpd -f -p \"$1\" -h /www\n";
    build_and_push(
        d,
        t,
        "client",
        &format!(
            "FROM {base}\nCOPY client.sh /client.sh\nENTRYPOINT [\"sh\", \"/client.sh\"]\nCMD [\"9000\"]\n"
        ),
        &[("client.sh", client_sh)],
        &format!("{registry}/swarmtest/client:{TAG}"),
    );
}

/// The `swarmtest` stack deployed by [`deploy_swarmtest`].
struct Swarmtest {
    /// Dropped first: the stack goes before the registry its images come from.
    stack: Deployed,
    base: String,
    /// The ingress host `stackgen url` gives the branch.
    host: String,
    host_port: u16,
    _t: TestDir,
    _reg: Registry,
}

impl Swarmtest {
    /// `GET PATH` of `host:port` from a one-off container on the stack's overlay network: the
    /// response, stdout and stderr.
    fn fetch(&self, host: &str, port: u16, path: &str) -> String {
        let net = format!("{}_default", self.stack.alias);
        let script = format!("printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc {host} {port}");
        let out = self.stack.d.try_run(&[
            "run",
            "--rm",
            "--network",
            &net,
            &self.base,
            "sh",
            "-c",
            &script,
        ]);
        format!("{}{}", out.stdout, out.stderr)
    }

    /// The Swarm name of the stack's service `name`: `<alias>_<name>`.
    fn service(&self, name: &str) -> String {
        format!("{}_{name}", self.stack.alias)
    }
}

/// The `swarmtest` stack's images built and pushed to a registry of its own, its compose file for
/// a branch of its own, deployed on the shared swarm.
fn deploy_swarmtest() -> Swarmtest {
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    let t = TestDir::new();
    build_swarmtest_images(d, &t, &reg.addr, &base);
    let host_port = free_port();
    t.write("stack.yaml", swarmtest_stack(&reg.addr, host_port));
    let branch = unique_branch();
    let url = support::stackgen(&t, &["url", "--env", "smoke", "--branch", &branch]);
    url.success();
    let host = url.stdout.trim().trim_start_matches("https://");
    let host = host.trim_end_matches('/').to_string();
    compose(&t, &branch, TAG);
    let stack = deploy(d, &t, namespace(&t, &branch));
    Swarmtest {
        stack,
        base,
        host,
        host_port,
        _t: t,
        _reg: reg,
    }
}

#[test]
fn swarmtest_namespace_is_the_stack_and_the_branch_slug() {
    let t = support::with_stack(&swarmtest_stack("127.0.0.1:5000", free_port()));
    let alias = namespace(&t, &unique_branch());
    assert!(alias.starts_with("swarmtest-test-run-"), "{alias}");
}

#[test]
fn swarmtest_compose_file_leaves_out_the_omitted_service() {
    let t = support::with_stack(&swarmtest_stack("127.0.0.1:5000", free_port()));
    let compose = compose(&t, &unique_branch(), TAG);
    assert!(!compose.contains("unused"), "{compose}");
}

/// The compose output deployed to the swarm: the services converge, reach each other by name,
/// publish their ports in host mode and pass their health checks.
///
/// The steps share one deployment: building two images and a stack converging on the swarm
/// take tens of seconds, and every step only reads the running stack.
#[test]
fn compose_output_deploys_to_swarm_and_services_reach_each_other_by_name() {
    let s = deploy_swarmtest();
    only_the_environments_services_converge(&s);
    client_reaches_web_by_name_and_is_reached_by_name(&s);
    web_is_reachable_by_name_on_the_stack_network(&s);
    the_environments_env_override_reaches_the_client(&s);
    the_declared_port_is_published_in_host_mode(&s);
    the_ingress_port_is_published_in_host_mode_on_a_free_port(&s);
    the_ingress_labels_name_the_route(&s);
    the_health_checks_run_and_pass(&s);
}

/// `web` and `client` converge to their replicas; `unused`, omitted, is not deployed.
fn only_the_environments_services_converge(s: &Swarmtest) {
    let mut names = services_converge(&s.stack, 2);
    names.sort();
    assert_eq!(names, [s.service("client"), s.service("web")]);
}

/// A one-off container on the attachable overlay `<alias>_default` reaches `client` by name, and
/// `client` has reached `web` by name.
fn client_reaches_web_by_name_and_is_reached_by_name(s: &Swarmtest) {
    let mut last = String::new();
    let reached = wait_until(Duration::from_secs(120), || {
        last = s.fetch("client", 8081, "/upstream.txt");
        last.contains("hello from web")
    });
    let net = format!("{}_default", s.stack.alias);
    assert!(
        reached,
        "client did not reach web by name (or is not reachable by name on {net}): {last}"
    );
}

/// A one-off container on the stack's network reaches `web` by name.
fn web_is_reachable_by_name_on_the_stack_network(s: &Swarmtest) {
    let web = s.fetch("web", 8080, "/index.html");
    assert!(web.contains("hello from web"), "{web}");
}

/// `client`'s environment is the `smoke` environment's override of the stack's.
fn the_environments_env_override_reaches_the_client(s: &Swarmtest) {
    let greeting = s.fetch("client", 8081, "/greeting.txt");
    assert!(greeting.contains("from-env-override"), "{greeting}");
}

/// The declared port is published in host mode (and only that one). Connecting to it is not
/// checked here: engines of parallel tests share the host's `docker_gwbridge`, so its proxy
/// cannot be relied on.
fn the_declared_port_is_published_in_host_mode(s: &Swarmtest) {
    let ports = spec_ports(s.stack.d, &s.service("web"));
    assert_eq!(ports, format!("8080:{}:host;", s.host_port));
}

/// `client`'s ingress port is published in host mode with no fixed number: Swarm accepts it and
/// gives the task a free port, which `deploy-bot ingress` finds by the labels.
fn the_ingress_port_is_published_in_host_mode_on_a_free_port(s: &Swarmtest) {
    let (d, client) = (s.stack.d, s.service("client"));
    let ports = spec_ports(d, &client);
    assert_eq!(ports, "8081:0:host;", "no fixed published port");
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
}

/// `client`'s labels give `deploy-bot ingress` its route: the branch's host, the path, the port.
fn the_ingress_labels_name_the_route(s: &Swarmtest) {
    let client = s.service("client");
    let labels = s.stack.d.run(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.Labels}}",
        &client,
    ]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["dev.microplatform.ingress.host"], s.host.as_str());
    assert_eq!(labels["dev.microplatform.ingress.path"], "/");
    assert_eq!(labels["dev.microplatform.ingress.port"], "8081");
}

/// The health checks from the stack file run and pass.
fn the_health_checks_run_and_pass(s: &Swarmtest) {
    let d = s.stack.d;
    let label = format!("label=com.docker.stack.namespace={}", s.stack.alias);
    let healthy = wait_until(Duration::from_secs(90), || {
        let ids = d.try_run(&["ps", "-q", "--filter", &label]);
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

/// The stack of [`deploy_long_names`]: a 63-character service name and values with `$` and
/// control characters.
fn long_names_stack(stack_name: &str, registry: &str, long: &str) -> String {
    format!(
        r#"name: {stack_name}
registry: {registry}/base
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
"#
    )
}

/// The stack deployed by [`deploy_long_names`].
struct LongNames {
    /// Dropped first: the stack goes before the registry its image comes from.
    stack: Deployed,
    /// The 63-character service name.
    long: String,
    _t: TestDir,
    _reg: Registry,
}

/// [`long_names_stack`], with the base image as its `busybox` image, deployed for `branch` on the
/// shared swarm.
fn deploy_long_names(branch: &str) -> LongNames {
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    assert_eq!(base, format!("{}/base/busybox:1", reg.addr));
    let long = format!("l{}", "o".repeat(61) + "g");
    assert_eq!(long.len(), 63);
    let stack_name = format!("names{}", free_port());
    let t = support::with_stack(&long_names_stack(&stack_name, &reg.addr, &long));
    compose(&t, branch, "1");
    let stack = deploy(d, &t, namespace(&t, branch));
    LongNames {
        stack,
        long,
        _t: t,
        _reg: reg,
    }
}

/// On `main`: `<alias>_<name>` of the 63-character service name is over 63 characters.
///
/// The steps share one deployment (see [`long_names_deploy_and_values_reach_the_container`]).
#[test]
fn long_service_name_deploys_on_main_and_values_reach_the_container_literally() {
    long_names_deploy_and_values_reach_the_container("main");
}

/// A branch whose slug is longer than any alias.
///
/// The steps share one deployment (see [`long_names_deploy_and_values_reach_the_container`]).
#[test]
fn long_branch_slug_deploys_and_values_reach_the_container_literally() {
    let branch = format!("feature/{}", "a-long-branch-name-".repeat(4));
    long_names_deploy_and_values_reach_the_container(&branch);
}

/// Names Swarm refuses over 63 characters (`<alias>_<service>`, `<alias>_default`) fit, the
/// declared name stays the service's name on the network, and values with `$` and control
/// characters reach the container's environment exactly as written.
///
/// The steps share one deployment: a stack converging on the swarm takes tens of seconds, and
/// every step only reads the running stack.
fn long_names_deploy_and_values_reach_the_container(branch: &str) {
    let s = deploy_long_names(branch);
    let names = services_converge(&s.stack, 2);
    swarm_names_fit_63_characters(&names);
    let long_service = long_service_is_named_by_swarm_service_name(&s, &names);
    the_declared_name_is_the_alias_on_the_stack_network(&s, &long_service);
    the_stack_network_is_the_alias_default(&s);
    values_reach_the_container_exactly_as_written(&s, &long_service);
}

/// Every service's Swarm name is at most 63 characters.
fn swarm_names_fit_63_characters(names: &[String]) {
    for name in names {
        assert!(name.len() <= 63, "{name}");
    }
}

/// The long service (the one not `web`) is named as `swarm_service_name` says; returns its name.
fn long_service_is_named_by_swarm_service_name(s: &LongNames, names: &[String]) -> String {
    let long_service = names.iter().find(|n| !n.ends_with("_web")).unwrap().clone();
    assert_eq!(
        long_service,
        stackgen::compose::swarm_service_name(&s.stack.alias, &s.long)
    );
    long_service
}

/// The declared name is the service's alias on the stack network.
fn the_declared_name_is_the_alias_on_the_stack_network(s: &LongNames, long_service: &str) {
    let nets = s.stack.d.run(&[
        "service",
        "inspect",
        "--format",
        "{{json .Spec.TaskTemplate.Networks}}",
        long_service,
    ]);
    assert!(nets.contains(&format!("\"{}\"", s.long)), "{nets}");
}

/// The stack's network is `<alias>_default`, its full name.
fn the_stack_network_is_the_alias_default(s: &LongNames) {
    let net = s.stack.d.run(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(
        net.lines()
            .any(|l| l == format!("{}_default", s.stack.alias)),
        "{net}"
    );
}

/// The environment inside the container, exactly as written.
fn values_reach_the_container_exactly_as_written(s: &LongNames, long_service: &str) {
    let id = container_of(s.stack.d, long_service).expect("a running container");
    let env = s.stack.d.run(&["exec", &id, "env"]);
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
}
