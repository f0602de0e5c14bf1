//! The plan of one delivery run (`stackgen plan`): the registry and tag rules, the jobs of a schedule, and the machine-readable JSON both executors read.
//!
//! Rules that live here and nowhere else:
//! - the image tag of a branch ([`tag`]): the branch slug;
//! - the registry override ([`registry`]);
//! - which components are built (the schedule's jobs with a Dockerfile, plus
//!   every component of the stack's services that the schedule does not name,
//!   so every image exists at the branch's tag when the stack is rendered).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::resolve;
use crate::schedule::Schedule;
use crate::stack::Stack;
use crate::steps::{self, Bind, StepOptions, Values};

/// The plan JSON's version.
pub const SCHEMA_VERSION: u32 = 1;

/// The image tag of every service built for a branch: the branch slug (a DNS
/// label of at most 63 characters, see `stackgen::slug`). Images of a branch are
/// overwritten by its next build; digest-resolve pins what is deployed.
pub fn tag(branch: &str) -> Result<String> {
    crate::slug::slug(branch)
}

/// The image prefix (`host[:port]/path`) of a stack under a registry override.
///
/// - no override: the stack file's `registry`;
/// - an override with a `/` (`host:port/path`): it replaces the registry as a whole;
/// - a bare host (`host:port`): it replaces the host of the stack file's
///   registry and keeps its path (the stack name when the registry has no path).
///
/// So `127.0.0.1:5000` on a stack with `registry: registry.example.com/shop`
/// gives `127.0.0.1:5000/shop`. The result with a path is a fixed point:
/// passing it again as the override gives it back.
pub fn registry(stack_registry: &str, stack_name: &str, over: Option<&str>) -> String {
    let Some(o) = over
        .map(|o| o.trim_end_matches('/'))
        .filter(|o| !o.is_empty())
    else {
        return stack_registry.to_string();
    };
    if o.contains('/') {
        return o.to_string();
    }
    let path = stack_registry
        .split_once('/')
        .map_or(stack_name, |(_, p)| p);
    format!("{o}/{path}")
}

/// Apply a registry override to a loaded stack (every later rendering uses it).
///
/// # Errors
///
/// `--registry` that is not an image prefix (`HOST[:PORT][/PATH]`, the rule of
/// `microplatform_common::reference::check_prefix`): a usage error.
pub fn apply_registry(stack: &mut Stack, over: Option<&str>) -> Result<()> {
    if let Some(o) = over {
        microplatform_common::reference::check_prefix(o).map_err(|why| Error::Usage {
            option: "--registry",
            message: format!("`{o}` {why}"),
        })?;
    }
    stack.file.registry = registry(&stack.file.registry, &stack.file.name, over);
    Ok(())
}

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// The component has a `Dockerfile`: an image build.
    Build,
    /// The component has a `stack.yaml`: render, pin and deliver it.
    Deploy,
    /// Neither (a library): nothing to run; keeps the edges.
    Pass,
}

/// A job of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// The component.
    pub component: String,
    /// What it does.
    pub kind: JobKind,
    /// monobuild's content hash of the component and its dependencies.
    pub hash: String,
    /// The image repository under the registry (`api`).
    pub image: String,
    /// The services of the stack whose image this is.
    pub services: Vec<String>,
    /// Jobs that must finish first.
    pub needs: Vec<String>,
    /// The build stage: 0 for a job that needs no build, else one more than
    /// the latest build it needs (libraries, which build nothing, add no stage).
    pub stage: usize,
    /// Whether monobuild scheduled it (affected by the change); unaffected
    /// images are built too, and normally skipped by their content key.
    pub affected: bool,
}

/// The default image repository of a component: lowercase, characters other
/// than `a-z0-9._/-` become `-`.
pub fn default_image(component: &str) -> String {
    let s: String = component
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '/' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    s.split('/')
        .map(|p| p.trim_matches(|c: char| !c.is_ascii_alphanumeric()))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/")
}

