//! `deploy-bot smoke`: after a deploy, ask every service at the environment's URL and check what it answers,
//! not only that it answers.
//!
//! The checks come from stackgen's plan (`services[].smoke`: `url`, `status`, `body`, a regular expression). Every
//! check is retried until it passes or the deadline passes (a service may still be converging); the last answer
//! decides the error: a wrong status or a body that does not match is a failed check (exit 1) naming the service,
//! the URL and the body; no answer at all is a network failure (exit 6).

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

/// The checks of a plan (stackgen's JSON): every service with a `smoke`. `source` names the plan in errors.
pub fn checks_from_plan(plan: &serde_json::Value, source: &str) -> Result<Vec<Check>> {
    let input = |message: String| Error::Input {
        path: source.to_string(),
        message,
    };
    let services = plan["services"].as_array().ok_or_else(|| {
        input("`services` is not a list (is this `stackgen plan` output?)".into())
    })?;
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
            .map_err(|e| {
                input(format!(
                    "services[{i}].smoke.body: `{body}` is not a regular expression: {}",
                    e.to_string().lines().last().unwrap_or_default().trim()
                ))
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

/// One check, retried until it passes or the deadline.
async fn check(
    client: &reqwest::Client,
    c: &Check,
    o: &SmokeOptions,
    start: Instant,
) -> Result<CheckResult, (bool, String)> {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = attempt(client, c).await;
        let (wrong, message, body) = match outcome {
            Outcome::Pass(status, body) => {
                write_body(o.out_dir.as_deref(), &c.service, &body)
                    .map_err(|e| (false, e.to_string()))?;
                return Ok(CheckResult {
                    service: c.service.clone(),
                    url: c.url.clone(),
                    status,
                    body: c.body.clone(),
                    attempts,
                    seconds: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                });
            }
            Outcome::Wrong(m, body) => (true, m, Some(body)),
            Outcome::NoAnswer(m) => (false, m, None),
        };
        if start.elapsed() + o.interval >= o.timeout {
            if let Some(b) = body {
                write_body(o.out_dir.as_deref(), &c.service, &b)
                    .map_err(|e| (false, e.to_string()))?;
            }
            tracing::debug!(service = %c.service, url = %c.url, attempts, "smoke check failed");
            return Err((
                wrong,
                format!("service {}: GET {} {message}", c.service, c.url),
            ));
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
        .map_err(|e| Error::Internal(format!("http client: {e}")))?;
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
        match r {
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
        checks: passed,
        seconds: (start.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
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
    fn excerpts_are_one_short_line() {
        assert_eq!(
            excerpt("<!doctype html>\n<p id=\"s\">\n  status:   degraded\n</p>\n"),
            "status: degraded"
        );
        assert_eq!(excerpt("{\"a\": 1,\n \"b\": 2}"), "{\"a\": 1, \"b\": 2}");
        assert_eq!(excerpt(&"x".repeat(500)).chars().count(), 301);
    }
}
