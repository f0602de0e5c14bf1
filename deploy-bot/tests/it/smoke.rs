//! `deploy-bot smoke` against real HTTP servers on loopback: a healthy answer passes, a page saying
//! "status: degraded" fails naming the service, URL and body (exit 1), a wrong status fails the same way, a
//! service that never answers is a network failure (exit 6), and a service that turns healthy within the timeout
//! passes after retries.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use microplatform_test_support::{Cmd, TestDir, bin, free_port};

/// A server answering every request with `answer(n)` (status, body) for the n-th request; runs until the process ends.
fn serve(answer: impl Fn(usize) -> (u16, String) + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let (status, body) = answer(count.fetch_add(1, Ordering::SeqCst));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn page(status: &str) -> String {
    format!(
        "<!doctype html>\n<html><body>\n<p id=\"api\">api says: (api unreachable)</p>\n<p id=\"status\">status: {status}</p>\n</body></html>\n"
    )
}

/// A plan with these services' smoke checks (name, url, status, body pattern).
fn plan(dir: &TestDir, checks: &[(&str, &str, u16, &str)]) -> String {
    let services: Vec<serde_json::Value> = checks
        .iter()
        .map(|(name, url, status, body)| {
            serde_json::json!({"name": name, "smoke": {"path": "/", "url": url, "status": status, "body": body}})
        })
        .chain([serde_json::json!({"name": "worker", "smoke": null})])
        .collect();
    let text = serde_json::json!({"schema_version": 1, "environment": "dev", "services": services});
    dir.write("plan.json", text.to_string());
    dir.join("plan.json").to_string_lossy().into_owned()
}

fn smoke(plan: &str, extra: &[&str]) -> microplatform_test_support::Output {
    Cmd::new(bin("deploy-bot"))
        .args(["smoke", "--plan", plan, "--interval", "100ms"])
        .args(extra)
        .run()
}

#[test]
fn healthy_answers_pass_and_name_every_check() {
    let web = serve(|_| (200, page("ok")));
    let api = serve(|_| (200, r#"{"greeting":"Hello, smoke!"}"#.into()));
    let t = TestDir::new();
    let web_url = format!("http://web.shop.dev.localhost:{web}/");
    let api_url = format!("http://127.0.0.1:{api}/cgi-bin/greet?name=smoke");
    let p = plan(
        &t,
        &[
            ("web", &web_url, 200, "status: ok"),
            ("api", &api_url, 200, r#""greeting":"Hello, smoke!""#),
        ],
    );
    let out_dir = t.join("bodies");
    let out = smoke(&p, &["--out-dir", &out_dir.to_string_lossy()]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["schema_version"], 1);
    let checks = v["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2, "{v}");
    assert_eq!(checks[0]["service"], "web");
    assert_eq!(checks[0]["url"], web_url.as_str());
    assert_eq!(checks[0]["status"], 200);
    assert_eq!(checks[0]["attempts"], 1);
    assert_eq!(checks[1]["service"], "api");
    assert!(
        std::fs::read_to_string(out_dir.join("web.txt"))
            .expect("body kept")
            .contains("status: ok")
    );
}

#[test]
fn a_degraded_page_fails_naming_service_url_and_body() {
    let web = serve(|_| (200, page("degraded")));
    let t = TestDir::new();
    let url = format!("http://web.shop.dev.localhost:{web}/");
    let p = plan(&t, &[("web", &url, 200, "status: ok")]);
    let started = std::time::Instant::now();
    let out = smoke(&p, &["--timeout", "1s"]);
    out.code(1)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("smoke check failed: service web:")
        .stderr_contains(&format!(
            "GET {url} answered 200 with a body not matching /status: ok/"
        ))
        .stderr_contains(": \"api says: (api unreachable) status: degraded\"");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "retried past --timeout"
    );

    // A wrong status fails the same way, with the body.
    let down = serve(|_| (503, "maintenance".into()));
    let url = format!("http://127.0.0.1:{down}/");
    let p = plan(&t, &[("web", &url, 200, "status: ok")]);
    smoke(&p, &["--timeout", "500ms"])
        .code(1)
        .stderr_one_line()
        .stderr_contains(&format!(
            "service web: GET {url} answered 503, expected 200: \"maintenance\""
        ));
}

#[test]
fn no_answer_is_a_network_failure_and_a_late_healthy_answer_passes() {
    let t = TestDir::new();
    let closed = free_port();
    let url = format!("http://127.0.0.1:{closed}/");
    let p = plan(&t, &[("web", &url, 200, "ok")]);
    smoke(&p, &["--timeout", "500ms"])
        .code(6)
        .stdout_empty()
        .stderr_one_line()
        .stderr_contains("service web:")
        .stderr_contains(&url);

    // Degraded twice, then healthy: retried until it passes.
    let web = serve(|n| (200, page(if n < 2 { "degraded" } else { "ok" })));
    let url = format!("http://127.0.0.1:{web}/");
    let p = plan(&t, &[("web", &url, 200, "status: ok")]);
    let out = smoke(&p, &["--timeout", "10s"]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(v["checks"][0]["attempts"], 3, "{v}");
}

#[test]
fn a_plan_without_urls_or_json_is_refused() {
    let t = TestDir::new();
    t.write(
        "plan.json",
        r#"{"environment": "ci", "services": [{"name": "web", "smoke": {"path": "/", "url": null, "status": 200, "body": "ok"}}]}"#,
    );
    smoke(&t.join("plan.json").to_string_lossy(), &[])
        .code(3)
        .stderr_one_line()
        .stderr_contains("services[0].smoke.url")
        .stderr_contains("environment `ci` has no host");
    t.write("bad.json", "{");
    smoke(&t.join("bad.json").to_string_lossy(), &[])
        .code(3)
        .stderr_one_line()
        .stderr_contains("bad.json: not JSON");
}
