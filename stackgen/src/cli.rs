//! Command-line interface of `stackgen` (clap derive; doc comments are the help).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use microplatform_common::cli::Shell;
use microplatform_common::exit;

/// The help's epilogue: the exit codes from the one table in `common`.
fn after_help() -> String {
    format!(
        "{}\nErrors are one line on stderr naming the file, line and key (or the JSON field); stdout stays empty.",
        exit::help(&[
            (exit::SUCCESS, ""),
            (exit::FAILURE, "a file could not be written"),
            (
                exit::USAGE,
                "bad flags; a branch that slugs to nothing; a bad --tag, --ttl or --name",
            ),
            (
                exit::INPUT,
                "stack file YAML or key, schedule JSON of the wrong version or shape, a run's step output",
            ),
            (
                exit::NOT_FOUND,
                "the stack file, an environment, an environment's host, an input file",
            ),
            (
                exit::CYCLE,
                "the schedule's job graph (unknown need, cycle)"
            ),
            (exit::VALIDATION, "stack file values, task name collisions",),
            (exit::INTERNAL, ""),
        ])
    )
}

/// Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one stack.yaml.
///
/// No network I/O: digest-resolve pins the images named here, deploy-bot delivers.
#[derive(Debug, Parser)]
#[command(name = "stackgen", version, after_help = after_help())]
pub struct Cli {
    /// The stack file [default: stack.yaml in the current directory].
    #[arg(long, global = true, value_name = "FILE", env = "STACKGEN_STACK")]
    pub stack: Option<PathBuf>,

    /// More logs on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check the stack file; prints a one-line summary.
    Validate,
    /// Read monobuild's JSON on stdin, write an Argo `Workflow` (or `WorkflowTemplate`) on stdout.
    Workflow(WorkflowArgs),
    /// Write the Kubernetes manifests of an environment for a branch.
    Manifests(Render),
    /// Write the Docker Swarm stack file (compose 3.8) of an environment for a branch.
    Compose(ComposeArgs),
    /// Print the plan of a run as JSON: namespace, tag, services, and the exact
    /// command line of every step (diff, build per job, compose, manifests, resolve, request).
    ///
    /// Without --schedule the plan has no builds (run its diff step, then plan again
    /// with monobuild's JSON). scripts/pipeline runs what this prints.
    Plan(PlanArgs),
    /// Print the alias of an environment for a branch (Kubernetes namespace, Docker stack name).
    Namespace(Target),
    /// Print the URL of an environment for a branch.
    Url(UrlArgs),
    /// Print the record of a run (summary.json) assembled from what the plan's
    /// steps wrote in its directory, and the human summary on stderr.
    ///
    /// Reads OUT/monobuild.json, OUT/builds/*.json and the plan.json,
    /// request.json, notify.json and smoke.json of the environment applied
    /// last (OUT, or in the main flow OUT/envs/ENV per OUT/environments.jsonl).
    /// The stack file is not read.
    Summary(SummaryArgs),
    /// Print the JSON Schema of the stack file.
    Schema,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff).
    Man,
}

/// An environment and a branch.
#[derive(Debug, Args)]
pub struct Target {
    /// The environment (declared in the stack file).
    #[arg(long, short = 'e', value_name = "ENV")]
    pub env: String,
    /// The git branch (made a DNS label).
    #[arg(long, short = 'b', value_name = "BRANCH")]
    pub branch: String,
}

/// `url` arguments.
#[derive(Debug, Args)]
pub struct UrlArgs {
    #[command(flatten)]
    pub target: Target,
    /// The platform's ingress answers plain HTTP on this port (the local platform's
    /// `deploy-bot ingress`): URLs are `http://HOST:PORT/` instead of `https://HOST/`.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ingress_port: Option<u16>,
}

/// `summary` arguments.
#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// The run's directory (scripts/pipeline's --out).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// When the run started, in seconds since the epoch (`date +%s.%N`): the
    /// record's `seconds` is the time from then to now.
    #[arg(long, value_name = "EPOCH_SECONDS")]
    pub started_at: f64,
    /// Write the record to this file (atomically: a temporary file, then a rename) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// For the `try:` lines (one per ingress path, called by service name on the
    /// stack's network): the image with wget, run with `DOCKER_HOST` and --docker.
    #[arg(long, value_name = "IMAGE")]
    pub try_image: Option<String>,
    /// The docker CLI named in the `try:` lines.
    #[arg(long, value_name = "PATH", default_value = "docker")]
    pub docker: String,
}

