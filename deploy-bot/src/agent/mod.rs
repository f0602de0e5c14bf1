//! `deploy-bot agent`: the webhook server, the worker that drains the durable queue, the reconcile loop, per-namespace serialised applies, and status reports to the forge.

mod previews;
mod server;
mod state;

pub use state::{Applied, NamespaceStatus, Rejected};

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::apply::{Applier, Prepared};
use crate::error::{Error, Result};
use crate::git::Git;
use crate::github::{GitHub, RepoId};
use crate::metrics::Metrics;
use crate::names::is_namespace;
use crate::queue::{Enqueued, Job, Queue};
use crate::validate::{Policy, validate_kube, validate_stack};
use crate::webhook::{
    MAX_BODY, PullRequestEvent, PushEvent, Repository, merged_pull_request, normalize_repo_url,
    verify_signature,
};

/// Everything the agent is configured with.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The cluster repo URL.
    pub repo: String,
    /// The watched branch.
    pub branch: String,
    /// Where the clone, queue and applied state live.
    pub state_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Webhook path.
    pub path: String,
    /// Reconcile interval.
    pub poll_interval: Duration,
    /// The applier.
    pub applier: Applier,
    /// The webhook secret.
    pub secret: Vec<u8>,
    /// Validation policy.
    pub policy: Policy,
    /// Namespaces managed (empty = every top-level directory that is a DNS label).
    pub namespaces: Vec<String>,
    /// `owner/name` the webhooks must be for.
    pub repo_id: Option<RepoId>,
    /// Forge for statuses and comments.
    pub github: Option<GitHub>,
    /// Environment URL template (`{namespace}` replaced).
    pub environment_url: Option<String>,
    /// Apply pull requests to preview namespaces `<NS>-pr-<N>`.
    pub preview: bool,
    /// Tear preview environments down when the pull request closes.
    pub teardown_on_close: bool,
    /// Repair drift: on the reconcile timer, compare the live state with the repo and apply again when they differ.
    pub self_heal: bool,
    /// How often one namespace is checked for drift (`None`: on every reconcile).
    pub self_heal_interval: Option<Duration>,
    /// Connection limits of the HTTP server.
    pub limits: crate::server::Limits,
    /// Time allowed for a request body to arrive.
    pub body_timeout: Duration,
}

impl AgentConfig {
    /// Refuse a configuration the agent cannot run with ([`check_settings`]).
    pub fn check(&self) -> Result<()> {
        check_settings(&self.secret, &self.namespaces, &self.path)
    }
}

/// Refuse settings the agent cannot run with, before anything reaches the network: no webhook
/// secret, a managed namespace that is not a DNS label, a webhook path not starting with `/`.
pub fn check_settings(secret: &[u8], namespaces: &[String], path: &str) -> Result<()> {
    if secret.is_empty() {
        return Err(Error::Usage(
            "no webhook secret: set DEPLOY_BOT_WEBHOOK_SECRET or --secret-file (the agent refuses to run without one)".into(),
        ));
    }
    for ns in namespaces {
        crate::names::check_namespace(ns)?;
    }
    if !path.starts_with('/') {
        return Err(Error::Usage(format!(
            "--path {path:?}: must start with '/'"
        )));
    }
    Ok(())
}

/// The running agent.
pub struct Agent {
    cfg: AgentConfig,
    queue: Queue,
    metrics: Metrics,
    ready: AtomicBool,
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    fetch_lock: tokio::sync::Mutex<()>,
    /// Namespaces whose apply failed: (tree, attempts, not before), for exponential backoff.
    backoff: std::sync::Mutex<HashMap<String, (String, u32, std::time::Instant)>>,
    git: Git,
    repo_url_norm: String,
    /// When each namespace was last checked for drift.
    healed: std::sync::Mutex<HashMap<String, std::time::Instant>>,
    server_stats: Arc<crate::server::ServerStats>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("repo", &self.cfg.repo)
            .finish_non_exhaustive()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::setup("blocking task", e))?
}

/// Outcome of one namespace.
#[derive(Debug, Clone)]
enum Outcome {
    Applied(String),
    Invalid(Vec<String>),
    Failed(String),
    Error(String),
}

