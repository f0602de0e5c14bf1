//! The Argo `Workflow` (or `WorkflowTemplate`) of a run: a checkout, one DAG task per job (build, deploy or pass) with edges from `needs` (nested DAGs past Argo's 200-task limit), then the stack's deploy steps; every command line comes from `steps`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::plan::{self, Job, JobKind};
use crate::resolve;
use crate::stack::Stack;
use crate::steps::{self, Argo, Bind as _, StepOptions};

/// Argo's cap on `dag.tasks` and on `templates` (v4).
pub const MAX_ITEMS: usize = 200;
/// The longest task name Argo accepts.
pub const MAX_TASK_NAME: usize = 128;
/// The longest workflow or template name.
pub const MAX_NAME: usize = 63;

/// `Workflow` or `WorkflowTemplate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `Workflow`, submitted as it is (`metadata.generateName`).
    Workflow,
    /// A `WorkflowTemplate` (`metadata.name`), submitted with `argo submit --from`.
    Template,
}

/// Argo's pod garbage-collection strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodGc {
    /// Delete each pod when it completes.
    OnPodCompletion,
    /// Delete each pod when it succeeds.
    OnPodSuccess,
    /// Delete pods when the workflow completes.
    OnWorkflowCompletion,
    /// Delete pods when the workflow succeeds.
    OnWorkflowSuccess,
}

impl PodGc {
    /// The strategy's name in Argo.
    pub fn as_str(self) -> &'static str {
        match self {
            PodGc::OnPodCompletion => "OnPodCompletion",
            PodGc::OnPodSuccess => "OnPodSuccess",
            PodGc::OnWorkflowCompletion => "OnWorkflowCompletion",
            PodGc::OnWorkflowSuccess => "OnWorkflowSuccess",
        }
    }
}

/// Options of `stackgen workflow`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Workflow or template.
    pub kind: Kind,
    /// `metadata.name` (template) or the `generateName` prefix (workflow).
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: Option<String>,
    /// `spec.serviceAccountName`.
    pub service_account: Option<String>,
    /// `spec.parallelism`.
    pub parallelism: Option<u32>,
    /// `spec.ttlStrategy.secondsAfterCompletion`.
    pub ttl_seconds: Option<u64>,
    /// `spec.podGC.strategy`.
    pub pod_gc: Option<PodGc>,
    /// Retries of build and deploy tasks (0 = none).
    pub retries: u32,
    /// The toolkit's own image (build-with-cache, stackgen, digest-resolve, deploy-bot).
    pub toolkit_image: String,
    /// The Docker-in-Docker sidecar image.
    pub dind_image: String,
    /// The step options (build arguments, context, forge, endpoint mode, ...).
    pub steps: StepOptions,
    /// Add the stack's deploy steps (compose, manifests, resolve, request) after the jobs.
    pub deploy: bool,
    /// Values of the workflow parameters ([`steps::PARAMETERS`]); a missing one has no default.
    pub params: BTreeMap<String, String>,
    /// The size of the work volume (`volumeClaimTemplates`), e.g. `1Gi`.
    pub work_size: String,
    /// The Secret holding `GITHUB_TOKEN` for deploy-bot (key `token`, optional).
    pub token_secret: String,
}

/// The Argo task name of a component: runs of characters other than
/// `a-zA-Z0-9-` become `-`, no leading or trailing `-`; a name that starts
/// with a digit gets the prefix `c-` (Argo refuses task names that begin with
/// a digit in `dependencies`); past 128 characters cut with a hash suffix.
pub fn task_name(component: &str) -> Option<String> {
    let mut out = String::with_capacity(component.len() + 2);
    let mut dash = false;
    for c in component.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    let mut trimmed = out.trim_matches('-').to_string();
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.starts_with(|c: char| c.is_ascii_digit()) {
        trimmed.insert_str(0, "c-");
    }
    if trimmed.len() <= MAX_TASK_NAME {
        return Some(trimmed);
    }
    let hash = hex::encode(sha2::Sha256::digest(component.as_bytes()));
    let keep = trimmed[..MAX_TASK_NAME - 9].trim_end_matches('-');
    Some(format!("{keep}-{}", &hash[..8]))
}

/// The default image repository of a component (see [`crate::plan::default_image`]).
pub fn default_image(component: &str) -> String {
    crate::plan::default_image(component)
}

fn param(name: &str) -> String {
    Argo.param(name)
}

