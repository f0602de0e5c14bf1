//! `deploy-bot notify`: a GitHub-format push webhook signed with the secret from a file or the environment (never argv), sent to the agent URL; refusals without a secret or on a non-2xx answer.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;

use microplatform_test_support::TestDir;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotifyOut {
    schema_version: u32,
    sent: bool,
    delivery: Option<String>,
    status: Option<u16>,
    commit: String,
    applied: Option<bool>,
    #[serde(default)]
    images: Option<std::collections::BTreeMap<String, String>>,
    seconds: f64,
}

/// A request as received: headers (lowercase names) and body.
type Received = (Vec<(String, String)>, Vec<u8>);

/// One HTTP request received; answers `status`.
fn serve_once(status: u16) -> (String, std::thread::JoinHandle<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let mut headers = vec![("request-line".to_string(), first.trim().to_string())];
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap();
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            if name == "content-length" {
                len = value.parse().unwrap();
            }
            headers.push((name, value));
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        )
        .unwrap();
        (headers, body)
    });
    (url, handle)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

#[test]
fn notify_sends_a_signed_push_with_the_secret_from_a_file() {
    let t = TestDir::new();
    let secret = t.write("secret", "s3cret-value\n");
    let (url, server) = serve_once(202);
    let out = t
        .cmd("deploy-bot")
        .args([
            "notify",
            "--agent-url",
            &url,
            "--repo",
            "file:///x/cluster.git",
            "--commit",
        ])
        .arg("a".repeat(40))
        .arg("--secret-file")
        .arg(&secret)
        .env_remove("DEPLOY_BOT_WEBHOOK_SECRET")
        .run();
    out.success();
    let r: NotifyOut = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(r.schema_version, 1);
    assert!(r.sent && r.status == Some(202) && r.applied.is_none() && r.images.is_none());
    assert_eq!(r.commit, "a".repeat(40));
    assert!(r.seconds >= 0.0);
    let (headers, body) = server.join().unwrap();
    assert_eq!(header(&headers, "request-line"), "POST /webhooks HTTP/1.1");
    assert_eq!(header(&headers, "x-github-event"), "push");
    assert_eq!(
        Some(header(&headers, "x-github-delivery")),
        r.delivery.as_deref()
    );
    // The signature is the agent's own check with the file's secret (newline dropped).
    assert!(deploy_bot::webhook::verify_signature(
        b"s3cret-value",
        &body,
        Some(header(&headers, "x-hub-signature-256"))
    ));
    let push: deploy_bot::webhook::PushEvent = serde_json::from_slice(&body).unwrap();
    assert_eq!(push.git_ref, "refs/heads/main");
    assert_eq!(push.after, "a".repeat(40));
    assert_eq!(
        push.repository.clone_url.as_deref(),
        Some("file:///x/cluster.git")
    );
}

#[test]
fn notify_reads_the_secret_from_the_environment_and_fails_on_a_refusal() {
    let t = TestDir::new();
    let (url, server) = serve_once(401);
    let out = t
        .cmd("deploy-bot")
        .args([
            "notify",
            "--agent-url",
            &url,
            "--repo",
            "r",
            "--commit",
            "c",
        ])
        .env("DEPLOY_BOT_WEBHOOK_SECRET", "from-env")
        .run();
    out.code(6).stdout_empty().stderr_contains("HTTP 401");
    let (headers, body) = server.join().unwrap();
    assert!(deploy_bot::webhook::verify_signature(
        b"from-env",
        &body,
        Some(header(&headers, "x-hub-signature-256"))
    ));
}

#[test]
fn notify_without_a_secret_is_a_usage_error() {
    let t = TestDir::new();
    t.cmd("deploy-bot")
        .args([
            "notify",
            "--agent-url",
            "http://127.0.0.1:1",
            "--repo",
            "r",
            "--commit",
            "c",
        ])
        .env_remove("DEPLOY_BOT_WEBHOOK_SECRET")
        .run()
        .code(2)
        .stdout_empty()
        .stderr_contains("no webhook secret");
    // --wait needs the compose file and the stack name.
    t.cmd("deploy-bot")
        .args([
            "notify",
            "--agent-url",
            "u",
            "--repo",
            "r",
            "--commit",
            "c",
            "--wait",
            "5",
        ])
        .run()
        .code(2)
        .stdout_empty();
}
