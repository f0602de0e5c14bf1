//! `deploy-bot ingress` for real: two stacks on a hand-started swarm, their services labelled as stackgen labels them and published in host mode; requests routed by Host and longest path prefix, a new stack found without a restart, and clear 404/503 answers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use microplatform_test_support::dockerd::{Dockerd, docker_cli};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{TestDir, bin, free_port, wait_until};

const WAIT: Duration = Duration::from_secs(120);

/// An image whose server answers every request with `$TEXT <request-uri>`.
fn echo_image(d: &Dockerd, registry: &str, dir: &TestDir) -> String {
    let base = d.base_image(registry);
    dir.write(
        "echo/r.sh",
        "#!/bin/sh\nread -r method uri proto\nwhile read -r line; do\n  case $line in \"\" | \"$(printf '\\r')\") break ;; esac\ndone\nbody=\"$TEXT $uri\"\nprintf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s\\n' $((${#body} + 1)) \"$body\"\n",
    );
    dir.write(
        "echo/Dockerfile",
        format!(
            "FROM {base}\nCOPY r.sh /r.sh\nRUN chmod 755 /r.sh\nCMD [\"sh\", \"-c\", \"trap 'exit 0' TERM; nc -ll -p 8080 -e /r.sh & wait\"]\n"
        ),
    );
    let tag = format!("{registry}/ingress-echo:1");
    d.docker()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", &tag])
        .arg(dir.join("echo"))
        .run()
        .success();
    d.run(&["push", &tag]);
    tag
}

/// A service of that image answering `text`, with the ingress labels stackgen writes.
fn service(name: &str, image: &str, host: &str, path: &str, text: &str) -> String {
    format!(
        r#"  {name}:
    image: "{image}"
    environment:
      TEXT: "{text}"
    ports:
      - target: 8080
        protocol: tcp
        mode: host
    deploy:
      endpoint_mode: dnsrr
      labels:
        dev.microplatform.ingress.host: "{host}"
        dev.microplatform.ingress.path: "{path}"
        dev.microplatform.ingress.port: "8080"
"#
    )
}

/// `docker stack rm NAME` when dropped, also when the test fails.
struct Stack<'a>(&'a Dockerd, String);

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        let _ = self.0.try_run(&["stack", "rm", &self.1]);
    }
}

/// Deploy stack `name` of `services` (`docker stack deploy --prune`).
fn deploy<'a>(d: &'a Dockerd, dir: &TestDir, name: &str, services: &[String]) -> Stack<'a> {
    let file = dir.write(
        format!("{name}.yaml"),
        format!("version: \"3.8\"\nservices:\n{}", services.concat()),
    );
    d.run(&[
        "stack",
        "deploy",
        "--prune",
        "-c",
        file.to_str().expect("utf-8 path"),
        name,
    ]);
    Stack(d, name.to_string())
}