/// An environment, a branch and the image tag.
#[derive(Debug, Args)]
pub struct Render {
    #[command(flatten)]
    pub target: Target,
    /// The image tag of every service (images are {registry}/{image}:{tag}).
    #[arg(long, short = 't', value_name = "TAG")]
    pub tag: String,
    /// Registry override: `HOST[:PORT]` replaces the host of the stack file's registry
    /// (its path stays), `HOST[:PORT]/PATH` replaces it as a whole.
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// Write one file per object into DIR/<namespace>/ (replaced as a whole) instead of stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `compose` arguments.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    #[command(flatten)]
    pub target: Target,
    /// The image tag of every service.
    #[arg(long, short = 't', value_name = "TAG")]
    pub tag: String,
    /// Registry override (as for `manifests`).
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// Write the stack file to FILE (atomically) instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// How services find each other: `dnsrr` (names resolve to the tasks; works on engines
    /// without iptables or IPVS) or `vip` (a load-balanced virtual IP, Docker's default).
    #[arg(long, value_enum, default_value_t = EndpointArg::Dnsrr)]
    pub endpoint_mode: EndpointArg,
}

/// `--endpoint-mode`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EndpointArg {
    /// DNS round robin over the tasks' addresses.
    Dnsrr,
    /// A virtual IP load-balanced by IPVS.
    Vip,
}

/// `workflow` arguments.
#[derive(Debug, Args)]
pub struct WorkflowArgs {
    /// `Workflow` (submitted as is) or `WorkflowTemplate`.
    #[arg(long, value_enum, default_value_t = KindArg::Workflow)]
    pub kind: KindArg,
    /// metadata.name of a template, the generateName prefix of a workflow.
    #[arg(long, default_value = "build")]
    pub name: String,
    /// metadata.namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    /// spec.serviceAccountName.
    #[arg(long, value_name = "NAME")]
    pub service_account: Option<String>,
    /// spec.parallelism: at most N pods at once.
    #[arg(long, value_name = "N")]
    pub parallelism: Option<u32>,
    /// Delete the workflow this long after it completes (`3600`, `90s`, `30m`, `12h`, `7d`).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Pod garbage collection.
    #[arg(long, value_enum, value_name = "STRATEGY")]
    pub pod_gc: Option<PodGcArg>,
    /// Retries of each build and deploy task (0: none).
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub retries: u32,
    /// The toolkit's own image (build-with-cache, stackgen, digest-resolve, deploy-bot).
    #[arg(
        long,
        value_name = "IMAGE",
        default_value = "microplatform/tools:latest"
    )]
    pub toolkit_image: String,
    /// The Docker-in-Docker sidecar image of build tasks.
    #[arg(long, value_name = "IMAGE", default_value = "docker:24-dind")]
    pub dind_image: String,
    /// Where the repository is checked out, to tell build jobs (a Dockerfile) from deploy jobs (a stack.yaml).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo_dir: PathBuf,
    /// Default of the `repo` parameter: the git URL the checkout task clones.
    #[arg(long, value_name = "URL")]
    pub repo: Option<String>,
    /// Default of the `revision` parameter (the commit built).
    #[arg(long)]
    pub revision: Option<String>,
    /// Default of the `branch` parameter; with the stack file it also gives the
    /// `tag` (the branch slug) and `namespace` parameters.
    #[arg(long)]
    pub branch: Option<String>,
    /// Default of the `registry` parameter: the image prefix, the stack file's
    /// registry under this override (see `manifests --registry`).
    #[arg(long)]
    pub registry: Option<String>,
    /// Default of the `environment` parameter that the deploy steps render.
    #[arg(long, visible_alias = "env", default_value = "dev")]
    pub environment: String,
    /// Default of the `cluster-repo` parameter (deploy-bot's cluster repository).
    #[arg(long, value_name = "URL")]
    pub cluster_repo: Option<String>,
    /// Do not add the stack's deploy steps (compose, manifests, resolve, request) after the builds.
    #[arg(long)]
    pub no_deploy: bool,
    /// Size of the work volume every task mounts at /work.
    #[arg(long, value_name = "QUANTITY", default_value = "1Gi")]
    pub work_size: String,
    #[command(flatten)]
    pub run: RunArgs,
    /// The Secret whose key `token` deploy tasks pass to deploy-bot as `GITHUB_TOKEN` (optional).
    #[arg(long, value_name = "NAME", default_value = "deploy-bot-github")]
    pub token_secret: String,
}

