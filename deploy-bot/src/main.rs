//! The `deploy-bot` binary: parse arguments, run the library, map errors to exit codes.

mod cli;

use std::io::IsTerminal;

use anyhow::Context as _;
use clap::Parser;
use deploy_bot::agent::{Agent, AgentConfig};
use deploy_bot::apply::Applier;
use deploy_bot::error::Error;
use deploy_bot::github::{GitHub, RepoId, Token};
use deploy_bot::request::{Forge, RequestOptions, request};
use deploy_bot::validate::Policy;
use microplatform_common::exit;

use cli::{ApplierKind, Cli, Command, ForgeArgs, ForgeKind, LogFormatArg, StateArg};
use deploy_bot::logging::LogFormat;

fn main() -> std::process::ExitCode {
    // deploy-bot is its own GIT_ASKPASS for git over HTTPS (see deploy_bot::git): answer git's prompt and stop.
    if std::env::var_os(deploy_bot::git::ASKPASS_ENV).is_some() {
        let prompt = std::env::args().nth(1).unwrap_or_default();
        return match deploy_bot::git::askpass_answer(&prompt) {
            Some(answer) => {
                println!("{answer}");
                std::process::ExitCode::SUCCESS
            }
            None => std::process::ExitCode::FAILURE,
        };
    }
    let cli = Cli::parse();
    let format = match cli.log_format {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    };
    // The agent is a long-running service: every delivery, apply, skip and failure is logged (info) by default.
    let default_level = if matches!(cli.command, Command::Agent(_)) {
        "info"
    } else {
        "warn"
    };
    deploy_bot::logging::init(cli.verbose, cli.quiet, format, default_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return exit::report("deploy-bot", &anyhow::Error::new(e), exit::INTERNAL);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => exit::fail::<Error>("deploy-bot", &e, exit::INTERNAL),
    }
}

fn github(args: &ForgeArgs, repo_url: &str) -> anyhow::Result<GitHub> {
    let token = std::env::var("GITHUB_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Auth {
            url: "GITHUB_TOKEN".into(),
            status: 0,
        })
        .context("GITHUB_TOKEN is not set (needed for --forge github)")?;
    let id = repo_id(args, repo_url)?;
    Ok(GitHub::new(&args.api_url, id, Token::new(token))?)
}

fn repo_id(args: &ForgeArgs, repo_url: &str) -> anyhow::Result<RepoId> {
    Ok(match &args.github_repo {
        Some(r) => RepoId::parse(r)?,
        None => RepoId::from_git_url(repo_url)?,
    })
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Completions { shell } => {
            microplatform_common::cli::print_completions::<Cli>(shell);
            Ok(())
        }
        Command::Man => {
            microplatform_common::cli::print_man::<Cli>().context("writing the man page")
        }
        Command::Request(a) => {
            deploy_bot::names::check_namespace(&a.namespace)?;
            let labels = a
                .labels
                .iter()
                .map(|l| deploy_bot::names::parse_label(l))
                .collect::<Result<Vec<_>, _>>()?;
            deploy_bot::git::check_url_credentials(&a.repo)?;
            let files = if a.delete {
                deploy_bot::manifests::Files::new()
            } else if let Some(d) = &a.dir {
                deploy_bot::manifests::read_dir(d, &a.namespace)?
            } else {
                if std::io::stdin().is_terminal() {
                    return Err(Error::Usage(
                        "no manifests: pipe them on stdin or pass --dir".into(),
                    )
                    .into());
                }
                let text =
                    microplatform_common::io::read_stdin().map_err(|e| Error::io("<stdin>", e))?;
                deploy_bot::manifests::split_stdin(&text, &a.namespace)?
            };
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
            microplatform_common::io::write_json_stdout(&out).context("writing stdout")?;
            Ok(())
        }
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
        Command::Status(a) => {
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
            microplatform_common::io::write_json_stdout(&s).context("writing stdout")?;
            Ok(())
        }
        Command::Smoke(a) => {
            let (text, source) = if a.plan.as_os_str() == "-" {
                (
                    microplatform_common::io::read_stdin()
                        .context("reading the plan from stdin")?,
                    "<stdin>".to_string(),
                )
            } else {
                (
                    std::fs::read_to_string(&a.plan).map_err(|e| Error::io(&a.plan, e))?,
                    a.plan.display().to_string(),
                )
            };
            let plan: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
                path: source.clone(),
                what: "not JSON".into(),
                source: e,
            })?;
            let opts = deploy_bot::smoke::SmokeOptions {
                timeout: a.timeout,
                interval: a.interval,
                request_timeout: a.request_timeout,
                out_dir: a.out_dir,
            };
            let by_name = match (a.by_name, a.base_image) {
                (true, Some(image)) => Some((a.docker.unwrap_or_else(|| "docker".into()), image)),
                _ => None,
            };
            let result = deploy_bot::smoke::run_plan(&plan, &source, by_name, &opts).await?;
            microplatform_common::io::write_json_stdout(&result).context("writing stdout")?;
            Ok(())
        }
        Command::Report(r) => report(r).await,
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
            microplatform_common::io::write_json_stdout(&out).context("writing stdout")?;
            Ok(())
        }
        Command::Agent(a) => {
            let secret = match &a.secret_file {
                Some(f) => std::fs::read_to_string(f)
                    .map_err(|e| Error::io(f, e))?
                    .trim_end_matches(['\n', '\r'])
                    .as_bytes()
                    .to_vec(),
                None => std::env::var("DEPLOY_BOT_WEBHOOK_SECRET")
                    .unwrap_or_default()
                    .into_bytes(),
            };
            if secret.is_empty() {
                return Err(Error::Usage(
                    "no webhook secret: set DEPLOY_BOT_WEBHOOK_SECRET or pass --secret-file (refusing to start)".into(),
                )
                .into());
            }
            for ns in &a.namespaces {
                deploy_bot::names::check_namespace(ns)?;
            }
            let refused = deploy_bot::validate::cluster_scoped_without_permission(
                &a.allow_kinds,
                a.allow_cluster_scoped,
            );
            if !refused.is_empty() {
                return Err(Error::Usage(format!(
                    "--allow-kind {}: cluster-scoped; pass --allow-cluster-scoped as well",
                    refused.join(", ")
                ))
                .into());
            }
            if !a.path.starts_with('/') {
                return Err(
                    Error::Usage(format!("--path {:?}: must start with '/'", a.path)).into(),
                );
            }
            deploy_bot::git::check_url_credentials(&a.repo)?;
            let branch = match a.branch {
                Some(b) => b,
                None => deploy_bot::git::remote_default_branch(&a.repo)?,
            };
            let applier = match a.applier {
                ApplierKind::Kubectl => {
                    Applier::Kubectl(a.kubectl.unwrap_or_else(|| "kubectl".into()))
                }
                ApplierKind::Swarm => Applier::Swarm(a.docker.unwrap_or_else(|| "docker".into())),
            };
            let mut policy = Policy {
                require_digest: !a.allow_unpinned,
                allow_cluster_scoped: a.allow_cluster_scoped,
                allowed_registries: a.allowed_registries,
                ..Policy::default()
            };
            policy.kinds.extend(a.allow_kinds);
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
    }
}

