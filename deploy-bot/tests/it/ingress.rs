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

struct Stack<'a>(&'a Dockerd, String);

impl Drop for Stack<'_> {
    fn drop(&mut self) {
        let _ = self.0.try_run(&["stack", "rm", &self.1]);
    }
}

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

#[test]
fn routes_by_host_and_longest_prefix_to_host_published_tasks() {
    let _serial = crate::support::swarm_lock();
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let dir = TestDir::new();
    let image = echo_image(d, &reg.addr, &dir);
    let id = std::process::id();
    let (a, b) = (format!("ing{id}a"), format!("ing{id}b"));
    let host_a = format!("{a}.shop.dev.localhost");
    let host_b = format!("{b}.shop.dev.localhost");

    let _sa = deploy(
        d,
        &dir,
        &a,
        &[
            service("web", &image, &host_a, "/", "web-a"),
            service("api", &image, &host_a, "/cgi-bin/greet", "api-a"),
        ],
    );
    let port = free_port();
    let _proxy = Proc(
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
    assert!(
        wait_until(WAIT, || get(port, &host_a, "/").1.starts_with("web-a")),
        "web of stack a never answered through the ingress: {:?}",
        get(port, &host_a, "/")
    );
    assert!(
        wait_until(WAIT, || get(port, &host_a, "/cgi-bin/greet?name=x")
            .1
            .starts_with("api-a")),
        "api of stack a never answered: {:?}",
        get(port, &host_a, "/cgi-bin/greet?name=x")
    );
    // The request's path and query reach the service unchanged.
    let (status, body) = get(port, &host_a, "/cgi-bin/greet/deeper?q=1");
    assert_eq!(
        (status, body.trim()),
        (200, "api-a /cgi-bin/greet/deeper?q=1")
    );
    // Prefixes match whole segments only; the port and case of Host do not matter.
    assert!(
        get(port, &host_a, "/cgi-bin/greeting")
            .1
            .starts_with("web-a")
    );
    assert!(
        get(port, &format!("{}:{port}", host_a.to_uppercase()), "/")
            .1
            .starts_with("web-a")
    );

    // A second environment is found without restarting the proxy.
    let _sb = deploy(
        d,
        &dir,
        &b,
        &[service("web", &image, &host_b, "/", "web-b")],
    );
    assert!(
        wait_until(WAIT, || get(port, &host_b, "/").1.starts_with("web-b")),
        "stack b never answered: {:?}",
        get(port, &host_b, "/")
    );
    assert!(get(port, &host_a, "/").1.starts_with("web-a"));

    // An unknown host is a 404 that lists the routes.
    let (status, body) = get(port, "nope.localhost", "/");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no route for host"), "{body}");
    assert!(body.contains(&format!("http://{host_b}/")), "{body}");

    // A service scaled to 0 is a 503 naming it, and comes back when scaled up.
    d.run(&["service", "scale", "--detach", &format!("{b}_web=0")]);
    assert!(
        wait_until(WAIT, || get(port, &host_b, "/").0 == 503),
        "scaled-down service still answered: {:?}",
        get(port, &host_b, "/")
    );
    assert!(get(port, &host_b, "/").1.contains(&format!("{b}_web")));
    d.run(&["service", "scale", "--detach", &format!("{b}_web=1")]);
    assert!(
        wait_until(WAIT, || get(port, &host_b, "/").1.starts_with("web-b")),
        "service did not come back: {:?}",
        get(port, &host_b, "/")
    );
}

/// `--listen localhost:PORT` holds the port on both loopback addresses, as
/// curl and browsers try `::1` first for `*.localhost` names; with `::1:PORT`
/// already taken (an engine's `[::]:PORT` published port) it refuses to start,
/// naming the address, instead of letting requests reach that other server.
#[test]
fn localhost_listens_on_both_loopbacks_and_refuses_a_taken_ipv6_port() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback on this host: only the 127.0.0.1 half applies");
        return;
    }
    let port = free_port();
    let mut proxy = Proc(
        Command::new(bin("deploy-bot"))
            .args(["ingress", "--listen", &format!("localhost:{port}")])
            .args(["--docker", "/bin/false"])
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
        // The engine cannot be listed (`--docker /bin/false`): the proxy's own 502 proves who answered.
        assert!(
            wait_until(WAIT, || answer(&url).starts_with("ingress: ")),
            "{url}: {:?}",
            answer(&url)
        );
    }
    let _ = proxy.0.kill();
    let _ = proxy.0.wait();

    // Another server on the IPv6 loopback first (docker-proxy binds `[::]:PORT`,
    // IPv6 only, for a task; std cannot set IPV6_V6ONLY, so `::1` stands in).
    let taken = std::net::TcpListener::bind(("::1", port)).expect("bind [::1]:port");
    let out = Command::new(bin("deploy-bot"))
        .args(["ingress", "--listen", &format!("localhost:{port}")])
        .args(["--docker", "/bin/false"])
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
