//! The Argo `Workflow` (or `WorkflowTemplate`) of a build schedule: one DAG task per job (build, deploy or pass), edges from `needs`, split into nested DAGs past Argo's 200-task limit.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value, json};
use sha2::Digest as _;

use crate::error::{Error, Result};
use crate::schedule::Schedule;

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

/// The build context of build tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// The repository root (components may copy shared libraries); `-f <component>/Dockerfile`.
    Root,
    /// The component's directory.
    Component,
}

/// What a job does in the workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TaskKind {
    /// The component has a `Dockerfile`: build-with-cache builds and pushes its image.
    Build,
    /// The component has a `stack.yaml`: render, pin and deliver its manifests.
    Deploy,
    /// Neither (a library): a pod-less pass-through task that keeps the edges.
    Pass,
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
    /// Build context.
    pub context: Context,
    /// Default values of the workflow parameters (`repo`, `revision`, `branch`, `registry`, `environment`, `cluster-repo`).
    pub params: Vec<(&'static str, Option<String>)>,
    /// The Secret holding `GITHUB_TOKEN` for deploy-bot (key `token`, optional).
    pub token_secret: String,
}

/// A job with what the workflow needs to know about it.
#[derive(Debug, Clone)]
pub struct JobInfo {
    /// Task kind.
    pub kind: TaskKind,
    /// Image repository under the registry (for builds).
    pub image: String,
}

