//! Command-line interface of `deploy-bot` (clap derive; doc comments are the help).
// Doc comments here are the --help text, written for terminals, not rustdoc.
#![allow(clippy::doc_markdown)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use microplatform_common::cli::Shell;
use microplatform_common::exit;

/// Every subcommand's help epilogue: the exit codes from the one table in `common`, then the environment.
fn after_help() -> String {
    format!(
        "{}\nEnvironment: GITHUB_TOKEN (forge token, never printed), DEPLOY_BOT_WEBHOOK_SECRET (agent webhook secret).",
        exit::help(&[
            (exit::SUCCESS, "request: pushed, or {\"unchanged\": true}"),
            (
                exit::FAILURE,
                "a file could not be read or written; smoke: a wrong answer"
            ),
            (exit::USAGE, "bad flags, no webhook secret, address in use"),
            (exit::INPUT, "a manifest that does not parse"),
            (exit::NOT_FOUND, "base branch, directory, input file"),
            (exit::GIT, "clone, push rejected"),
            (
                exit::NETWORK,
                "an unexpected forge API answer; smoke: no answer; status --wait: not applied in time"
            ),
            (exit::AUTH, "GITHUB_TOKEN missing or refused"),
            (exit::EXTERNAL, "docker, kubectl"),
            (
                exit::VALIDATION,
                "namespace, path, label, sha, object namespace; status --wait: the agent rejected the tree"
            ),
            (exit::INTERNAL, ""),
        ])
    )
}

