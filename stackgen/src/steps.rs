//! The command lines of every delivery step (diff, build, render, resolve, request), defined once and rendered for both executors: concrete values for `scripts/pipeline` (through `stackgen plan`), Argo placeholders for `stackgen workflow`.
//!
//! A step is a program and its arguments; an argument is literal text, a
//! workflow parameter (`registry`, `tag`, ...), a per-job input (`component`,
//! `source-hash`, `image`) or a concatenation of those. The plan binds
//! parameters and inputs to values; the workflow binds them to
//! `{{workflow.parameters.NAME}}` and `{{inputs.parameters.NAME}}`. So both
//! executors run the same command lines, and a rule changes in this file only.

use std::collections::BTreeMap;

use serde::Serialize;

/// The workflow parameters every step may use (names as in the Argo Workflow and in the plan's `parameters`).
pub const PARAMETERS: [&str; 13] = [
    "repo",
    "revision",
    "branch",
    "base-branch",
    "registry",
    "tag",
    "namespace",
    "environment",
    "cluster-repo",
    "cluster-branch",
    "rc-registry",
    "agent-url",
    "url",
];

/// The per-job inputs of a build step.
pub const INPUTS: [&str; 3] = ["component", "source-hash", "image"];

/// One argument of a command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Literal text.
    Lit(String),
    /// A workflow parameter.
    Param(&'static str),
    /// A per-job input.
    Input(&'static str),
    /// The concatenation of the parts.
    Cat(Vec<Arg>),
}

fn lit(s: impl Into<String>) -> Arg {
    Arg::Lit(s.into())
}

/// Where a step runs: the source checkout (`src/` of the work directory) or the work directory itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Cwd {
    /// The checkout of the monorepo (`WORK/src`): `"src"` in the plan.
    #[serde(rename = "src")]
    Src,
    /// The work directory (`WORK`): outputs go to `WORK/deploy`, `WORK/manifests`: `"."` in the plan.
    #[serde(rename = ".")]
    Work,
}

impl Cwd {
    /// The directory relative to the work directory.
    pub fn rel(self) -> &'static str {
        match self {
            Cwd::Src => "src",
            Cwd::Work => ".",
        }
    }
}

/// A step: its id, where it runs, its command line, and the file its stdout goes to (relative to the work directory).
#[derive(Debug, Clone)]
pub struct Step {
    /// `diff`, `build`, `compose`, `manifests`, `resolve`, `request`.
    pub id: &'static str,
    /// Where it runs.
    pub cwd: Cwd,
    /// The program and its arguments.
    pub argv: Vec<Arg>,
    /// The file that receives stdout, if any.
    pub stdout: Option<&'static str>,
}

/// How arguments get their values.
pub trait Bind {
    /// The value of a workflow parameter.
    fn param(&self, name: &str) -> String;
    /// The value of a per-job input.
    fn input(&self, name: &str) -> String;
}

/// Argo placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Argo;

impl Bind for Argo {
    fn param(&self, name: &str) -> String {
        format!("{{{{workflow.parameters.{name}}}}}")
    }
    fn input(&self, name: &str) -> String {
        format!("{{{{inputs.parameters.{name}}}}}")
    }
}

/// Concrete values (the plan).
#[derive(Debug, Clone, Copy)]
pub struct Values<'a> {
    /// Workflow parameters.
    pub params: &'a BTreeMap<String, String>,
    /// Inputs of the job (empty for steps without any).
    pub inputs: &'a BTreeMap<&'static str, String>,
}

impl Bind for Values<'_> {
    fn param(&self, name: &str) -> String {
        self.params.get(name).cloned().unwrap_or_default()
    }
    fn input(&self, name: &str) -> String {
        self.inputs.get(name).cloned().unwrap_or_default()
    }
}

impl Arg {
    /// The argument's text under a binding.
    pub fn render(&self, b: &dyn Bind) -> String {
        match self {
            Arg::Lit(s) => s.clone(),
            Arg::Param(p) => b.param(p),
            Arg::Input(i) => b.input(i),
            Arg::Cat(parts) => parts.iter().map(|p| p.render(b)).collect(),
        }
    }
}

impl Step {
    /// The command line under a binding.
    pub fn render(&self, b: &dyn Bind) -> Vec<String> {
        self.argv.iter().map(|a| a.render(b)).collect()
    }
}