impl Agent {
    /// Check the configuration ([`AgentConfig::check`]) and prepare the state directory (clone,
    /// queue); does not start serving.
    pub fn new(cfg: AgentConfig) -> Result<Arc<Self>> {
        cfg.check()?;
        let sd = &cfg.state_dir;
        for d in ["applied", "rejected", "previews", "work"] {
            std::fs::create_dir_all(sd.join(d)).map_err(|e| Error::io(sd.join(d), e))?;
        }
        let queue = Queue::open(&sd.join("queue"))?;
        let repo_dir = sd.join("repo.git");
        if !repo_dir.join("HEAD").exists() {
            Git::new(sd).run(&["init", "--quiet", "--bare", "repo.git"])?;
        }
        Ok(Arc::new(Self {
            repo_url_norm: normalize_repo_url(&cfg.repo),
            git: Git::bare(repo_dir),
            cfg,
            queue,
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            locks: std::sync::Mutex::new(HashMap::new()),
            fetch_lock: tokio::sync::Mutex::new(()),
            backoff: std::sync::Mutex::new(HashMap::new()),
            healed: std::sync::Mutex::new(HashMap::new()),
            server_stats: Arc::new(crate::server::ServerStats::default()),
        }))
    }

    /// The HTTP routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(&self.cfg.path, post(server::webhook))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(server::readyz))
            .route("/metrics", get(server::metrics))
            .route("/namespaces/{ns}", get(server::namespace_status))
            .with_state(self.clone())
    }

    /// Serve until SIGTERM or Ctrl-C.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.cfg.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: self.cfg.listen.to_string(),
                source,
            })?;
        tracing::info!(
            "listening on http://{}{} (repo {}, branch {})",
            listener.local_addr().map_or(self.cfg.listen, |a| a),
            self.cfg.path,
            crate::git::redact_url(&self.cfg.repo),
            self.cfg.branch
        );
        let worker = tokio::spawn(self.clone().worker());
        let reconciler = tokio::spawn(self.clone().reconcile_loop());
        let app = self.router();
        let res = crate::server::serve(
            listener,
            app,
            self.cfg.limits,
            self.server_stats.clone(),
            server::shutdown_signal(),
        )
        .await
        .map_err(|e| Error::setup("server", e));
        worker.abort();
        reconciler.abort();
        res
    }

    async fn worker(self: Arc<Self>) {
        loop {
            let jobs = self.queue.pending();
            if jobs.is_empty() {
                tokio::select! {
                    () = self.queue.wait() => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                continue;
            }
            let seqs: Vec<u64> = jobs.iter().map(|(s, _)| *s).collect();
            let mut pushes = Vec::new();
            let mut prs = Vec::new();
            for (_, job) in jobs {
                match job {
                    Job::Push { pull_request, .. } => pushes.push(pull_request),
                    pr @ Job::PullRequest { .. } => prs.push(pr),
                }
            }
            let mut tasks = Vec::new();
            if !pushes.is_empty() {
                // Every push queued so far is served by one fetch of the branch head.
                let pr = pushes.iter().rev().find_map(|p| *p);
                let me = self.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = me.sync("push", pr).await {
                        tracing::error!("push: {e}");
                    }
                }));
            }
            for job in prs {
                let me = self.clone();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = me.pull_request(job).await {
                        tracing::error!("pull request: {e}");
                    }
                }));
            }
            for t in tasks {
                let _ = t.await;
            }
            if let Err(e) = self.queue.done(&seqs).await {
                tracing::error!("queue journal: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    async fn reconcile_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.cfg.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.metrics.reconciles.fetch_add(1, Ordering::Relaxed);
            if let Err(e) = self.sync("reconcile", None).await {
                tracing::error!("reconcile: {e}");
            }
        }
    }

    fn lock_for(&self, ns: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("locks")
            .entry(ns.to_string())
            .or_default()
            .clone()
    }

    async fn fetch(&self, refspecs: Vec<String>) -> Result<()> {
        let _g = self.fetch_lock.lock().await;
        let git = self.git.clone();
        let url = self.cfg.repo.clone();
        let res = blocking(move || {
            let mut args = vec!["fetch", "--quiet", "--force", "--no-tags", "--", &url];
            args.extend(refspecs.iter().map(String::as_str));
            git.run(&args).map(|_| ())
        })
        .await;
        if res.is_err() {
            self.metrics.fetch_errors.fetch_add(1, Ordering::Relaxed);
        }
        res
    }

    async fn git(&self, args: &[&str]) -> Result<String> {
        let git = self.git.clone();
        let args: Vec<String> = args.iter().map(|s| (*s).to_string()).collect();
        blocking(move || git.run(&args.iter().map(String::as_str).collect::<Vec<_>>())).await
    }

    fn managed(&self, ns: &str) -> bool {
        is_namespace(ns)
            && (self.cfg.namespaces.is_empty() || self.cfg.namespaces.iter().any(|n| n == ns))
    }

    /// Top-level namespace directories at a commit.
    async fn namespaces_at(&self, commit: &str) -> Result<BTreeSet<String>> {
        let out = self.git(&["ls-tree", "-d", "--name-only", commit]).await?;
        let mut set = BTreeSet::new();
        for name in out.lines() {
            if self.managed(name) {
                set.insert(name.to_string());
            } else if !name.starts_with('.') {
                tracing::debug!("ignoring directory {name:?} (not a managed namespace)");
            }
        }
        Ok(set)
    }

    /// Fetch the watched branch and bring every namespace to its head.
    async fn sync(self: &Arc<Self>, reason: &str, pull_request: Option<u64>) -> Result<()> {
        let branch = &self.cfg.branch;
        if let Err(e) = self
            .fetch(vec![format!("+refs/heads/{branch}:refs/heads/{branch}")])
            .await
        {
            // A repo without the branch yet (nothing merged) is not an error: nothing to apply.
            let url = self.cfg.repo.clone();
            let b = branch.clone();
            let exists = blocking(move || crate::git::remote_branch_commit(&url, &b)).await;
            if matches!(exists, Ok(None)) {
                tracing::info!("{reason}: branch {branch} does not exist yet; nothing to apply");
                self.ready.store(true, Ordering::Relaxed);
                return Ok(());
            }
            return Err(e);
        }
        self.ready.store(true, Ordering::Relaxed);
        let head = self
            .git(&["rev-parse", &format!("refs/heads/{branch}^{{commit}}")])
            .await?;
        let namespaces = self.namespaces_at(&head).await?;
        tracing::debug!("{reason}: head {head}, namespaces {namespaces:?}");
        let self_heal = reason == "reconcile" && self.cfg.self_heal;
        let mut tasks = Vec::new();
        for ns in &namespaces {
            let me = self.clone();
            let (ns, head) = (ns.clone(), head.clone());
            tasks.push(tokio::spawn(async move {
                me.apply_namespace(&ns, &head, pull_request, self_heal)
                    .await;
            }));
        }
        for ns in self.all_applied() {
            if !namespaces.contains(&ns) && self.managed(&ns) {
                let me = self.clone();
                let head = head.clone();
                tasks.push(tokio::spawn(async move {
                    me.remove_namespace(&ns, &head).await;
                }));
            }
        }
        for t in tasks {
            let _ = t.await;
        }
        Ok(())
    }

    /// Extract `NS/` of a commit (only that subtree) into a fresh directory under the state dir, and validate it
    /// for `target`, off the async workers.
    async fn load(
        &self,
        commit: &str,
        ns: &str,
        target: &str,
    ) -> (
        Option<tempfile::TempDir>,
        std::result::Result<Prepared, Outcome>,
    ) {
        let work = match tempfile::Builder::new()
            .prefix(&format!("{ns}-"))
            .tempdir_in(self.cfg.state_dir.join("work"))
        {
            Ok(w) => w,
            Err(e) => return (None, Err(Outcome::Error(format!("work directory: {e}")))),
        };
        let git = self.git.clone();
        let applier = self.cfg.applier.clone();
        let policy = self.cfg.policy.clone();
        let (commit, ns, target, dest) = (
            commit.to_string(),
            ns.to_string(),
            target.to_string(),
            work.path().to_path_buf(),
        );
        let res = tokio::task::spawn_blocking(move || {
            match crate::tree::extract_namespace(&git, &commit, &ns, &dest) {
                Ok(()) => {}
                Err(crate::tree::ExtractError::Invalid(p)) => return Err(Outcome::Invalid(p)),
                Err(crate::tree::ExtractError::Git(e)) => {
                    return Err(Outcome::Error(e.to_string()));
                }
            }
            let dir = dest.join(&ns);
            match &applier {
                Applier::Kubectl(_) => {
                    validate_kube(&dir, &ns, &target, &policy).map(Prepared::Kube)
                }
                Applier::Swarm(_) => validate_stack(&dir, &ns, &policy).map(Prepared::Stack),
            }
            .map_err(Outcome::Invalid)
        })
        .await
        .unwrap_or_else(|e| Err(Outcome::Error(format!("validation task: {e}"))));
        (Some(work), res)
    }

    fn env_url(&self, ns: &str) -> Option<String> {
        self.cfg
            .environment_url
            .as_ref()
            .map(|t| t.replace("{namespace}", ns))
    }

    /// Text for the forge with the agent's own paths removed: extraction directories vanish (what remains is the
    /// repo-relative path), and the state directory becomes `$STATE`.
    fn scrub(&self, text: &str) -> String {
        let mut roots = vec![self.cfg.state_dir.display().to_string()];
        if let Ok(c) = self.cfg.state_dir.canonicalize() {
            roots.push(c.display().to_string());
        }
        roots.sort_by_key(|r| std::cmp::Reverse(r.len()));
        let mut out = text.to_string();
        for root in &roots {
            if root.is_empty() {
                continue;
            }
            let work = format!("{root}/work/");
            while let Some(i) = out.find(&work) {
                let rest = &out[i + work.len()..];
                let end = rest.find('/').map_or(rest.len(), |j| j + 1);
                out.replace_range(i..i + work.len() + end, "");
            }
            out = out.replace(root.as_str(), "$STATE");
        }
        out
    }

    async fn status(&self, sha: &str, ns: &str, state: &str, description: &str) {
        let description = &self.scrub(description);
        if let Some(gh) = &self.cfg.github {
            let ctx = format!("deploy-bot/{ns}");
            if let Err(e) = gh
                .create_status(sha, state, &ctx, description, self.env_url(ns).as_deref())
                .await
            {
                tracing::warn!("status {ctx} {state} on {sha}: {e}");
            }
        }
    }

    async fn comment(&self, number: u64, body: &str) {
        let body = &self.scrub(body);
        if let Some(gh) = &self.cfg.github
            && let Err(e) = gh.create_comment(number, body).await
        {
            tracing::warn!("comment on #{number}: {e}");
        }
    }

    /// Whether the drift check of `ns` is due (and mark it done now when it is).
    fn heal_due(&self, ns: &str) -> bool {
        let now = std::time::Instant::now();
        let mut map = self.healed.lock().expect("healed");
        let due = match (map.get(ns), self.cfg.self_heal_interval) {
            (Some(last), Some(every)) => now.duration_since(*last) >= every,
            _ => true,
        };
        if due {
            map.insert(ns.to_string(), now);
        }
        due
    }

    /// Self-heal: compare the live state of an applied namespace with its applied commit; apply again when it drifted.
    async fn heal(&self, ns: &str, applied: &Applied) {
        let commit = applied.commit.as_str();
        self.metrics.drift_checks.fetch_add(1, Ordering::Relaxed);
        let (_work, loaded) = self.load(commit, ns, ns).await;
        let prepared = match loaded {
            Ok(p) => p,
            Err(o) => {
                tracing::warn!(
                    namespace = ns,
                    commit,
                    "drift check: cannot load the applied commit: {o:?}"
                );
                return;
            }
        };
        let diffs = match self.cfg.applier.drift(ns, &prepared).await {
            Ok(d) => d,
            Err(e) => {
                self.metrics
                    .drift_check_errors
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(namespace = ns, commit, "drift check failed: {e}");
                return;
            }
        };
        if diffs.is_empty() {
            self.metrics.applies_skipped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                namespace = ns,
                commit,
                "skip: in sync with the repo (no drift)"
            );
            return;
        }
        let what = diffs.join("; ");
        tracing::info!(namespace = ns, commit, "drift: {what}; applying again");
        match self
            .cfg
            .applier
            .apply(ns, &prepared, &self.cfg.policy)
            .await
        {
            Ok(_) => {
                let rec = Applied {
                    applied_at: now(),
                    drift_repairs: applied.drift_repairs + 1,
                    ..applied.clone()
                };
                let bytes = serde_json::to_vec_pretty(&rec).expect("serialise");
                if let Err(e) =
                    microplatform_common::io::atomic_write(&self.applied_path(ns), &bytes)
                {
                    tracing::error!(namespace = ns, "cannot record the apply: {e}");
                }
                self.metrics.drift_repairs.fetch_add(1, Ordering::Relaxed);
                self.metrics.applies_ok.fetch_add(1, Ordering::Relaxed);
                self.metrics.last_apply.store(now(), Ordering::Relaxed);
                tracing::info!(
                    namespace = ns,
                    commit,
                    drift_repairs = rec.drift_repairs,
                    "drift repaired: {what}"
                );
                self.status(
                    commit,
                    ns,
                    "success",
                    &format!("drift repaired (#{}): {what}", rec.drift_repairs),
                )
                .await;
            }
            Err(e) => {
                self.metrics.applies_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(namespace = ns, commit, "drift repair failed: {e}");
                self.status(commit, ns, "failure", &format!("drift repair failed: {e}"))
                    .await;
            }
        }
    }

    async fn apply_namespace(
        self: &Arc<Self>,
        ns: &str,
        commit: &str,
        pull_request: Option<u64>,
        heal: bool,
    ) {
        let lock = self.lock_for(ns);
        let _guard = lock.lock().await;
        let tree = match self.git(&["rev-parse", &format!("{commit}:{ns}")]).await {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(namespace = ns, commit, "{e}");
                return;
            }
        };
        if let Some(a) = self.applied(ns).filter(|a| a.tree == tree) {
            if heal && self.heal_due(ns) {
                self.heal(ns, &a).await;
            } else {
                self.metrics.applies_skipped.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    namespace = ns,
                    commit,
                    "skip: unchanged since the apply of {}",
                    &a.commit[..a.commit.len().min(12)]
                );
            }
            return;
        }
        let rejected_path = self
            .cfg
            .state_dir
            .join("rejected")
            .join(format!("{ns}.json"));
        if let Ok(bytes) = std::fs::read(&rejected_path)
            && let Ok(r) = serde_json::from_slice::<Rejected>(&bytes)
            && r.tree == tree
        {
            // Already reported; the same tree fails the same way.
            self.metrics.applies_skipped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                namespace = ns,
                commit,
                "skip: tree {tree} was rejected before: {}",
                self.scrub(&r.reason)
            );
            // Nothing of the rejected tree was applied: keep the last applied commit healed.
            if heal
                && let Some(a) = self.applied(ns)
                && self.heal_due(ns)
            {
                self.heal(ns, &a).await;
            }
            return;
        }
        if let Some((t, attempts, not_before)) = self.backoff.lock().expect("backoff").get(ns)
            && *t == tree
            && std::time::Instant::now() < *not_before
        {
            tracing::info!(
                namespace = ns,
                commit,
                "skip: apply of tree {tree} failed {attempts} times; waiting before retrying"
            );
            return;
        }
        tracing::debug!(namespace = ns, commit, "applying (tree {tree})");
        self.status(commit, ns, "pending", "applying").await;
        let outcome = self.apply_tree(ns, commit).await;
        match &outcome {
            Outcome::Applied(summary) => {
                let rec = Applied {
                    namespace: ns.into(),
                    commit: commit.into(),
                    tree: tree.clone(),
                    applied_at: now(),
                    drift_repairs: self.applied(ns).map_or(0, |a| a.drift_repairs),
                };
                let bytes = serde_json::to_vec_pretty(&rec).expect("serialise");
                if let Err(e) =
                    microplatform_common::io::atomic_write(&self.applied_path(ns), &bytes)
                {
                    tracing::error!("{ns}: cannot record the apply: {e}");
                }
                let _ = std::fs::remove_file(&rejected_path);
                self.backoff.lock().expect("backoff").remove(ns);
                self.metrics.applies_ok.fetch_add(1, Ordering::Relaxed);
                self.metrics.last_apply.store(now(), Ordering::Relaxed);
                tracing::info!(namespace = ns, commit, "applied: {summary}");
                self.status(commit, ns, "success", &format!("applied: {summary}"))
                    .await;
            }
            Outcome::Invalid(problems) => {
                let reason = problems.join("; ");
                let rec = Rejected {
                    tree: tree.clone(),
                    reason: reason.clone(),
                };
                let _ = microplatform_common::io::atomic_write(
                    &rejected_path,
                    &serde_json::to_vec(&rec).expect("serialise"),
                );
                self.metrics.applies_invalid.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    namespace = ns,
                    commit,
                    "validation failed, nothing applied: {}",
                    self.scrub(&reason)
                );
                self.status(
                    commit,
                    ns,
                    "failure",
                    &format!("validation failed: {reason}"),
                )
                .await;
            }
            Outcome::Failed(msg) => {
                self.note_failure(ns, &tree);
                self.metrics.applies_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(namespace = ns, commit, "apply failed: {msg}");
                self.status(commit, ns, "failure", &format!("apply failed: {msg}"))
                    .await;
            }
            Outcome::Error(msg) => {
                self.note_failure(ns, &tree);
                tracing::error!(
                    namespace = ns,
                    commit,
                    "deploy-bot error: {}",
                    self.scrub(msg)
                );
                self.status(commit, ns, "error", &format!("deploy-bot error: {msg}"))
                    .await;
            }
        }
        if let Some(n) = pull_request {
            let body = self.describe(ns, commit, &outcome, "merged");
            self.comment(n, &body).await;
        }
    }

    /// Back off retries of a tree whose apply failed: one poll interval, doubling, at most 10 minutes.
    fn note_failure(&self, ns: &str, tree: &str) {
        let mut map = self.backoff.lock().expect("backoff");
        let attempts = match map.get(ns) {
            Some((t, a, _)) if t == tree => a + 1,
            _ => 1,
        };
        let delay = self
            .cfg
            .poll_interval
            .saturating_mul(1 << (attempts - 1).min(16))
            .min(Duration::from_secs(600));
        map.insert(
            ns.to_string(),
            (
                tree.to_string(),
                attempts,
                std::time::Instant::now() + delay,
            ),
        );
    }

    async fn apply_tree(&self, ns: &str, commit: &str) -> Outcome {
        let (_work, prepared) = self.load(commit, ns, ns).await;
        let prepared = match prepared {
            Ok(p) => p,
            Err(o) => return o,
        };
        match self
            .cfg
            .applier
            .apply(ns, &prepared, &self.cfg.policy)
            .await
        {
            Ok(_) => Outcome::Applied(prepared.summary()),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn describe(&self, ns: &str, commit: &str, outcome: &Outcome, what: &str) -> String {
        let short = &commit[..commit.len().min(12)];
        let (head, detail) = match outcome {
            Outcome::Applied(s) if what == "check" => {
                ("valid, dry run passed".to_string(), s.clone())
            }
            Outcome::Applied(s) => ("applied".to_string(), s.clone()),
            Outcome::Invalid(p) => (
                "validation failed, nothing applied".to_string(),
                p.join("\n- "),
            ),
            Outcome::Failed(m) => ("apply failed".to_string(), m.clone()),
            Outcome::Error(m) => ("deploy-bot error".to_string(), m.clone()),
        };
        let mut body =
            format!("**deploy-bot** ({what}): namespace `{ns}` at `{short}`: **{head}**");
        if !detail.is_empty() {
            let _ = write!(body, "\n\n- {detail}");
        }
        if let Some(u) = self.env_url(ns) {
            let _ = write!(body, "\n\nEnvironment: {u}");
        }
        body
    }

    async fn remove_namespace(self: &Arc<Self>, ns: &str, commit: &str) {
        let lock = self.lock_for(ns);
        let _guard = lock.lock().await;
        tracing::info!(
            namespace = ns,
            commit,
            "directory removed; tearing down what deploy-bot applied"
        );
        match self.cfg.applier.teardown(ns, &self.cfg.policy, false).await {
            Ok(_) => {
                let _ = std::fs::remove_file(self.applied_path(ns));
                let _ = std::fs::remove_file(
                    self.cfg
                        .state_dir
                        .join("rejected")
                        .join(format!("{ns}.json")),
                );
                self.healed.lock().expect("healed").remove(ns);
                self.metrics.teardowns.fetch_add(1, Ordering::Relaxed);
                tracing::info!(namespace = ns, commit, "torn down");
                self.status(
                    commit,
                    ns,
                    "success",
                    "namespace removed from the repo; pruned",
                )
                .await;
            }
            Err(e) => {
                self.metrics.applies_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(namespace = ns, commit, "teardown failed: {e}");
                self.status(commit, ns, "failure", &format!("prune failed: {e}"))
                    .await;
            }
        }
    }
}
