//! The binary's commands: turn the parsed flags into the library's option structs, run it, and
//! write the result document to stdout.

use anyhow::Context as _;
use deploy_bot::agent::{Agent, AgentConfig};
use deploy_bot::apply::Applier;
use deploy_bot::github::{GitHub, RepoId, Token};
use deploy_bot::logging::LogFormat;
use deploy_bot::request::{Forge, RequestOptions, request};
use deploy_bot::validate::Policy;
use deploy_bot::{error::Error, report, smoke, webhook};
use microplatform_common::io::write_json_stdout;

use crate::cli::{
    AgentArgs, ApplierKind, Cli, Command, ForgeArgs, ForgeKind, LogFormatArg, NotifyArgs,
    ReportArgs, RequestArgs, SmokeArgs, StateArg, StatusArgs,
};

/// Start logging: the agent, a long-running service, logs every delivery, apply, skip and failure
/// (info) by default; the one-shot commands only warnings.
pub fn init_logging(cli: &Cli) {
    let format = match cli.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    let default_level = if matches!(cli.command, Command::Agent(_)) {
        "info"
    } else {
        "warn"
    };
    deploy_bot::logging::init(cli.verbose, cli.quiet, format, default_level);
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            microplatform_common::cli::print_completions::<Cli>(shell);
            Ok(())
        }
        Command::Man => {
            microplatform_common::cli::print_man::<Cli>().context("writing the man page")
        }
        Command::Request(a) => request_cmd(a).await,
        Command::Ingress(a) => {
            deploy_bot::ingress::run(deploy_bot::ingress::IngressConfig {
                listen: a.listen,
                docker_host: std::env::var("DOCKER_HOST").ok(),
                docker: a.docker.unwrap_or_else(|| "docker".into()),
                refresh: a.refresh,
                upstream_timeout: a.upstream_timeout,
            })
            .await?;
            Ok(())
        }
        Command::Notify(n) => notify(n).await,
        Command::Status(a) => status(a).await,
        Command::Smoke(a) => smoke_cmd(a).await,
        Command::Report(r) => report_cmd(r).await,
        Command::Merge(m) => {
            deploy_bot::git::check_url_credentials(&m.repo)?;
            let base = match m.base {
                Some(b) => b,
                None => deploy_bot::git::remote_default_branch(&m.repo)?,
            };
            let out = deploy_bot::merge::merge(&deploy_bot::merge::MergeOptions {
                repo: m.repo,
                branch: m.branch,
                base,
                identity: m.author.identity(),
            })?;
            write_json_stdout(&out).context("writing stdout")
        }
        Command::Agent(a) => agent(a).await,
    }
}

/// The forge client of `--forge github`: the token from `GITHUB_TOKEN`, the repository from
/// `--github-repo` or the git URL.
fn github(args: &ForgeArgs, repo_url: &str) -> anyhow::Result<GitHub> {
    let token = Token::from_file_or_env(None)?;
    Ok(GitHub::new(&args.api_url, repo_id(args, repo_url)?, token)?)
}

fn repo_id(args: &ForgeArgs, repo_url: &str) -> anyhow::Result<RepoId> {
    Ok(match &args.github_repo {
        Some(r) => RepoId::parse(r)?,
        None => RepoId::from_git_url(repo_url)?,
    })
}

async fn request_cmd(a: RequestArgs) -> anyhow::Result<()> {
    deploy_bot::names::check_namespace(&a.namespace)?;
    let labels = a
        .labels
        .iter()
        .map(|l| deploy_bot::names::parse_label(l))
        .collect::<Result<Vec<_>, _>>()?;
    deploy_bot::git::check_url_credentials(&a.repo)?;
    let files = deploy_bot::manifests::read_input(a.dir.as_deref(), a.delete, &a.namespace)?;
    let forge = match (a.forge, a.direct) {
        (ForgeKind::Github, false) => Forge::GitHub(github(&a.forge_args, &a.repo)?),
        _ => Forge::None,
    };
    let opts = RequestOptions {
        repo: a.repo,
        namespace: a.namespace,
        sha: a.sha,
        labels,
        base: a.base,
        direct: a.direct,
        delete: a.delete,
        forge,
        identity: a.author.identity(),
        release_candidate: a
            .release_candidate
            .as_deref()
            .map(deploy_bot::request::ReleaseCandidate::load)
            .transpose()?,
    };
    let out = request(&opts, &files).await?;
    write_json_stdout(&out).context("writing stdout")
}

async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let commit = match (&a.commit, &a.request) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(r)) => deploy_bot::status::commit_of_request(r)?,
        (None, None) => None,
    };
    let s = deploy_bot::status::status(&deploy_bot::status::StatusOptions {
        agent_url: a.agent_url,
        namespace: a.namespace,
        commit,
        wait: a.wait,
        interval: a.interval,
    })
    .await?;
    write_json_stdout(&s).context("writing stdout")
}

