//! The binary's commands: turn the parsed flags into the library's option structs, run it, and
//! write the result to stdout (or the file named by a flag).

use std::path::PathBuf;

use anyhow::Context as _;
use microplatform_common::io;
use stackgen::stack::Stack;
use stackgen::steps::StepOptions;
use stackgen::workflow::{self, Kind, PodGc};
use stackgen::{compose, manifests, plan, resolve, schedule};

use crate::cli::{
    Cli, Command, ContextArg, EndpointArg, ForgeArg, KindArg, PlanArgs, PodGcArg, RunArgs,
    WorkflowArgs,
};

fn load(stack: Option<&PathBuf>) -> anyhow::Result<Stack> {
    Ok(Stack::load_or_default(stack.map(PathBuf::as_path))?)
}

fn out(bytes: &[u8]) -> anyhow::Result<()> {
    io::write_stdout(bytes).context("writing to stdout")
}

/// The result document as JSON on stdout.
fn json_out(value: &impl serde::Serialize) -> anyhow::Result<()> {
    io::write_json_stdout(value).context("writing to stdout")
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Validate => {
            let s = load(cli.stack.as_ref())?;
            let line = format!(
                "{}: ok: stack `{}`, {} services, environments: {}\n",
                s.path,
                s.file.name,
                s.file.services.len(),
                s.environment_names()
            );
            out(line.as_bytes())
        }
        Command::Manifests(r) => {
            resolve::check_tag(&r.tag)?;
            let mut s = load(cli.stack.as_ref())?;
            plan::apply_registry(&mut s, r.registry.as_deref())?;
            let env = resolve::resolve(&s, &r.target.env, &r.target.branch)?;
            let result = if let Some(dir) = &r.out_dir {
                let docs = manifests::documents(&env, &r.tag);
                let target = manifests::write_dir(dir, &env.namespace, &docs)?;
                tracing::info!("wrote {} objects to {}", docs.len(), target.display());
                Ok(())
            } else {
                let text = manifests::render(&env, &r.tag);
                let result = out(text.as_bytes());
                std::mem::forget(text);
                result
            };
            // The process ends now: freeing thousands of small values is wasted time.
            std::mem::forget(env);
            std::mem::forget(s);
            result
        }
        Command::Compose(c) => {
            resolve::check_tag(&c.tag)?;
            let mut s = load(cli.stack.as_ref())?;
            plan::apply_registry(&mut s, c.registry.as_deref())?;
            let env = resolve::resolve(&s, &c.target.env, &c.target.branch)?;
            let mode = match c.endpoint_mode {
                EndpointArg::Dnsrr => compose::EndpointMode::Dnsrr,
                EndpointArg::Vip => compose::EndpointMode::Vip,
            };
            let doc = compose::document(&env, &c.tag, mode);
            let text = manifests::to_yaml(&doc);
            // The process ends now: freeing thousands of small values is wasted time.
            std::mem::forget(doc);
            std::mem::forget(env);
            std::mem::forget(s);
            if let Some(path) = &c.output {
                io::atomic_write(path, text.as_bytes()).map_err(|source| {
                    stackgen::Error::Write {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
                Ok(())
            } else {
                out(text.as_bytes())
            }
        }
        Command::Namespace(t) => {
            let s = load(cli.stack.as_ref())?;
            let ns = resolve::namespace(&s, &t.env, &t.branch)?;
            out(format!("{ns}\n").as_bytes())
        }
        Command::Url(u) => {
            let t = &u.target;
            let s = load(cli.stack.as_ref())?;
            let env = resolve::resolve(&s, &t.env, &t.branch)?;
            let url = env
                .url(u.ingress_port)
                .ok_or_else(|| stackgen::Error::NoHost { env: t.env.clone() })?;
            out(format!("{url}\n").as_bytes())
        }
        Command::Summary(a) => {
            let summary = stackgen::summary::summarise(&stackgen::summary::SummaryOptions {
                out_dir: a.out_dir,
                seconds: stackgen::summary::seconds_since(a.started_at),
                try_with: a.try_image.map(|image| stackgen::summary::TryWith {
                    docker_host: std::env::var("DOCKER_HOST").unwrap_or_default(),
                    docker: a.docker,
                    image,
                }),
            })?;
            match &a.output {
                Some(path) => {
                    let mut json =
                        serde_json::to_vec_pretty(&summary.json).context("summary JSON")?;
                    json.push(b'\n');
                    io::atomic_write(path, &json)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                None => json_out(&summary.json)?,
            }
            eprint!("{}", summary.text);
            Ok(())
        }
        Command::Schema => json_out(&stackgen::stack::schema()),
        Command::Workflow(w) => workflow_cmd(cli.stack.as_ref(), &w),
        Command::Plan(p) => plan_cmd(cli.stack.as_ref(), &p),
        Command::Completions { shell } => {
            microplatform_common::cli::print_completions::<Cli>(shell);
            Ok(())
        }
        Command::Man => {
            microplatform_common::cli::print_man::<Cli>().context("writing the man page")
        }
    }
}

/// The step options of a run of `env`: the flags, then the environment's rules (see
/// [`StepOptions::for_environment`]).
fn step_options(r: &RunArgs, stack: Option<&Stack>, env: &str) -> anyhow::Result<StepOptions> {
    let flags = StepOptions {
        build_args: r.build_args.clone(),
        component_context: matches!(r.context, ContextArg::Component),
        insecure_registry: r.insecure_registry.clone(),
        forge: match r.forge {
            ForgeArg::Github => "github",
            ForgeArg::None => "none",
        }
        .into(),
        endpoint_mode: match r.endpoint_mode {
            EndpointArg::Dnsrr => "dnsrr",
            EndpointArg::Vip => "vip",
        }
        .into(),
        stack_file: stackgen::stack::DEFAULT_PATH.into(),
        ..StepOptions::default()
    };
    Ok(flags.for_environment(stack, env, r.rc_registry.as_deref().unwrap_or_default())?)
}

fn plan_cmd(stack: Option<&PathBuf>, p: &PlanArgs) -> anyhow::Result<()> {
    let mut s = load(stack)?;
    plan::apply_registry(&mut s, p.registry.as_deref())?;
    let jobs = match &p.schedule {
        None => None,
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                io::read_stdin().context("reading monobuild's JSON from stdin")?
            } else {
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?
            };
            let sched = schedule::parse(&text)?;
            Some(plan::jobs(&sched, Some(&s), &p.repo_dir)?)
        }
    };
    let input = plan::PlanInput {
        env: &p.target.env,
        branch: &p.target.branch,
        base_branch: &p.run.base_branch,
        revision: &p.revision,
        repo: &p.repo,
        cluster_repo: &p.cluster_repo,
        cluster_branch: &p.run.cluster_branch,
        rc_registry: p.run.rc_registry.as_deref().unwrap_or_default(),
        agent_url: &p.run.agent_url,
        ingress_port: p.ingress_port,
        steps: step_options(&p.run, Some(&s), &p.target.env)?,
    };
    let doc = plan::plan(&s, &input, jobs.as_deref())?;
    json_out(&doc)
}

fn workflow_cmd(stack: Option<&PathBuf>, w: &WorkflowArgs) -> anyhow::Result<()> {
    // The stack file is optional here: it names images and the registry when present.
    let mut stack = Stack::discover(stack.map(PathBuf::as_path))?;
    if let Some(s) = stack.as_mut() {
        plan::apply_registry(s, w.registry.as_deref())?;
    }
    let text = io::read_stdin().context("reading monobuild's JSON from stdin")?;
    let sched = schedule::parse(&text)?;
    let ttl_seconds = w.ttl.as_deref().map(workflow::parse_ttl).transpose()?;
    let params = workflow::parameter_defaults(
        stack.as_ref(),
        &workflow::RunValues {
            repo: w.repo.clone(),
            revision: w.revision.clone(),
            branch: w.branch.clone(),
            base_branch: w.run.base_branch.clone(),
            registry: w.registry.clone(),
            environment: w.environment.clone(),
            cluster_repo: w.cluster_repo.clone(),
            cluster_branch: w.run.cluster_branch.clone(),
            rc_registry: w.run.rc_registry.clone(),
            agent_url: w.run.agent_url.clone(),
        },
    )?;
    let options = workflow::Options {
        kind: match w.kind {
            KindArg::Workflow => Kind::Workflow,
            KindArg::Template => Kind::Template,
        },
        name: w.name.clone(),
        namespace: w.namespace.clone(),
        service_account: w.service_account.clone(),
        parallelism: w.parallelism,
        ttl_seconds,
        pod_gc: w.pod_gc.map(|p| match p {
            PodGcArg::OnPodCompletion => PodGc::OnPodCompletion,
            PodGcArg::OnPodSuccess => PodGc::OnPodSuccess,
            PodGcArg::OnWorkflowCompletion => PodGc::OnWorkflowCompletion,
            PodGcArg::OnWorkflowSuccess => PodGc::OnWorkflowSuccess,
        }),
        retries: w.retries,
        toolkit_image: w.toolkit_image.clone(),
        dind_image: w.dind_image.clone(),
        steps: step_options(&w.run, stack.as_ref(), &w.environment)?,
        deploy: stack.is_some() && !w.no_deploy,
        params,
        work_size: w.work_size.clone(),
        token_secret: w.token_secret.clone(),
    };
    let jobs = plan::jobs(&sched, stack.as_ref(), &w.repo_dir)?;
    let doc = workflow::generate(&jobs, &options)?;
    let text = manifests::to_yaml(&doc);
    workflow::check_size(&text, jobs.len())?;
    // The process ends now: freeing thousands of small values is wasted time.
    std::mem::forget(doc);
    std::mem::forget(sched);
    out(text.as_bytes())
}