fn env(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

/// The work volume (a `volumeClaimTemplate`) every task mounts: the checkout in
/// `/work/src`, the rendered stack in `/work/deploy` and `/work/manifests`.
pub const WORK: &str = "/work";

const WAIT_FOR_DOCKER: &str = "i=0\nuntil docker version >/dev/null 2>&1; do\n  i=$((i+1))\n  if [ \"$i\" -ge 120 ]; then echo 'stackgen: the docker-in-docker sidecar did not start' >&2; exit 1; fi\n  sleep 1\ndone\nexec \"$0\" \"$@\"\n";

const CHECKOUT_SCRIPT: &str = "rm -rf /work/src\ngit clone --quiet \"$0\" /work/src\ngit -C /work/src checkout --quiet \"$1\"\n";

const DEPLOY_SCRIPT: &str = "set -eu\nstack=\"src/$COMPONENT/stack.yaml\"\nns=$(stackgen --stack \"$stack\" namespace --env \"$ENVIRONMENT\" --branch \"$BRANCH\")\nrm -rf \"deploy-$ns\"\nstackgen --stack \"$stack\" manifests --env \"$ENVIRONMENT\" --branch \"$BRANCH\" --tag \"$TAG\" --registry \"$REGISTRY\" --out-dir \"deploy-$ns\"\ndigest-resolve --in-place \"deploy-$ns/$ns\"\nexec deploy-bot request --dir \"deploy-$ns/$ns\" --namespace \"$ns\" --repo \"$CLUSTER_REPO\" --sha \"$REVISION\" --base \"$CLUSTER_BRANCH\" --forge \"$FORGE\"\n";

fn work_mount() -> Value {
    json!([{"name": "work", "mountPath": WORK}])
}

fn retry(o: &Options) -> Option<Value> {
    // Argo's schema: `limit` and `backoff.factor` are IntOrString; strings
    // are what its published JSON schema accepts.
    (o.retries > 0).then(|| {
        json!({"limit": o.retries.to_string(), "retryPolicy": "Always", "backoff": {"duration": "10s", "factor": "2"}})
    })
}

fn job_inputs() -> Value {
    let params: Vec<Value> = steps::INPUTS.iter().map(|n| json!({"name": n})).collect();
    json!({ "parameters": params })
}

fn container(
    o: &Options,
    command: &[String],
    args: &[String],
    working_dir: &str,
    env: Vec<Value>,
) -> Value {
    let mut c = Map::new();
    c.insert("image".into(), json!(o.toolkit_image));
    c.insert("command".into(), json!(command));
    if !args.is_empty() {
        c.insert("args".into(), json!(args));
    }
    c.insert("workingDir".into(), json!(working_dir));
    if !env.is_empty() {
        c.insert("env".into(), Value::Array(env));
    }
    c.insert("volumeMounts".into(), work_mount());
    Value::Object(c)
}

fn step_dir(cwd: steps::Cwd) -> String {
    match cwd {
        steps::Cwd::Src => format!("{WORK}/src"),
        steps::Cwd::Work => WORK.to_string(),
    }
}

fn checkout_template(o: &Options) -> Value {
    json!({
        "name": "checkout",
        "container": container(
            o,
            &["sh".into(), "-euc".into(), CHECKOUT_SCRIPT.into()],
            &[param("repo"), param("revision")],
            WORK,
            vec![],
        ),
    })
}

fn build_template(o: &Options) -> Value {
    let step = steps::build(&o.steps);
    let mut t = Map::new();
    t.insert("name".into(), json!("build"));
    t.insert("inputs".into(), job_inputs());
    if let Some(r) = retry(o) {
        t.insert("retryStrategy".into(), r);
    }
    // `sh -c 'wait for the engine; exec "$0" "$@"' build-with-cache ARGS...`:
    // the arguments are the step's command line, unchanged.
    t.insert(
        "container".into(),
        container(
            o,
            &["sh".into(), "-c".into(), WAIT_FOR_DOCKER.into()],
            &step.render(&Argo),
            &step_dir(step.cwd),
            vec![env("DOCKER_HOST", "tcp://127.0.0.1:2375")],
        ),
    );
    t.insert(
        "sidecars".into(),
        json!([{
            "name": "dind",
            "image": o.dind_image,
            "command": ["dockerd-entrypoint.sh"],
            "env": [{"name": "DOCKER_TLS_CERTDIR", "value": ""}],
            "securityContext": {"privileged": true},
            "mirrorVolumeMounts": true,
        }]),
    );
    Value::Object(t)
}

fn token_env(o: &Options) -> Value {
    json!({
        "name": "GITHUB_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": o.token_secret, "key": "token", "optional": true}},
    })
}