async fn smoke_cmd(a: SmokeArgs) -> anyhow::Result<()> {
    let (plan, source) = smoke::read_plan(&a.plan)?;
    let opts = smoke::SmokeOptions {
        timeout: a.timeout,
        interval: a.interval,
        request_timeout: a.request_timeout,
        out_dir: a.out_dir,
    };
    let by_name = match (a.by_name, a.base_image) {
        (true, Some(image)) => Some((a.docker.unwrap_or_else(|| "docker".into()), image)),
        _ => None,
    };
    let result = smoke::run_plan(&plan, &source, by_name, &opts).await?;
    write_json_stdout(&result).context("writing stdout")
}

async fn agent(a: AgentArgs) -> anyhow::Result<()> {
    let secret = webhook::read_secret(a.secret_file.as_deref())?;
    deploy_bot::agent::check_settings(&secret, &a.namespaces, &a.path)?;
    let policy = Policy::for_agent(
        a.allow_kinds,
        a.allow_cluster_scoped,
        a.allow_unpinned,
        a.allowed_registries,
    )?;
    deploy_bot::git::check_url_credentials(&a.repo)?;
    let branch = match a.branch {
        Some(b) => b,
        None => deploy_bot::git::remote_default_branch(&a.repo)?,
    };
    let applier = match a.applier {
        ApplierKind::Kubectl => Applier::Kubectl(a.kubectl.unwrap_or_else(|| "kubectl".into())),
        ApplierKind::Swarm => Applier::Swarm(a.docker.unwrap_or_else(|| "docker".into())),
    };
    let github = match a.forge {
        ForgeKind::Github => Some(github(&a.forge_args, &a.repo)?),
        ForgeKind::None => None,
    };
    let repo_id = repo_id(&a.forge_args, &a.repo).ok();
    let cfg = AgentConfig {
        repo: a.repo,
        branch,
        state_dir: a.state_dir,
        listen: a.listen,
        path: a.path,
        poll_interval: a.poll_interval,
        applier,
        secret,
        policy,
        namespaces: a.namespaces,
        repo_id,
        github,
        environment_url: a.environment_url,
        preview: a.preview,
        teardown_on_close: a.teardown_on_close,
        self_heal: !a.no_self_heal,
        self_heal_interval: a.self_heal_interval,
        limits: deploy_bot::server::Limits {
            header_timeout: a.header_timeout,
            max_connections: a
                .max_connections
                .map_or_else(deploy_bot::server::default_max_connections, |n| n as usize),
        },
        body_timeout: a.body_timeout,
    };
    Agent::new(cfg)?.run().await?;
    Ok(())
}

async fn notify(n: NotifyArgs) -> anyhow::Result<()> {
    use deploy_bot::notify::{self, NotifyOptions, NotifyRun};
    let run = NotifyRun {
        send: NotifyOptions {
            agent_url: n.agent_url,
            path: n.path,
            repo: n.repo,
            branch: n.branch,
            commit: n.commit,
            secret: webhook::read_secret(n.secret_file.as_deref())?,
            timeout: std::time::Duration::from_secs(30),
        },
        wait: n.wait.map(std::time::Duration::from_secs),
        compose: n.compose,
        removed: n.removed,
        namespace: n.namespace,
        if_needed: n.if_needed,
        docker: n.docker.unwrap_or_else(|| "docker".into()),
    };
    let result = notify::run(&run).await?;
    write_json_stdout(&result).context("writing stdout")
}

async fn report_cmd(a: ReportArgs) -> anyhow::Result<()> {
    let state = a.state.map(|s| match s {
        StateArg::Success => report::State::Success,
        StateArg::Failure => report::State::Failure,
        StateArg::Error => report::State::Error,
        StateArg::Pending => report::State::Pending,
    });
    let (state, checks) = report::outcome(a.smoke.as_deref(), state)?;
    let description = a
        .description
        .clone()
        .unwrap_or_else(|| report::default_description(a.smoke.is_some(), state, checks.len()));
    let r = report::Report {
        context: report::context(&a.context, &a.environment),
        environment: a.environment,
        commit: a.commit,
        branch: a.branch,
        url: a.url.filter(|u| !u.is_empty()),
        state,
        description,
        checks,
    };
    report::check(&r)?;
    let gh = match a.forge {
        ForgeKind::None => None,
        ForgeKind::Github => {
            let token = Token::from_file_or_env(a.token_file.as_deref())?;
            let repo = RepoId::from_git_url(&a.repo).map_err(|_| {
                Error::Usage(format!(
                    "--repo {:?}: expected OWNER/NAME or a git URL ending in OWNER/NAME",
                    deploy_bot::git::redact_url(&a.repo)
                ))
            })?;
            Some(GitHub::new(&a.api_url, repo, token)?)
        }
    };
    let out = report::report(gh.as_ref(), &r).await?;
    write_json_stdout(&out).context("writing stdout")
}
