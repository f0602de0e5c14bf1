//! `stackgen plan`: the JSON contract (`deny_unknown_fields`), the registry and tag rules, and the build steps being the workflow's with its parameters substituted.

use crate::support;

use std::collections::BTreeMap;

use serde::Deserialize;
use support::{hash, monobuild_json, stackgen};

const STACK: &str = "name: shop\nregistry: registry.example.com/shop\nservices:\n  api:\n    component: services/api\n    image: api\n    ports: [{port: 8080}]\n    health: {http: {path: /health, port: 8080}}\n    ingress: {path: /api}\n    smoke: {path: \"/api/status?v=1\", body: \"ok$\"}\n  web:\n    component: services/web\n    image: web\n    ports: [{port: 80}]\nenvironments:\n  dev:\n    namespace: \"{stack}-{branch}\"\n    host: \"{branch}.dev.example.com\"\n";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Plan {
    schema_version: u32,
    stack: String,
    environment: String,
    branch: String,
    revision: String,
    registry: String,
    tag: String,
    namespace: String,
    url: Option<String>,
    parameters: BTreeMap<String, String>,
    services: Vec<Service>,
    builds: Vec<Build>,
    stages: usize,
    libraries: Vec<String>,
    steps: Steps,
    promotion: Promotion,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Promotion {
    order: Vec<String>,
    gate: Option<String>,
    release_candidate: bool,
    rc_registry: Option<String>,
    registry: String,
    next: Option<Next>,
    main_flow: bool,
    flow: Vec<FlowEntry>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Next {
    environment: String,
    gate: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowEntry {
    environment: String,
    gate: Option<String>,
    release_candidate: bool,
    namespace: String,
    registry: String,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathPort {
    path: String,
    port: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
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
    smoke: Option<Smoke>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Smoke {
    path: String,
    url: Option<String>,
    status: u16,
    body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Build {
    component: String,
    kind: String,
    hash: String,
    image: String,
    services: Vec<String>,
    needs: Vec<String>,
    stage: usize,
    affected: bool,
    reference: String,
    step: Step,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    id: String,
    cwd: String,
    argv: Vec<String>,
    stdout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Steps {
    diff: Step,
    deploy: Vec<Step>,
    verify: Vec<Step>,
}

fn repo() -> microplatform_test_support::TestDir {
    let t = support::with_stack(STACK);
    for c in ["services/api", "services/web"] {
        t.write(format!("{c}/Dockerfile"), "FROM scratch\n");
    }
    t.write("libs/page/x", "x");
    t
}

/// The feature-branch plan: `web` and its library changed, `api` is planned as an unaffected build.
fn feature_plan() -> (microplatform_test_support::TestDir, Plan) {
    let t = repo();
    let input = monobuild_json(&[("libs/page", &[]), ("services/web", &["libs/page"])]);
    let mut json: serde_json::Value = serde_json::from_str(&input).unwrap();
    json["components"]["services/api"] = serde_json::json!({"hash": hash("services/api")});
    t.write("mb.json", json.to_string());
    let out = stackgen(
        &t,
        &[
            "plan",
            "--env",
            "dev",
            "--branch",
            "Feature/Cart",
            "--registry",
            "127.0.0.1:5000",
            "--revision",
            "abc123",
            "--cluster-repo",
            "file:///cluster.git",
            "--schedule",
            "mb.json",
            "--build-arg",
            "BASE=b:1",
            "--forge",
            "none",
            "--insecure-registry",
            "127.0.0.1:5000",
        ],
    );
    out.success();
    let p: Plan = serde_json::from_str(&out.stdout).expect("plan JSON");
    (t, p)
}

#[test]
fn plan_names_the_stack_branch_revision_and_the_overridden_registry() {
    let (_t, p) = feature_plan();
    assert_eq!(p.schema_version, 1);
    assert_eq!((p.stack.as_str(), p.environment.as_str()), ("shop", "dev"));
    assert_eq!(p.branch, "Feature/Cart");
    assert_eq!(p.revision, "abc123");
    assert_eq!(
        p.registry, "127.0.0.1:5000/shop",
        "host replaced, path kept"
    );
}

#[test]
fn plan_tag_namespace_and_url_come_from_the_branch_slug() {
    let (_t, p) = feature_plan();
    assert_eq!(
        p.tag, "feature-cart-f388674a",
        "the branch slug: case-folded and `/` replaced, so a hash suffix keeps `feature-cart` apart"
    );
    assert_eq!(p.namespace, "shop-feature-cart-f388674a");
    assert_eq!(
        p.url.as_deref(),
        Some("https://feature-cart-f388674a.dev.example.com/")
    );
    assert_eq!(p.parameters["registry"], p.registry);
    assert_eq!(p.parameters["tag"], p.tag);
}

#[test]
fn plan_service_names_its_image_reference_ports_health_and_route() {
    let (_t, p) = feature_plan();
    let api = &p.services[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.component.as_deref(), Some("services/api"));
    assert_eq!(api.image, "api");
    assert_eq!(api.repository, "127.0.0.1:5000/shop/api");
    assert_eq!(api.tag, "feature-cart-f388674a");
    assert_eq!(
        api.reference,
        "127.0.0.1:5000/shop/api:feature-cart-f388674a"
    );
    assert_eq!(api.dockerfile.as_deref(), Some("services/api/Dockerfile"));
    assert_eq!(api.ports, [8080]);
    assert_eq!(api.replicas, 1);
    assert_eq!(
        api.health.as_ref().map(|h| (&*h.path, h.port)),
        Some(("/health", 8080))
    );
    assert_eq!(
        api.ingress.as_ref().map(|h| (&*h.path, h.port)),
        Some(("/api", 8080))
    );
    assert_eq!(
        api.url.as_deref(),
        Some("https://feature-cart-f388674a.dev.example.com/api")
    );
    assert!(p.services[1].url.is_none() && p.services[1].ingress.is_none());
}

#[test]
fn plan_service_smoke_check_gets_its_absolute_url_only_when_declared() {
    let (_t, p) = feature_plan();
    assert_eq!(
        p.services[0].smoke,
        Some(Smoke {
            path: "/api/status?v=1".into(),
            url: Some("https://feature-cart-f388674a.dev.example.com/api/status?v=1".into()),
            status: 200,
            body: "ok$".into(),
        })
    );
    assert!(p.services[1].smoke.is_none());
}

#[test]
fn plan_with_an_ingress_port_names_it_in_every_url() {
    // A platform whose ingress answers plain HTTP on a port: every URL names it.
    let t = repo();
    let local = stackgen(
        &t,
        &[
            "plan",
            "--env",
            "dev",
            "--branch",
            "Feature/Cart",
            "--ingress-port",
            "8088",
        ],
    );
    local.success();
    let lp: Plan = serde_json::from_str(&local.stdout).expect("plan JSON");
    assert_eq!(
        lp.url.as_deref(),
        Some("http://feature-cart-f388674a.dev.example.com:8088/")
    );
    assert_eq!(
        lp.services[0].url.as_deref(),
        Some("http://feature-cart-f388674a.dev.example.com:8088/api")
    );
    assert_eq!(
        lp.services[0].smoke.as_ref().and_then(|s| s.url.as_deref()),
        Some("http://feature-cart-f388674a.dev.example.com:8088/api/status?v=1")
    );
}

#[test]
fn plan_builds_affected_and_unaffected_components_in_stages_and_lists_libraries() {
    let (_t, p) = feature_plan();
    let summary: Vec<(String, usize, bool)> = p
        .builds
        .iter()
        .map(|b| (b.component.clone(), b.stage, b.affected))
        .collect();
    assert_eq!(
        summary,
        [
            ("services/web".to_string(), 0, true),
            ("services/api".to_string(), 0, false)
        ]
    );
    assert_eq!(p.stages, 1, "a library adds no stage");
    assert_eq!(p.libraries, ["libs/page"]);
}

#[test]
fn plan_build_names_its_hash_image_services_needs_and_reference() {
    let (_t, p) = feature_plan();
    let web = &p.builds[0];
    assert_eq!(web.kind, "build");
    assert_eq!(web.hash, hash("services/web"));
    assert_eq!(web.image, "web");
    assert_eq!(web.services, ["web"]);
    assert_eq!(web.needs, ["libs/page"]);
    assert_eq!(
        web.reference,
        "127.0.0.1:5000/shop/web:feature-cart-f388674a"
    );
}

#[test]
fn plan_build_step_is_build_with_cache_with_tag_hash_branch_and_build_args() {
    let (_t, p) = feature_plan();
    let web = &p.builds[0];
    assert_eq!(
        (web.step.id.as_str(), web.step.cwd.as_str()),
        ("build", "src")
    );
    assert!(web.step.stdout.is_none());
    assert_eq!(
        web.step.argv,
        [
            "build-with-cache",
            "--network",
            "host",
            "--file",
            "services/web/Dockerfile",
            "--build-arg",
            "BASE=b:1",
            "--tag",
            "127.0.0.1:5000/shop/web:feature-cart-f388674a",
            "--source-hash",
            &hash("services/web"),
            "--branch",
            "Feature/Cart",
            "--fallback-branch",
            "main",
            "."
        ]
    );
}

#[test]
fn plan_diff_step_is_monobuild_diff_against_the_base_branch() {
    let (_t, p) = feature_plan();
    assert_eq!(
        p.steps.diff.argv,
        [
            "monobuild",
            "diff",
            "--format",
            "json",
            "--base-branch",
            "main"
        ]
    );
    assert_eq!(p.steps.diff.stdout.as_deref(), Some("monobuild.json"));
}

#[test]
fn plan_deploy_steps_compose_render_resolve_and_request_into_the_namespace() {
    let (_t, p) = feature_plan();
    let ids: Vec<&str> = p.steps.deploy.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["compose", "manifests", "resolve", "request"]);
    let compose = &p.steps.deploy[0].argv;
    assert!(
        compose.join(" ").contains(
            "--registry 127.0.0.1:5000/shop --endpoint-mode dnsrr --output deploy/compose.yaml"
        ),
        "{compose:?}"
    );
    assert_eq!(
        p.steps.deploy[2].argv,
        [
            "digest-resolve",
            "--in-place",
            "--insecure-registry",
            "127.0.0.1:5000",
            "deploy/compose.yaml",
            "manifests"
        ]
    );
    assert!(p.steps.deploy[3].argv.join(" ").contains(
        "--repo file:///cluster.git --namespace shop-feature-cart-f388674a --dir deploy --sha abc123"
    ));
}

/// `stackgen workflow` with the same branch, registry, revision, build argument and schedule as
/// [`feature_plan`]'s run, parsed.
fn feature_workflow(t: &microplatform_test_support::TestDir) -> serde_json::Value {
    let wf = t
        .cmd("stackgen")
        .args([
            "workflow",
            "--branch",
            "Feature/Cart",
            "--registry",
            "127.0.0.1:5000",
            "--revision",
            "abc123",
            "--build-arg",
            "BASE=b:1",
        ])
        .stdin(std::fs::read_to_string(t.join("mb.json")).unwrap())
        .run();
    wf.success();
    serde_saphyr::from_str(&wf.stdout).unwrap()
}

/// The workflow's parameters, name to value.
fn workflow_parameters(doc: &serde_json::Value) -> BTreeMap<String, String> {
    doc["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                p["name"].as_str()?.to_string(),
                p["value"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// The workflow's `build` template's container arguments with the workflow's parameters and the
/// template's `inputs` substituted.
fn workflow_build_argv(doc: &serde_json::Value, inputs: &[(&str, String)]) -> Vec<String> {
    let params = workflow_parameters(doc);
    let build = doc["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"].as_str() == Some("build"))
        .unwrap();
    build["container"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut s = a.as_str().unwrap().to_string();
            for (k, v) in &params {
                s = s.replace(&format!("{{{{workflow.parameters.{k}}}}}"), v);
            }
            for (k, v) in inputs {
                s = s.replace(&format!("{{{{inputs.parameters.{k}}}}}"), v);
            }
            s
        })
        .collect()
}

/// One behaviour, one check: the workflow of the same run, its build template with the
/// parameters substituted, is the plan's build command line.
#[test]
fn plan_build_step_is_the_workflow_build_template_with_its_parameters_substituted() {
    let (t, p) = feature_plan();
    let web = &p.builds[0];
    let inputs = [
        ("component", "services/web".to_string()),
        ("source-hash", hash("services/web")),
        ("image", "web".to_string()),
    ];
    let argv = workflow_build_argv(&feature_workflow(&t), &inputs);
    assert_eq!(argv, web.step.argv);
}

#[test]
fn plan_without_schedule_has_no_builds_and_main_diffs_against_its_parent() {
    let t = repo();
    let out = stackgen(&t, &["plan", "--env", "dev", "--branch", "main"]);
    out.success();
    let p: Plan = serde_json::from_str(&out.stdout).expect("plan JSON");
    assert!(p.builds.is_empty() && p.libraries.is_empty());
    assert_eq!(p.registry, "registry.example.com/shop", "no override");
    assert_eq!(
        p.steps.diff.argv,
        ["monobuild", "diff", "--format", "json", "--main-branch"]
    );
}

#[test]
fn plan_refuses_a_stack_component_monobuild_does_not_know() {
    let t = repo();
    t.write("mb.json", monobuild_json(&[("services/web", &[])]));
    stackgen(
        &t,
        &[
            "plan",
            "--env",
            "dev",
            "--branch",
            "b",
            "--schedule",
            "mb.json",
        ],
    )
    .code(10)
    .stdout_empty()
    .stderr_contains("services/api");
}

const PROMOTED: &str = "promotion: [dev, staging, prod]\n  staging:\n    namespace: \"{stack}-staging\"\n    host: staging.example.com\n    gate: auto\n  prod:\n    namespace: \"{stack}\"\n    gate: manual\n";

/// STACK with `promotion` and two gated environments (PROMOTED's environments go under STACK's).
fn promoted_repo(extra: &str) -> microplatform_test_support::TestDir {
    let (order, envs) = extra.split_once('\n').unwrap();
    let t = support::with_stack(&format!("{order}\n{STACK}{envs}"));
    for c in ["services/api", "services/web"] {
        t.write(format!("{c}/Dockerfile"), "FROM scratch\n");
    }
    t
}

fn plan_of(t: &microplatform_test_support::TestDir, env: &str, branch: &str) -> Plan {
    let out = stackgen(
        t,
        &[
            "plan",
            "--env",
            env,
            "--branch",
            branch,
            "--registry",
            "127.0.0.1:5000",
            "--rc-registry",
            "127.0.0.1:5001",
            "--forge",
            "github",
        ],
    );
    out.success();
    serde_json::from_str(&out.stdout).expect("plan JSON")
}

#[test]
fn promotion_main_flow_from_the_first_environment_stops_at_the_next_gate() {
    let t = promoted_repo(PROMOTED);
    // main, first environment: the main flow goes through staging (auto) and stops at prod (manual).
    let p = plan_of(&t, "dev", "main");
    assert_eq!(p.promotion.order, ["dev", "staging", "prod"]);
    assert!(p.promotion.main_flow && !p.promotion.release_candidate && p.promotion.gate.is_none());
    assert_eq!(p.promotion.registry, "127.0.0.1:5000/shop");
    assert_eq!(p.promotion.rc_registry.as_deref(), Some("127.0.0.1:5001"));
    assert_eq!(
        p.promotion.next,
        Some(Next {
            environment: "staging".into(),
            gate: "auto".into()
        })
    );
}

#[test]
fn promotion_flow_lists_the_gated_environments_as_release_candidates_in_the_rc_registry() {
    let t = promoted_repo(PROMOTED);
    let p = plan_of(&t, "dev", "main");
    let flow: Vec<(&str, Option<&str>, &str, &str)> = p
        .promotion
        .flow
        .iter()
        .map(|f| {
            (
                f.environment.as_str(),
                f.gate.as_deref(),
                f.namespace.as_str(),
                f.registry.as_str(),
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            (
                "staging",
                Some("auto"),
                "shop-staging",
                "127.0.0.1:5001/shop"
            ),
            ("prod", Some("manual"), "shop", "127.0.0.1:5001/shop"),
        ]
    );
    assert!(p.promotion.flow.iter().all(|f| f.release_candidate));
    assert_eq!(
        p.promotion.flow[0].url.as_deref(),
        Some("https://staging.example.com/")
    );
    assert_eq!(p.parameters["rc-registry"], "127.0.0.1:5001");
}

#[test]
fn promotion_on_a_branch_deploys_the_first_environment_only_resolving_in_the_build_registry() {
    let t = promoted_repo(PROMOTED);
    // A branch deploys dev only, resolving in the build registry.
    let b = plan_of(&t, "dev", "feature-x");
    assert!(!b.promotion.main_flow);
    assert_eq!(b.promotion.flow.len(), 1);
    assert_eq!(b.steps.deploy[2].id, "resolve");
    // A branch environment verifies nothing in the workflow.
    assert!(b.steps.verify.is_empty());
}

#[test]
fn promotion_into_an_auto_gate_promotes_instead_of_resolving() {
    let t = promoted_repo(PROMOTED);
    // staging: promote instead of resolve.
    let s = plan_of(&t, "staging", "main");
    assert_eq!(
        (s.promotion.gate.as_deref(), s.promotion.release_candidate),
        (Some("auto"), true)
    );
    assert_eq!(
        s.promotion.next,
        Some(Next {
            environment: "prod".into(),
            gate: "manual".into()
        })
    );
    let ids: Vec<&str> = s.steps.deploy.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["compose", "manifests", "promote", "request"]);
    assert_eq!(
        s.steps.deploy[2].argv,
        [
            "digest-resolve",
            "--in-place",
            "--promote-to",
            "127.0.0.1:5001",
            "--promote-report",
            "promote.json",
            "deploy/compose.yaml",
            "manifests",
        ]
    );
}

#[test]
fn promotion_into_an_auto_gate_requests_a_direct_commit_of_the_release_candidate() {
    let t = promoted_repo(PROMOTED);
    let s = plan_of(&t, "staging", "main");
    let req = &s.steps.deploy[3].argv;
    assert!(
        req.ends_with(&[
            "--direct".into(),
            "--release-candidate".into(),
            "promote.json".into()
        ]),
        "{req:?}"
    );
}

#[test]
fn promotion_after_a_direct_request_verifies_applied_plan_smoke_and_report() {
    let t = promoted_repo(PROMOTED);
    let s = plan_of(&t, "staging", "main");
    // After the direct request, prod must wait for staging: the agent applied the commit, the
    // environment's plan, its smoke checks at the URL, the result back to the monorepo (github forge).
    let ids: Vec<&str> = s.steps.verify.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(ids, ["applied", "plan", "smoke", "report"]);
    assert_eq!(
        s.steps.verify[0].argv,
        [
            "deploy-bot",
            "status",
            "--agent-url",
            "http://deploy-bot.deploy-bot.svc.cluster.local",
            "--namespace",
            "shop-staging",
            "--request",
            "request.json",
            "--wait",
            "10m"
        ]
    );
    assert_eq!(s.steps.verify[0].stdout.as_deref(), Some("applied.json"));
    assert_eq!(
        s.steps.verify[1].argv[..6],
        [
            "stackgen",
            "--stack",
            "src/stack.yaml",
            "plan",
            "--env",
            "staging"
        ]
    );
    assert_eq!(
        s.steps.verify[2].argv[..4],
        ["deploy-bot", "smoke", "--plan", "plan.json"]
    );
    let report = &s.steps.verify[3].argv;
    assert!(
        report
            .windows(2)
            .any(|w| w == ["--url", "https://staging.example.com/"])
            && report.ends_with(&["--smoke".into(), "smoke.json".into()]),
        "{report:?}"
    );
    assert_eq!(s.parameters["url"], "https://staging.example.com/");
}

#[test]
fn promotion_into_a_manual_gate_is_a_pull_request_with_nothing_after_it() {
    let t = promoted_repo(PROMOTED);
    // prod: a pull request (no --direct) that links the release candidate; a manual gate
    // verifies nothing in the workflow.
    let pr = plan_of(&t, "prod", "main");
    assert!(pr.steps.verify.is_empty());
    let req = &pr.steps.deploy[3].argv;
    assert!(
        !req.contains(&"--direct".to_string())
            && req.ends_with(&["--release-candidate".into(), "promote.json".into()])
    );
    assert!(pr.promotion.next.is_none());
}

#[test]
fn promotion_into_a_release_candidate_environment_needs_the_rc_registry() {
    let t = promoted_repo(PROMOTED);
    let out = stackgen(&t, &["plan", "--env", "staging", "--branch", "main"]);
    out.code(2)
        .stderr_contains("--rc-registry: environment `staging` deploys release candidates");
}

/// `stackgen validate` of STACK with `extra` under it (see [`promoted_repo`]) fails with `code`
/// and a stderr naming `message` and, when given, the field `key`.
#[track_caller]
fn assert_promotion_refused(extra: &str, code: i32, key: Option<&str>, message: &str) {
    let t = promoted_repo(extra);
    let out = stackgen(&t, &["validate"]);
    assert_eq!(out.code, Some(code), "{extra}: {}", out.stderr);
    out.stderr_contains(message);
    if let Some(key) = key {
        out.stderr_contains(key);
    }
}

#[test]
fn promotion_naming_an_undeclared_environment_is_refused() {
    assert_promotion_refused(
        &PROMOTED.replace("[dev, staging, prod]", "[dev, qa, prod]"),
        10,
        Some("promotion"),
        "names `qa`, which is not a declared environment",
    );
}

#[test]
fn promotion_naming_an_environment_twice_is_refused() {
    assert_promotion_refused(
        &PROMOTED.replace("[dev, staging, prod]", "[dev, staging, prod, staging]"),
        10,
        Some("promotion"),
        "names `staging` twice",
    );
}

#[test]
fn promotion_environment_after_the_first_without_a_gate_is_refused() {
    assert_promotion_refused(
        &PROMOTED.replace("    gate: manual\n", ""),
        10,
        Some("environments.prod"),
        "declare its `gate: auto` or `gate: manual`",
    );
}

#[test]
fn promotion_first_environment_with_a_gate_is_refused() {
    assert_promotion_refused(
        &PROMOTED.replace("[dev, staging, prod]", "[staging, prod]"),
        10,
        Some("environments.staging.gate"),
        "is the first environment of `promotion`",
    );
}

#[test]
fn promotion_gate_on_an_environment_outside_promotion_is_refused() {
    assert_promotion_refused(
        &PROMOTED.replace("[dev, staging, prod]", "[dev, staging]"),
        10,
        Some("environments.prod.gate"),
        "has a gate but is not in `promotion`",
    );
}

#[test]
fn promotion_gate_of_an_unknown_kind_is_a_parse_error() {
    assert_promotion_refused(
        &PROMOTED.replace("gate: auto", "gate: sometimes"),
        3,
        None,
        "unknown variant `sometimes`",
    );
}
