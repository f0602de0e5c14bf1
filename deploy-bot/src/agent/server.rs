//! The agent's HTTP side: webhook intake (signature, repository and event checks, the durable queue), health, readiness, metrics and namespace status.

use super::*;

impl Agent {
    /// The payload is for the watched repo: its `full_name` is our `OWNER/NAME`, or one of its URLs is `--repo`.
    pub(super) fn repo_matches(&self, repo: &Repository) -> bool {
        if let (Some(id), Some(full)) = (&self.cfg.repo_id, &repo.full_name)
            && full.eq_ignore_ascii_case(&id.to_string())
        {
            return true;
        }
        [
            &repo.clone_url,
            &repo.ssh_url,
            &repo.git_url,
            &repo.html_url,
        ]
        .into_iter()
        .flatten()
        .any(|u| normalize_repo_url(u) == self.repo_url_norm)
    }

    pub(super) async fn accept(&self, delivery: &str, job: Job) -> (StatusCode, serde_json::Value) {
        match self.queue.enqueue(delivery, job).await {
            Ok(Enqueued::Queued(seq)) => {
                self.metrics.webhook("queued");
                (StatusCode::ACCEPTED, json!({"queued": seq}))
            }
            Ok(Enqueued::Duplicate) => {
                self.metrics.webhook("duplicate");
                (StatusCode::OK, json!({"duplicate": true}))
            }
            Err(e) => {
                self.metrics.webhook("error");
                tracing::error!("cannot queue delivery {delivery}: {e}");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"error": "queue unavailable"}),
                )
            }
        }
    }

    pub(super) fn ignored(&self, reason: &str) -> (StatusCode, serde_json::Value) {
        self.metrics.webhook("ignored");
        (StatusCode::ACCEPTED, json!({"ignored": reason}))
    }

    pub(super) async fn handle(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> (StatusCode, serde_json::Value) {
        let sig = headers
            .get("x-hub-signature-256")
            .and_then(|v| v.to_str().ok());
        if !verify_signature(&self.cfg.secret, body, sig) {
            self.metrics.webhook("unauthorized");
            return (
                StatusCode::UNAUTHORIZED,
                json!({"error": "missing or invalid X-Hub-Signature-256"}),
            );
        }
        let event = headers
            .get("x-github-event")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(delivery) = headers
            .get("x-github-delivery")
            .and_then(|v| v.to_str().ok())
            .filter(|d| !d.is_empty() && d.len() <= 128)
        else {
            self.metrics.webhook("bad_request");
            return (
                StatusCode::BAD_REQUEST,
                json!({"error": "missing X-GitHub-Delivery"}),
            );
        };
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        // GitHub's default content type: the JSON is the form field `payload` (the signature covers the raw form body).
        let form_payload;
        let body: &[u8] = if content_type == "application/x-www-form-urlencoded" {
            let Some((_, v)) = url::form_urlencoded::parse(body).find(|(k, _)| k == "payload")
            else {
                self.metrics.webhook("bad_request");
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"error": "form-encoded body without a `payload` field"}),
                );
            };
            form_payload = v.into_owned();
            form_payload.as_bytes()
        } else {
            body
        };
        let bad = |e: serde_json::Error| {
            self.metrics.webhook("bad_request");
            (
                StatusCode::BAD_REQUEST,
                json!({"error": format!("malformed {event} payload: {e}")}),
            )
        };
        match event {
            "ping" => {
                self.metrics.webhook("ping");
                (StatusCode::OK, json!({"pong": true}))
            }
            "push" => {
                let ev: PushEvent = match serde_json::from_slice(body) {
                    Ok(e) => e,
                    Err(e) => return bad(e),
                };
                if !self.repo_matches(&ev.repository) {
                    return self.ignored("another repository");
                }
                if ev.git_ref != format!("refs/heads/{}", self.cfg.branch) {
                    return self.ignored("another branch");
                }
                if ev.after.bytes().all(|b| b == b'0') {
                    return self.ignored("branch deleted");
                }
                if self.queue.is_duplicate(delivery) {
                    self.metrics.webhook("duplicate");
                    return (StatusCode::OK, json!({"duplicate": true}));
                }
                let pr = ev
                    .head_commit
                    .as_ref()
                    .and_then(|c| merged_pull_request(&c.message));
                self.accept(
                    delivery,
                    Job::Push {
                        after: ev.after,
                        pull_request: pr,
                    },
                )
                .await
            }
            "pull_request" => {
                let ev: PullRequestEvent = match serde_json::from_slice(body) {
                    Ok(e) => e,
                    Err(e) => return bad(e),
                };
                if !self.repo_matches(&ev.repository) {
                    return self.ignored("another repository");
                }
                if ev.pull_request.base.git_ref != self.cfg.branch {
                    return self.ignored("pull request for another branch");
                }
                if !matches!(
                    ev.action.as_str(),
                    "opened" | "synchronize" | "reopened" | "closed"
                ) {
                    return self.ignored("pull request action not handled");
                }
                self.accept(
                    delivery,
                    Job::PullRequest {
                        action: ev.action,
                        number: ev.number,
                        head_sha: ev.pull_request.head.sha,
                        head_ref: ev.pull_request.head.git_ref,
                        base_ref: ev.pull_request.base.git_ref,
                    },
                )
                .await
            }
            _ => {
                self.metrics.webhook("unsupported");
                (
                    StatusCode::ACCEPTED,
                    json!({"ignored": format!("event {event:?} not handled")}),
                )
            }
        }
    }
}