/// The Argo task name of a component: runs of characters other than
/// `a-zA-Z0-9-` become `-`, no leading or trailing `-`; past 128 characters
/// cut with a hash suffix.
pub fn task_name(component: &str) -> Option<String> {
    let mut out = String::with_capacity(component.len());
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
    let trimmed = out.trim_matches('-');
    if trimmed.is_empty() {
        return None;
    }
    if trimmed.len() <= MAX_TASK_NAME {
        return Some(trimmed.to_string());
    }
    let hash = hex::encode(sha2::Sha256::digest(component.as_bytes()));
    let keep = trimmed[..MAX_TASK_NAME - 9].trim_end_matches('-');
    Some(format!("{keep}-{}", &hash[..8]))
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

fn param(name: &str) -> String {
    format!("{{{{workflow.parameters.{name}}}}}")
}

fn input(name: &str) -> String {
    format!("{{{{inputs.parameters.{name}}}}}")
}

fn env(name: &str, value: impl Into<String>) -> Value {
    json!({"name": name, "value": value.into()})
}

const WAIT_FOR_DOCKER: &str = "i=0\nuntil docker version >/dev/null 2>&1; do\n  i=$((i+1))\n  if [ \"$i\" -ge 120 ]; then echo 'stackgen: the docker-in-docker sidecar did not start' >&2; exit 1; fi\n  sleep 1\ndone\n";

fn build_script(context: Context) -> String {
    let ctx = match context {
        Context::Root => "/src",
        Context::Component => "\"/src/$COMPONENT\"",
    };
    format!(
        "set -eu\n{WAIT_FOR_DOCKER}exec build-with-cache --tag \"$REGISTRY/$IMAGE:$REVISION\" --source-hash \"$SOURCE_HASH\" --branch \"$BRANCH\" --file \"/src/$COMPONENT/Dockerfile\" {ctx}\n"
    )
}

const DEPLOY_SCRIPT: &str = "set -eu\nstack=\"/src/$COMPONENT/stack.yaml\"\nns=$(stackgen namespace --stack \"$stack\" --env \"$ENVIRONMENT\" --branch \"$BRANCH\")\nstackgen manifests --stack \"$stack\" --env \"$ENVIRONMENT\" --branch \"$BRANCH\" --tag \"$REVISION\" --out-dir /tmp/deploy\ndigest-resolve --in-place \"/tmp/deploy/$ns\"\nexec deploy-bot request --dir \"/tmp/deploy/$ns\" --namespace \"$ns\" --repo \"$CLUSTER_REPO\" --sha \"$REVISION\"\n";

fn source_artifact() -> Value {
    json!({
        "name": "source",
        "path": "/src",
        "git": {"repo": param("repo"), "revision": param("revision")},
    })
}

fn task_inputs() -> Value {
    json!({
        "parameters": [{"name": "component"}, {"name": "source-hash"}, {"name": "image"}],
        "artifacts": [source_artifact()],
    })
}

fn retry(o: &Options) -> Option<Value> {
    (o.retries > 0).then(|| {
        json!({"limit": o.retries, "retryPolicy": "Always", "backoff": {"duration": "10s", "factor": 2}})
    })
}

fn common_env() -> Vec<Value> {
    vec![
        env("COMPONENT", input("component")),
        env("SOURCE_HASH", input("source-hash")),
        env("IMAGE", input("image")),
        env("REGISTRY", param("registry")),
        env("REVISION", param("revision")),
        env("BRANCH", param("branch")),
        env("ENVIRONMENT", param("environment")),
    ]
}

fn build_template(o: &Options) -> Value {
    let mut env = common_env();
    env.push(env_dind());
    let mut t = Map::new();
    t.insert("name".into(), json!("build"));
    t.insert("inputs".into(), task_inputs());
    if let Some(r) = retry(o) {
        t.insert("retryStrategy".into(), r);
    }
    t.insert(
        "container".into(),
        json!({
            "image": o.toolkit_image,
            "command": ["sh", "-c"],
            "args": [build_script(o.context)],
            "env": env,
        }),
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

fn env_dind() -> Value {
    env("DOCKER_HOST", "tcp://127.0.0.1:2375")
}

fn deploy_template(o: &Options) -> Value {
    let mut vars = common_env();
    vars.push(env("CLUSTER_REPO", param("cluster-repo")));
    vars.push(json!({
        "name": "GITHUB_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": o.token_secret, "key": "token", "optional": true}},
    }));
    let mut t = Map::new();
    t.insert("name".into(), json!("deploy"));
    t.insert("inputs".into(), task_inputs());
    if let Some(r) = retry(o) {
        t.insert("retryStrategy".into(), r);
    }
    t.insert(
        "container".into(),
        json!({
            "image": o.toolkit_image,
            "command": ["sh", "-c"],
            "args": [DEPLOY_SCRIPT],
            "env": vars,
        }),
    );
    Value::Object(t)
}

fn pass_template() -> Value {
    json!({
        "name": "pass",
        "inputs": {"parameters": [{"name": "component"}, {"name": "source-hash"}, {"name": "image"}]},
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

/// Build the workflow. `info` tells the kind and image of each job.
pub fn generate(schedule: &Schedule, o: &Options, info: &dyn Fn(&str) -> JobInfo) -> Result<Value> {
    check_name(o)?;
    // Task names, collisions an error.
    let mut names: Vec<String> = Vec::with_capacity(schedule.jobs.len());
    let mut by_task: HashMap<String, &str> = HashMap::with_capacity(schedule.jobs.len());
    for j in &schedule.jobs {
        let t = task_name(&j.name).ok_or_else(|| Error::Naming {
            message: format!(
                "job `{}` has no letters or digits to make an Argo task name",
                j.name
            ),
        })?;
        if let Some(other) = by_task.insert(t.clone(), &j.name) {
            return Err(Error::Naming {
                message: format!(
                    "jobs `{other}` and `{}` both become the Argo task name `{t}`",
                    j.name
                ),
            });
        }
        names.push(t);
    }
    let index: HashMap<&str, usize> = schedule
        .jobs
        .iter()
        .enumerate()
        .map(|(i, j)| (j.name.as_str(), i))
        .collect();
    let infos: Vec<JobInfo> = schedule.jobs.iter().map(|j| info(&j.name)).collect();
    let task = |i: usize, deps: Vec<&str>| -> Value {
        let j = &schedule.jobs[i];
        let template = match infos[i].kind {
            TaskKind::Build => "build",
            TaskKind::Deploy => "deploy",
            TaskKind::Pass => "pass",
        };
        let mut t = Map::new();
        t.insert("name".into(), json!(names[i]));
        t.insert("template".into(), json!(template));
        if !deps.is_empty() {
            t.insert("dependencies".into(), json!(deps));
        }
        t.insert(
            "arguments".into(),
            json!({"parameters": [
                {"name": "component", "value": j.name},
                {"name": "source-hash", "value": schedule.hashes[&j.name]},
                {"name": "image", "value": infos[i].image},
            ]}),
        );
        Value::Object(t)
    };
    let used: BTreeSet<TaskKind> = infos.iter().map(|i| i.kind).collect();
    let mut templates = Vec::new();
    let n = schedule.jobs.len();
    if n == 0 {
        templates.push(json!({
            "name": "main",
            "dag": {"tasks": [{"name": "nothing-to-do", "template": "noop"}]},
        }));
        templates.push(json!({"name": "noop", "suspend": {"duration": "0"}}));
    } else if n <= MAX_ITEMS {
        let tasks: Vec<Value> = (0..n)
            .map(|i| {
                let deps = sorted_deps(
                    schedule.jobs[i]
                        .needs
                        .iter()
                        .map(|d| names[index[d.as_str()]].as_str()),
                );
                task(i, deps)
            })
            .collect();
        templates.push(json!({"name": "main", "dag": {"tasks": tasks}}));
    } else {
        // Jobs are in topological order: cut them into parts of at most 200
        // tasks; a part waits for the earlier parts its jobs need.
        let parts = n.div_ceil(MAX_ITEMS);
        // main + parts + build, deploy, pass, exit-handler
        if parts + 5 > MAX_ITEMS {
            return Err(Error::Naming {
                message: format!(
                    "{n} jobs need {parts} nested DAGs, more than Argo's 200 templates allow"
                ),
            });
        }
        let part_name = |p: usize| format!("part-{:03}", p + 1);
        let mut main_tasks = Vec::with_capacity(parts);
        let mut part_templates = Vec::with_capacity(parts);
        for p in 0..parts {
            let range = p * MAX_ITEMS..((p + 1) * MAX_ITEMS).min(n);
            let mut needs_parts = BTreeSet::new();
            let tasks: Vec<Value> = range
                .clone()
                .map(|i| {
                    let mut deps = Vec::new();
                    for d in &schedule.jobs[i].needs {
                        let k = index[d.as_str()];
                        if range.contains(&k) {
                            deps.push(names[k].as_str());
                        } else {
                            needs_parts.insert(k / MAX_ITEMS);
                        }
                    }
                    task(i, sorted_deps(deps.into_iter()))
                })
                .collect();
            let mut mt = Map::new();
            mt.insert("name".into(), json!(part_name(p)));
            mt.insert("template".into(), json!(part_name(p)));
            if !needs_parts.is_empty() {
                let deps: Vec<String> = needs_parts.iter().map(|q| part_name(*q)).collect();
                mt.insert("dependencies".into(), json!(deps));
            }
            main_tasks.push(Value::Object(mt));
            part_templates.push(json!({"name": part_name(p), "dag": {"tasks": tasks}}));
        }
        templates.push(json!({"name": "main", "dag": {"tasks": main_tasks}}));
        templates.extend(part_templates);
    }
    if used.contains(&TaskKind::Build) {
        templates.push(build_template(o));
    }
    if used.contains(&TaskKind::Deploy) {
        templates.push(deploy_template(o));
    }
    if used.contains(&TaskKind::Pass) {
        templates.push(pass_template());
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
    let params: Vec<Value> = o
        .params
        .iter()
        .map(|(name, value)| match value {
            Some(v) => json!({"name": name, "value": v}),
            None => json!({"name": name}),
        })
        .collect();
    spec.insert("arguments".into(), json!({"parameters": params}));
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

fn sorted_deps<'a>(deps: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = deps.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Parse a TTL: seconds, or a number with `s`, `m`, `h` or `d`.
pub fn parse_ttl(s: &str) -> Result<u64> {
    let bad = || Error::Usage {
        option: "--ttl",
        message: format!("`{s}` is not a duration (`3600`, `90s`, `30m`, `12h`, `7d`)"),
    };
    let (num, mult) = match s.as_bytes().last() {
        Some(b's') => (&s[..s.len() - 1], 1),
        Some(b'm') => (&s[..s.len() - 1], 60),
        Some(b'h') => (&s[..s.len() - 1], 3600),
        Some(b'd') => (&s[..s.len() - 1], 86_400),
        _ => (s, 1),
    };
    if num.is_empty() || !num.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(bad)
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
        let long = task_name(&format!("a/{}", "b".repeat(200))).unwrap();
        assert_eq!(long.len(), MAX_TASK_NAME);
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
