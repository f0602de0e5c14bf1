//! `deploy-bot smoke`: after a deploy, ask every service at the environment's URL and check what it answers,
//! not only that it answers.
//!
//! The checks come from stackgen's plan (`services[].smoke`: `url`, `status`, `body`, a regular expression). Every
//! check is retried until it passes or the deadline passes (a service may still be converging); the last answer
//! decides the error: a wrong status or a body that does not match is a failed check (exit 1) naming the service,
//! the URL and the body; no answer at all is a network failure (exit 6).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{Error, Result};

/// One check of the plan.
#[derive(Debug, Clone)]
pub struct Check {
    /// The service (stack name).
    pub service: String,
    /// The URL requested.
    pub url: String,
    /// The status the answer must have.
    pub status: u16,
    /// The pattern's source text.
    pub body: String,
    pattern: regex::Regex,
}

/// A malformed plan, named by `source`.
fn plan_error(source: &str, message: String) -> Error {
    Error::Input {
        path: source.to_string(),
        message,
    }
}

/// The plan's `services` list.
fn plan_services<'a>(
    plan: &'a serde_json::Value,
    source: &str,
) -> Result<&'a Vec<serde_json::Value>> {
    plan["services"].as_array().ok_or_else(|| {
        plan_error(
            source,
            "`services` is not a list (is this `stackgen plan` output?)".into(),
        )
    })
}

/// The checks of a plan (stackgen's JSON): every service with a `smoke`. `source` names the plan in errors.
pub fn checks_from_plan(plan: &serde_json::Value, source: &str) -> Result<Vec<Check>> {
    let input = |message: String| plan_error(source, message);
    let services = plan_services(plan, source)?;
    let mut checks = Vec::new();
    for (i, s) in services.iter().enumerate() {
        let smoke = &s["smoke"];
        if smoke.is_null() {
            continue;
        }
        let service = s["name"]
            .as_str()
            .ok_or_else(|| input(format!("services[{i}].name: not a string")))?
            .to_string();
        let url = smoke["url"].as_str().ok_or_else(|| {
            input(format!(
                "services[{i}].smoke.url: null: environment `{}` has no host, so `{service}` has no URL to check",
                plan["environment"].as_str().unwrap_or("?")
            ))
        })?;
        let status = smoke["status"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| input(format!("services[{i}].smoke.status: not an HTTP status")))?;
        let body = smoke["body"]
            .as_str()
            .ok_or_else(|| input(format!("services[{i}].smoke.body: not a string")))?;
        let pattern = regex::RegexBuilder::new(body)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Error::Regex {
                path: source.to_string(),
                field: format!("services[{i}].smoke.body"),
                pattern: body.to_string(),
                source: e,
            })?;
        checks.push(Check {
            service,
            url: url.to_string(),
            status,
            body: body.to_string(),
            pattern,
        });
    }
    Ok(checks)
}

/// How the checks run.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// Until when a failing check is retried (from the start).
    pub timeout: Duration,
    /// The pause between attempts of one check.
    pub interval: Duration,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// Where each service's last body is written (`<service>.txt`).
    pub out_dir: Option<PathBuf>,
}

/// A passed check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// The service.
    pub service: String,
    /// The URL requested.
    pub url: String,
    /// The status it answered.
    pub status: u16,
    /// The pattern its body matched.
    pub body: String,
    /// Requests made.
    pub attempts: u32,
    /// Seconds until it passed.
    pub seconds: f64,
}

/// What `deploy-bot smoke` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SmokeResult {
    /// 1.
    pub schema_version: u32,
    /// With `--by-name`: every call by service name, in plan order; all answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by_name: Option<Vec<NameCallResult>>,
    /// Every check, in plan order; all passed.
    pub checks: Vec<CheckResult>,
    /// Seconds in all.
    pub seconds: f64,
}

enum Outcome {
    Pass(u16, String),
    Wrong(String, String),
    NoAnswer(String),
}

/// A body for a one-line message: an HTML page's text (tags dropped), whitespace collapsed, at most 300
/// characters. The whole body is in `--out-dir`.
fn excerpt(body: &str) -> String {
    let text = if body.trim_start().starts_with('<') {
        let mut out = String::with_capacity(body.len());
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => {
                    in_tag = true;
                    out.push(' ');
                }
                '>' if in_tag => in_tag = false,
                _ if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    } else {
        body.to_string()
    };
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > 300 {
        format!("{}…", flat.chars().take(300).collect::<String>())
    } else {
        flat
    }
}