/// The jobs of a run: the schedule's jobs (build, deploy or pass, by what the
/// component directory holds under `repo_dir`), then a build for every
/// component of the stack's services that the schedule does not name.
pub fn jobs(schedule: &Schedule, stack: Option<&Stack>, repo_dir: &Path) -> Result<Vec<Job>> {
    // component -> (image, services), from every service of every environment.
    let mut images: BTreeMap<&str, (&str, Vec<String>)> = BTreeMap::new();
    if let Some(s) = stack {
        let all = s
            .file
            .services
            .iter()
            .chain(s.file.environments.values().flat_map(|e| e.add.iter()));
        for (name, svc) in all {
            if let Some(c) = svc.component.as_deref() {
                let e = images.entry(c).or_insert((svc.image.as_str(), Vec::new()));
                if !e.1.contains(name) {
                    e.1.push(name.clone());
                }
            }
        }
    }
    let kind_of = |component: &str| {
        let dir = repo_dir.join(component);
        if dir.join("Dockerfile").is_file() {
            JobKind::Build
        } else if dir.join(crate::stack::DEFAULT_PATH).is_file() {
            JobKind::Deploy
        } else {
            JobKind::Pass
        }
    };
    let mut out: Vec<Job> = Vec::with_capacity(schedule.jobs.len());
    let mut stage_of: HashMap<&str, (usize, bool)> = HashMap::with_capacity(schedule.jobs.len());
    for j in &schedule.jobs {
        let stage = j
            .needs
            .iter()
            .filter_map(|n| stage_of.get(n.as_str()))
            .map(|&(s, build)| s + usize::from(build))
            .max()
            .unwrap_or(0);
        let kind = kind_of(&j.name);
        stage_of.insert(&j.name, (stage, kind == JobKind::Build));
        let (image, services) = images.get(j.name.as_str()).map_or_else(
            || (default_image(&j.name), Vec::new()),
            |(i, s)| ((*i).to_string(), s.clone()),
        );
        out.push(Job {
            component: j.name.clone(),
            kind,
            hash: schedule.hashes[&j.name].clone(),
            image,
            services,
            needs: j.needs.clone(),
            stage,
            affected: true,
        });
    }
    for (component, (image, services)) in &images {
        if stage_of.contains_key(component) {
            continue;
        }
        let hash = schedule.hashes.get(*component).ok_or_else(|| Error::Naming {
            message: format!(
                "stack.yaml names component `{component}` (service `{}`), which monobuild does not know (no {component}/Dependencies)",
                services.join("`, `")
            ),
        })?;
        if kind_of(component) != JobKind::Build {
            return Err(Error::Naming {
                message: format!(
                    "component `{component}` (service `{}`) has no {component}/Dockerfile",
                    services.join("`, `")
                ),
            });
        }
        out.push(Job {
            component: (*component).to_string(),
            kind: JobKind::Build,
            hash: hash.clone(),
            image: (*image).to_string(),
            services: services.clone(),
            needs: Vec::new(),
            stage: 0,
            affected: false,
        });
    }
    Ok(out)
}

/// Inputs of a plan.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// The environment.
    pub env: &'a str,
    /// The branch.
    pub branch: &'a str,
    /// The branch changes are computed against.
    pub base_branch: &'a str,
    /// The revision (commit) built.
    pub revision: &'a str,
    /// The monorepo's git URL (Argo checks it out).
    pub repo: &'a str,
    /// The cluster repo.
    pub cluster_repo: &'a str,
    /// The branch of the cluster repo requests target.
    pub cluster_branch: &'a str,
    /// The release-candidate registry (`REGISTRY[/PREFIX]`; empty: none).
    pub rc_registry: &'a str,
    /// The deploy-bot agent's URL (`status --wait` of the verify steps).
    pub agent_url: &'a str,
    /// The port of the platform's plain-HTTP ingress (`--ingress-port`), which
    /// URLs then name; None: `https://` on port 443.
    pub ingress_port: Option<u16>,
    /// Step options.
    pub steps: StepOptions,
}

