//! The stackgen binary on stack files: validate, namespace, url, manifests, compose, schema; bad input; determinism.

use crate::support;

use microplatform_test_support::TestDir;
use support::{docs_example, stackgen, with_stack};

const MINIMAL: &str = "name: shop\nregistry: r.example.com/shop\nservices:\n  api:\n    image: api\n    ports: [{port: 8080}]\nenvironments:\n  dev:\n    namespace: \"{stack}-{branch}\"\n    host: \"{branch}.dev.example.com\"\n  prod:\n    namespace: \"{stack}\"\n";

#[test]
fn validate_accepts_the_documented_example() {
    let t = with_stack(&docs_example());
    stackgen(&t, &["validate"])
        .success()
        .stdout_contains("ok: stack `shop`, 2 services, environments: dev, prod");
}

/// The first 8 hex digits of the hash of `branch`'s name, the suffix of a branch that is not its own slug.
fn branch_hash(branch: &str) -> String {
    support::hash(branch)[..8].to_string()
}

/// The trimmed stdout of `stackgen <command> -e <env> -b <branch>` on the documented example.
fn alias(command: &str, env: &str, branch: &str) -> String {
    let t = with_stack(&docs_example());
    let out = stackgen(&t, &[command, "-e", env, "-b", branch]);
    out.success();
    out.stdout.trim().to_string()
}

/// A 98-character branch ending in `-<end>`: too long for a label.
fn long_branch(end: &str) -> String {
    format!("feature/{}-{end}", "x".repeat(90))
}

#[test]
fn namespace_of_a_branch_that_is_its_own_slug_is_the_stack_and_branch() {
    let t = with_stack(&docs_example());
    stackgen(&t, &["namespace", "--env", "dev", "--branch", "add-cart"])
        .success()
        .stdout_eq("shop-add-cart\n");
    stackgen(&t, &["namespace", "-e", "dev", "-b", "feature-a"])
        .success()
        .stdout_eq("shop-feature-a\n");
}

#[test]
fn namespace_of_a_branch_that_is_not_its_own_slug_carries_its_hash() {
    let t = with_stack(&docs_example());
    stackgen(
        &t,
        &["namespace", "--env", "dev", "--branch", "feature/Add-Cart"],
    )
    .success()
    .stdout_eq(&format!(
        "shop-feature-add-cart-{}\n",
        branch_hash("feature/Add-Cart")
    ));
}

#[test]
fn url_of_a_branch_that_is_not_its_own_slug_carries_its_hash() {
    let t = with_stack(&docs_example());
    stackgen(&t, &["url", "--env", "dev", "--branch", "Fix__JIRA-12"])
        .success()
        .stdout_eq(&format!(
            "https://fix-jira-12-{}.dev.example.com/\n",
            branch_hash("Fix__JIRA-12")
        ));
}

#[test]
fn branches_that_slug_alike_never_share_a_namespace() {
    for (a, b) in [("feature/a", "feature-a"), ("fix/JIRA-123", "fix/jira-123")] {
        let na = alias("namespace", "dev", a);
        let nb = alias("namespace", "dev", b);
        assert_ne!(na, nb, "{a} and {b}");
    }
}

#[test]
fn namespace_without_a_branch_placeholder_ignores_the_branch() {
    let t = with_stack(&docs_example());
    stackgen(&t, &["namespace", "--env", "prod", "--branch", "anything"])
        .success()
        .stdout_eq("shop\n");
}

#[test]
fn namespace_of_a_long_branch_is_a_52_character_label_with_a_hash_that_never_collides() {
    let na = alias("namespace", "dev", &long_branch("a"));
    let nb = alias("namespace", "dev", &long_branch("b"));
    assert_eq!(
        na.len(),
        52,
        "{na}: an alias leaves Swarm room for `_<service>`"
    );
    assert_ne!(na, nb);
    assert!(na.starts_with("shop-feature-xxx"));
}