/// Options that are the same for every run of a stack on a platform (not workflow parameters).
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// `--build-arg K=V` of every image build, in order.
    pub build_args: Vec<String>,
    /// Builds take the repository root as their context (else the component directory).
    pub component_context: bool,
    /// `digest-resolve --insecure-registry HOST` (a plain-HTTP registry), if any.
    pub insecure_registry: Option<String>,
    /// `deploy-bot request --forge`: `github` or `none`.
    pub forge: String,
    /// `stackgen compose --endpoint-mode`: `dnsrr` or `vip`.
    pub endpoint_mode: String,
    /// The stack file, relative to the source checkout.
    pub stack_file: String,
    /// The environment deploys release candidates (it comes after the first of the stack's
    /// `promotion`): the resolve step is a promotion into the `rc-registry` parameter.
    pub release_candidate: bool,
    /// The environment's gate is `auto`: the request commits straight to the cluster branch
    /// (`deploy-bot request --direct`) instead of opening a pull request.
    pub direct: bool,
}

impl StepOptions {
    /// These options for a run of `env`: a release-candidate environment (after the first of the stack's
    /// `promotion`) promotes instead of resolving, which needs an `rc_registry`; an `auto` gate commits straight
    /// to the cluster branch. Without a stack file neither applies.
    ///
    /// # Errors
    ///
    /// A release-candidate environment without `rc_registry` (usage: `--rc-registry`).
    pub fn for_environment(
        mut self,
        stack: Option<&crate::stack::Stack>,
        env: &str,
        rc_registry: &str,
    ) -> crate::error::Result<Self> {
        self.release_candidate = stack.is_some_and(|s| s.is_release_candidate(env));
        if self.release_candidate && rc_registry.is_empty() {
            return Err(crate::Error::Usage {
                option: "--rc-registry",
                message: format!(
                    "environment `{env}` deploys release candidates (it follows `{}` in the stack's `promotion`): name the release-candidate registry",
                    stack
                        .map(|s| s.file.promotion[0].clone())
                        .unwrap_or_default()
                ),
            });
        }
        self.direct = stack
            .and_then(|s| s.file.environments.get(env))
            .and_then(|e| e.gate)
            == Some(crate::stack::Gate::Auto);
        Ok(self)
    }
}

/// What changed and the build schedule: `monobuild diff`. On the base branch itself (a merge to main) against the first parent.
pub fn diff(on_base_branch: bool) -> Step {
    let mut argv = vec![lit("monobuild"), lit("diff"), lit("--format"), lit("json")];
    if on_base_branch {
        argv.push(lit("--main-branch"));
    } else {
        argv.push(lit("--base-branch"));
        argv.push(Arg::Param("base-branch"));
    }
    Step {
        id: "diff",
        cwd: Cwd::Src,
        argv,
        stdout: Some("monobuild.json"),
    }
}

/// The image reference a build pushes: `{registry}/{image}:{tag}` (the tag rule is [`crate::plan::tag`]).
pub fn image_ref(image: Arg) -> Arg {
    Arg::Cat(vec![
        Arg::Param("registry"),
        lit("/"),
        image,
        lit(":"),
        Arg::Param("tag"),
    ])
}

/// One image build: build-with-cache with the component's Dockerfile, monobuild's
/// hash of the component as `--source-hash` (build-with-cache adds the Dockerfile,
/// base image digests and build arguments to make the content key), the branch's
/// stage cache with the base branch's as fallback.
pub fn build(o: &StepOptions) -> Step {
    let component = || Arg::Input("component");
    let mut argv = vec![
        lit("build-with-cache"),
        lit("--network"),
        lit("host"),
        lit("--file"),
        Arg::Cat(vec![component(), lit("/Dockerfile")]),
    ];
    for a in &o.build_args {
        argv.push(lit("--build-arg"));
        argv.push(lit(a.clone()));
    }
    argv.extend([
        lit("--tag"),
        image_ref(Arg::Input("image")),
        lit("--source-hash"),
        Arg::Input("source-hash"),
        lit("--branch"),
        Arg::Param("branch"),
        lit("--fallback-branch"),
        Arg::Param("base-branch"),
        if o.component_context {
            component()
        } else {
            lit(".")
        },
    ]);
    Step {
        id: "build",
        cwd: Cwd::Src,
        argv,
        stdout: None,
    }
}