/// A process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(status, body)` of GET http://127.0.0.1:port{path} with this Host.
fn get(port: u16, host: &str, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-m",
            "10",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            &format!("Host: {host}"),
            &format!("http://127.0.0.1:{port}{path}"),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// An ingress on 127.0.0.1 following the shared swarm, and stack `a` it routes to: `web` at `/` and `api` at
/// `/cgi-bin/greet` of `host_a`, of the echo image (answering `web-a URI`, `api-a URI`); stack `b` and its host
/// `host_b` are named for a later step to deploy.
struct Ingress {
    d: &'static Dockerd,
    dir: TestDir,
    image: String,
    b: String,
    host_a: String,
    host_b: String,
    /// The ingress's port on 127.0.0.1.
    port: u16,
    _proxy: Proc,
    _sa: Stack<'static>,
    _reg: Registry,
}

impl Ingress {
    /// Build and push the echo image, deploy stack `a` and start the ingress (refreshing every 500 ms).
    fn start() -> Self {
        let d = Dockerd::shared();
        d.ensure_swarm();
        let reg = Registry::start();
        let dir = TestDir::new();
        let image = echo_image(d, &reg.addr, &dir);
        let id = std::process::id();
        let (a, b) = (format!("ing{id}a"), format!("ing{id}b"));
        let host_a = format!("{a}.shop.dev.localhost");
        let host_b = format!("{b}.shop.dev.localhost");
        let sa = deploy(
            d,
            &dir,
            &a,
            &[
                service("web", &image, &host_a, "/", "web-a"),
                service("api", &image, &host_a, "/cgi-bin/greet", "api-a"),
            ],
        );
        let port = free_port();
        let proxy = Proc(
            Command::new(bin("deploy-bot"))
                .args([
                    "ingress",
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--refresh",
                    "500ms",
                    "--docker",
                ])
                .arg(docker_cli())
                .env("DOCKER_HOST", &d.host)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("deploy-bot ingress"),
        );
        Self {
            d,
            dir,
            image,
            b,
            host_a,
            host_b,
            port,
            _proxy: proxy,
            _sa: sa,
            _reg: reg,
        }
    }

    /// `(status, body)` of GET `path` with this Host through the ingress.
    fn get(&self, host: &str, path: &str) -> (u16, String) {
        get(self.port, host, path)
    }
}

/// The ingress's behaviours are steps of one scenario rather than tests of their own: the set-up is an engine build
/// (the echo image), a stack deploy and an ingress start, about 6 s unloaded and over 10 s under load, where most
/// steps take under a second; and the later steps need what the earlier left (stack `b` found by the running
/// ingress, then listed in its 404 and scaled down).
#[test]
fn routes_by_host_and_longest_prefix_to_host_published_tasks() {
    let _serial = crate::support::swarm_lock();
    let i = Ingress::start();
    routes_by_host_and_longest_whole_segment_prefix(&i);
    path_and_query_reach_the_service_unchanged(&i);
    port_and_case_of_host_do_not_matter(&i);
    let _sb = a_new_stack_is_found_without_restarting_the_ingress(&i);
    an_unknown_host_is_a_404_listing_the_routes(&i);
    a_service_scaled_to_zero_is_a_503_naming_it_until_scaled_up(&i);
}

/// Step: each path goes to the service of the Host with the longest prefix, matching whole segments only.
fn routes_by_host_and_longest_whole_segment_prefix(i: &Ingress) {
    assert!(
        wait_until(WAIT, || i.get(&i.host_a, "/").1.starts_with("web-a")),
        "web of stack a never answered through the ingress: {:?}",
        i.get(&i.host_a, "/")
    );
    assert!(
        wait_until(WAIT, || i
            .get(&i.host_a, "/cgi-bin/greet?name=x")
            .1
            .starts_with("api-a")),
        "api of stack a never answered: {:?}",
        i.get(&i.host_a, "/cgi-bin/greet?name=x")
    );
    assert!(i.get(&i.host_a, "/cgi-bin/greeting").1.starts_with("web-a"));
}

/// Step: the request's path and query reach the service unchanged.
fn path_and_query_reach_the_service_unchanged(i: &Ingress) {
    let (status, body) = i.get(&i.host_a, "/cgi-bin/greet/deeper?q=1");
    assert_eq!(
        (status, body.trim()),
        (200, "api-a /cgi-bin/greet/deeper?q=1")
    );
}

/// Step: a port in Host and its case do not change the route.
fn port_and_case_of_host_do_not_matter(i: &Ingress) {
    let host = format!("{}:{}", i.host_a.to_uppercase(), i.port);
    assert!(i.get(&host, "/").1.starts_with("web-a"));
}

/// Step: a second environment (stack `b`) deployed after the ingress started is routed to, and `a` still is;
/// returns `b`, removed on drop.
fn a_new_stack_is_found_without_restarting_the_ingress(i: &Ingress) -> Stack<'static> {
    let sb = deploy(
        i.d,
        &i.dir,
        &i.b,
        &[service("web", &i.image, &i.host_b, "/", "web-b")],
    );
    assert!(
        wait_until(WAIT, || i.get(&i.host_b, "/").1.starts_with("web-b")),
        "stack b never answered: {:?}",
        i.get(&i.host_b, "/")
    );
    assert!(i.get(&i.host_a, "/").1.starts_with("web-a"));
    sb
}