/// `GitOps` deploys: pull requests with manifests to a cluster repo, and an agent that verifies, validates and applies what was merged.
#[derive(Debug, Parser)]
#[command(name = "deploy-bot", version, after_help = after_help())]
pub struct Cli {
    /// More logging on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log line format on stderr: `text`, or `json` (one object per line: timestamp, level, message, fields).
    #[arg(long, value_enum, default_value_t = LogFormatArg::Text, global = true)]
    pub log_format: LogFormatArg,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put a namespace's manifests into the cluster repo and open (or reuse) a pull request.
    ///
    /// Manifests come from stdin (multi-document YAML, split into `<kind>-<name>.yaml`; a compose file becomes
    /// `compose.yaml`) or from `--dir`. The directory `NS/` of the cluster repo is replaced as a whole.
    /// Prints `{"schema_version":1,"branch","commit","pull_request":{"number","url"}|null}` or
    /// `{"schema_version":1,"unchanged":true}`.
    #[command(after_help = after_help())]
    Request(RequestArgs),
    /// Watch a cluster repo: take GitHub webhooks, validate and apply what is merged, reconcile periodically.
    #[command(after_help = after_help())]
    Agent(AgentArgs),
    /// The local platform's ingress for Swarm stacks: route HTTP by Host and path prefix to labelled services.
    ///
    /// stackgen's compose output labels each service that has an ingress with its host, path and port, and
    /// publishes that port in host mode; this proxy finds those services' running tasks on the engine and
    /// forwards to them (longest path prefix of the host wins; `/a` matches `/a` and `/a/b`, not `/ab`).
    /// With names under `.localhost`, `http://<branch>.<stack>.dev.localhost:<port>/` opens with no DNS set-up.
    #[command(after_help = after_help())]
    Ingress(IngressArgs),
    /// Tell an agent that the cluster repo's branch moved: a GitHub-format push webhook, signed.
    ///
    /// The payload (`ref`, `after`, `repository.clone_url`, ...) is signed with HMAC-SHA256
    /// (`X-Hub-Signature-256`); the secret comes from --secret-file or DEPLOY_BOT_WEBHOOK_SECRET,
    /// never from the command line. With --wait, waits until the swarm stack --namespace runs the
    /// images of --compose (with --removed: until the stack has no services). Prints `{"schema_version":1,"sent","delivery","status","commit","applied","seconds"}`.
    #[command(after_help = after_help())]
    Notify(NotifyArgs),
    /// Ask the agent where a namespace stands against a cluster-repo commit; with --wait, until it runs it.
    ///
    /// `GET <agent>/namespaces/<NS>?commit=<SHA>`: prints `{"schema_version":1,"namespace","commit","state",
    /// "tree","applied","reason"}`, state `applied`, `pending`, `rejected` or `removed`. With --wait, polls
    /// until `applied` (or `removed`: the commit has no NS/ and nothing is applied); a rejected tree fails at
    /// once (exit 10) with the agent's reason, a timeout exits 6. The commit comes from --commit, or from
    /// --request (deploy-bot request's JSON: its commit for --direct, the branch head when unchanged).
    /// The step an Argo workflow runs after `request --direct`, before it smoke-tests the environment.
    #[command(after_help = after_help())]
    Status(StatusArgs),
    /// Check that every service answers with meaning at the environment's URL: the smoke checks of a stackgen plan.
    ///
    /// Each `services[].smoke` of the plan (`url`, `status`, `body`: a regular expression) is a GET that must
    /// answer that status with a matching body; failing checks are retried until --timeout. Prints
    /// `{"schema_version":1,"checks":[{"service","url","status","body","attempts","seconds"}],"seconds"}`;
    /// a wrong answer exits 1 naming the service, the URL and the body, no answer exits 6.
    ///
    /// With --by-name, first every service's health and ingress path of the plan is called by service name
    /// (`http://<service>:<port><path>`) from one container of --base-image on the stack's network
    /// (`<namespace>_default`), the unanswered calls again until --timeout; each answer is kept in
    /// --out-dir as `<service>-<health|ingress>.txt` and listed in `by_name: [{"service","kind","url","bytes",
    /// "attempts"}]`. An HTTP error status exits 1, no answer 6, docker failing 9.
    #[command(after_help = after_help())]
    Smoke(SmokeArgs),
    /// Merge a deploy branch of the cluster repo into its base, as a forge's merge button does (for --forge none).
    ///
    /// Fast-forward when the base has not moved, else a merge commit (`Merge branch 'B' into BASE`, made without a
    /// work tree; a conflict names the files and pushes nothing); then one atomic push moves the base and deletes the
    /// branch. Prints `{"schema_version":1,"base","branch","commit","how":"fast-forward"|"merge commit"|"already merged"}`.
    #[command(after_help = after_help())]
    Merge(MergeArgs),
    /// Post an environment's result back to the source repository: a commit status and a pull-request comment.
    ///
    /// Sets the commit status `microplatform/<ENV>` on --commit (state from the smoke result, target_url = --url),
    /// then creates, or updates in place, one comment on the open pull request of --branch: the comment is found
    /// again by its hidden marker `<!-- microplatform:ENV -->`, so a rerun edits it instead of adding another.
    /// Without an open pull request only the status is posted. The result comes from --smoke (the JSON that
    /// `deploy-bot smoke` prints when every check passed) or from --state and --description. Token: --token-file,
    /// else GITHUB_TOKEN (never on the command line).
    /// Prints `{"schema_version":1,"forge","repo","environment","commit","branch","status":{"context","state",
    /// "description","target_url","posted"},"pull_request":{"number","url"}|null,"comment":{"action","id","url"}|null,
    /// "skipped":[…]}`.
    #[command(after_help = after_help())]
    Report(ReportArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// Log formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormatArg {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// Forges.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ForgeKind {
    /// GitHub or GitHub Enterprise (REST API; token from GITHUB_TOKEN).
    Github,
    /// No forge: push only (request) / no statuses (agent) / nothing posted (report).
    None,
}

/// Appliers.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ApplierKind {
    /// `kubectl apply --server-side` with pruning by inventory label.
    Kubectl,
    /// `docker stack deploy --prune` of `NS/compose.yaml` (or docker-compose.yml, stack.yml).
    Swarm,
}

/// Forge options shared by both subcommands.
#[derive(Debug, Args)]
pub struct ForgeArgs {
    /// GitHub API root (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, value_name = "URL", default_value = deploy_bot::github::DEFAULT_API_URL)]
    pub api_url: String,
    /// OWNER/NAME of the cluster repo on the forge (default: the last two path segments of --repo).
    #[arg(long, value_name = "OWNER/NAME")]
    pub github_repo: Option<String>,
}