fn step_template(o: &Options, step: &steps::Step) -> Value {
    let argv = step.render(&Argo);
    let env = if matches!(step.id, "request" | "report") {
        vec![token_env(o)]
    } else {
        vec![]
    };
    let mut t = Map::new();
    t.insert("name".into(), json!(step.id));
    if step.id == "request"
        && let Some(r) = retry(o)
    {
        t.insert("retryStrategy".into(), r);
    }
    t.insert(
        "container".into(),
        container(o, &argv[..1], &argv[1..], &step_dir(step.cwd), env),
    );
    Value::Object(t)
}

fn component_deploy_template(o: &Options) -> Value {
    let mut vars: Vec<Value> = vec![env("COMPONENT", "{{inputs.parameters.component}}")];
    for (var, p) in [
        ("REGISTRY", "registry"),
        ("TAG", "tag"),
        ("REVISION", "revision"),
        ("BRANCH", "branch"),
        ("ENVIRONMENT", "environment"),
        ("CLUSTER_REPO", "cluster-repo"),
        ("CLUSTER_BRANCH", "cluster-branch"),
    ] {
        vars.push(env(var, param(p)));
    }
    vars.push(env("FORGE", o.steps.forge.clone()));
    vars.push(token_env(o));
    let mut t = Map::new();
    t.insert("name".into(), json!("deploy"));
    t.insert("inputs".into(), job_inputs());
    if let Some(r) = retry(o) {
        t.insert("retryStrategy".into(), r);
    }
    t.insert(
        "container".into(),
        container(
            o,
            &["sh".into(), "-c".into()],
            &[DEPLOY_SCRIPT.into()],
            WORK,
            vars,
        ),
    );
    Value::Object(t)
}

fn pass_template() -> Value {
    json!({
        "name": "pass",
        "inputs": job_inputs(),
        "suspend": {"duration": "0"},
    })
}

fn exit_template(o: &Options) -> Value {
    json!({
        "name": "exit-handler",
        "container": {
            "image": o.toolkit_image,
            "command": ["sh", "-c"],
            "args": ["echo \"stackgen: workflow $WORKFLOW_NAME finished: $WORKFLOW_STATUS\"\nif [ \"$WORKFLOW_STATUS\" != Succeeded ]; then echo \"failures: $WORKFLOW_FAILURES\"; fi\n"],
            "env": [
                env("WORKFLOW_NAME", "{{workflow.name}}"),
                env("WORKFLOW_STATUS", "{{workflow.status}}"),
                env("WORKFLOW_FAILURES", "{{workflow.failures}}"),
            ],
        },
    })
}

fn check_name(o: &Options) -> Result<()> {
    let limit = match o.kind {
        Kind::Template => MAX_NAME,
        // generateName appends 5 characters.
        Kind::Workflow => MAX_NAME - 6,
    };
    let ok = crate::slug::is_dns_label(&o.name) && o.name.len() <= limit;
    if ok {
        Ok(())
    } else {
        Err(Error::Usage {
            option: "--name",
            message: format!(
                "`{}` must be a DNS label of at most {limit} characters",
                o.name
            ),
        })
    }
}

fn dag_task(name: &str, template: &str, deps: &[&str], args: Option<Value>) -> Value {
    let mut t = Map::new();
    t.insert("name".into(), json!(name));
    t.insert("template".into(), json!(template));
    if !deps.is_empty() {
        t.insert("dependencies".into(), json!(deps));
    }
    if let Some(a) = args {
        t.insert("arguments".into(), a);
    }
    Value::Object(t)
}

/// The run's values behind the defaults of the workflow parameters (`workflow`'s flags).
#[derive(Debug, Clone, Default)]
pub struct RunValues {
    /// The git URL the checkout task clones (`repo`).
    pub repo: Option<String>,
    /// The commit built (`revision`).
    pub revision: Option<String>,
    /// The branch (`branch`); with a stack it also gives `tag`, `namespace` and `url`.
    pub branch: Option<String>,
    /// The branch changes are computed against (`base-branch`).
    pub base_branch: String,
    /// The `--registry` override, the `registry` when there is no stack file.
    pub registry: Option<String>,
    /// The environment the deploy steps render (`environment`).
    pub environment: String,
    /// deploy-bot's cluster repository (`cluster-repo`).
    pub cluster_repo: Option<String>,
    /// The cluster repository's branch requests target (`cluster-branch`).
    pub cluster_branch: String,
    /// The release-candidate registry (`rc-registry`).
    pub rc_registry: Option<String>,
    /// The deploy agent's URL (`agent-url`).
    pub agent_url: String,
}