/// Step: an unknown host is a 404 that lists the routes.
fn an_unknown_host_is_a_404_listing_the_routes(i: &Ingress) {
    let (status, body) = i.get("nope.localhost", "/");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no route for host"), "{body}");
    assert!(body.contains(&format!("http://{}/", i.host_b)), "{body}");
}

/// Step: a service scaled to 0 is a 503 naming it, and is routed to again when scaled up.
fn a_service_scaled_to_zero_is_a_503_naming_it_until_scaled_up(i: &Ingress) {
    let web_b = format!("{}_web", i.b);
    i.d.run(&["service", "scale", "--detach", &format!("{web_b}=0")]);
    assert!(
        wait_until(WAIT, || i.get(&i.host_b, "/").0 == 503),
        "scaled-down service still answered: {:?}",
        i.get(&i.host_b, "/")
    );
    assert!(i.get(&i.host_b, "/").1.contains(&web_b));
    i.d.run(&["service", "scale", "--detach", &format!("{web_b}=1")]);
    assert!(
        wait_until(WAIT, || i.get(&i.host_b, "/").1.starts_with("web-b")),
        "service did not come back: {:?}",
        i.get(&i.host_b, "/")
    );
}

/// Whether this host has an IPv6 loopback; says so when it has not (the tests of `localhost` then have nothing to check).
fn has_ipv6_loopback() -> bool {
    let has = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !has {
        eprintln!("no IPv6 loopback on this host: only the 127.0.0.1 half applies");
    }
    has
}

/// `ingress --listen localhost:PORT --docker /bin/false`: the engine cannot be listed, so every request gets the
/// ingress's own 502 (`ingress: …`), which proves who answered.
fn localhost_ingress(port: u16) -> Command {
    let mut cmd = Command::new(bin("deploy-bot"));
    cmd.args(["ingress", "--listen", &format!("localhost:{port}")])
        .args(["--docker", "/bin/false"]);
    cmd
}

/// `--listen localhost:PORT` holds the port on both loopback addresses, as
/// curl and browsers try `::1` first for `*.localhost` names.
#[test]
fn localhost_listens_on_both_loopbacks() {
    if !has_ipv6_loopback() {
        return;
    }
    let port = free_port();
    let _proxy = Proc(
        localhost_ingress(port)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("deploy-bot ingress"),
    );
    let answer = |url: &str| {
        let out = Command::new("curl")
            .args(["-s", "-g", "-m", "10", url])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::1]:{port}/"),
        format!("http://feature-x.shop.dev.localhost:{port}/"),
    ] {
        assert!(
            wait_until(WAIT, || answer(&url).starts_with("ingress: ")),
            "{url}: {:?}",
            answer(&url)
        );
    }
}

/// With `::1:PORT` already taken (an engine's `[::]:PORT` published port),
/// `--listen localhost:PORT` refuses to start, naming the address, instead of
/// letting requests reach that other server.
#[test]
fn localhost_refuses_a_taken_ipv6_port() {
    if !has_ipv6_loopback() {
        return;
    }
    let port = free_port();
    // Another server on the IPv6 loopback first (docker-proxy binds `[::]:PORT`,
    // IPv6 only, for a task; std cannot set IPV6_V6ONLY, so `::1` stands in).
    let taken = std::net::TcpListener::bind(("::1", port)).expect("bind [::1]:port");
    let out = localhost_ingress(port)
        .output()
        .expect("deploy-bot ingress");
    drop(taken);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("[::1]:{port}")) && stderr.contains("in use"),
        "{stderr}"
    );
}