/// `request` flags.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The cluster repo (any git URL: https, ssh, git://, file://, a path).
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// The namespace: the directory `NS/` in the cluster repo (a DNS label).
    #[arg(long, short = 'n', value_name = "NS", value_parser = microplatform_common::names::dns_label_arg)]
    pub namespace: String,
    /// Take the manifests from this directory (its `NS/` subdirectory when there is one) instead of stdin.
    #[arg(long, value_name = "DIR", conflicts_with = "delete")]
    pub dir: Option<PathBuf>,
    /// Tear the environment down: remove the directory `NS/` from the cluster repo (same pull request or
    /// `--direct` path; no manifests are read). The agent then removes the stack or prunes the namespace.
    #[arg(long)]
    pub delete: bool,
    /// The source commit (or version), recorded in the branch name and commit message (default: a content hash).
    #[arg(long, value_name = "SHA")]
    pub sha: Option<String>,
    /// A `key=value` recorded in the commit message (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// The base branch (default: the remote's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// Commit straight to the base branch, no pull request (development clusters).
    #[arg(long)]
    pub direct: bool,
    /// The release candidate these manifests deploy: a promotion report (`digest-resolve
    /// --promote-report FILE`). The pull request links every promoted image (its manifest in the
    /// release-candidate registry); the commit message records them (`Release-Candidate:` lines).
    #[arg(long, value_name = "FILE", conflicts_with = "delete")]
    pub release_candidate: Option<PathBuf>,
    /// Where to open the pull request.
    #[arg(long, value_enum, default_value_t = ForgeKind::Github)]
    pub forge: ForgeKind,
    /// Forge options.
    #[command(flatten)]
    pub forge_args: ForgeArgs,
    /// The commit's author.
    #[command(flatten)]
    pub author: AuthorArgs,
}

/// `ingress` flags.
#[derive(Debug, Args)]
pub struct IngressArgs {
    /// Where to listen: `localhost:PORT` binds both loopback addresses
    /// (127.0.0.1 and ::1, as curl and browsers try both for `*.localhost`
    /// names), or one address such as `127.0.0.1:8088`.
    #[arg(long, value_name = "ADDR", default_value = "localhost:8088")]
    pub listen: deploy_bot::ingress::Listen,
    /// docker CLI, used only when DOCKER_HOST is neither unix:// nor tcp://
    /// (e.g. ssh://); otherwise routes come from the Engine API at DOCKER_HOST
    /// (default unix:///var/run/docker.sock). Default: `docker` on PATH.
    #[arg(long, value_name = "PATH")]
    pub docker: Option<PathBuf>,
    /// How long discovered routes are reused before the engine is asked again (500ms, 2s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = microplatform_common::duration::parse)]
    pub refresh: Duration,
    /// How long one upstream request may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = microplatform_common::duration::parse)]
    pub upstream_timeout: Duration,
}

/// `smoke` flags.
#[derive(Debug, Args)]
pub struct SmokeArgs {
    /// The plan (`stackgen plan` JSON); `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub plan: PathBuf,
    /// Retry failing checks until this long after the start (500ms, 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = microplatform_common::duration::parse)]
    pub timeout: Duration,
    /// The pause between two attempts of a check.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = microplatform_common::duration::parse)]
    pub interval: Duration,
    /// How long one request may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = microplatform_common::duration::parse)]
    pub request_timeout: Duration,
    /// Write each service's last answer body to DIR/<service>.txt (with --by-name also
    /// DIR/<service>-<health|ingress>.txt).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// First call every service's health and ingress path by service name, from a container on the stack's
    /// network (needs --base-image).
    #[arg(long, requires = "base_image")]
    pub by_name: bool,
    /// The image of the container making the calls by name (sh and busybox's timeout, wget, mktemp, wc, cat, grep, rm).
    #[arg(long, value_name = "REF", requires = "by_name")]
    pub base_image: Option<String>,
    /// docker CLI to run for --by-name (default: `docker` on PATH; DOCKER_HOST is honoured).
    #[arg(long, value_name = "PATH", requires = "by_name")]
    pub docker: Option<PathBuf>,
}

/// `status` flags.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The agent's base URL.
    #[arg(long, value_name = "URL")]
    pub agent_url: String,
    /// The namespace (the cluster repo directory).
    #[arg(long, value_name = "NS", value_parser = microplatform_common::names::dns_label_arg)]
    pub namespace: String,
    /// The cluster-repo commit (default: the agent's branch head).
    #[arg(long, value_name = "SHA", conflicts_with = "request")]
    pub commit: Option<String>,
    /// deploy-bot request's JSON output: the commit it put on the cluster branch.
    #[arg(long, value_name = "FILE")]
    pub request: Option<PathBuf>,
    /// Poll until the namespace runs the commit, at most this long (30s, 10m).
    #[arg(long, value_name = "DURATION", value_parser = microplatform_common::duration::parse)]
    pub wait: Option<Duration>,
    /// Time between polls.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = microplatform_common::duration::parse)]
    pub interval: Duration,
}

