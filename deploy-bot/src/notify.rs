//! `deploy-bot notify`: tell an agent that the cluster repo's branch moved (a GitHub-format, HMAC-SHA256-signed push webhook, the secret read from a file or the environment, never argv), and optionally wait until a swarm stack runs the pinned images.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::webhook::sign;

/// What to send.
#[derive(Debug, Clone)]
pub struct NotifyOptions {
    /// The agent's base URL (`http://127.0.0.1:3016`).
    pub agent_url: String,
    /// The webhook path on the agent.
    pub path: String,
    /// The cluster repo URL (the payload's `repository.clone_url`).
    pub repo: String,
    /// The branch that moved.
    pub branch: String,
    /// The commit it moved to.
    pub commit: String,
    /// The webhook secret.
    pub secret: Vec<u8>,
    /// HTTP timeout.
    pub timeout: Duration,
}

/// The push payload GitHub sends for `branch` moving to `commit` in `repo`.
pub fn push_payload(repo: &str, branch: &str, commit: &str) -> serde_json::Value {
    let name = repo
        .trim_end_matches('/')
        .trim_end_matches(".git")
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("cluster")
        .to_string();
    serde_json::json!({
        "ref": format!("refs/heads/{branch}"),
        "before": "0".repeat(40),
        "after": commit,
        "repository": {
            "name": name,
            "full_name": format!("local/{name}"),
            "clone_url": repo,
            "git_url": repo,
            "ssh_url": repo,
            "html_url": repo,
            "url": repo,
            "default_branch": branch,
        },
        "head_commit": {"id": commit},
        "pusher": {"name": "deploy-bot"},
    })
}

/// The result printed on stdout.
#[derive(Debug, Clone, Serialize)]
pub struct NotifyResult {
    /// Always 1.
    pub schema_version: u32,
    /// Whether a webhook was sent (not when `--if-needed` found the stack applied).
    pub sent: bool,
    /// The `X-GitHub-Delivery` id, when sent.
    pub delivery: Option<String>,
    /// The agent's HTTP status, when sent.
    pub status: Option<u16>,
    /// The commit announced.
    pub commit: String,
    /// With `--wait`: whether the stack runs the pinned images.
    pub applied: Option<bool>,
    /// With `--compose`: service -> the image it must run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<std::collections::BTreeMap<String, String>>,
    /// Seconds spent, in total.
    pub seconds: f64,
}

/// Send the signed push webhook; returns the delivery id and the HTTP status (2xx, else an error).
pub async fn send(o: &NotifyOptions) -> Result<(String, u16)> {
    let body = serde_json::to_vec(&push_payload(&o.repo, &o.branch, &o.commit))
        .map_err(|e| Error::setup("webhook payload", e))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut h = sha2::Sha256::new();
    h.update(&body);
    h.update(nanos.to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let delivery = hex::encode(&h.finalize()[..16]);
    let url = format!(
        "{}/{}",
        o.agent_url.trim_end_matches('/'),
        o.path.trim_start_matches('/')
    );
    let client = microplatform_common::http::client_builder()
        .timeout(o.timeout)
        .build()
        .map_err(|e| Error::setup("http client", e))?;
    let resp = client
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", &delivery)
        .header("X-Hub-Signature-256", sign(&o.secret, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| Error::http(url.as_str(), e, ""))?;
    let status = resp.status().as_u16();
    if !resp.status().is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(Error::Api {
            url,
            status,
            message: text.trim().chars().take(300).collect(),
        });
    }
    Ok((delivery, status))
}

/// A service of a stack and what it must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The service name in the compose file.
    pub name: String,
    /// The image reference (pinned).
    pub image: String,
    /// Replicas (default 1).
    pub replicas: u64,
}

/// The services of a compose file with their images and replicas.
pub fn expected(compose: &Path) -> Result<Vec<Expected>> {
    let text = std::fs::read_to_string(compose).map_err(|e| Error::io(compose, e))?;
    let docs = crate::manifests::parse_documents(&text, &compose.display().to_string())?;
    let services = docs
        .first()
        .and_then(|d| d.get("services"))
        .and_then(serde_json::Value::as_object)
        .ok_or_else(|| Error::Input {
            path: compose.display().to_string(),
            message: "no `services` mapping".into(),
        })?;
    let mut out = Vec::new();
    for (k, v) in services {
        let name = k.clone();
        let image = v
            .get("image")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Error::Input {
                path: compose.display().to_string(),
                message: format!("services.{name}.image: missing"),
            })?
            .to_string();
        let replicas = v
            .get("deploy")
            .and_then(|d| d.get("replicas"))
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1);
        out.push(Expected {
            name,
            image,
            replicas,
        });
    }
    Ok(out)
}