fn stackgen(o: &StepOptions, sub: &str) -> Vec<Arg> {
    vec![
        lit("stackgen"),
        lit("--stack"),
        lit(format!("src/{}", o.stack_file)),
        lit(sub),
        lit("--env"),
        Arg::Param("environment"),
        lit("--branch"),
        Arg::Param("branch"),
        lit("--tag"),
        Arg::Param("tag"),
        lit("--registry"),
        Arg::Param("registry"),
    ]
}

/// The Swarm stack file of the environment: `deploy/compose.yaml`.
pub fn compose(o: &StepOptions) -> Step {
    let mut argv = stackgen(o, "compose");
    argv.extend([
        lit("--endpoint-mode"),
        lit(o.endpoint_mode.clone()),
        lit("--output"),
        lit("deploy/compose.yaml"),
    ]);
    Step {
        id: "compose",
        cwd: Cwd::Work,
        argv,
        stdout: None,
    }
}

/// The Kubernetes manifests of the environment: `manifests/<namespace>/`.
pub fn manifests(o: &StepOptions) -> Step {
    let mut argv = stackgen(o, "manifests");
    argv.extend([lit("--out-dir"), lit("manifests")]);
    Step {
        id: "manifests",
        cwd: Cwd::Work,
        argv,
        stdout: None,
    }
}

/// Pin every image by digest, keeping the tag (`name:tag@sha256:...`), in place.
pub fn resolve(o: &StepOptions) -> Step {
    let mut argv = vec![lit("digest-resolve"), lit("--in-place")];
    if let Some(h) = &o.insecure_registry {
        argv.push(lit("--insecure-registry"));
        argv.push(lit(h.clone()));
    }
    argv.extend([lit("deploy/compose.yaml"), lit("manifests")]);
    Step {
        id: "resolve",
        cwd: Cwd::Work,
        argv,
        stdout: None,
    }
}

/// Promote: copy every image of the rendered environment by digest into the
/// release-candidate registry (cross-repository mount within one registry, streamed
/// copy between registries; 0 bytes when already there) and pin the files, in place,
/// to the release candidates. The report (`promote.json`) lists every image with its
/// digest and the bytes moved.
pub fn promote(o: &StepOptions) -> Step {
    let mut argv = vec![
        lit("digest-resolve"),
        lit("--in-place"),
        lit("--promote-to"),
        Arg::Param("rc-registry"),
        lit("--promote-report"),
        lit("promote.json"),
    ];
    if let Some(h) = &o.insecure_registry {
        argv.push(lit("--insecure-registry"));
        argv.push(lit(h.clone()));
    }
    argv.extend([lit("deploy/compose.yaml"), lit("manifests")]);
    Step {
        id: "promote",
        cwd: Cwd::Work,
        argv,
        stdout: None,
    }
}

/// Deliver `deploy/` (the pinned stack) to the cluster repo as `NS/`.
pub fn request(o: &StepOptions) -> Step {
    let mut argv = vec![
        lit("deploy-bot"),
        lit("request"),
        lit("--repo"),
        Arg::Param("cluster-repo"),
        lit("--namespace"),
        Arg::Param("namespace"),
        lit("--dir"),
        lit("deploy"),
        lit("--sha"),
        Arg::Param("revision"),
        lit("--label"),
        Arg::Cat(vec![lit("branch="), Arg::Param("branch")]),
        lit("--base"),
        Arg::Param("cluster-branch"),
        lit("--forge"),
        lit(o.forge.clone()),
    ];
    if o.direct {
        argv.push(lit("--direct"));
    }
    if o.release_candidate {
        argv.push(lit("--release-candidate"));
        argv.push(lit("promote.json"));
    }
    Step {
        id: "request",
        cwd: Cwd::Work,
        argv,
        stdout: Some("request.json"),
    }
}

