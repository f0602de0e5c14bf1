//! Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one `stack.yaml`.
//! The `stackgen` binary: parse arguments, run the library, map errors to exit codes.

mod cli;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use microplatform_common::{exit, io};
use stackgen::stack::Stack;
use stackgen::steps::StepOptions;
use stackgen::workflow::{self, Kind, PodGc};
use stackgen::{compose, manifests, plan, resolve, schedule};

use cli::{
    Cli, Command, ContextArg, EndpointArg, ForgeArg, KindArg, PlanArgs, PodGcArg, RunArgs,
    WorkflowArgs,
};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    microplatform_common::cli::init_logging(cli.verbose, false);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => exit::fail::<stackgen::Error>("stackgen", &e, exit::INTERNAL),
    }
}

fn load(stack: Option<&PathBuf>) -> anyhow::Result<Stack> {
    let path = stack.map_or_else(|| PathBuf::from("stack.yaml"), Clone::clone);
    Ok(Stack::load(&path)?)
}

fn out(bytes: &[u8]) -> anyhow::Result<()> {
    io::write_stdout(bytes).context("writing to stdout")
}

/// The result document as JSON on stdout.
fn json_out(value: &impl serde::Serialize) -> anyhow::Result<()> {
    io::write_json_stdout(value).context("writing to stdout")
}

fn run(cli: Cli) -> anyhow::Result<()> {
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
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let summary = stackgen::summary::summarise(&stackgen::summary::SummaryOptions {
                out_dir: a.out_dir,
                seconds: (now - a.started_at).max(0.0),
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
        stack_file: "stack.yaml".into(),
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
    let mut stack = match stack {
        Some(p) => Some(Stack::load(p)?),
        None if Path::new("stack.yaml").is_file() => Some(Stack::load(Path::new("stack.yaml"))?),
        None => None,
    };
    if let Some(s) = stack.as_mut() {
        plan::apply_registry(s, w.registry.as_deref())?;
    }
    let text = io::read_stdin().context("reading monobuild's JSON from stdin")?;
    let sched = schedule::parse(&text)?;
    let ttl_seconds = w.ttl.as_deref().map(workflow::parse_ttl).transpose()?;
    let mut params = std::collections::BTreeMap::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            params.insert(k.to_string(), v);
        }
    };
    set("repo", w.repo.clone());
    set("revision", w.revision.clone());
    set("branch", w.branch.clone());
    set("base-branch", Some(w.run.base_branch.clone()));
    set(
        "registry",
        stack
            .as_ref()
            .map(|s| s.file.registry.clone())
            .or_else(|| w.registry.clone()),
    );
    set("tag", w.branch.as_deref().map(plan::tag).transpose()?);
    if let (Some(s), Some(b)) = (stack.as_ref(), w.branch.as_deref()) {
        set("namespace", Some(resolve::namespace(s, &w.environment, b)?));
        set(
            "url",
            Some(
                resolve::resolve(s, &w.environment, b)?
                    .url(None)
                    .unwrap_or_default(),
            ),
        );
    }
    set("environment", Some(w.environment.clone()));
    set("cluster-repo", w.cluster_repo.clone());
    set("cluster-branch", Some(w.run.cluster_branch.clone()));
    set("rc-registry", w.run.rc_registry.clone());
    set("agent-url", Some(w.run.agent_url.clone()));
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