/// The defaults of the workflow parameters ([`Options::params`]) for a run: the values given,
/// the registry of the stack file (already under its override, see [`plan::apply_registry`]) or
/// else the override, and, from the branch, its image tag ([`plan::tag`]) and, with a stack, the
/// environment's namespace and URL. A parameter with no value is left out (it has no default).
pub fn parameter_defaults(
    stack: Option<&Stack>,
    v: &RunValues,
) -> Result<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            params.insert(k.to_string(), v);
        }
    };
    set("repo", v.repo.clone());
    set("revision", v.revision.clone());
    set("branch", v.branch.clone());
    set("base-branch", Some(v.base_branch.clone()));
    set(
        "registry",
        stack
            .map(|s| s.file.registry.clone())
            .or_else(|| v.registry.clone()),
    );
    set("tag", v.branch.as_deref().map(plan::tag).transpose()?);
    if let (Some(s), Some(b)) = (stack, v.branch.as_deref()) {
        set("namespace", Some(resolve::namespace(s, &v.environment, b)?));
        set(
            "url",
            Some(
                resolve::resolve(s, &v.environment, b)?
                    .url(None)
                    .unwrap_or_default(),
            ),
        );
    }
    set("environment", Some(v.environment.clone()));
    set("cluster-repo", v.cluster_repo.clone());
    set("cluster-branch", Some(v.cluster_branch.clone()));
    set("rc-registry", v.rc_registry.clone());
    set("agent-url", Some(v.agent_url.clone()));
    Ok(params)
}