/// The workflow parameters of a run (also the plan's `parameters`). The stack
/// must already carry the registry override ([`apply_registry`]).
pub fn parameters(stack: &Stack, i: &PlanInput<'_>) -> Result<BTreeMap<String, String>> {
    let ns = resolve::namespace(stack, i.env, i.branch)?;
    let pairs = [
        ("repo", i.repo.to_string()),
        ("revision", i.revision.to_string()),
        ("branch", i.branch.to_string()),
        ("base-branch", i.base_branch.to_string()),
        ("registry", stack.file.registry.clone()),
        ("tag", tag(i.branch)?),
        ("namespace", ns),
        ("environment", i.env.to_string()),
        ("cluster-repo", i.cluster_repo.to_string()),
        ("cluster-branch", i.cluster_branch.to_string()),
        ("rc-registry", i.rc_registry.to_string()),
        ("agent-url", i.agent_url.to_string()),
        (
            "url",
            resolve::resolve(stack, i.env, i.branch)?
                .url(i.ingress_port)
                .unwrap_or_default(),
        ),
    ];
    debug_assert_eq!(pairs.len(), steps::PARAMETERS.len());
    Ok(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

#[derive(Serialize)]
struct StepJson {
    id: &'static str,
    cwd: steps::Cwd,
    argv: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<&'static str>,
}

fn step_json(s: &steps::Step, b: &dyn Bind) -> StepJson {
    StepJson {
        id: s.id,
        cwd: s.cwd,
        argv: s.render(b),
        stdout: s.stdout,
    }
}

#[derive(Serialize)]
struct PathPort {
    path: String,
    port: u32,
}

#[derive(Serialize)]
struct ServiceJson {
    name: String,
    component: Option<String>,
    image: String,
    repository: String,
    tag: String,
    reference: String,
    dockerfile: Option<String>,
    ports: Vec<u32>,
    replicas: u32,
    health: Option<PathPort>,
    ingress: Option<PathPort>,
    url: Option<String>,
    smoke: Option<SmokeJson>,
}

/// A smoke check of the plan: `deploy-bot smoke` reads these.
#[derive(Serialize)]
struct SmokeJson {
    path: String,
    /// The URL requested (the URL rule on the path); null without a host.
    url: Option<String>,
    status: u16,
    /// The regular expression the body must match.
    body: String,
}

#[derive(Serialize)]
struct BuildJson<'a> {
    #[serde(flatten)]
    job: &'a Job,
    reference: String,
    step: StepJson,
}

/// The plan as JSON. Without a schedule, `builds` and `libraries` are empty
/// (the diff step is what makes the schedule).
pub fn plan(stack: &Stack, i: &PlanInput<'_>, jobs: Option<&[Job]>) -> Result<serde_json::Value> {
    let params = parameters(stack, i)?;
    let no_inputs = BTreeMap::new();
    let values = Values {
        params: &params,
        inputs: &no_inputs,
    };
    let env = resolve::resolve(stack, i.env, i.branch)?;
    let tag = &params["tag"];
    let services: Vec<ServiceJson> = env
        .services
        .iter()
        .map(|(name, s)| {
            let repository = format!("{}/{}", env.registry, s.image);
            let ingress = s.ingress.as_ref().and_then(|ing| {
                resolve::ingress_port(s).map(|port| PathPort {
                    path: ing.path.clone(),
                    port,
                })
            });
            let url = s
                .ingress
                .as_ref()
                .and_then(|ing| env.url_of(&ing.path, i.ingress_port));
            let smoke = s.smoke.as_ref().zip(s.ingress.as_ref()).map(|(sm, ing)| {
                let path = sm.path(ing).to_string();
                SmokeJson {
                    url: env.url_of(&path, i.ingress_port),
                    path,
                    status: sm.status(),
                    body: sm.body.clone(),
                }
            });
            ServiceJson {
                name: (*name).to_string(),
                component: s.component.clone(),
                image: s.image.clone(),
                reference: format!("{repository}:{tag}"),
                repository,
                tag: tag.clone(),
                dockerfile: s.component.as_ref().map(|c| format!("{c}/Dockerfile")),
                ports: s.ports.iter().map(|p| p.port).collect(),
                replicas: s.replicas,
                health: s
                    .health
                    .as_ref()
                    .and_then(|h| h.http.as_ref())
                    .map(|h| PathPort {
                        path: h.path.clone(),
                        port: h.port,
                    }),
                ingress,
                url,
                smoke,
            }
        })
        .collect();
    let build_step = steps::build(&i.steps);
    let mut builds = Vec::new();
    let mut libraries = Vec::new();
    for j in jobs.unwrap_or_default() {
        match j.kind {
            JobKind::Build => {
                let inputs: BTreeMap<&'static str, String> = [
                    ("component", j.component.clone()),
                    ("source-hash", j.hash.clone()),
                    ("image", j.image.clone()),
                ]
                .into();
                let v = Values {
                    params: &params,
                    inputs: &inputs,
                };
                builds.push(BuildJson {
                    job: j,
                    reference: steps::image_ref(steps::Arg::Input("image")).render(&v),
                    step: step_json(&build_step, &v),
                });
            }
            JobKind::Deploy | JobKind::Pass => libraries.push(j.component.clone()),
        }
    }
    let stages = builds.iter().map(|b| b.job.stage + 1).max().unwrap_or(0);
    let diff = steps::diff(i.branch == i.base_branch);
    let deploy: Vec<StepJson> = steps::deploy_steps(&i.steps)
        .iter()
        .map(|s| step_json(s, &values))
        .collect();
    let verify: Vec<StepJson> = steps::verify_steps(&i.steps)
        .iter()
        .map(|s| step_json(s, &values))
        .collect();
    Ok(serde_json::json!({
        "schema_version": SCHEMA_VERSION,
        "stack": stack.file.name,
        "environment": i.env,
        "branch": i.branch,
        "revision": i.revision,
        "registry": stack.file.registry,
        "tag": tag,
        "namespace": env.namespace,
        "url": env.url(i.ingress_port),
        "parameters": params,
        "services": services,
        "builds": builds,
        "stages": stages,
        "libraries": libraries,
        "steps": {
            "diff": step_json(&diff, &values),
            "deploy": deploy,
            "verify": verify,
        },
        "promotion": promotion(stack, i)?,
    }))
}