/// What `plan` and `workflow` share: the run's settings and the step options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The branch changes are computed against (default of the `base-branch` parameter).
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub base_branch: String,
    /// The cluster repo's branch that requests target (`cluster-branch` parameter).
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    pub cluster_branch: String,
    /// A build argument of every image build, `KEY=VALUE` (repeatable).
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// The build context: the repository root (Dockerfiles may copy shared libraries) or the component directory.
    #[arg(long, value_enum, default_value_t = ContextArg::Root)]
    pub context: ContextArg,
    /// A plain-HTTP registry host digest-resolve may use (`digest-resolve --insecure-registry`).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub insecure_registry: Option<String>,
    /// Where deploy-bot request opens the pull request.
    #[arg(long, value_enum, default_value_t = ForgeArg::Github)]
    pub forge: ForgeArg,
    /// How Swarm services find each other in the rendered compose file.
    #[arg(long, value_enum, default_value_t = EndpointArg::Dnsrr)]
    pub endpoint_mode: EndpointArg,
    /// The release-candidate registry (`REGISTRY[/PREFIX]`, the `rc-registry` parameter):
    /// environments after the first of the stack's `promotion` are promoted into it
    /// (`digest-resolve --promote-to`). Needed for those environments.
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub rc_registry: Option<String>,
    /// The cluster's deploy-bot agent, which the verify steps of an `auto`-gated
    /// environment ask (`deploy-bot status --wait`) before its smoke checks.
    #[arg(
        long,
        value_name = "URL",
        default_value = "http://deploy-bot.deploy-bot.svc.cluster.local"
    )]
    pub agent_url: String,
}

/// `--forge` of deploy-bot request.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ForgeArg {
    /// A GitHub pull request (token from the environment).
    Github,
    /// Push the deploy branch only.
    None,
}

/// `plan` arguments.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub target: Target,
    /// The commit built (`revision`; deploy-bot records it).
    #[arg(long, value_name = "SHA", default_value = "")]
    pub revision: String,
    /// Registry override (as for `manifests`).
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// The monorepo's git URL (`repo` parameter).
    #[arg(long, value_name = "URL", default_value = "")]
    pub repo: String,
    /// The cluster repo deploy-bot delivers to (`cluster-repo` parameter).
    #[arg(long, value_name = "URL", default_value = "")]
    pub cluster_repo: String,
    /// monobuild's JSON (`monobuild diff --format json`); `-` for stdin. Without it the plan has no builds.
    #[arg(long, value_name = "FILE")]
    pub schedule: Option<PathBuf>,
    /// Where the repository is checked out (to find each component's Dockerfile).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub repo_dir: PathBuf,
    /// The platform's ingress answers plain HTTP on this port: the plan's URLs are
    /// `http://HOST:PORT/PATH` instead of `https://HOST/PATH`.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub ingress_port: Option<u16>,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// An Argo Workflow.
    Workflow,
    /// An Argo `WorkflowTemplate`.
    Template,
}

/// `--context`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ContextArg {
    /// The repository root.
    Root,
    /// The component's directory.
    Component,
}

/// `--pod-gc`: Argo's four strategies (their names are Argo's).
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PodGcArg {
    /// Delete each pod when it completes.
    #[value(name = "OnPodCompletion")]
    OnPodCompletion,
    /// Delete each pod when it succeeds.
    #[value(name = "OnPodSuccess")]
    OnPodSuccess,
    /// Delete the pods when the workflow completes.
    #[value(name = "OnWorkflowCompletion")]
    OnWorkflowCompletion,
    /// Delete the pods when the workflow succeeds.
    #[value(name = "OnWorkflowSuccess")]
    OnWorkflowSuccess,
}