/// Wait until the cluster's deploy-bot agent runs what `request --direct` committed
/// (`deploy-bot status --wait`, from `request.json`): `applied.json`.
pub fn applied() -> Step {
    Step {
        id: "applied",
        cwd: Cwd::Work,
        argv: vec![
            lit("deploy-bot"),
            lit("status"),
            lit("--agent-url"),
            Arg::Param("agent-url"),
            lit("--namespace"),
            Arg::Param("namespace"),
            lit("--request"),
            lit("request.json"),
            lit("--wait"),
            lit("10m"),
        ],
        stdout: Some("applied.json"),
    }
}

/// The environment's plan (`plan.json`): the smoke checks and the URL the smoke step reads.
pub fn plan(o: &StepOptions) -> Step {
    Step {
        id: "plan",
        cwd: Cwd::Work,
        argv: vec![
            lit("stackgen"),
            lit("--stack"),
            lit(format!("src/{}", o.stack_file)),
            lit("plan"),
            lit("--env"),
            Arg::Param("environment"),
            lit("--branch"),
            Arg::Param("branch"),
            lit("--registry"),
            Arg::Param("registry"),
            lit("--rc-registry"),
            Arg::Param("rc-registry"),
            lit("--revision"),
            Arg::Param("revision"),
            lit("--repo"),
            Arg::Param("repo"),
        ],
        stdout: Some("plan.json"),
    }
}

/// Each service's declared healthy answer at the environment's URL (`deploy-bot smoke`): `smoke.json`.
pub fn smoke() -> Step {
    Step {
        id: "smoke",
        cwd: Cwd::Work,
        argv: vec![
            lit("deploy-bot"),
            lit("smoke"),
            lit("--plan"),
            lit("plan.json"),
            lit("--timeout"),
            lit("5m"),
            lit("--out-dir"),
            lit("smoke"),
        ],
        stdout: Some("smoke.json"),
    }
}

/// The smoke result and the URL, back to the monorepo's commit (status `microplatform/<env>`) and pull request.
pub fn report() -> Step {
    Step {
        id: "report",
        cwd: Cwd::Work,
        argv: vec![
            lit("deploy-bot"),
            lit("report"),
            lit("--forge"),
            lit("github"),
            lit("--repo"),
            Arg::Param("repo"),
            lit("--commit"),
            Arg::Param("revision"),
            lit("--branch"),
            Arg::Param("branch"),
            lit("--environment"),
            Arg::Param("environment"),
            lit("--url"),
            Arg::Param("url"),
            lit("--smoke"),
            lit("smoke.json"),
        ],
        stdout: Some("report.json"),
    }
}

/// The steps after the request of an `auto`-gated environment (empty for any other), where
/// the next environment must wait for this one: the agent applied the commit (`applied`),
/// the environment's plan (`plan`), its smoke checks at the URL (`smoke`), and with the
/// GitHub forge the result posted back (`report`). The Argo workflow runs them; the local
/// pipeline, which feeds its own agent, runs `deploy-bot notify --wait` and `smoke
/// --by-name` instead (a superset).
pub fn verify_steps(o: &StepOptions) -> Vec<Step> {
    if !o.direct {
        return Vec::new();
    }
    let mut v = vec![applied(), plan(o), smoke()];
    if o.forge == "github" {
        v.push(report());
    }
    v
}

/// The deploy steps in order: render (compose, manifests), resolve (or, for a
/// release-candidate environment, promote), request.
pub fn deploy_steps(o: &StepOptions) -> Vec<Step> {
    let pin = if o.release_candidate {
        promote(o)
    } else {
        resolve(o)
    };
    vec![compose(o), manifests(o), pin, request(o)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_bindings_render_the_same_shape() {
        let o = StepOptions {
            forge: "none".into(),
            endpoint_mode: "dnsrr".into(),
            stack_file: crate::stack::DEFAULT_PATH.into(),
            ..StepOptions::default()
        };
        let argo = build(&o).render(&Argo);
        assert!(argo.contains(&"{{workflow.parameters.registry}}/{{inputs.parameters.image}}:{{workflow.parameters.tag}}".to_string()));
        let params: BTreeMap<String, String> = [("registry", "r/s"), ("tag", "t")]
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        let inputs: BTreeMap<&'static str, String> = [("image", "api".to_string())].into();
        let v = Values {
            params: &params,
            inputs: &inputs,
        };
        assert!(build(&o).render(&v).contains(&"r/s/api:t".to_string()));
        assert_eq!(argo.len(), build(&o).render(&v).len());
    }
}