/// The registry (image prefix) an environment's manifests reference: the build registry,
/// or for a release-candidate environment the release-candidate registry with the same
/// repository path (`digest-resolve --promote-to`'s mapping: `{rc}/{path}/{image}`).
pub fn environment_registry(stack: &Stack, env: &str, rc_registry: &str) -> String {
    if !stack.is_release_candidate(env) || rc_registry.is_empty() {
        return stack.file.registry.clone();
    }
    let path = stack
        .file
        .registry
        .split_once('/')
        .map_or(stack.file.name.as_str(), |(_, p)| p);
    format!("{}/{path}", rc_registry.trim_end_matches('/'))
}

/// The plan's `promotion`: the stack's order, this environment's gate and successor, and
/// `flow`, the environments this run deploys, in order. A run of the base branch for the
/// first environment of the order is the main flow (every environment after the first, up
/// to and including the first manual gate); any other run deploys its `--env` only.
fn promotion(stack: &Stack, i: &PlanInput<'_>) -> Result<serde_json::Value> {
    let order = &stack.file.promotion;
    let entry = |env: &str, gate: Option<crate::stack::Gate>| -> Result<serde_json::Value> {
        let e = resolve::resolve(stack, env, i.branch)?;
        Ok(serde_json::json!({
            "environment": env,
            "gate": gate.map(crate::stack::Gate::as_str),
            "release_candidate": stack.is_release_candidate(env),
            "namespace": e.namespace,
            "registry": environment_registry(stack, env, i.rc_registry),
            "url": e.url(i.ingress_port),
        }))
    };
    let main_flow = i.branch == i.base_branch && order.first().is_some_and(|f| f == i.env);
    let flow = if main_flow {
        stack
            .main_flow()
            .into_iter()
            .map(|(env, gate)| entry(env, Some(gate)))
            .collect::<Result<Vec<_>>>()?
    } else {
        let gate = stack.file.environments.get(i.env).and_then(|e| e.gate);
        vec![entry(i.env, gate)?]
    };
    let this = stack.file.environments.get(i.env);
    Ok(serde_json::json!({
        "order": order,
        "gate": this.and_then(|e| e.gate).map(crate::stack::Gate::as_str),
        "release_candidate": stack.is_release_candidate(i.env),
        "rc_registry": (!i.rc_registry.is_empty()).then_some(i.rc_registry),
        "registry": environment_registry(stack, i.env, i.rc_registry),
        "next": stack.next_environment(i.env).map(|(env, gate)| serde_json::json!({"environment": env, "gate": gate.as_str()})),
        "main_flow": main_flow,
        "flow": flow,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_override_rule() {
        assert_eq!(registry("r.example/shop", "shop", None), "r.example/shop");
        assert_eq!(
            registry("r.example/shop", "shop", Some("127.0.0.1:5000")),
            "127.0.0.1:5000/shop"
        );
        assert_eq!(registry("r.example", "shop", Some("h:1")), "h:1/shop");
        assert_eq!(
            registry("r.example/shop", "shop", Some("h:1/team/x")),
            "h:1/team/x"
        );
        let once = registry("r.example/a/b", "s", Some("h"));
        assert_eq!(once, "h/a/b");
        assert_eq!(registry("r.example/a/b", "s", Some(&once)), once);
    }

    #[test]
    fn tags_are_branch_slugs() {
        // The tag is the namespace's slug: a lossy branch name gets its hash suffix.
        assert_eq!(tag("feature-x").unwrap(), "feature-x");
        let lossy = tag("feature/Login").unwrap();
        assert!(
            lossy.starts_with("feature-login-") && lossy.len() == "feature-login-".len() + 8,
            "{lossy}"
        );
        assert!(tag("///").is_err());
    }
}