#[test]
fn url_of_a_long_branch_has_only_valid_dns_labels() {
    let url = alias("url", "dev", &long_branch("a"));
    let host = url.trim_start_matches("https://").trim_end_matches('/');
    assert!(
        host.split('.').all(|l| !l.is_empty() && l.len() <= 63),
        "{host}"
    );
}

/// Errors: one line on stderr naming the place, the exit code, nothing on stdout.
fn fails(t: &TestDir, args: &[&str], code: i32, needles: &[&str]) {
    let out = stackgen(t, args);
    out.code(code).stdout_empty().stderr_one_line();
    for n in needles {
        out.stderr_contains(n);
    }
}

/// Every case fails `validate` with its exit code and one stderr line holding every needle; every
/// other command that reads the stack file rejects it the same way.
fn assert_invalid(cases: &[(&str, i32, &[&str])]) {
    for (text, code, needles) in cases {
        let t = with_stack(text);
        fails(&t, &["validate"], *code, needles);
        // Every command that reads the stack file rejects it the same way.
        fails(
            &t,
            &["manifests", "-e", "dev", "-b", "main", "-t", "v1"],
            *code,
            needles,
        );
    }
}

#[test]
fn invalid_stack_files_name_unknown_keys() {
    // unknown key
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    replica: 2\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            3,
            &["stack.yaml:6:", "services.api", "unknown field `replica`"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}\", hosts: x}\n",
            3,
            &["stack.yaml:6:", "unknown field `hosts`"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_names_that_are_not_dns_labels() {
    // names that are not DNS labels
    assert_invalid(&[
        (
            "name: Shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:1:1: name:", "DNS-1123"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  my_api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:4:3: services.my_api:", "DNS-1123"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}_{branch}\"}\n",
            10,
            &[
                "stack.yaml:6:",
                "environments.dev.namespace",
                "not a DNS-1123 label",
            ],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_bad_ports() {
    // bad ports
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports:\n      - port: 80\n      - port: 70000\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:8:9: services.api.ports[1].port: 70000 is not a port"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports:\n      - port: 0\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:7:9:", "0 is not a port"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: http}]\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            3,
            &["stack.yaml:6:", "services.api.ports[0].port"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_duplicate_keys_ports_and_services() {
    // duplicates
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports:\n      - port: 80\n      - port: 80\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:8:", "duplicate port 80/TCP"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\n  api: {image: web}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            3,
            &["stack.yaml:5:3: services.api: duplicate key"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    env:\n      A: x\n      A: y\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            3,
            &["stack.yaml:8:7: services.api.env.A: duplicate key"],
        ),
        (
            "name: shop\nname: x\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            3,
            &["stack.yaml:2:1: name: duplicate key"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev:\n    namespace: \"{stack}\"\n    add:\n      api: {image: other}\n",
            10,
            &["stack.yaml:9:7: environments.dev.add.api: duplicate service"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  a: {image: a, ports: [{port: 1, published: 9000}]}\n  b: {image: b, ports: [{port: 1, published: 9000}]}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:5:", "duplicate published port 9000"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_overrides_and_omissions_of_undeclared_services() {
    // overrides and omissions of undeclared services
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev:\n    namespace: \"{stack}\"\n    services:\n      web: {replicas: 2}\n",
            10,
            &[
                "stack.yaml:9:7: environments.dev.services.web: overrides `web`, which is not a declared service (declared: api)",
            ],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev:\n    namespace: \"{stack}\"\n    omit: [api, web]\n",
            10,
            &["stack.yaml:8:17: environments.dev.omit[1]", "`web`"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_bad_templates_and_values() {
    // templates and other values
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}-{user}\"}\n",
            10,
            &["unknown placeholder `{user}`"],
        ),
        (
            "name: shop\nregistry: https://r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:2:1: registry:"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: API:1}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.image"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    resources: {limits: {memory: lots}}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.resources.limits.memory"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    health: {http: {path: /, port: 80}, command: [x]}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.health", "exactly one"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ingress: {path: /}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.ingress", "needs a TCP port"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_names_that_are_not_dns_1035_labels() {
    // names the Kubernetes API server refuses: a service or added service starting with a digit
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  9lives: {image: cat}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:4:3: services.9lives:", "DNS-1035"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev:\n    namespace: \"{stack}\"\n    add:\n      0day: {image: x}\n",
            10,
            &["stack.yaml:9:7: environments.dev.add.0day:", "DNS-1035"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_resource_requests_over_their_limits() {
    // resource requests the Kubernetes API server refuses: more than the limit, in any unit
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    resources:\n      requests: {cpu: \"1.5\", memory: 64Mi}\n      limits: {cpu: 1500m, memory: 64Mi}\n  web:\n    image: web\n    resources:\n      limits: {cpu: 500m}\n      requests: {cpu: \"1\"}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &[
                "stack.yaml:13:18: services.web.resources.requests.cpu: `1` is more than the limit `500m`",
            ],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    resources:\n      requests:\n        memory: 1Gi\n      limits:\n        memory: 1G\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &[
                "stack.yaml:8:9: services.api.resources.requests.memory: `1Gi` is more than the limit `1G`",
            ],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_ingress_paths_the_api_server_refuses() {
    // ingress paths the Kubernetes API server refuses: `//`, a trailing `/.`, `/../`, `%2F`
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress:\n      path: /api//v1\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:8:7: services.api.ingress.path:", "`//`"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /api/.}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &[
                "stack.yaml:7:",
                "services.api.ingress.path",
                "end with `/.`",
            ],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /a/../b}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.ingress.path", "`/../`"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /a%2Fb}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.ingress.path", "`%2F`"],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_replicas_beyond_an_int32() {
    // replicas the Kubernetes API server refuses: beyond an int32
    assert_invalid(&[(
        "name: shop\nregistry: r.io\nservices:\n  api: {image: api, replicas: 3000000000}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
        10,
        &["services.api.replicas", "2147483647"],
    )]);
}

#[test]
fn invalid_stack_files_name_an_ip_address_as_host() {
    // a host the Kubernetes API server refuses: an IP address
    assert_invalid(&[(
        "name: shop\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  dev: {namespace: \"{stack}\", host: \"10.0.0.1\"}\n",
        10,
        &["stack.yaml:6:", "environments.dev.host", "IP address"],
    )]);
}

#[test]
fn invalid_stack_files_name_an_alias_too_long_for_swarm() {
    // an alias too long for Swarm's derived names
    assert_invalid(&[(
        "name: a-stack-name-of-fifty-three-characters-is-much-too-long\nregistry: r.io\nservices:\n  api: {image: api}\nenvironments:\n  prod: {namespace: \"{stack}\"}\n",
        10,
        &["environments.prod.namespace", "at most 52"],
    )]);
}

#[test]
fn invalid_stack_files_name_bad_smoke_checks() {
    // smoke checks: through the ingress, a status, a regular expression, routed to the service
    assert_invalid(&[
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    smoke: {body: ok}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["stack.yaml:7:", "services.api.smoke", "needs an `ingress`"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /api}\n    smoke: {body: \"status: (ok\"}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &[
                "services.api.smoke.body",
                "not a regular expression",
                "unclosed group",
            ],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /api}\n    smoke: {body: ok, status: 42}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &["services.api.smoke.status", "42 is not an HTTP status"],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /api}\n    smoke: {body: ok, path: /apix?a=1}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &[
                "services.api.smoke.path",
                "`/apix?a=1` is not under the service's ingress path `/api`",
            ],
        ),
        (
            "name: shop\nregistry: r.io\nservices:\n  web:\n    image: web\n    ports: [{port: 80}]\n    ingress: {path: /}\n    smoke: {body: ok, path: /api/x}\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /api}\nenvironments:\n  dev: {namespace: \"{stack}\"}\n",
            10,
            &[
                "services.web.smoke.path",
                "`/api/x` is routed to services.api",
                "environment `dev`",
            ],
        ),
    ]);
}

#[test]
fn invalid_stack_files_name_yaml_syntax_and_empty_services() {
    // YAML syntax
    assert_invalid(&[
        ("name: shop\nservices: [\n", 3, &["stack.yaml:"]),
        (
            "name: shop\nregistry: r.io\nservices: {}\nenvironments:\n  dev: {namespace: x}\n",
            10,
            &["services: declare at least one service"],
        ),
    ]);
}

#[test]
fn unknown_environment_lists_the_valid_ones() {
    let t = with_stack(MINIMAL);
    for cmd in ["namespace", "url"] {
        fails(
            &t,
            &[cmd, "--env", "staging", "--branch", "main"],
            4,
            &["unknown environment `staging` (valid: dev, prod)"],
        );
    }
    fails(
        &t,
        &["manifests", "-e", "qa", "-b", "main", "-t", "v1"],
        4,
        &["(valid: dev, prod)"],
    );
    fails(
        &t,
        &["compose", "-e", "qa", "-b", "main", "-t", "v1"],
        4,
        &["(valid: dev, prod)"],
    );
}

#[test]
fn a_branch_that_slugs_to_nothing_is_an_error() {
    let t = with_stack(MINIMAL);
    for b in ["///", "_", "üï", "._."] {
        fails(
            &t,
            &["namespace", "-e", "dev", "-b", b],
            2,
            &["has no letters or digits"],
        );
        fails(
            &t,
            &["compose", "-e", "prod", "-b", b, "-t", "v1"],
            2,
            &["has no letters or digits"],
        );
    }
}

#[test]
fn other_bad_arguments() {
    let t = with_stack(MINIMAL);
    fails(
        &t,
        &["url", "-e", "prod", "-b", "main"],
        4,
        &["environment `prod` has no `host`"],
    );
    fails(
        &t,
        &["manifests", "-e", "dev", "-b", "main", "-t", "bad tag"],
        2,
        &["--tag"],
    );
    let empty = TestDir::new();
    fails(&empty, &["validate"], 4, &["stack.yaml"]);
    fails(
        &empty,
        &["--stack", "nope.yaml", "namespace", "-e", "dev", "-b", "x"],
        4,
        &["nope.yaml"],
    );
}

/// `stackgen manifests` of the documented example's dev environment, which must succeed: its stdout.
fn manifests(t: &TestDir, branch: &str, tag: &str) -> String {
    let out = stackgen(
        t,
        &[
            "manifests",
            "--env",
            "dev",
            "--branch",
            branch,
            "--tag",
            tag,
        ],
    );
    out.success();
    out.stdout
}

/// The documents of a manifest stream.
fn manifest_docs(stream: &str) -> Vec<serde_json::Value> {
    stream
        .split("\n---\n")
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect()
}

#[test]
fn manifests_are_the_same_bytes_for_the_same_inputs() {
    let t = with_stack(&docs_example());
    let one = manifests(&t, "feature-x", "tag-one-123");
    let again = manifests(&t, "feature-x", "tag-one-123");
    assert_eq!(one, again, "same inputs, same bytes");
}

#[test]
fn manifests_name_the_tag_only_as_the_tag_of_image_references() {
    let t = with_stack(&docs_example());
    let one = manifests(&t, "feature-x", "tag-one-123");
    // The tag appears only as the tag of image references.
    let images: Vec<&str> = one.lines().filter(|l| l.contains("tag-one-123")).collect();
    assert_eq!(images.len(), 2, "{images:?}");
    for l in &images {
        assert!(
            l.trim_start().starts_with("image: 127.0.0.1:5000/shop/")
                && l.ends_with(":tag-one-123"),
            "{l}"
        );
    }
}

#[test]
fn manifests_of_another_tag_differ_only_in_the_tag() {
    let t = with_stack(&docs_example());
    let one = manifests(&t, "feature-x", "tag-one-123");
    let two = manifests(&t, "feature-x", "tag-two-456");
    // Replacing the tag turns one render into the other: selectors, labels, everything else stable.
    assert_eq!(one.replace("tag-one-123", "tag-two-456"), two);
}

#[test]
fn manifests_order_the_namespace_then_each_services_deployment_and_service_then_the_ingress() {
    let t = with_stack(&docs_example());
    let one = manifests(&t, "feature-x", "tag-one-123");
    // Order: Namespace, then per service Deployment and Service, then Ingress.
    let kinds: Vec<&str> = one
        .lines()
        .filter_map(|l| l.strip_prefix("kind: "))
        .collect();
    assert_eq!(
        kinds,
        [
            "Namespace",
            "Deployment",
            "Service",
            "Deployment",
            "Service",
            "Ingress"
        ]
    );
}

#[test]
fn manifests_deployment_has_the_namespace_selectors_and_the_environment_overrides() {
    let t = with_stack(&docs_example());
    let docs = manifest_docs(&manifests(&t, "feature-x", "tag-one-123"));
    let api = &docs[1];
    assert_eq!(
        api["metadata"]["namespace"].as_str(),
        Some("shop-feature-x")
    );
    assert_eq!(
        api["spec"]["replicas"].as_u64(),
        Some(1),
        "the dev override"
    );
    let sel = &api["spec"]["selector"]["matchLabels"];
    assert_eq!(sel["app.kubernetes.io/name"].as_str(), Some("api"));
    assert_eq!(sel["app.kubernetes.io/part-of"].as_str(), Some("shop"));
    let env = &api["spec"]["template"]["spec"]["containers"][0]["env"];
    assert_eq!(env[1]["name"].as_str(), Some("LOG_LEVEL"));
    assert_eq!(env[1]["value"].as_str(), Some("debug"), "the dev override");
}

#[test]
fn manifests_ingress_routes_the_branch_host_and_the_service_path() {
    let t = with_stack(&docs_example());
    let docs = manifest_docs(&manifests(&t, "feature-x", "tag-one-123"));
    let ingress = &docs[5];
    assert_eq!(
        ingress["spec"]["rules"][0]["host"].as_str(),
        Some("feature-x.dev.example.com")
    );
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["path"].as_str(),
        Some("/api")
    );
}

#[test]
fn manifests_of_another_branch_keep_the_selectors() {
    let t = with_stack(&docs_example());
    let api = &manifest_docs(&manifests(&t, "feature-x", "tag-one-123"))[1];
    // Other branch, same selectors.
    let od = &manifest_docs(&manifests(&t, "other", "tag-one-123"))[1];
    assert_eq!(od["spec"]["selector"], api["spec"]["selector"]);
}

#[test]
fn environments_omit_and_add_services() {
    let stack = "name: shop\nregistry: r.io/shop\nservices:\n  api: {image: api, ports: [{port: 80}]}\n  worker: {image: worker}\nenvironments:\n  dev:\n    namespace: \"dev-{branch}\"\n    omit: [worker]\n    add:\n      mail: {image: mailhog, ports: [{port: 1025}, {port: 8025, name: web}]}\n";
    let t = with_stack(stack);
    let m = stackgen(&t, &["manifests", "-e", "dev", "-b", "b1", "-t", "v1"]);
    m.success();
    assert!(!m.stdout.contains("worker"), "{}", m.stdout);
    assert!(m.stdout.contains("image: r.io/shop/mailhog:v1"));
    assert!(m.stdout.contains("name: tcp-1025"));
    let c = stackgen(&t, &["compose", "-e", "dev", "-b", "b1", "-t", "v1"]);
    c.success();
    let doc: serde_json::Value = serde_saphyr::from_str(&c.stdout).unwrap();
    let names: Vec<&str> = doc["services"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names, ["api", "mail"]);
}

/// `stackgen manifests --out-dir out` for branch `feat-a`, which must succeed and print nothing.
fn write_out_dir(t: &TestDir) {
    stackgen(
        t,
        &[
            "manifests",
            "-e",
            "dev",
            "-b",
            "feat-a",
            "-t",
            "v1",
            "--out-dir",
            "out",
        ],
    )
    .success()
    .stdout_empty();
}

/// The file names in a directory, sorted.
fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

#[test]
fn out_dir_writes_one_numbered_file_per_document_into_the_namespace_directory() {
    let t = with_stack(&docs_example());
    write_out_dir(&t);
    assert_eq!(
        file_names(&t.join("out/shop-feat-a")),
        [
            "0000-namespace-shop-feat-a.yaml",
            "0001-deployment-api.yaml",
            "0002-service-api.yaml",
            "0003-deployment-greeter.yaml",
            "0004-service-greeter.yaml",
            "0005-ingress-shop.yaml"
        ]
    );
}

#[test]
fn out_dir_files_hold_exactly_the_streams_documents() {
    let t = with_stack(&docs_example());
    write_out_dir(&t);
    let dir = t.join("out/shop-feat-a");
    // The files hold exactly the stream's documents.
    let stream = stackgen(&t, &["manifests", "-e", "dev", "-b", "feat-a", "-t", "v1"]).stdout;
    let joined: Vec<String> = file_names(&dir)
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect();
    assert_eq!(joined.join("---\n"), stream);
}

/// One behaviour over successive runs: each run replaces what the previous one wrote.
#[test]
fn out_dir_is_replaced_so_a_removed_service_leaves_nothing_behind() {
    let t = with_stack(&docs_example());
    write_out_dir(&t);
    let dir = t.join("out/shop-feat-a");
    // A service removed from the stack disappears from the directory; nothing else is left behind.
    let two = "name: shop\nregistry: r.io\nservices:\n  api: {image: api, ports: [{port: 80}]}\n  web: {image: web, ports: [{port: 80}]}\nenvironments:\n  dev: {namespace: \"{stack}-{branch}\"}\n";
    t.write("stack.yaml", two);
    write_out_dir(&t);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 5);
    t.write(
        "stack.yaml",
        two.replace("  web: {image: web, ports: [{port: 80}]}\n", ""),
    );
    write_out_dir(&t);
    let after = file_names(&dir);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(
        std::fs::read_dir(t.join("out")).unwrap().count(),
        1,
        "only the namespace directory"
    );
}

/// `stackgen compose -e dev -b x -t v9` of the documented example plus `extra`, which must succeed.
fn compose(t: &TestDir, extra: &[&str]) -> microplatform_test_support::Output {
    let mut args = vec!["compose", "-e", "dev", "-b", "x", "-t", "v9"];
    args.extend_from_slice(extra);
    let out = stackgen(t, &args);
    out.success();
    out
}

/// The compose file of the documented example's dev environment, parsed.
fn compose_doc() -> serde_json::Value {
    let t = with_stack(&docs_example());
    serde_saphyr::from_str(&compose(&t, &[]).stdout).unwrap()
}

#[test]
fn compose_is_the_same_bytes_for_the_same_inputs() {
    let t = with_stack(&docs_example());
    let a = compose(&t, &[]);
    let b = stackgen(&t, &["compose", "-e", "dev", "-b", "x", "-t", "v9"]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn compose_is_version_3_8_on_an_attachable_overlay_network() {
    let doc = compose_doc();
    assert_eq!(doc["version"].as_str(), Some("3.8"));
    assert_eq!(
        doc["networks"]["default"]["driver"].as_str(),
        Some("overlay")
    );
    assert_eq!(
        doc["networks"]["default"]["attachable"].as_bool(),
        Some(true)
    );
}

#[test]
fn compose_service_has_its_image_published_host_port_resources_and_environment() {
    let doc = compose_doc();
    let api = &doc["services"]["api"];
    assert_eq!(api["image"].as_str(), Some("127.0.0.1:5000/shop/api:v9"));
    assert_eq!(api["ports"][0]["published"].as_u64(), Some(18080));
    assert_eq!(api["ports"][0]["mode"].as_str(), Some("host"));
    assert_eq!(
        api["deploy"]["resources"]["limits"]["cpus"].as_str(),
        Some("0.5")
    );
    assert_eq!(
        api["deploy"]["resources"]["limits"]["memory"].as_str(),
        Some("128M")
    );
    assert_eq!(api["environment"]["LOG_LEVEL"].as_str(), Some("debug"));
}

#[test]
fn compose_routed_services_get_ingress_labels_and_an_unnumbered_host_mode_port_unless_published() {
    let doc = compose_doc();
    let api = &doc["services"]["api"];
    // Ingress routes for `deploy-bot ingress`: labels with the environment's
    // host, and the ingress port in host mode with no fixed number (Swarm picks
    // one per task), unless the port is already published (api's 8080).
    let greeter = &doc["services"]["greeter"];
    assert_eq!(
        serde_json::to_value(&greeter["ports"]).unwrap(),
        serde_json::json!([{"target": 8080, "protocol": "tcp", "mode": "host"}])
    );
    assert_eq!(api["ports"].as_array().map(Vec::len), Some(1));
    for (svc, path) in [(api, "/api"), (greeter, "/")] {
        let labels = &svc["deploy"]["labels"];
        assert_eq!(
            labels["dev.microplatform.ingress.host"].as_str(),
            Some("x.dev.example.com")
        );
        assert_eq!(
            labels["dev.microplatform.ingress.path"].as_str(),
            Some(path)
        );
        assert_eq!(
            labels["dev.microplatform.ingress.port"].as_str(),
            Some("8080")
        );
    }
}

#[test]
fn compose_endpoint_mode_is_dnsrr_unless_vip_is_asked_for() {
    let doc = compose_doc();
    assert_eq!(
        doc["services"]["api"]["deploy"]["endpoint_mode"].as_str(),
        Some("dnsrr")
    );
    let t = with_stack(&docs_example());
    compose(&t, &["--endpoint-mode", "vip"]).stdout_contains("endpoint_mode: vip");
}

#[test]
fn compose_updates_start_the_new_task_first_unless_a_fixed_host_port_is_published() {
    let doc = compose_doc();
    // Rolling updates: the new task first, unless a fixed host port is published (api's).
    assert_eq!(
        doc["services"]["greeter"]["deploy"]["update_config"]["order"].as_str(),
        Some("start-first")
    );
    assert_eq!(
        doc["services"]["api"]["deploy"]["update_config"]["order"].as_str(),
        Some("stop-first")
    );
}

#[test]
fn compose_names_the_tag_only_in_the_images() {
    let t = with_stack(&docs_example());
    assert_eq!(compose(&t, &[]).stdout.matches("v9").count(), 2);
}

#[test]
fn compose_output_file_holds_what_stdout_would() {
    let t = with_stack(&docs_example());
    let a = compose(&t, &[]);
    compose(&t, &["-o", "out/s.yml"]).stdout_empty();
    assert_eq!(t.read("out/s.yml"), a.stdout);
}

#[test]
fn compose_without_a_host_routes_nothing_and_url_names_the_ingress_port() {
    let t = with_stack(
        "name: shop\nregistry: r.io/shop\nservices:\n  web:\n    image: web\n    ports: [{port: 8080}]\n    ingress: {path: /}\nenvironments:\n  local: {namespace: \"{stack}-{branch}\"}\n  dev: {namespace: \"{stack}-{branch}\", host: \"{branch}.shop.dev.localhost\"}\n",
    );
    let c = stackgen(&t, &["compose", "-e", "local", "-b", "x", "-t", "v1"]);
    c.success();
    assert!(!c.stdout.contains("ports:"), "{}", c.stdout);
    assert!(
        !c.stdout.contains("dev.microplatform.ingress"),
        "{}",
        c.stdout
    );
    stackgen(
        &t,
        &[
            "url",
            "-e",
            "dev",
            "-b",
            "feature-x",
            "--ingress-port",
            "8088",
        ],
    )
    .success()
    .stdout_eq("http://feature-x.shop.dev.localhost:8088/\n");
    stackgen(&t, &["url", "-e", "dev", "-b", "feature-x"])
        .success()
        .stdout_eq("https://feature-x.shop.dev.localhost/\n");
    stackgen(&t, &["url", "-e", "dev", "-b", "x", "--ingress-port", "0"])
        .code(2)
        .stdout_empty()
        .stderr_contains("--ingress-port");
}

#[test]
fn schema_is_in_sync_with_docs() {
    let t = TestDir::new();
    let out = stackgen(&t, &["schema"]);
    out.success();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/stack.schema.json");
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == out.stdout,
        "docs/stack.schema.json is stale: run `stackgen schema > docs/stack.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    assert!(schema["properties"]["services"].is_object());
}

#[test]
fn help_completions_and_man() {
    let t = TestDir::new();
    stackgen(&t, &["--help"])
        .success()
        .stdout_contains("Exit codes:")
        .stdout_contains("10  validation");
    stackgen(&t, &["completions", "bash"])
        .success()
        .stdout_contains("stackgen");
    stackgen(&t, &["man"])
        .success()
        .stdout_contains(".TH stackgen");
}

#[test]
fn compose_names_fit_swarm_and_dollars_are_literal() {
    let long = format!("s{}", "x".repeat(62));
    let stack = format!(
        "name: shop\nregistry: r.io/shop\nservices:\n  {long}: {{image: api, env: {{PRICE: \"$5\", CMD: \"$(date)\", HOME_DIR: \"${{HOME}}/x\", PLAIN: \"$$\"}}, args: [\"echo\", \"$HOME\"]}}\n  web: {{image: web}}\nenvironments:\n  dev: {{namespace: \"{{stack}}-{{branch}}\"}}\n"
    );
    let t = with_stack(&stack);
    for branch in [
        "main",
        &format!("feature/{}", "very-long-branch-".repeat(5)),
    ] {
        let alias = stackgen(&t, &["namespace", "-e", "dev", "-b", branch]);
        alias.success();
        let alias = alias.stdout.trim().to_string();
        assert!(alias.len() <= 52, "{alias}");
        let c = stackgen(&t, &["compose", "-e", "dev", "-b", branch, "-t", "v1"]);
        c.success();
        let doc: serde_json::Value = serde_saphyr::from_str(&c.stdout).unwrap();
        let services = doc["services"].as_object().unwrap();
        for (key, svc) in services {
            let key = key.as_str();
            assert!(
                alias.len() + 1 + key.len() <= 63,
                "`{alias}_{key}` is over 63 characters"
            );
            if key == "web" {
                assert!(svc.get("networks").is_none());
            } else {
                // The long service is shortened, and keeps its name as a network alias.
                assert_ne!(key, long);
                assert!(key.starts_with('s') && key.len() >= 10, "{key}");
                assert_eq!(
                    svc["networks"]["default"]["aliases"][0].as_str(),
                    Some(long.as_str())
                );
                assert_eq!(svc["environment"]["PRICE"].as_str(), Some("$$5"));
                assert_eq!(svc["environment"]["CMD"].as_str(), Some("$$(date)"));
                assert_eq!(svc["environment"]["HOME_DIR"].as_str(), Some("$${HOME}/x"));
                assert_eq!(svc["environment"]["PLAIN"].as_str(), Some("$$$$"));
                assert_eq!(svc["command"][1].as_str(), Some("$$HOME"));
            }
        }
        assert!(alias.len() + "_default".len() <= 63);
    }
    // Kubernetes expands `$(VAR)` and reads `$$` as `$` in args and env values: doubled there too.
    let m = stackgen(&t, &["manifests", "-e", "dev", "-b", "main", "-t", "v1"]);
    m.success()
        .stdout_contains("value: $$5")
        .stdout_contains("value: $$(date)")
        .stdout_contains("- $$HOME");
}
