//! `deploy-bot status`: ask the agent where a namespace stands against a cluster-repo commit, and wait until it has applied it.
//!
//! The agent answers `GET /namespaces/{ns}?commit=SHA` from its own clone
//! ([`crate::agent::NamespaceStatus`]). This is how a CI step that cannot see
//! the cluster (an Argo step: the push webhook reached the agent from the
//! forge) knows the environment runs what it committed, before it smoke-tests it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::agent::NamespaceStatus;
use crate::error::{Error, Result};
use crate::names::check_namespace;

/// What to ask.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// The agent's base URL (`http://127.0.0.1:3016`).
    pub agent_url: String,
    /// The namespace.
    pub namespace: String,
    /// The cluster-repo commit (default: the agent's branch head).
    pub commit: Option<String>,
    /// Poll until `applied` (or `removed`) for at most this long; a rejected tree fails at once.
    pub wait: Option<Duration>,
    /// Time between polls.
    pub interval: Duration,
}

/// The commit a `deploy-bot request` result (`request.json`) put on the cluster branch: its `commit` for
/// `--direct`; none for an unchanged request (the branch head already holds it). A request that opened a
/// pull request is refused: its commit is on a deploy branch, applied only once merged.
pub fn commit_of_request(path: &Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.display().to_string(),
        what: "not JSON".into(),
        source,
    })?;
    if v["unchanged"].as_bool() == Some(true) {
        return Ok(None);
    }
    let commit = v["commit"].as_str().ok_or_else(|| Error::Input {
        path: path.display().to_string(),
        message: "commit: missing (expected deploy-bot request's JSON)".into(),
    })?;
    let branch = v["branch"].as_str().unwrap_or_default();
    if branch.starts_with("deploy/") {
        return Err(Error::Usage(format!(
            "{}: the request pushed the deploy branch {branch} (a pull request): it is applied once merged; \
             wait on the merge commit with --commit",
            path.display()
        )));
    }
    Ok(Some(commit.to_string()))
}

async fn ask(client: &reqwest::Client, o: &StatusOptions) -> Result<NamespaceStatus> {
    let mut url =
        reqwest::Url::parse(o.agent_url.trim_end_matches('/')).map_err(|source| Error::Url {
            option: "--agent-url",
            value: o.agent_url.clone(),
            source,
        })?;
    url.path_segments_mut()
        .map_err(|()| Error::Usage(format!("--agent-url {}: not an http URL", o.agent_url)))?
        .pop_if_empty()
        .extend(["namespaces", &o.namespace]);
    if let Some(c) = &o.commit {
        url.query_pairs_mut().append_pair("commit", c);
    }
    let network = |message: String| Error::Network {
        url: url.to_string(),
        message,
    };
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| Error::http(url.as_str(), e, " (is the agent running at --agent-url?)"))?;
    let status = resp.status();
    let body = resp
        .text()
        .await
        .map_err(|e| Error::http(url.as_str(), e, ""))?;
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(network(
            "HTTP 404: this agent has no /namespaces endpoint (upgrade deploy-bot agent)".into(),
        ));
    }
    if !status.is_success() {
        return Err(network(format!("HTTP {status}: {}", body.trim())));
    }
    serde_json::from_str(&body).map_err(|source| Error::Answer {
        url: url.to_string(),
        what: "unexpected answer".into(),
        source,
    })
}

/// Ask once, or with `wait`, until the namespace runs the commit's tree.
pub async fn status(o: &StatusOptions) -> Result<NamespaceStatus> {
    check_namespace(&o.namespace)?;
    let client = microplatform_common::http::client_builder()
        .timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
        .map_err(|e| Error::setup("http client", e))?;
    let Some(wait) = o.wait else {
        return ask(&client, o).await;
    };
    let deadline = Instant::now() + wait;
    loop {
        let s = ask(&client, o).await?;
        match s.state.as_str() {
            "applied" | "removed" => return Ok(s),
            "rejected" => {
                return Err(Error::Validation(format!(
                    "namespace {}: the agent rejected tree {} of commit {}: {}",
                    s.namespace,
                    s.tree.as_deref().unwrap_or("?"),
                    s.commit.as_deref().unwrap_or("?"),
                    s.reason.as_deref().unwrap_or("no reason given")
                )));
            }
            _ if Instant::now() >= deadline => {
                return Err(Error::Network {
                    url: o.agent_url.clone(),
                    message: format!(
                        "namespace {} not applied within {}s: the agent {} (applied now: {})",
                        s.namespace,
                        wait.as_secs(),
                        if s.tree.is_some() {
                            "has the commit but has not applied its tree yet"
                        } else {
                            "has not fetched the commit yet (did the cluster repo's push webhook reach it?)"
                        },
                        s.applied.as_ref().map_or("nothing", |a| a.commit.as_str())
                    ),
                });
            }
            _ => tracing::debug!(state = %s.state, "waiting for the agent"),
        }
        tokio::time::sleep(o.interval).await;
    }
}