/// Build the workflow of a run's jobs (see [`crate::plan::jobs`]): a
/// `checkout` task, one task per job (edges from `needs`), then, when
/// `o.deploy` is set, the deploy steps of the stack (compose, manifests,
/// resolve, request) after every job.
pub fn generate(jobs: &[Job], o: &Options) -> Result<Value> {
    check_name(o)?;
    // Task names, collisions an error.
    let deploy_steps = if o.deploy {
        let mut v = steps::deploy_steps(&o.steps);
        v.extend(steps::verify_steps(&o.steps));
        v
    } else {
        Vec::new()
    };
    let reserved: Vec<&str> = ["checkout"]
        .into_iter()
        .chain(deploy_steps.iter().map(|s| s.id))
        .collect();
    let mut names: Vec<String> = Vec::with_capacity(jobs.len());
    let mut by_task: HashMap<String, &str> = HashMap::with_capacity(jobs.len());
    for r in &reserved {
        by_task.insert((*r).to_string(), "(a step of the workflow)");
    }
    for j in jobs {
        let t = task_name(&j.component).ok_or_else(|| Error::Naming {
            message: format!(
                "job `{}` has no letters or digits to make an Argo task name",
                j.component
            ),
        })?;
        if let Some(other) = by_task.insert(t.clone(), &j.component) {
            return Err(Error::Naming {
                message: format!(
                    "jobs `{other}` and `{}` both become the Argo task name `{t}`",
                    j.component
                ),
            });
        }
        names.push(t);
    }
    let index: HashMap<&str, usize> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.component.as_str(), i))
        .collect();
    let task = |i: usize, deps: &[&str]| -> Value {
        let j = &jobs[i];
        let template = match j.kind {
            JobKind::Build => "build",
            JobKind::Deploy => "deploy",
            JobKind::Pass => "pass",
        };
        let mut deps = deps.to_vec();
        if deps.is_empty() {
            deps.push("checkout");
        }
        dag_task(
            &names[i],
            template,
            &deps,
            Some(json!({"parameters": [
                {"name": "component", "value": j.component},
                {"name": "source-hash", "value": j.hash},
                {"name": "image", "value": j.image},
            ]})),
        )
    };
    let used: BTreeSet<JobKind> = jobs.iter().map(|j| j.kind).collect();
    let mut templates = Vec::new();
    let n = jobs.len();
    let extra = 1 + deploy_steps.len();
    let mut main_tasks = vec![dag_task("checkout", "checkout", &[], None)];
    // What the deploy steps wait for.
    let mut last: Vec<String> = Vec::new();
    if n + extra <= MAX_ITEMS {
        for (i, job) in jobs.iter().enumerate() {
            let deps = sorted_deps(job.needs.iter().map(|d| names[index[d.as_str()]].as_str()));
            main_tasks.push(task(i, &deps));
        }
        last.extend(names.iter().cloned());
    } else {
        // Jobs are in topological order: cut them into parts of at most 200
        // tasks; a part waits for the earlier parts its jobs need.
        let parts = n.div_ceil(MAX_ITEMS);
        // main + parts + checkout, build, deploy, pass, exit-handler and the steps
        if parts + 6 + deploy_steps.len() > MAX_ITEMS || parts + extra > MAX_ITEMS {
            return Err(Error::Naming {
                message: format!(
                    "{n} jobs need {parts} nested DAGs, more than Argo's 200 templates allow"
                ),
            });
        }
        let part_name = |p: usize| format!("part-{:03}", p + 1);
        let mut part_templates = Vec::with_capacity(parts);
        for p in 0..parts {
            let range = p * MAX_ITEMS..((p + 1) * MAX_ITEMS).min(n);
            let mut needs_parts = BTreeSet::new();
            let tasks: Vec<Value> = range
                .clone()
                .map(|i| {
                    let mut deps = Vec::new();
                    for d in &jobs[i].needs {
                        let k = index[d.as_str()];
                        if range.contains(&k) {
                            deps.push(names[k].as_str());
                        } else {
                            needs_parts.insert(k / MAX_ITEMS);
                        }
                    }
                    let deps = sorted_deps(deps.into_iter());
                    // Inside a part, the checkout is done before the part starts.
                    let mut t = task(i, &deps);
                    if deps.is_empty() {
                        t.as_object_mut().expect("task").remove("dependencies");
                    }
                    t
                })
                .collect();
            let mut deps: Vec<String> = needs_parts.iter().map(|q| part_name(*q)).collect();
            if deps.is_empty() {
                deps.push("checkout".into());
            }
            let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
            main_tasks.push(dag_task(&part_name(p), &part_name(p), &deps, None));
            part_templates.push(json!({"name": part_name(p), "dag": {"tasks": tasks}}));
            last.push(part_name(p));
        }
        templates.extend(part_templates);
    }
    if last.is_empty() {
        last.push("checkout".into());
    }
    for s in &deploy_steps {
        let deps: Vec<&str> = sorted_deps(last.iter().map(String::as_str));
        main_tasks.push(dag_task(s.id, s.id, &deps, None));
        last = vec![s.id.to_string()];
    }
    templates.insert(0, json!({"name": "main", "dag": {"tasks": main_tasks}}));
    templates.push(checkout_template(o));
    if used.contains(&JobKind::Build) {
        templates.push(build_template(o));
    }
    if used.contains(&JobKind::Deploy) {
        templates.push(component_deploy_template(o));
    }
    if used.contains(&JobKind::Pass) {
        templates.push(pass_template());
    }
    for s in &deploy_steps {
        templates.push(step_template(o, s));
    }
    templates.push(exit_template(o));

    let mut spec = Map::new();
    spec.insert("entrypoint".into(), json!("main"));
    spec.insert("onExit".into(), json!("exit-handler"));
    if let Some(sa) = &o.service_account {
        spec.insert("serviceAccountName".into(), json!(sa));
    }
    if let Some(p) = o.parallelism {
        spec.insert("parallelism".into(), json!(p));
    }
    if let Some(t) = o.ttl_seconds {
        spec.insert("ttlStrategy".into(), json!({"secondsAfterCompletion": t}));
    }
    if let Some(gc) = o.pod_gc {
        spec.insert("podGC".into(), json!({"strategy": gc.as_str()}));
    }
    let params: Vec<Value> = steps::PARAMETERS
        .iter()
        .map(|name| match o.params.get(*name) {
            Some(v) => json!({"name": name, "value": v}),
            None => json!({"name": name}),
        })
        .collect();
    spec.insert("arguments".into(), json!({"parameters": params}));
    spec.insert(
        "volumeClaimTemplates".into(),
        json!([{
            "metadata": {"name": "work"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": o.work_size}}},
        }]),
    );
    spec.insert("templates".into(), Value::Array(templates));

    let mut meta = Map::new();
    match o.kind {
        Kind::Workflow => meta.insert("generateName".into(), json!(format!("{}-", o.name))),
        Kind::Template => meta.insert("name".into(), json!(o.name)),
    };
    if let Some(ns) = &o.namespace {
        meta.insert("namespace".into(), json!(ns));
    }
    meta.insert(
        "labels".into(),
        json!({"app.kubernetes.io/managed-by": "stackgen"}),
    );
    Ok(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": match o.kind { Kind::Workflow => "Workflow", Kind::Template => "WorkflowTemplate" },
        "metadata": Value::Object(meta),
        "spec": Value::Object(spec),
    }))
}