/// How a swarm stack compares with what it must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StackState {
    /// Every service runs its image with all replicas.
    Applied,
    /// Not yet (the reason, for logs).
    Pending(String),
}

/// The docker CLI's stdout; a failure is its stderr (or why it could not run).
async fn docker(docker: &Path, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(docker)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| Error::Spawn {
            program: docker.display().to_string(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(Error::External {
            program: "docker".into(),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Check a swarm stack `namespace` against the expected services (the docker
/// CLI, as the swarm applier uses it). A failed update is an error.
pub async fn stack_state(
    docker_cli: &Path,
    namespace: &str,
    services: &[Expected],
) -> Result<StackState> {
    for s in services {
        let full = format!("{namespace}_{}", s.name);
        let Ok(fmt) = docker(
            docker_cli,
            &[
                "service",
                "inspect",
                &full,
                "--format",
                "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            ],
        )
        .await
        else {
            return Ok(StackState::Pending(format!("{full}: no such service yet")));
        };
        let mut words = fmt.split_whitespace();
        let image = words.next().unwrap_or_default();
        let update = words.next().unwrap_or_default();
        if image != s.image {
            return Ok(StackState::Pending(format!("{full} runs {image}")));
        }
        match update {
            "updating" | "rollback_started" => {
                return Ok(StackState::Pending(format!("{full}: {update}")));
            }
            "rollback_completed" | "paused" | "rollback_paused" => {
                return Err(Error::External {
                    program: "docker".into(),
                    message: format!(
                        "the update of {full} ended {update} (docker service ps {full})"
                    ),
                });
            }
            _ => {}
        }
        // Every task: the ones meant to run must run the pinned image, and the ones an update
        // replaced (desired state shutdown) must have stopped. A start-first update completes
        // while the old task still serves; until it stops, callers (the smoke step) could still
        // reach it.
        let ps = docker(
            docker_cli,
            &[
                "service",
                "ps",
                &full,
                "--no-trunc",
                "--format",
                "{{.DesiredState}}\t{{.CurrentState}}\t{{.Image}}",
            ],
        )
        .await
        .unwrap_or_default();
        let (mut running, mut stale) = (0u64, 0u64);
        for line in ps.lines() {
            let mut f = line.split('\t');
            let (desired, current, image) = (
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default(),
                f.next().unwrap_or_default(),
            );
            if !current.starts_with("Running") {
                continue;
            }
            if desired == "Running" && image == s.image {
                running += 1;
            } else {
                stale += 1;
            }
        }
        if running != s.replicas {
            return Ok(StackState::Pending(format!(
                "{full}: {running}/{} running",
                s.replicas
            )));
        }
        if stale > 0 {
            return Ok(StackState::Pending(format!(
                "{full}: {stale} replaced task(s) still running"
            )));
        }
    }
    Ok(StackState::Applied)
}

/// What `--wait` watches.
#[derive(Debug, Clone)]
pub struct Watch {
    /// The docker CLI.
    pub docker: PathBuf,
    /// The stack name.
    pub namespace: String,
    /// The expected services.
    pub services: Vec<Expected>,
}

/// Wait until the stack runs the expected images, until `deadline` (`timeout`, the whole wait, is named in the error).
pub async fn wait_applied(w: &Watch, deadline: Instant, timeout: Duration) -> Result<()> {
    loop {
        match stack_state(&w.docker, &w.namespace, &w.services).await? {
            StackState::Applied => return Ok(()),
            StackState::Pending(why) => {
                if Instant::now() >= deadline {
                    return Err(Error::External {
                        program: "docker".into(),
                        message: format!(
                            "stack {} not applied within {}s: {why}",
                            w.namespace,
                            timeout.as_secs()
                        ),
                    });
                }
                tracing::debug!("waiting: {why}");
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The services of swarm stack `namespace` (their names), from the docker CLI.
pub async fn stack_services(docker_cli: &Path, namespace: &str) -> Result<Vec<String>> {
    let out = docker(
        docker_cli,
        &[
            "service",
            "ls",
            "--filter",
            &format!("label=com.docker.stack.namespace={namespace}"),
            "--format",
            "{{.Name}}",
        ],
    )
    .await?;
    Ok(out.lines().map(str::to_string).collect())
}

/// Wait until swarm stack `namespace` has no services (it was torn down), until `deadline` (`timeout` is named in the error).
pub async fn wait_removed(
    docker_cli: &Path,
    namespace: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<()> {
    loop {
        let left = stack_services(docker_cli, namespace).await?;
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::External {
                program: "docker".into(),
                message: format!(
                    "stack {namespace} still has services after {}s: {}",
                    timeout.as_secs(),
                    left.join(", ")
                ),
            });
        }
        tracing::debug!("waiting for {} to go", left.join(", "));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_a_push_of_the_branch() {
        let p = push_payload("file:///tmp/state/cluster.git", "main", "abc");
        assert_eq!(p["ref"], "refs/heads/main");
        assert_eq!(p["after"], "abc");
        assert_eq!(p["repository"]["name"], "cluster");
        assert_eq!(
            p["repository"]["clone_url"],
            "file:///tmp/state/cluster.git"
        );
        let parsed: crate::webhook::PushEvent = serde_json::from_value(p).unwrap();
        assert_eq!(parsed.after, "abc");
    }
}

/// A whole `deploy-bot notify`: what to send, and what to wait for.
#[derive(Debug, Clone)]
pub struct NotifyRun {
    /// The webhook.
    pub send: NotifyOptions,
    /// Wait at most this long until the stack runs the images of `compose` (or, with `removed`, has no services).
    pub wait: Option<Duration>,
    /// The compose file whose services and images the stack must run.
    pub compose: Option<PathBuf>,
    /// The namespace was torn down: wait until the stack has no services.
    pub removed: bool,
    /// The swarm stack name.
    pub namespace: Option<String>,
    /// Send nothing when the stack already is as wanted (needs `wait`).
    pub if_needed: bool,
    /// The docker CLI.
    pub docker: PathBuf,
}

/// Send the webhook (unless `if_needed` finds nothing to do), then wait as asked.
///
/// # Errors
///
/// A bad namespace, `wait` without `compose` or `removed` (usage), an unreadable compose file, the agent's
/// refusal, or a stack that does not get there in time.
pub async fn run(r: &NotifyRun) -> Result<NotifyResult> {
    let start = Instant::now();
    if let Some(ns) = &r.namespace {
        crate::names::check_namespace(ns)?;
    }
    if r.wait.is_some() && r.compose.is_none() && !r.removed {
        return Err(Error::Usage(
            "--wait needs --compose FILE (the images the stack must run) or --removed".into(),
        ));
    }
    let expected = r.compose.as_deref().map(expected).transpose()?;
    let watch = match (&expected, &r.namespace) {
        (Some(services), Some(ns)) if r.wait.is_some() => Some(Watch {
            docker: r.docker.clone(),
            namespace: ns.clone(),
            services: services.clone(),
        }),
        _ => None,
    };
    let mut result = NotifyResult {
        schema_version: 1,
        sent: false,
        delivery: None,
        status: None,
        commit: r.send.commit.clone(),
        applied: None,
        images: expected.map(|e| e.into_iter().map(|e| (e.name, e.image)).collect()),
        seconds: 0.0,
    };
    let already = match (&watch, &r.namespace, r.if_needed) {
        (Some(w), _, true) => {
            stack_state(&w.docker, &w.namespace, &w.services).await? == StackState::Applied
        }
        (None, Some(ns), true) if r.removed => stack_services(&r.docker, ns).await?.is_empty(),
        _ => false,
    };
    if already {
        result.applied = Some(true);
    } else {
        let (delivery, status) = send(&r.send).await?;
        result.sent = true;
        result.delivery = Some(delivery);
        result.status = Some(status);
        if let (Some(ns), Some(wait)) = (&r.namespace, r.wait) {
            // First the agent must have applied this commit (its `GET /namespaces/NS`): a change
            // that keeps every image (an environment variable) would otherwise look applied
            // before the agent even ran `docker stack deploy`. Then the stack must converge.
            let deadline = Instant::now() + wait;
            crate::status::status(&crate::status::StatusOptions {
                agent_url: r.send.agent_url.clone(),
                namespace: ns.clone(),
                commit: Some(r.send.commit.clone()),
                wait: Some(wait),
                interval: Duration::from_millis(200),
            })
            .await?;
            if let Some(w) = &watch {
                wait_applied(w, deadline, wait).await?;
                result.applied = Some(true);
            } else if r.removed {
                wait_removed(&r.docker, ns, deadline, wait).await?;
                result.applied = Some(true);
            }
        }
    }
    result.seconds = (start.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok(result)
}
