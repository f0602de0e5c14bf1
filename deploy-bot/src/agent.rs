//! `deploy-bot agent`: the webhook server, the worker that drains the durable queue, the reconcile loop, per-namespace serialised applies, and status reports to the forge.

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

/// What is recorded per namespace after a successful apply.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Applied {
    /// The namespace.
    pub namespace: String,
    /// The commit applied.
    pub commit: String,
    /// The tree of `NS/` at that commit (what decides "changed").
    pub tree: String,
    /// Unix time of the apply.
    pub applied_at: u64,
    /// How many times drift was repaired in this namespace (self-heal).
    #[serde(default)]
    pub drift_repairs: u64,
}

/// Why a namespace's tree was not applied (kept until a new tree comes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    /// The tree of `NS/` that was refused.
    pub tree: String,
    /// What was wrong with it.
    pub reason: String,
}

/// Where a namespace stands against a commit of the cluster repo (`GET /namespaces/{ns}?commit=SHA`):
/// what `deploy-bot status --wait` polls until `applied`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceStatus {
    /// Always 1.
    pub schema_version: u32,
    /// The namespace.
    pub namespace: String,
    /// The commit asked about (the watched branch's head when none was given), as the agent resolved it.
    pub commit: Option<String>,
    /// `applied`: the namespace runs `NS/` of that commit; `pending`: not yet (the agent has not fetched the
    /// commit, or has not applied its tree); `rejected`: that tree was refused (see `reason`); `removed`: the
    /// commit has no `NS/` and nothing is applied to it.
    pub state: String,
    /// The tree of `NS/` at that commit, when the agent has the commit and the directory.
    pub tree: Option<String>,
    /// What is applied to the namespace now, if anything.
    pub applied: Option<Applied>,
    /// Why the tree was refused, for `rejected`.
    pub reason: Option<String>,
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
        .map_err(|e| Error::Internal(format!("blocking task: {e}")))?
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
    /// Prepare the state directory (clone, queue); does not start serving.
    pub fn new(cfg: AgentConfig) -> Result<Arc<Self>> {
        if cfg.secret.is_empty() {
            return Err(Error::Usage(
                "no webhook secret: set DEPLOY_BOT_WEBHOOK_SECRET or --secret-file (the agent refuses to run without one)".into(),
            ));
        }
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
            .route(&self.cfg.path, post(webhook))
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .route("/namespaces/{ns}", get(namespace_status))
            .with_state(self.clone())
    }

    /// Serve until SIGTERM or Ctrl-C.
    pub async fn run(self: Arc<Self>) -> Result<()> {
        let listener = tokio::net::TcpListener::bind(self.cfg.listen)
            .await
            .map_err(|e| Error::Usage(format!("--listen {}: {e}", self.cfg.listen)))?;
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
            shutdown_signal(),
        )
        .await
        .map_err(|e| Error::Internal(format!("server: {e}")));
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

    fn applied_path(&self, ns: &str) -> PathBuf {
        self.cfg
            .state_dir
            .join("applied")
            .join(format!("{ns}.json"))
    }

    /// What was applied to a namespace, if anything.
    pub fn applied(&self, ns: &str) -> Option<Applied> {
        let text = std::fs::read(self.applied_path(ns)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn all_applied(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(self.cfg.state_dir.join("applied")) else {
            return Vec::new();
        };
        rd.filter_map(|e| {
            let n = e.ok()?.file_name().to_string_lossy().into_owned();
            let ns = n.strip_suffix(".json")?;
            is_namespace(ns).then(|| ns.to_string())
        })
        .collect()
    }

    /// Where `ns` stands against `commit` (default: the watched branch's head in the clone). Only the local
    /// clone is read: a commit the agent has not fetched yet is `pending`.
    pub async fn namespace_status(
        &self,
        ns: &str,
        commit: Option<&str>,
    ) -> Result<NamespaceStatus> {
        let rev = commit.map_or_else(
            || format!("refs/heads/{}", self.cfg.branch),
            ToString::to_string,
        );
        let resolved = self
            .git(&["rev-parse", "-q", "--verify", &format!("{rev}^{{commit}}")])
            .await
            .ok()
            .filter(|c| !c.is_empty());
        let applied = self.applied(ns);
        let mut status = NamespaceStatus {
            schema_version: 1,
            namespace: ns.to_string(),
            commit: resolved.clone().or_else(|| commit.map(ToString::to_string)),
            state: "pending".into(),
            tree: None,
            applied: applied.clone(),
            reason: None,
        };
        let Some(resolved) = resolved else {
            return Ok(status);
        };
        let tree = self
            .git(&["rev-parse", "-q", "--verify", &format!("{resolved}:{ns}")])
            .await
            .ok()
            .filter(|t| !t.is_empty());
        let Some(tree) = tree else {
            if applied.is_none() {
                status.state = "removed".into();
            }
            return Ok(status);
        };
        let rejected = std::fs::read(
            self.cfg
                .state_dir
                .join("rejected")
                .join(format!("{ns}.json")),
        )
        .ok()
        .and_then(|b| serde_json::from_slice::<Rejected>(&b).ok())
        .filter(|r| r.tree == tree);
        if applied.as_ref().is_some_and(|a| a.tree == tree) {
            status.state = "applied".into();
        } else if let Some(r) = rejected {
            status.state = "rejected".into();
            status.reason = Some(self.scrub(&r.reason));
        }
        status.tree = Some(tree);
        Ok(status)
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
            Err(e) => Outcome::Failed(e.0),
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

    fn preview_name(ns: &str, number: u64) -> String {
        let suffix = format!("-pr-{number}");
        let keep = 63usize.saturating_sub(suffix.len());
        let base: String = ns.chars().take(keep).collect();
        format!("{}{suffix}", base.trim_end_matches('-'))
    }

    async fn pull_request(self: &Arc<Self>, job: Job) -> Result<()> {
        let Job::PullRequest {
            action,
            number,
            head_sha,
            head_ref,
            base_ref,
        } = job
        else {
            return Ok(());
        };
        self.metrics.pr_checks.fetch_add(1, Ordering::Relaxed);
        let previews_path = self
            .cfg
            .state_dir
            .join("previews")
            .join(format!("{number}.json"));
        if action == "closed" {
            if !self.cfg.teardown_on_close {
                return Ok(());
            }
            let targets: Vec<String> = std::fs::read(&previews_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let mut lines = Vec::new();
            for t in &targets {
                let lock = self.lock_for(t);
                let _g = lock.lock().await;
                match self.cfg.applier.teardown(t, &self.cfg.policy, true).await {
                    Ok(_) => lines.push(format!("- `{t}`: torn down")),
                    Err(e) => lines.push(format!("- `{t}`: teardown failed: {e}")),
                }
            }
            let _ = std::fs::remove_file(&previews_path);
            if !targets.is_empty() {
                self.comment(
                    number,
                    &format!(
                        "**deploy-bot**: pull request closed; preview environments:\n{}",
                        lines.join("\n")
                    ),
                )
                .await;
            }
            return Ok(());
        }
        let pr_ref = format!("refs/deploy-bot/pr/{number}");
        if self
            .fetch(vec![format!("+refs/pull/{number}/head:{pr_ref}")])
            .await
            .is_err()
        {
            self.fetch(vec![format!("+refs/heads/{head_ref}:{pr_ref}")])
                .await?;
        }
        self.fetch(vec![format!(
            "+refs/heads/{base_ref}:refs/deploy-bot/base/{number}"
        )])
        .await?;
        let head = if self
            .git(&["cat-file", "-e", &format!("{head_sha}^{{commit}}")])
            .await
            .is_ok()
        {
            head_sha
        } else {
            self.git(&["rev-parse", &pr_ref]).await?
        };
        let base = self
            .git(&[
                "merge-base",
                &format!("refs/deploy-bot/base/{number}"),
                &head,
            ])
            .await?;
        let changed = self.git(&["diff", "--name-only", &base, &head]).await?;
        let present = self.namespaces_at(&head).await?;
        let namespaces: BTreeSet<String> = changed
            .lines()
            .filter_map(|p| p.split_once('/').map(|(d, _)| d.to_string()))
            .filter(|d| self.managed(d) && present.contains(d))
            .collect();
        let mut sections = Vec::new();
        let mut previews: Vec<String> = std::fs::read(&previews_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        for ns in &namespaces {
            self.status(&head, ns, "pending", "validating").await;
            let target = if self.cfg.preview {
                Self::preview_name(ns, number)
            } else {
                ns.clone()
            };
            let (_work, loaded) = self.load(&head, ns, &target).await;
            let outcome = match loaded {
                Err(o) => o,
                Ok(prepared) => {
                    let lock = self.lock_for(&target);
                    let _g = lock.lock().await;
                    let r = if self.cfg.preview {
                        self.cfg
                            .applier
                            .apply(&target, &prepared, &self.cfg.policy)
                            .await
                    } else {
                        self.cfg.applier.dry_run(&target, &prepared).await
                    };
                    match r {
                        Ok(_) => {
                            if self.cfg.preview && !previews.contains(&target) {
                                previews.push(target.clone());
                            }
                            Outcome::Applied(prepared.summary())
                        }
                        Err(e) => Outcome::Failed(e.0),
                    }
                }
            };
            let (state, desc) = match &outcome {
                Outcome::Applied(s) if self.cfg.preview => {
                    ("success", format!("preview {target}: {s}"))
                }
                Outcome::Applied(s) => ("success", format!("valid, dry run passed: {s}")),
                Outcome::Invalid(p) => ("failure", format!("validation failed: {}", p.join("; "))),
                Outcome::Failed(m) => ("failure", format!("dry run failed: {m}")),
                Outcome::Error(m) => ("error", format!("deploy-bot error: {m}")),
            };
            self.status(&head, ns, state, &desc).await;
            sections.push(self.describe(
                ns,
                &head,
                &outcome,
                if self.cfg.preview { "preview" } else { "check" },
            ));
        }
        if self.cfg.preview {
            let _ = microplatform_common::io::atomic_write(
                &previews_path,
                &serde_json::to_vec(&previews).expect("json"),
            );
        }
        if !sections.is_empty() {
            self.comment(number, &sections.join("\n\n---\n\n")).await;
        }
        Ok(())
    }

    /// The payload is for the watched repo: its `full_name` is our `OWNER/NAME`, or one of its URLs is `--repo`.
    fn repo_matches(&self, repo: &Repository) -> bool {
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

    async fn accept(&self, delivery: &str, job: Job) -> (StatusCode, serde_json::Value) {
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

    fn ignored(&self, reason: &str) -> (StatusCode, serde_json::Value) {
        self.metrics.webhook("ignored");
        (StatusCode::ACCEPTED, json!({"ignored": reason}))
    }

    async fn handle(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, serde_json::Value) {
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

    /// What was applied, per namespace (for tests and the state dir's readers).
    pub fn applied_all(&self) -> BTreeMap<String, Applied> {
        self.all_applied()
            .into_iter()
            .filter_map(|ns| Some((ns.clone(), self.applied(&ns)?)))
            .collect()
    }
}

async fn webhook(
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
        match tokio::time::timeout(agent.cfg.body_timeout, axum::body::to_bytes(body, MAX_BODY))
            .await
        {
            Err(_) => {
                agent.metrics.webhook("timeout");
                (
                    StatusCode::REQUEST_TIMEOUT,
                    json!({"error": format!("body not received within {:?}", agent.cfg.body_timeout)}),
                )
            }
            Ok(Err(e)) if e.to_string().contains("length limit") => {
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
            Ok(Ok(body)) => agent.handle(&headers, &body).await,
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
async fn discard(body: axum::body::Body, limit: usize, timeout: Duration) {
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

async fn readyz(State(agent): State<Arc<Agent>>) -> Response {
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
struct StatusQuery {
    commit: Option<String>,
}

async fn namespace_status(
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

async fn metrics(State(agent): State<Arc<Agent>>) -> Response {
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

async fn shutdown_signal() {
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