/// `notify` flags.
#[derive(Debug, Args)]
pub struct NotifyArgs {
    /// The agent's base URL.
    #[arg(long, value_name = "URL")]
    pub agent_url: String,
    /// The webhook path on the agent.
    #[arg(long, value_name = "PATH", default_value = "/webhooks")]
    pub path: String,
    /// The cluster repo (the payload's repository URL; the agent checks it is the one it watches).
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// The branch that moved.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub branch: String,
    /// The commit the branch moved to.
    #[arg(long, value_name = "SHA")]
    pub commit: String,
    /// File holding the webhook secret (else DEPLOY_BOT_WEBHOOK_SECRET).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// After sending, wait at most SECS seconds until the agent reports it applied the commit to --namespace
    /// (its GET /namespaces/NS) and the stack runs the pinned images with no replaced task still running
    /// (needs --compose), or, with --removed, until the stack has no services.
    #[arg(long, value_name = "SECS", requires = "namespace")]
    pub wait: Option<u64>,
    /// The compose file whose services and images the stack must run.
    #[arg(long, value_name = "FILE")]
    pub compose: Option<PathBuf>,
    /// The namespace was torn down (`request --delete`, merged): --wait waits until the stack has no services,
    /// and --if-needed sends nothing when it has none already.
    #[arg(long, requires = "wait", conflicts_with = "compose")]
    pub removed: bool,
    /// The swarm stack name (the cluster repo directory).
    #[arg(long, short = 'n', value_name = "NS", value_parser = microplatform_common::names::dns_label_arg)]
    pub namespace: Option<String>,
    /// Send nothing when the stack already runs the pinned images (needs --wait).
    #[arg(long, requires = "wait")]
    pub if_needed: bool,
    /// docker CLI to run (default: `docker` on PATH; DOCKER_HOST is honoured).
    #[arg(long, value_name = "PATH")]
    pub docker: Option<PathBuf>,
}

/// The author of the commits deploy-bot makes (`request`, `merge`).
#[derive(Debug, Args)]
pub struct AuthorArgs {
    /// Commit author name.
    #[arg(long, value_name = "NAME", default_value = "deploy-bot")]
    pub author_name: String,
    /// Commit author email.
    #[arg(
        long,
        value_name = "EMAIL",
        default_value = "deploy-bot@users.noreply.invalid"
    )]
    pub author_email: String,
}

impl AuthorArgs {
    /// The git identity.
    pub fn identity(self) -> deploy_bot::git::Identity {
        deploy_bot::git::Identity {
            name: self.author_name,
            email: self.author_email,
        }
    }
}

/// `merge` flags.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The cluster repo (any git URL).
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// The deploy branch to merge (deleted afterwards).
    #[arg(long, value_name = "BRANCH")]
    pub branch: String,
    /// The base branch (default: the remote's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub base: Option<String>,
    /// The commit's author.
    #[command(flatten)]
    pub author: AuthorArgs,
}

/// Commit status states.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StateArg {
    /// Deployed, smoke tests passed.
    Success,
    /// Smoke tests (or the deploy) failed.
    Failure,
    /// The pipeline broke.
    Error,
    /// Still running.
    Pending,
}

/// `report` flags.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("result").required(true).args(["smoke", "state"]))]
pub struct ReportArgs {
    /// Where to post: github (REST API), or none (post nothing; print what would be posted).
    #[arg(long, value_enum, default_value_t = ForgeKind::Github)]
    pub forge: ForgeKind,
    /// The source repository (the monorepo): OWNER/NAME, or a git URL (its last two path segments).
    #[arg(long, value_name = "OWNER/NAME|URL")]
    pub repo: String,
    /// GitHub API root (GitHub Enterprise: https://HOST/api/v3).
    #[arg(long, value_name = "URL", default_value = deploy_bot::github::DEFAULT_API_URL)]
    pub api_url: String,
    /// File holding the forge token (else GITHUB_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The source commit that was deployed (full sha): gets the commit status.
    #[arg(long, value_name = "SHA")]
    pub commit: String,
    /// The source branch: its open pull request gets the comment.
    #[arg(long, value_name = "BRANCH")]
    pub branch: String,
    /// The environment (dev, staging): status context `microplatform/<ENV>`, one comment per environment.
    #[arg(long, value_name = "NAME")]
    pub environment: String,
    /// The environment's URL (the status's target_url, and in the comment).
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// The smoke result: `deploy-bot smoke`'s JSON output (written when every check passed): state success,
    /// the checks listed in the comment.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["state"])]
    pub smoke: Option<PathBuf>,
    /// The state, without a smoke file.
    #[arg(long, value_enum)]
    pub state: Option<StateArg>,
    /// One line for the status (first 140 characters) and the comment (default: from --smoke, else the state).
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// The status context.
    #[arg(long, value_name = "CONTEXT", default_value = "microplatform/<ENV>")]
    pub context: String,
}