pub(super) async fn webhook(
    State(agent): State<Arc<Agent>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let event = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let delivery = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .take(128)
        .collect::<String>();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (status, value) = if declared.is_some_and(|n| n > MAX_BODY as u64) {
        agent.metrics.webhook("too_large");
        // Read (and drop) what the client is still sending, so it gets the
        // 413 instead of a broken pipe; bounded in size and time.
        discard(body, 2 * MAX_BODY, agent.cfg.body_timeout).await;
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": format!("body larger than {MAX_BODY} bytes")}),
        )
    } else {
        match tokio::time::timeout(agent.cfg.body_timeout, read_limited(body, MAX_BODY)).await {
            Err(_) => {
                agent.metrics.webhook("timeout");
                (
                    StatusCode::REQUEST_TIMEOUT,
                    json!({"error": format!("body not received within {:?}", agent.cfg.body_timeout)}),
                )
            }
            Ok(Ok(None)) => {
                agent.metrics.webhook("too_large");
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    json!({"error": format!("body larger than {MAX_BODY} bytes")}),
                )
            }
            Ok(Err(e)) => {
                agent.metrics.webhook("bad_request");
                (
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("reading the body: {e}")}),
                )
            }
            Ok(Ok(Some(body))) => agent.handle(&headers, &body).await,
        }
    };
    if status.is_success() {
        tracing::info!(delivery = %delivery, event = %event, status = status.as_u16(), "delivery: {value}");
    } else {
        tracing::warn!(delivery = %delivery, event = %event, status = status.as_u16(), "delivery refused: {value}");
    }
    (status, axum::Json(value)).into_response()
}

/// Drain a refused request body without keeping it: stops after `limit`
/// bytes, at the end of the body, on an error, or when `timeout` passes.
/// The body, or `None` once it is longer than `limit` (the rest is not read).
async fn read_limited(
    body: axum::body::Body,
    limit: usize,
) -> Result<Option<Vec<u8>>, axum::Error> {
    use futures::StreamExt as _;
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf))
}

pub(super) async fn discard(body: axum::body::Body, limit: usize, timeout: Duration) {
    use futures::StreamExt as _;
    let mut stream = body.into_data_stream();
    let drain = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, drain).await;
}

pub(super) async fn readyz(State(agent): State<Arc<Agent>>) -> Response {
    if agent.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: the cluster repo has not been fetched yet\n",
        )
            .into_response()
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct StatusQuery {
    commit: Option<String>,
}

pub(super) async fn namespace_status(
    State(agent): State<Arc<Agent>>,
    axum::extract::Path(ns): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<StatusQuery>,
) -> Response {
    if !is_namespace(&ns) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("{ns:?} is not a namespace name (a DNS label)")})),
        )
            .into_response();
    }
    if let Some(c) = &q.commit
        && (c.len() < 4 || c.len() > 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("commit {c:?}: expected a hexadecimal commit id")})),
        )
            .into_response();
    }
    match agent.namespace_status(&ns, q.commit.as_deref()).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": agent.scrub(&e.to_string())})),
        )
            .into_response(),
    }
}

pub(super) async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        agent.metrics.render(
            agent.queue.depth(),
            agent.ready.load(Ordering::Relaxed),
            &agent.server_stats,
        ),
    )
        .into_response()
}

pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