/// The innermost cause of an error (reqwest's own message names neither refusal nor timeout).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

async fn attempt(client: &reqwest::Client, c: &Check) -> Outcome {
    let resp = match client.get(&c.url).send().await {
        Ok(r) => r,
        Err(e) => return Outcome::NoAnswer(format!("no answer ({})", innermost(&e))),
    };
    let status = resp.status().as_u16();
    let body = match resp.text().await {
        Ok(b) => b,
        Err(e) => return Outcome::NoAnswer(format!("answered {status}, body unreadable: {e}")),
    };
    if status != c.status {
        Outcome::Wrong(
            format!(
                "answered {status}, expected {}: {:?}",
                c.status,
                excerpt(&body)
            ),
            body,
        )
    } else if !c.pattern.is_match(&body) {
        Outcome::Wrong(
            format!(
                "answered {status} with a body not matching /{}/: {:?}",
                c.body,
                excerpt(&body)
            ),
            body,
        )
    } else {
        Outcome::Pass(status, body)
    }
}

fn write_body(dir: Option<&Path>, service: &str, body: &str) -> Result<()> {
    if let Some(d) = dir {
        let path = d.join(format!("{service}.txt"));
        std::fs::write(&path, body).map_err(|e| Error::io(&path, e))?;
    }
    Ok(())
}

/// One check, retried until it passes or the deadline: its result, or its verdict (wrong answer or
/// none, and the message). Writing a body to `--out-dir` failing is an error of its own.
async fn check(
    client: &reqwest::Client,
    c: &Check,
    o: &SmokeOptions,
    start: Instant,
) -> Result<Result<CheckResult, (bool, String)>> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = attempt(client, c).await;
        let (wrong, message, body) = match outcome {
            Outcome::Pass(status, body) => {
                write_body(o.out_dir.as_deref(), &c.service, &body)?;
                return Ok(Ok(CheckResult {
                    service: c.service.clone(),
                    url: c.url.clone(),
                    status,
                    body: c.body.clone(),
                    attempts,
                    seconds: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                }));
            }
            Outcome::Wrong(m, body) => (true, m, Some(body)),
            Outcome::NoAnswer(m) => (false, m, None),
        };
        if start.elapsed() + o.interval >= o.timeout {
            if let Some(b) = body {
                write_body(o.out_dir.as_deref(), &c.service, &b)?;
            }
            tracing::debug!(service = %c.service, url = %c.url, attempts, "smoke check failed");
            return Ok(Err((
                wrong,
                format!("service {}: GET {} {message}", c.service, c.url),
            )));
        }
        tracing::info!(service = %c.service, url = %c.url, %message, "smoke: retrying");
        tokio::time::sleep(o.interval).await;
    }
}

