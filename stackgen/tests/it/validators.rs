//! Generated output checked by real third-party validators: `kubernetes-validate --strict`
//! (Kubernetes `OpenAPI` schemas) on manifests, and Argo's published schema (hera's
//! models of argo-workflows 4.x) plus Argo's DAG rules on workflows.

use crate::support;

use std::fmt::Write as _;

use microplatform_test_support::TestDir;
use support::{
    argo_validate, docs_example, kubernetes_validate, monobuild_json, stackgen, with_stack,
};

/// A stack using every feature: commands, UDP, several ports, no ingress class, added services.
const FULL_STACK: &str = "name: full\nregistry: reg.example.com:5000/org/full\nservices:\n  dns:\n    image: tools/dns\n    ports: [{port: 53, protocol: UDP}, {port: 53}, {port: 9153, name: metrics}]\n    health: {command: [\"/bin/check\", \"--fast\"], interval_seconds: 5, timeout_seconds: 1, retries: 5}\n    resources: {requests: {cpu: \"0.25\"}, limits: {memory: 1Gi}}\n    replicas: 0\n  batch:\n    image: batch\n    args: [\"run\", \"--all\"]\n    env: {A_B: \"1\", _X: \"\"}\nenvironments:\n  qa:\n    namespace: \"{env}-{stack}-{branch}\"\n    host: \"{branch}.{env}.example.com\"\n    add:\n      web: {image: web, ports: [{port: 80}], ingress: {path: /}}\n";

/// `stackgen --stack full.yaml manifests -e qa ARGS` in a test dir holding [`FULL_STACK`] as
/// `full.yaml`; asserts success.
fn full_stack_manifests(args: &[&str]) -> (TestDir, microplatform_test_support::Output) {
    let t = TestDir::new();
    t.write("full.yaml", FULL_STACK);
    let mut all = vec!["--stack", "full.yaml", "manifests", "-e", "qa"];
    all.extend(args);
    let out = stackgen(&t, &all);
    out.success();
    (t, out)
}

/// The documented example's manifests, for a plain branch, `main` in prod and a branch name far
/// longer than any Kubernetes name.
#[test]
fn docs_example_manifests_pass_kubernetes_validate_strict() {
    let t = with_stack(&docs_example());
    let mut files = Vec::new();
    for (env, branch) in [
        ("dev", "feature/Add-Cart"),
        ("prod", "main"),
        ("dev", &*"x".repeat(120)),
    ] {
        let out = stackgen(
            &t,
            &[
                "manifests",
                "--env",
                env,
                "--branch",
                branch,
                "--tag",
                "0123abc",
            ],
        );
        out.success();
        files.push(t.write(format!("{env}-{}.yaml", files.len()), &out.stdout));
    }
    kubernetes_validate(&files);
}

#[test]
fn full_feature_manifests_on_stdout_pass_kubernetes_validate_strict() {
    let (t, out) = full_stack_manifests(&["-b", "PR-42", "-t", "v1.2.3"]);
    kubernetes_validate(&[t.write("full-out.yaml", &out.stdout)]);
}

