//! Argo workflows from a monobuild schedule, and per-branch Kubernetes or Swarm stacks from one `stack.yaml`.
//! The `stackgen` binary: parse arguments, run the library, map errors to exit codes.

mod cli;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Parser;
use microplatform_common::{exit, io};
use stackgen::stack::Stack;
use stackgen::workflow::{self, Context, JobInfo, Kind, PodGc, TaskKind};
use stackgen::{compose, manifests, resolve, schedule};

use cli::{Cli, Command, ContextArg, EndpointArg, KindArg, PodGcArg, WorkflowArgs};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    microplatform_common::cli::init_logging(cli.verbose, false);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            let code = exit::code_of::<stackgen::Error>(&e, exit::INTERNAL);
            exit::report("stackgen", &e, code)
        }
    }
}

fn load(stack: Option<&PathBuf>) -> anyhow::Result<Stack> {
    let path = stack.map_or_else(|| PathBuf::from("stack.yaml"), Clone::clone);
    Ok(Stack::load(&path)?)
}

fn out(bytes: &[u8]) -> anyhow::Result<()> {
    io::write_stdout(bytes).context("writing to stdout")
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
            let s = load(cli.stack.as_ref())?;
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
            let s = load(cli.stack.as_ref())?;
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
        Command::Url(t) => {
            let s = load(cli.stack.as_ref())?;
            let env = resolve::resolve(&s, &t.env, &t.branch)?;
            let url = env
                .url()
                .ok_or_else(|| stackgen::Error::NoHost { env: t.env.clone() })?;
            out(format!("{url}\n").as_bytes())
        }
        Command::Schema => out(stackgen::stack::json_schema().as_bytes()),
        Command::Workflow(w) => workflow_cmd(cli.stack.as_ref(), &w),
        Command::Completions { shell } => {
            microplatform_common::cli::print_completions::<Cli>(shell);
            Ok(())
        }
        Command::Man => {
            microplatform_common::cli::print_man::<Cli>().context("writing the man page")
        }
    }
}

fn workflow_cmd(stack: Option<&PathBuf>, w: &WorkflowArgs) -> anyhow::Result<()> {
    // The stack file is optional here: it names images and the registry when present.
    let stack = match stack {
        Some(p) => Some(Stack::load(p)?),
        None if Path::new("stack.yaml").is_file() => Some(Stack::load(Path::new("stack.yaml"))?),
        None => None,
    };
    let text = io::read_stdin().context("reading monobuild's JSON from stdin")?;
    let sched = schedule::parse(&text)?;
    let ttl_seconds = w.ttl.as_deref().map(workflow::parse_ttl).transpose()?;
    let registry = w
        .registry
        .clone()
        .or_else(|| stack.as_ref().map(|s| s.file.registry.clone()));
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
        context: match w.context {
            ContextArg::Root => Context::Root,
            ContextArg::Component => Context::Component,
        },
        params: vec![
            ("repo", w.repo.clone()),
            ("revision", w.revision.clone()),
            ("branch", w.branch.clone()),
            ("registry", registry),
            ("environment", Some(w.environment.clone())),
            ("cluster-repo", w.cluster_repo.clone()),
        ],
        token_secret: w.token_secret.clone(),
    };
    let repo_dir = w.repo_dir.clone();
    let info = |component: &str| -> JobInfo {
        let dir = repo_dir.join(component);
        let kind = if dir.join("Dockerfile").is_file() {
            TaskKind::Build
        } else if dir.join("stack.yaml").is_file() {
            TaskKind::Deploy
        } else {
            TaskKind::Pass
        };
        let image = stack
            .as_ref()
            .and_then(|s| {
                s.file
                    .services
                    .values()
                    .chain(s.file.environments.values().flat_map(|e| e.add.values()))
                    .find(|svc| svc.component.as_deref() == Some(component))
                    .map(|svc| svc.image.clone())
            })
            .unwrap_or_else(|| workflow::default_image(component));
        JobInfo { kind, image }
    };
    let doc = workflow::generate(&sched, &options, &info)?;
    let text = manifests::to_yaml(&doc);
    // The process ends now: freeing thousands of small values is wasted time.
    std::mem::forget(doc);
    std::mem::forget(sched);
    out(text.as_bytes())
}