/// Run every check (at the same time). All pass: the result; else the first failing check decides the error
/// (a wrong answer before no answer), and the message names every failing one.
pub async fn run(checks: &[Check], o: &SmokeOptions) -> Result<SmokeResult> {
    let mut builder = microplatform_common::http::client_builder()
        .timeout(o.request_timeout)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none());
    // Names under `.localhost` are loopback (RFC 6761), as curl and browsers resolve them; the system resolver
    // here may not know them. (The port of the address is ignored: the URL's is used.)
    for c in checks {
        if let Some(host) = reqwest::Url::parse(&c.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            && (host == "localhost" || host.ends_with(".localhost"))
        {
            builder = builder.resolve(&host, std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        }
    }
    let client = builder
        .build()
        .map_err(|e| Error::setup("http client", e))?;
    if let Some(d) = &o.out_dir {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let start = Instant::now();
    let results =
        futures::future::join_all(checks.iter().map(|c| check(&client, c, o, start))).await;
    let mut passed = Vec::new();
    let mut wrong = Vec::new();
    let mut silent = Vec::new();
    for r in results {
        match r? {
            Ok(p) => passed.push(p),
            Err((true, m)) => wrong.push(m),
            Err((false, m)) => silent.push(m),
        }
    }
    if !wrong.is_empty() {
        wrong.extend(silent);
        return Err(Error::Smoke(wrong.join("; ")));
    }
    if !silent.is_empty() {
        return Err(Error::SmokeNoAnswer(silent.join("; ")));
    }
    Ok(SmokeResult {
        schema_version: 1,
        by_name: None,
        checks: passed,
        seconds: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
}

/// Read a plan (`stackgen plan`'s JSON) from `path`, or from stdin when it is `-`; returns it
/// with the name to show in messages (the path, or `<stdin>`).
pub fn read_plan(path: &Path) -> Result<(serde_json::Value, String)> {
    let (text, source) = if path.as_os_str() == "-" {
        (
            microplatform_common::io::read_stdin().map_err(|e| Error::io("<stdin>", e))?,
            "<stdin>".to_string(),
        )
    } else {
        (
            std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?,
            path.display().to_string(),
        )
    };
    let plan = serde_json::from_str(&text).map_err(|e| Error::Json {
        path: source.clone(),
        what: "not JSON".into(),
        source: e,
    })?;
    Ok((plan, source))
}

/// A plan's whole smoke step: the calls by service name (with `by_name`: the docker CLI and a busybox image) and
/// the declared checks at the environment's URL, both at the same time.
pub async fn run_plan(
    plan: &serde_json::Value,
    source: &str,
    by_name: Option<(PathBuf, String)>,
    o: &SmokeOptions,
) -> Result<SmokeResult> {
    let checks = checks_from_plan(plan, source)?;
    let by_name = match by_name {
        Some((docker, image)) => {
            let calls = name_calls_from_plan(plan, source)?;
            let namespace = plan["namespace"].as_str().ok_or_else(|| Error::Input {
                path: source.to_string(),
                message: "namespace: not a string (--by-name calls on <namespace>_default)".into(),
            })?;
            let by = ByName {
                docker,
                image,
                network: format!("{namespace}_default"),
            };
            Some((calls, by))
        }
        None => None,
    };
    let names = async {
        match &by_name {
            Some((calls, by)) => run_by_name(calls, by, o).await.map(Some),
            None => Ok(None),
        }
    };
    let (answered, mut result) = tokio::try_join!(names, run(&checks, o))?;
    result.by_name = answered;
    Ok(result)
}

/// A call by service name from inside the stack's network: a service's health or ingress path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCall {
    /// The service (its name is its host name on the stack's network).
    pub service: String,
    /// `health` or `ingress`.
    pub kind: &'static str,
    /// `http://<service>:<port><path>`.
    pub url: String,
}

/// The calls by name of a plan: every service's `health` and `ingress` path (`{port, path}`), in plan order.
pub fn name_calls_from_plan(plan: &serde_json::Value, source: &str) -> Result<Vec<NameCall>> {
    let input = |message: String| plan_error(source, message);
    let services = plan_services(plan, source)?;
    let mut calls = Vec::new();
    for (i, s) in services.iter().enumerate() {
        for kind in ["health", "ingress"] {
            let at = &s[kind];
            if at.is_null() {
                continue;
            }
            let service = s["name"]
                .as_str()
                .ok_or_else(|| input(format!("services[{i}].name: not a string")))?;
            let port = at["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| input(format!("services[{i}].{kind}.port: not a port")))?;
            let path = at["path"]
                .as_str()
                .filter(|p| p.starts_with('/') && !p.chars().any(char::is_whitespace))
                .ok_or_else(|| {
                    input(format!(
                        "services[{i}].{kind}.path: not a path (`/…`, no spaces)"
                    ))
                })?;
            calls.push(NameCall {
                service: service.to_string(),
                kind,
                url: format!("http://{service}:{port}{path}"),
            });
        }
    }
    Ok(calls)
}

/// Where the calls by name are made from: a container of `image` on `network`, run with the docker CLI.
#[derive(Debug, Clone)]
pub struct ByName {
    /// The docker CLI (`DOCKER_HOST` is honoured).
    pub docker: PathBuf,
    /// An image with `sh`, `timeout`, `wget`, `mktemp`, `wc`, `cat`, `grep` and `rm` (busybox).
    pub image: String,
    /// The stack's network (`<namespace>_default`).
    pub network: String,
}

/// An answered call by name.
#[derive(Debug, Clone, Serialize)]
pub struct NameCallResult {
    /// The service.
    pub service: String,
    /// `health` or `ingress`.
    pub kind: &'static str,
    /// The URL called, by service name.
    pub url: String,
    /// Bytes of the answer (kept in `--out-dir` as `<service>-<kind>.txt`).
    pub bytes: usize,
    /// Attempts until it answered.
    pub attempts: u32,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script one container runs: every call, each answer (or wget's error) framed as
/// `=== <index> ok|status|failed <bytes>\n<bytes>`, so bodies can hold anything. wget prints the
/// server's response headers (`-S`, lines indented by two spaces) with its errors: a failed call
/// whose headers hold a status line got an answer, the wrong one (`status`); without one it got
/// none (`failed`). The error framed is wget's own lines, without the headers.
fn name_script(calls: &[&NameCall], request_timeout: Duration) -> String {
    let t = request_timeout.as_secs().max(1);
    // The scratch directory goes with the script (the container is removed anyway; a local run is not).
    let mut script =
        String::from("d=$(mktemp -d) && cd \"$d\" || exit 99\ntrap 'cd /; rm -rf \"$d\"' EXIT\n");
    for (i, c) in calls.iter().enumerate() {
        let _ = writeln!(
            script,
            "if timeout {t} wget -S -q -O b{i} {url} 2>h{i}; then echo \"=== {i} ok $(wc -c <b{i})\"; cat b{i}; \
             else r=$?; grep -v '^  ' h{i} >e{i}; [ $r -ne 143 ] || echo 'wget: no answer within {t}s' >>e{i}; \
             if grep -q '^  HTTP/' h{i}; then s=status; else s=failed; fi; \
             echo \"=== {i} $s $(wc -c <e{i})\"; cat e{i}; fi",
            url = shell_quote(&c.url)
        );
    }
    script.push_str("exit 0\n");
    script
}

/// How a call by name ended, as its frame says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Called {
    /// Answered with a success status.
    Ok,
    /// Answered with another status (a wrong answer).
    Status,
    /// No answer.
    Failed,
}

/// The framed answers of `name_script`: (index, how the call ended, bytes).
fn parse_framed(mut out: &[u8]) -> Vec<(usize, Called, Vec<u8>)> {
    let mut frames = Vec::new();
    while let Some(nl) = out.iter().position(|&b| b == b'\n') {
        let header = String::from_utf8_lossy(&out[..nl]).into_owned();
        let mut words = header.strip_prefix("=== ").unwrap_or_default().split(' ');
        let (Some(i), Some(state), Some(n)) = (words.next(), words.next(), words.next()) else {
            break;
        };
        let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.trim().parse::<usize>()) else {
            break;
        };
        let body = &out[nl + 1..];
        if body.len() < n {
            break;
        }
        let called = match state {
            "ok" => Called::Ok,
            "status" => Called::Status,
            _ => Called::Failed,
        };
        frames.push((i, called, body[..n].to_vec()));
        out = &body[n..];
    }
    frames
}

/// Every call by name, from one container on the stack's network; the calls without an answer are made again
/// (a new container) until all answered or `--timeout`. A call answered with an error status is a wrong answer
/// (exit 1), else no answer (exit 6); the docker CLI failing is an external failure (exit 9).
pub async fn run_by_name(
    calls: &[NameCall],
    by: &ByName,
    o: &SmokeOptions,
) -> Result<Vec<NameCallResult>> {
    if let Some(d) = &o.out_dir {
        std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
    }
    let start = Instant::now();
    let mut attempts = vec![0u32; calls.len()];
    let mut answered: Vec<Option<usize>> = vec![None; calls.len()];
    let mut errors = vec![String::new(); calls.len()];
    let mut wrong = vec![false; calls.len()];
    loop {
        let pending: Vec<usize> = (0..calls.len())
            .filter(|&i| answered[i].is_none())
            .collect();
        if pending.is_empty() {
            break;
        }
        let subset: Vec<&NameCall> = pending.iter().map(|&i| &calls[i]).collect();
        let script = name_script(&subset, o.request_timeout);
        let mut cmd = tokio::process::Command::new(&by.docker);
        cmd.args([
            "run",
            "--rm",
            "--network",
            &by.network,
            &by.image,
            "sh",
            "-c",
            &script,
        ])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
        let limit = o.timeout
            + o.request_timeout * u32::try_from(subset.len()).unwrap_or(1)
            + Duration::from_secs(30);
        let docker_error = match tokio::time::timeout(limit, cmd.output()).await {
            Err(_) => Some(format!("no result within {}s", limit.as_secs())),
            // The CLI that cannot run will not run on the next attempt either.
            Ok(Err(source)) => {
                return Err(Error::Spawn {
                    program: by.docker.display().to_string(),
                    source,
                });
            }
            Ok(Ok(out)) if !out.status.success() => Some(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("failed")
                    .trim()
                    .to_string(),
            ),
            Ok(Ok(out)) => {
                for &i in &pending {
                    attempts[i] += 1;
                    errors[i] = "no answer (the call did not run)".into();
                    wrong[i] = false;
                }
                for (j, called, bytes) in parse_framed(&out.stdout) {
                    let Some(&i) = pending.get(j) else { continue };
                    wrong[i] = called == Called::Status;
                    if called == Called::Ok {
                        if let Some(d) = &o.out_dir {
                            let path =
                                d.join(format!("{}-{}.txt", calls[i].service, calls[i].kind));
                            std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
                        }
                        answered[i] = Some(bytes.len());
                    } else {
                        let text = String::from_utf8_lossy(&bytes);
                        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
                        errors[i] = if text.is_empty() {
                            "no answer".into()
                        } else {
                            text
                        };
                    }
                }
                None
            }
        };
        if answered.iter().all(Option::is_some) {
            break;
        }
        if start.elapsed() + o.interval >= o.timeout {
            if let Some(message) = docker_error {
                return Err(Error::External {
                    program: "docker".into(),
                    message: format!("run --network {} {}: {message}", by.network, by.image),
                });
            }
            let failed: Vec<(bool, String)> = (0..calls.len())
                .filter(|&i| answered[i].is_none())
                .map(|i| {
                    let c = &calls[i];
                    (
                        wrong[i],
                        format!(
                            "service {}: GET {} ({} check, by name on network {}) {}",
                            c.service, c.url, c.kind, by.network, errors[i]
                        ),
                    )
                })
                .collect();
            let wrong = failed.iter().any(|(w, _)| *w);
            let message = failed
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(if wrong {
                Error::Smoke(message)
            } else {
                Error::SmokeNoAnswer(message)
            });
        }
        if let Some(m) = &docker_error {
            tracing::info!(network = %by.network, "smoke by name: docker run failed: {m}; retrying");
        }
        tokio::time::sleep(o.interval).await;
    }
    Ok(calls
        .iter()
        .zip(answered)
        .zip(attempts)
        .map(|((c, bytes), attempts)| NameCallResult {
            service: c.service.clone(),
            kind: c.kind,
            url: c.url.clone(),
            bytes: bytes.unwrap_or_default(),
            attempts,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_checks_are_read_and_bad_ones_named() {
        let plan = serde_json::json!({"environment": "dev", "services": [
            {"name": "api", "smoke": null},
            {"name": "web", "smoke": {"path": "/", "url": "http://w.localhost:1/", "status": 200, "body": "status: ok"}}
        ]});
        let c = checks_from_plan(&plan, "plan.json").unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!((c[0].service.as_str(), c[0].status), ("web", 200));
        assert!(c[0].pattern.is_match("<p>status: ok</p>"));
        let no_host = serde_json::json!({"environment": "ci", "services": [
            {"name": "web", "smoke": {"path": "/", "url": null, "status": 200, "body": "x"}}]});
        let e = checks_from_plan(&no_host, "plan.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("plan.json: services[0].smoke.url") && e.contains("`ci` has no host"),
            "{e}"
        );
        let bad = serde_json::json!({"services": [
            {"name": "web", "smoke": {"url": "http://x/", "status": 200, "body": "(x"}}]});
        let e = checks_from_plan(&bad, "p").unwrap_err().to_string();
        assert!(
            e.contains("services[0].smoke.body") && e.contains("unclosed group"),
            "{e}"
        );
    }

    #[test]
    fn calls_by_name_come_from_health_and_ingress() {
        let plan = serde_json::json!({"services": [
            {"name": "api", "health": {"port": 8080, "path": "/healthz"}, "ingress": {"port": 8080, "path": "/cgi-bin/"}},
            {"name": "worker", "health": null, "ingress": null},
            {"name": "web", "ingress": {"port": 80, "path": "/"}}
        ]});
        let calls = name_calls_from_plan(&plan, "plan.json").unwrap();
        let got: Vec<(&str, &str, &str)> = calls
            .iter()
            .map(|c| (c.service.as_str(), c.kind, c.url.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("api", "health", "http://api:8080/healthz"),
                ("api", "ingress", "http://api:8080/cgi-bin/"),
                ("web", "ingress", "http://web:80/")
            ]
        );
        let bad = serde_json::json!({"services": [{"name": "web", "ingress": {"port": 80, "path": "x y"}}]});
        let e = name_calls_from_plan(&bad, "p").unwrap_err().to_string();
        assert!(e.contains("p: services[0].ingress.path"), "{e}");
    }

    #[test]
    fn framed_answers_keep_any_bytes() {
        let out = b"=== 0 ok 8\nab\n=== x=== 1 failed 9\nwget: bad=== 1 ok 0\n=== 2 status 1\nx";
        let f = parse_framed(out);
        assert_eq!(f.len(), 4);
        assert_eq!(f[0], (0, Called::Ok, b"ab\n=== x".to_vec()));
        assert_eq!(f[1], (1, Called::Failed, b"wget: bad".to_vec()));
        assert_eq!(f[2], (1, Called::Ok, Vec::new()));
        assert_eq!(f[3], (2, Called::Status, b"x".to_vec()));
        assert!(parse_framed(b"=== 0 ok 99\nshort").is_empty());
        let c = NameCall {
            service: "web".into(),
            kind: "ingress",
            url: "http://web:80/it's".into(),
        };
        let script = name_script(&[&c], Duration::from_millis(10));
        assert!(
            script.contains("timeout 1 wget -S -q -O b0 'http://web:80/it'\\''s'"),
            "{script}"
        );
    }

    /// A directory of busybox applets the by-name script needs, or `None` where busybox is not installed.
    fn busybox_bin() -> Option<tempfile::TempDir> {
        let busybox = std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("busybox"))
                .find(|b| b.is_file())
        })?;
        let bin = tempfile::tempdir().unwrap();
        for applet in ["sh", "wget", "timeout", "grep", "mktemp", "wc", "cat", "rm"] {
            std::os::unix::fs::symlink(&busybox, bin.path().join(applet)).unwrap();
        }
        Some(bin)
    }

    /// A tiny HTTP server on a free port answering two requests: `GET /ok` with 200 and `hi`, anything
    /// else with 404. Its port.
    fn serve_ok_then_404() -> u16 {
        use std::io::{Read as _, Write as _};
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in server.incoming().take(2) {
                let mut conn = conn.unwrap();
                let mut req = [0u8; 1024];
                let n = conn.read(&mut req).unwrap();
                let ok = String::from_utf8_lossy(&req[..n]).starts_with("GET /ok ");
                let answer = if ok {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                conn.write_all(answer.as_bytes()).unwrap();
            }
        });
        port
    }

    /// A port nothing listens on.
    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn web_call(path: &str, port: u16) -> NameCall {
        NameCall {
            service: "web".into(),
            kind: "ingress",
            url: format!("http://127.0.0.1:{port}{path}"),
        }
    }

    /// The script in busybox (as in the container): a 404 is a wrong answer with wget's message, a closed port
    /// no answer. Skipped where busybox is not installed.
    #[test]
    fn the_by_name_script_tells_a_wrong_answer_from_none_by_the_status_line() {
        let Some(bin) = busybox_bin() else {
            eprintln!("busybox not installed: skipped");
            return;
        };
        let port = serve_ok_then_404();
        let calls = [
            web_call("/ok", port),
            web_call("/missing", port),
            web_call("/", closed_port()),
        ];
        let script = name_script(&calls.iter().collect::<Vec<_>>(), Duration::from_secs(5));
        let scratch = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(bin.path().join("sh"))
            .args(["-c", &script])
            .env("PATH", bin.path())
            .env("TMPDIR", scratch.path())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            std::fs::read_dir(scratch.path()).unwrap().count(),
            0,
            "the script's scratch directory is removed"
        );
        let frames = parse_framed(&out.stdout);
        let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string();
        assert_eq!(frames.len(), 3, "{}", text(&out.stdout));
        assert_eq!((frames[0].1, text(&frames[0].2)), (Called::Ok, "hi".into()));
        assert_eq!(frames[1].1, Called::Status);
        assert_eq!(
            text(&frames[1].2),
            "wget: server returned error: HTTP/1.1 404 Not Found"
        );
        assert_eq!(frames[2].1, Called::Failed);
        assert!(
            text(&frames[2].2).starts_with("wget: "),
            "{}",
            text(&frames[2].2)
        );
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(
            excerpt("<!doctype html>\n<p id=\"s\">\n  status:   degraded\n</p>\n"),
            "status: degraded"
        );
        assert_eq!(excerpt("{\"a\": 1,\n \"b\": 2}"), "{\"a\": 1, \"b\": 2}");
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), 301);
    }
}