/// `agent` flags.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The cluster repo to watch (any git URL).
    #[arg(long, value_name = "URL")]
    pub repo: String,
    /// The branch to apply (default: the remote's default branch).
    #[arg(long, value_name = "BRANCH")]
    pub branch: Option<String>,
    /// State: the clone, the durable queue, what was applied per namespace.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// HTTP listen address.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3016")]
    pub listen: SocketAddr,
    /// Webhook path.
    #[arg(long, value_name = "PATH", default_value = "/webhooks")]
    pub path: String,
    /// Reconcile interval: apply the branch head even when webhooks are lost (500ms, 30s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = microplatform_common::duration::parse)]
    pub poll_interval: Duration,
    /// The applier.
    #[arg(long, value_enum, default_value_t = ApplierKind::Kubectl)]
    pub applier: ApplierKind,
    /// kubectl to run (default: `kubectl` on PATH).
    #[arg(long, value_name = "PATH")]
    pub kubectl: Option<PathBuf>,
    /// docker CLI to run for `--applier swarm` (default: `docker` on PATH; DOCKER_HOST is honoured).
    #[arg(long, value_name = "PATH")]
    pub docker: Option<PathBuf>,
    /// File holding the webhook secret (else DEPLOY_BOT_WEBHOOK_SECRET; without a secret the agent refuses to start).
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// Manage only these namespaces (repeatable; default: every top-level directory that is a DNS label).
    #[arg(long = "namespace", value_name = "NS", value_parser = microplatform_common::names::dns_label_arg)]
    pub namespaces: Vec<String>,
    /// Allow another kind besides the defaults (repeatable).
    #[arg(long = "allow-kind", value_name = "KIND")]
    pub allow_kinds: Vec<String>,
    /// Allow cluster-scoped objects (their kinds must still be allowed).
    #[arg(long)]
    pub allow_cluster_scoped: bool,
    /// Do not require images pinned by digest.
    #[arg(long)]
    pub allow_unpinned: bool,
    /// Only allow images from this registry (host or host/path prefix; repeatable).
    #[arg(long = "allowed-registry", value_name = "REGISTRY")]
    pub allowed_registries: Vec<String>,
    /// Where to report commit statuses and comments (github needs GITHUB_TOKEN).
    #[arg(long, value_enum, default_value_t = ForgeKind::None)]
    pub forge: ForgeKind,
    /// Forge options.
    #[command(flatten)]
    pub forge_args: ForgeArgs,
    /// Environment URL for statuses and comments; `{namespace}` is replaced.
    #[arg(long, value_name = "TEMPLATE")]
    pub environment_url: Option<String>,
    /// Apply pull requests to preview namespaces `<NS>-pr-<N>` (instead of a dry run).
    #[arg(long)]
    pub preview: bool,
    /// Tear preview environments down when their pull request closes.
    #[arg(long)]
    pub teardown_on_close: bool,
    /// Self-heal (the default): on the reconcile timer, compare the live state of every applied namespace with
    /// the repo and apply again when it drifted (`kubectl diff --server-side`; swarm: services, images, replicas).
    #[arg(long, overrides_with = "no_self_heal")]
    pub self_heal: bool,
    /// Do not repair drift: apply only when the namespace's directory changes in the repo.
    #[arg(long, overrides_with = "self_heal")]
    pub no_self_heal: bool,
    /// How often each applied namespace is checked for drift (default: every reconcile, see --poll-interval).
    #[arg(long, value_name = "DURATION", value_parser = microplatform_common::duration::parse)]
    pub self_heal_interval: Option<Duration>,
    /// Close a connection that has not sent a complete request head within this time (also idle keep-alive).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = microplatform_common::duration::parse)]
    pub header_timeout: Duration,
    /// Answer 408 to a request whose body has not arrived completely within this time.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = microplatform_common::duration::parse)]
    pub body_timeout: Duration,
    /// Most connections open at once (default: 1024, or fewer when the open-files limit is low). At the limit the
    /// connection idle or waiting for its request head the longest is closed, so real requests are still served.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
}