/// The largest Workflow this writes, in bytes of YAML. Argo stores a Workflow
/// in one Kubernetes object, which etcd caps at about 1.5 MiB, and the API
/// server's request limit and Argo's own status (node records) need room:
/// 1 MiB leaves half a MiB for the status. About 3,700 jobs.
pub const MAX_BYTES: usize = 1024 * 1024;

/// Refuse a workflow larger than [`MAX_BYTES`].
pub fn check_size(yaml: &str, jobs: usize) -> Result<()> {
    if yaml.len() <= MAX_BYTES {
        return Ok(());
    }
    Err(Error::Naming {
        message: format!(
            "the workflow of {jobs} jobs is {} KiB, over the {} KiB Argo can store in one Workflow object: give stackgen a smaller schedule (one workflow per group of components)",
            yaml.len() / 1024,
            MAX_BYTES / 1024
        ),
    })
}

fn sorted_deps<'a>(deps: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = deps.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Parse a TTL: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_ttl(s: &str) -> Result<u64> {
    // The durations of every tool (`microplatform_common::duration`), in whole seconds.
    let d = microplatform_common::duration::parse(s).map_err(|message| Error::Usage {
        option: "--ttl",
        message,
    })?;
    if d.subsec_nanos() != 0 {
        return Err(Error::Usage {
            option: "--ttl",
            message: format!(
                "{s:?}: Argo counts whole seconds (`3600`, `90s`, `30m`, `12h`, `7d`)"
            ),
        });
    }
    Ok(d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names() {
        assert_eq!(task_name("services/api").unwrap(), "services-api");
        assert_eq!(task_name("libs/Common_Lib").unwrap(), "libs-Common-Lib");
        assert_eq!(task_name("/x/").unwrap(), "x");
        assert!(task_name("//").is_none());
        assert_eq!(task_name("9lives").unwrap(), "c-9lives");
        assert_eq!(task_name("3rdparty/zlib").unwrap(), "c-3rdparty-zlib");
        let long = task_name(&format!("a/{}", "b".repeat(200))).unwrap();
        assert_eq!(long.len(), MAX_TASK_NAME);
    }

    fn run_values() -> RunValues {
        RunValues {
            repo: Some("https://git.example/shop.git".into()),
            branch: Some("Feature/X".into()),
            base_branch: "main".into(),
            registry: Some("flag.example/shop".into()),
            environment: "dev".into(),
            cluster_branch: "main".into(),
            agent_url: "http://agent".into(),
            ..RunValues::default()
        }
    }

    #[test]
    fn parameter_defaults_without_a_stack_take_the_registry_flag_and_the_branch_tag() {
        let p = parameter_defaults(None, &run_values()).unwrap();
        assert_eq!(p["registry"], "flag.example/shop");
        assert_eq!(p["tag"], plan::tag("Feature/X").unwrap());
        assert_eq!(p["repo"], "https://git.example/shop.git");
        assert_eq!(p["base-branch"], "main");
        assert!(!p.contains_key("namespace") && !p.contains_key("url"));
        assert!(!p.contains_key("revision") && !p.contains_key("rc-registry"));
    }

    #[test]
    fn parameter_defaults_with_a_stack_take_its_registry_namespace_and_url() {
        let text = "name: shop\nregistry: stack.example/shop\nservices:\n  web:\n    image: web\n    ports: [{port: 80}]\n    ingress: {path: /}\nenvironments:\n  dev: {namespace: \"{stack}-{branch}\", host: \"{branch}.example.com\"}\n";
        let stack = Stack::parse("stack.yaml", text).unwrap();
        let p = parameter_defaults(Some(&stack), &run_values()).unwrap();
        assert_eq!(p["registry"], "stack.example/shop");
        assert_eq!(
            p["namespace"],
            resolve::namespace(&stack, "dev", "Feature/X").unwrap()
        );
        assert_eq!(p["url"], format!("https://{}.example.com/", p["tag"]));
        assert_eq!(p["environment"], "dev");
    }

    #[test]
    fn images_and_ttls() {
        assert_eq!(default_image("services/API_x"), "services/api_x");
        assert_eq!(parse_ttl("90").unwrap(), 90);
        assert_eq!(parse_ttl("2h").unwrap(), 7200);
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("1w").is_err());
    }
}