#[test]
fn full_feature_manifests_in_the_out_dir_pass_kubernetes_validate_strict() {
    let (t, _) = full_stack_manifests(&["-b", "pr-43", "-t", "v1", "--out-dir", "dir"]);
    let files: Vec<_> = std::fs::read_dir(t.join("dir/qa-full-pr-43"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    kubernetes_validate(&files);
}

#[test]
fn kubernetes_validate_catches_what_it_should() {
    // The validator is not a rubber stamp: an unknown field fails.
    let t = with_stack(&docs_example());
    let out = stackgen(&t, &["manifests", "-e", "dev", "-b", "b", "-t", "v1"]);
    let broken = out
        .stdout
        .replacen("  replicas: 1\n", "  replicas: 1\n  replica: 1\n", 1);
    let f = t.write("broken.yaml", broken);
    let res = microplatform_test_support::Cmd::new(support::venv().join("bin/kubernetes-validate"))
        .arg("--strict")
        .arg(&f)
        .run();
    res.failure();
}

/// A repository checkout with a Dockerfile per service component and a stack.yaml in deploy/shop.
fn repo() -> TestDir {
    let t = TestDir::new();
    for c in ["services/api", "services/greeter"] {
        t.write(format!("{c}/Dockerfile"), "FROM scratch\n");
    }
    t.write("libs/common/lib.txt", "x");
    t.write("deploy/shop/stack.yaml", docs_example());
    t.write("stack.yaml", docs_example());
    t
}

fn workflow(t: &TestDir, args: &[&str], input: &str) -> microplatform_test_support::Output {
    t.cmd("stackgen")
        .arg("workflow")
        .args(args)
        .stdin(input)
        .run()
}

fn yaml(text: &str) -> serde_json::Value {
    serde_saphyr::from_str(text).expect("YAML")
}

/// The schedule of [`schedule_workflow`]: a library, two services (one needing the library) and
/// the stack's deploy component needing both services.
fn schedule_input() -> String {
    monobuild_json(&[
        ("libs/common", &[]),
        ("services/greeter", &[]),
        ("services/api", &["libs/common"]),
        ("deploy/shop", &["services/api", "services/greeter"]),
    ])
}

/// The options of [`schedule_workflow`]'s run: every setting of the Workflow given.
const SCHEDULE_ARGS: [&str; 20] = [
    "--service-account",
    "argo-builder",
    "--parallelism",
    "3",
    "--ttl",
    "2h",
    "--pod-gc",
    "OnPodSuccess",
    "--retries",
    "3",
    "--revision",
    "abc123",
    "--branch",
    "feature-x",
    "--repo",
    "https://git.example.com/shop.git",
    "--cluster-repo",
    "https://git.example.com/cluster.git",
    "--toolkit-image",
    "reg.example.com/tools:1",
];

/// `stackgen workflow SCHEDULE_ARGS` of [`schedule_input`] in a fresh [`repo`]; asserts success.
fn schedule_workflow() -> (TestDir, microplatform_test_support::Output) {
    let t = repo();
    let out = workflow(&t, &SCHEDULE_ARGS, &schedule_input());
    out.success();
    (t, out)
}

/// `stackgen workflow --kind template --name shop-build` of [`schedule_input`] in `t`; asserts
/// success.
fn schedule_template(t: &TestDir) -> microplatform_test_support::Output {
    let out = workflow(
        t,
        &["--kind", "template", "--name", "shop-build"],
        &schedule_input(),
    );
    out.success();
    out
}

/// [`schedule_workflow`]'s Workflow, parsed.
fn schedule_doc() -> serde_json::Value {
    yaml(&schedule_workflow().1.stdout)
}

/// The workflow's parameters, name and value.
fn parameters(spec: &serde_json::Value) -> Vec<(String, Option<String>)> {
    spec["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// The workflow's template called `name`.
fn template<'a>(spec: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    spec["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no template {name}"))
}

/// A template's container arguments.
fn container_args(template: &serde_json::Value) -> Vec<&str> {
    template["container"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn workflow_from_a_schedule_is_deterministic() {
    let (t, out) = schedule_workflow();
    let again = workflow(&t, &SCHEDULE_ARGS, &schedule_input());
    assert_eq!(out.stdout, again.stdout, "deterministic");
}

#[test]
fn workflow_and_template_from_a_schedule_pass_argos_schema_and_dag_rules() {
    let (t, out) = schedule_workflow();
    let f = t.write("wf.yaml", &out.stdout);
    let g = t.write("wt.yaml", &schedule_template(&t).stdout);
    argo_validate(&[f, g]).success();
}

#[test]
fn workflow_from_a_schedule_carries_the_given_workflow_settings() {
    let wf = schedule_doc();
    assert_eq!(wf["kind"].as_str(), Some("Workflow"));
    assert_eq!(wf["metadata"]["generateName"].as_str(), Some("build-"));
    let spec = &wf["spec"];
    assert_eq!(spec["serviceAccountName"].as_str(), Some("argo-builder"));
    assert_eq!(spec["parallelism"].as_u64(), Some(3));
    assert_eq!(
        spec["ttlStrategy"]["secondsAfterCompletion"].as_u64(),
        Some(7200)
    );
    assert_eq!(spec["podGC"]["strategy"].as_str(), Some("OnPodSuccess"));
    assert_eq!(spec["onExit"].as_str(), Some("exit-handler"));
}

#[test]
fn workflow_parameters_are_the_revision_branch_slug_and_the_stacks_registry() {
    let params = parameters(&schedule_doc()["spec"]);
    assert!(params.contains(&("revision".into(), Some("abc123".into()))));
    assert!(params.contains(&("branch".into(), Some("feature-x".into()))));
    assert!(
        params.contains(&("registry".into(), Some("127.0.0.1:5000/shop".into()))),
        "from the stack file"
    );
    assert!(
        params.contains(&("tag".into(), Some("feature-x".into()))),
        "the branch slug"
    );
}

/// The DAG: checkout, the schedule's jobs in its order with its needs, then the deploy steps.
#[test]
fn workflow_dag_follows_the_schedule_then_composes_and_requests() {
    let wf = schedule_doc();
    let tasks = wf["spec"]["templates"][0]["dag"]["tasks"]
        .as_array()
        .unwrap();
    let summary: Vec<String> = tasks
        .iter()
        .map(|t| {
            let deps: Vec<&str> = t["dependencies"]
                .as_array()
                .map(|d| d.iter().map(|x| x.as_str().unwrap()).collect())
                .unwrap_or_default();
            format!(
                "{} {} [{}]",
                t["name"].as_str().unwrap(),
                t["template"].as_str().unwrap(),
                deps.join(",")
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            "checkout checkout []",
            "libs-common pass [checkout]",
            "services-greeter build [checkout]",
            "services-api build [libs-common]",
            "deploy-shop deploy [services-api,services-greeter]",
            "compose compose [deploy-shop,libs-common,services-api,services-greeter]",
            "manifests manifests [compose]",
            "resolve resolve [manifests]",
            "request request [resolve]",
        ]
    );
}

/// Build tasks pass the component's source hash and image to build-with-cache.
#[test]
fn workflow_build_tasks_pass_the_components_source_hash_and_image() {
    let wf = schedule_doc();
    let api = &wf["spec"]["templates"][0]["dag"]["tasks"][3]["arguments"]["parameters"];
    assert_eq!(
        api[1]["value"].as_str(),
        Some(support::hash("services/api").as_str())
    );
    assert_eq!(
        api[2]["value"].as_str(),
        Some("api"),
        "the image from the stack file"
    );
}

#[test]
fn workflow_build_template_runs_build_with_cache_in_the_toolkit_image() {
    let wf = schedule_doc();
    let build = template(&wf["spec"], "build");
    let args = container_args(build);
    assert_eq!(args[0], "build-with-cache", "{args:?}");
    assert!(
        args.windows(2)
            .any(|w| w == ["--source-hash", "{{inputs.parameters.source-hash}}"]),
        "{args:?}"
    );
    assert!(
        args.contains(&"{{workflow.parameters.registry}}/{{inputs.parameters.image}}:{{workflow.parameters.tag}}"),
        "{args:?}"
    );
    assert_eq!(
        build["container"]["image"].as_str(),
        Some("reg.example.com/tools:1")
    );
}

#[test]
fn workflow_build_template_has_a_privileged_sidecar_and_the_retry_strategy() {
    let wf = schedule_doc();
    let build = template(&wf["spec"], "build");
    assert_eq!(
        build["sidecars"][0]["securityContext"]["privileged"].as_bool(),
        Some(true)
    );
    assert_eq!(build["retryStrategy"]["limit"].as_str(), Some("3"));
    assert_eq!(
        build["retryStrategy"]["backoff"]["factor"].as_str(),
        Some("2")
    );
}

/// The deploy steps use the Workflow's registry parameter.
#[test]
fn workflow_compose_template_uses_the_registry_parameter() {
    let wf = schedule_doc();
    let cargs = container_args(template(&wf["spec"], "compose"));
    assert!(
        cargs
            .windows(2)
            .any(|w| w == ["--registry", "{{workflow.parameters.registry}}"]),
        "{cargs:?}"
    );
}

#[test]
fn workflow_template_kind_is_a_workflow_template_of_the_given_name() {
    let tmpl = yaml(&schedule_template(&repo()).stdout);
    assert_eq!(tmpl["kind"].as_str(), Some("WorkflowTemplate"));
    assert_eq!(tmpl["metadata"]["name"].as_str(), Some("shop-build"));
}

#[test]
fn every_pod_gc_strategy_validates() {
    let t = TestDir::new();
    let input = monobuild_json(&[("services/api", &[])]);
    let mut files = Vec::new();
    for gc in [
        "OnPodCompletion",
        "OnPodSuccess",
        "OnWorkflowCompletion",
        "OnWorkflowSuccess",
    ] {
        let out = workflow(&t, &["--pod-gc", gc, "--retries", "0"], &input);
        out.success().stdout_contains(&format!("strategy: {gc}"));
        files.push(t.write(format!("{gc}.yaml"), &out.stdout));
    }
    argo_validate(&files).success();
    workflow(&t, &["--pod-gc", "Sometimes"], &input)
        .code(2)
        .stdout_empty();
}

#[test]
fn an_empty_schedule_is_a_valid_no_op_workflow() {
    let t = TestDir::new();
    let out = workflow(&t, &[], &monobuild_json(&[]));
    out.success();
    let f = t.write("wf.yaml", &out.stdout);
    argo_validate(&[f]).success();
    let wf = yaml(&out.stdout);
    let tasks = wf["spec"]["templates"][0]["dag"]["tasks"]
        .as_array()
        .unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["template"].as_str(), Some("checkout"));
}

#[test]
fn large_schedules_are_split_into_nested_dags_within_argos_limits() {
    let t = TestDir::new();
    // 450 jobs: chains and fan-in across the 200-task boundaries.
    let names: Vec<String> = (0..450).map(|i| format!("components/c{i:03}")).collect();
    let needs: Vec<Vec<&str>> = (0..450)
        .map(|i| {
            let mut n = Vec::new();
            if i >= 1 {
                n.push(names[i - 1].as_str());
            }
            if i >= 250 {
                n.push(names[i - 250].as_str());
            }
            n
        })
        .collect();
    let jobs: Vec<(&str, &[&str])> = names
        .iter()
        .zip(&needs)
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let out = workflow(&t, &[], &monobuild_json(&jobs));
    out.success();
    let f = t.write("wf.yaml", &out.stdout);
    argo_validate(&[f]).success();
    let wf = yaml(&out.stdout);
    let templates = wf["spec"]["templates"].as_array().unwrap();
    let main = &templates[0]["dag"]["tasks"];
    assert_eq!(main.as_array().unwrap().len(), 4, "checkout and 3 parts");
    assert_eq!(
        main[3]["dependencies"].as_array().unwrap().len(),
        2,
        "part 3 needs parts 1 and 2"
    );
    let total: usize = templates[1..4]
        .iter()
        .map(|t| t["dag"]["tasks"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 450);
}

#[test]
fn task_names_are_sanitised_and_collisions_are_errors() {
    let t = TestDir::new();
    let long = format!("deep/{}", "n".repeat(300));
    let out = workflow(
        &t,
        &[],
        &monobuild_json(&[
            ("svc/Web_App", &[]),
            ("svc/a.b", &["svc/Web_App"]),
            (&long, &[]),
        ]),
    );
    out.success()
        .stdout_contains("name: svc-Web-App")
        .stdout_contains("name: svc-a-b");
    let f = t.write("wf.yaml", &out.stdout);
    argo_validate(&[f]).success();
    workflow(
        &t,
        &[],
        &monobuild_json(&[("svc/a-b", &[]), ("svc/a_b", &[])]),
    )
    .code(10)
    .stdout_empty()
    .stderr_one_line()
    .stderr_contains("jobs `svc/a-b` and `svc/a_b` both become the Argo task name `svc-a-b`");
    workflow(&t, &["--name", "Bad_Name"], &monobuild_json(&[]))
        .code(2)
        .stdout_empty()
        .stderr_contains("--name");
    workflow(&t, &["--name", &"a".repeat(60)], &monobuild_json(&[]))
        .code(2)
        .stdout_empty();
}

#[test]
fn wrong_schedule_json_is_a_clear_error() {
    let t = TestDir::new();
    let ok = monobuild_json(&[("a", &[])]);
    let mut v: serde_json::Value = serde_json::from_str(&ok).unwrap();
    let cases: Vec<(String, i32, &str)> = vec![
        ("not json".into(), 3, "not JSON"),
        ("[]".into(), 3, "expected an object"),
        (r#"{"schema_version": 2, "components": {}, "schedule": {"jobs": []}}"#.into(), 3, "schema_version: unsupported version 2 (stackgen reads 1)"),
        (r#"{"schema_version": "1"}"#.into(), 3, "schema_version: expected the number 1"),
        (r#"{"schema_version": 1, "schedule": {"jobs": []}}"#.into(), 3, "components: missing"),
        (r#"{"schema_version": 1, "components": {}}"#.into(), 3, "schedule: missing"),
        (r#"{"schema_version": 1, "components": {}, "schedule": {"jobs": {}}}"#.into(), 3, "schedule.jobs: expected an array"),
        (r#"{"schema_version": 1, "components": {"a": {"hash": "xyz"}}, "schedule": {"jobs": []}}"#.into(), 3, "components.a.hash: `xyz` is not 64 hex digits"),
        ({ let mut w = v.clone(); w["schedule"]["jobs"][0]["needs"] = serde_json::json!([1]); w.to_string() }, 3, "schedule.jobs[0].needs[0]: expected a string"),
        ({ let mut w = v.clone(); w["schedule"]["jobs"][0]["name"] = serde_json::json!("zz"); w.to_string() }, 3, "schedule.jobs[0].name: `zz` is not in `components`"),
        ({ let mut w = v.clone(); w["schedule"]["jobs"][0]["needs"] = serde_json::json!(["q"]); w.to_string() }, 8, "`a` needs `q`, which is not a scheduled job"),
        ({ let mut w = v.clone(); w["schedule"]["jobs"][0]["needs"] = serde_json::json!(["a"]); w.to_string() }, 8, "cycle"),
    ];
    for (input, code, needle) in &cases {
        workflow(&t, &[], input)
            .code(*code)
            .stdout_empty()
            .stderr_one_line()
            .stderr_contains(needle);
    }
    // Unknown extra fields are ignored.
    v["new_field"] = serde_json::json!({"x": 1});
    v["schedule"]["extra"] = serde_json::json!(true);
    let mut s = String::new();
    write!(s, "{v}").unwrap();
    workflow(&t, &[], &s).success();
}

/// The child Workflow of an auto-gated environment goes on after its direct request until the
/// environment is verified (the agent applied it, smoke checks, report): Argo's schema accepts it.
#[test]
fn an_auto_gated_environment_workflow_verifies_and_passes_argos_schema() {
    let t = TestDir::new();
    for c in ["services/api", "services/web"] {
        t.write(format!("{c}/Dockerfile"), "FROM scratch\n");
    }
    t.write(
        "stack.yaml",
        "name: shop\nregistry: registry.example.com/shop\npromotion: [dev, staging]\nservices:\n  api:\n    component: services/api\n    image: api\n    ports: [{port: 8080}]\n    ingress: {path: /api}\n    smoke: {path: /api/health, body: ok}\n  web:\n    component: services/web\n    image: web\n    ports: [{port: 80}]\nenvironments:\n  dev:\n    namespace: \"{stack}-{branch}\"\n  staging:\n    namespace: \"{stack}-staging\"\n    host: staging.example.com\n    gate: auto\n",
    );
    let input = monobuild_json(&[("services/api", &[]), ("services/web", &[])]);
    let out = workflow(
        &t,
        &[
            "--env",
            "staging",
            "--branch",
            "main",
            "--rc-registry",
            "rc.example.com",
            "--agent-url",
            "http://agent.example:3016",
            "--revision",
            "abc123",
        ],
        &input,
    );
    out.success();
    let f = t.write("wf.yaml", &out.stdout);
    argo_validate(&[f]).success();
    let wf = yaml(&out.stdout);
    let tasks: Vec<&str> = wf["spec"]["templates"][0]["dag"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        tasks.ends_with(&["request", "applied", "plan", "smoke", "report"]),
        "{tasks:?}"
    );
    let params = wf["spec"]["arguments"]["parameters"].as_array().unwrap();
    let value = |name: &str| {
        params
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["value"].as_str())
    };
    assert_eq!(value("agent-url"), Some("http://agent.example:3016"));
    assert_eq!(value("url"), Some("https://staging.example.com/"));
}