async fn notify(n: cli::NotifyArgs) -> anyhow::Result<()> {
    use deploy_bot::notify::{self, NotifyOptions, NotifyRun};
    let run = NotifyRun {
        send: NotifyOptions {
            agent_url: n.agent_url,
            path: n.path,
            repo: n.repo,
            branch: n.branch,
            commit: n.commit,
            secret: notify::read_secret(n.secret_file.as_deref())?,
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
    microplatform_common::io::write_json_stdout(&result).context("writing stdout")?;
    Ok(())
}

async fn report(a: cli::ReportArgs) -> anyhow::Result<()> {
    use deploy_bot::report::{self, Report, State};
    let (state, checks) = match (&a.smoke, a.state) {
        (Some(f), _) => (State::Success, report::read_smoke(f)?),
        (None, Some(s)) => (
            match s {
                StateArg::Success => State::Success,
                StateArg::Failure => State::Failure,
                StateArg::Error => State::Error,
                StateArg::Pending => State::Pending,
            },
            Vec::new(),
        ),
        (None, None) => {
            return Err(Error::Usage("pass --smoke FILE or --state STATE".into()).into());
        }
    };
    let description = a
        .description
        .clone()
        .unwrap_or_else(|| match (&a.smoke, state) {
            (Some(_), _) if checks.is_empty() => "deployed; no smoke checks declared".into(),
            (Some(_), _) => format!(
                "smoke passed: {} check{}",
                checks.len(),
                if checks.len() == 1 { "" } else { "s" }
            ),
            (None, State::Success) => "smoke passed".into(),
            (None, State::Failure) => "smoke failed".into(),
            (None, s) => s.as_str().into(),
        });
    let r = Report {
        context: a.context.replace("<ENV>", &a.environment),
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
            let token = match &a.token_file {
                Some(f) => std::fs::read_to_string(f)
                    .map_err(|e| Error::io(f, e))?
                    .trim()
                    .to_string(),
                None => std::env::var("GITHUB_TOKEN").unwrap_or_default(),
            };
            if token.is_empty() {
                return Err(anyhow::Error::new(Error::Auth {
                    url: "GITHUB_TOKEN".into(),
                    status: 0,
                })
                .context(match &a.token_file {
                    Some(f) => format!("--token-file {}: empty", f.display()),
                    None => {
                        "GITHUB_TOKEN is not set and no --token-file (needed for --forge github)"
                            .into()
                    }
                }));
            }
            Some(GitHub::new(
                &a.api_url,
                RepoId::from_git_url(&a.repo).map_err(|_| {
                    Error::Usage(format!(
                        "--repo {:?}: expected OWNER/NAME or a git URL ending in OWNER/NAME",
                        deploy_bot::git::redact_url(&a.repo)
                    ))
                })?,
                Token::new(token),
            )?)
        }
    };
    let out = report::report(gh.as_ref(), &r).await?;
    microplatform_common::io::write_json_stdout(&out).context("writing stdout")?;
    Ok(())
}
