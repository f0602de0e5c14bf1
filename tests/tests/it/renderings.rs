//! One set of step commands, two renderings: for `examples/shop`, the command lines `stackgen plan` gives `scripts/pipeline` equal the generated Argo Workflow's (and `scripts/argo`'s diff step), parameters and inputs substituted.

use std::collections::BTreeMap;

use crate::platform::{copy_shop, workspace_root};
use microplatform_test_support::{Cmd, TestDir, bin};

fn substitute(text: &str, params: &BTreeMap<String, String>, inputs: &[(&str, String)]) -> String {
    let mut s = text.to_string();
    for (k, v) in params {
        s = s.replace(&format!("{{{{workflow.parameters.{k}}}}}"), v);
    }
    for (k, v) in inputs {
        s = s.replace(&format!("{{{{inputs.parameters.{k}}}}}"), v);
    }
    s
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// A git repository holding `examples/shop`, committed on top of a `Start` commit, with
/// `monobuild diff`'s JSON (run with `diff_args`) written to `monobuild.json`.
struct Shop {
    repo: TestDir,
    sha: String,
    schedule: String,
}

fn shop(branch: Option<&str>, diff_args: &[&str]) -> Shop {
    let repo = TestDir::new();
    repo.git_init();
    repo.write("README.md", "# shop\n");
    repo.commit_all("Start");
    if let Some(branch) = branch {
        repo.git(&["checkout", "-q", "-b", branch]);
    }
    copy_shop(&repo);
    repo.commit_all(if branch.is_some() {
        "Add the shop"
    } else {
        "Merge the shop"
    });
    let sha = repo.git(&["rev-parse", "HEAD"]);
    let mono = Cmd::new(bin("monobuild"))
        .current_dir(repo.path())
        .args(["diff", "--format", "json"])
        .args(diff_args)
        .run();
    mono.success();
    repo.write("monobuild.json", &mono.stdout);
    Shop {
        repo,
        sha,
        schedule: mono.stdout,
    }
}

/// The shop on `feature/Cart`, and the `stackgen plan` and `stackgen workflow` renderings of its
/// dev run.
fn branch_renderings() -> (serde_json::Value, serde_json::Value) {
    let shop = shop(Some("feature/Cart"), &["--base-branch", "main"]);
    let run = [
        "--env",
        "dev",
        "--branch",
        "feature/Cart",
        "--registry",
        "127.0.0.1:5000",
        "--cluster-repo",
        "file:///cluster.git",
        "--forge",
        "none",
        "--build-arg",
        "BASE=127.0.0.1:5000/base/busybox:1",
        "--endpoint-mode",
        "dnsrr",
        "--revision",
        &shop.sha,
        "--repo",
        "file:///shop.git",
    ];
    let stackgen = |sub: &str, extra: &[&str], stdin: Option<&str>| {
        let mut c = Cmd::new(bin("stackgen"))
            .current_dir(shop.repo.path())
            .args(["--stack", "stack.yaml", sub])
            .args(run)
            .args(extra);
        if let Some(s) = stdin {
            c = c.stdin(s);
        }
        let out = c.run();
        out.success();
        out.stdout
    };
    let plan: serde_json::Value =
        serde_json::from_str(&stackgen("plan", &["--schedule", "monobuild.json"], None))
            .expect("plan");
    let wf: serde_json::Value =
        serde_saphyr::from_str(&stackgen("workflow", &[], Some(&shop.schedule))).expect("wf");
    (plan, wf)
}

/// The workflow's parameters, by name.
fn workflow_params(wf: &serde_json::Value) -> BTreeMap<String, String> {
    wf["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The workflow's templates, by name.
fn workflow_templates(wf: &serde_json::Value) -> BTreeMap<String, &serde_json::Value> {
    wf["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t))
        .collect()
}

/// The `argv` of each of the plan's steps in `steps`.
fn plan_argvs(steps: &serde_json::Value) -> Vec<Vec<String>> {
    steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_value(s["argv"].clone()).unwrap())
        .collect()
}

#[test]
fn plan_and_workflow_pass_the_same_parameters_for_the_shop() {
    let (plan, wf) = branch_renderings();
    let plan_params: BTreeMap<String, String> =
        serde_json::from_value(plan["parameters"].clone()).unwrap();
    assert_eq!(workflow_params(&wf), plan_params, "the same parameters");
}

#[test]
fn every_workflow_build_task_is_a_build_of_the_plan_with_the_same_argv() {
    let (plan, wf) = branch_renderings();
    let params = workflow_params(&wf);
    let templates = workflow_templates(&wf);
    let tasks = wf["spec"]["templates"][0]["dag"]["tasks"]
        .as_array()
        .unwrap();
    let mut argo_builds = Vec::new();
    for t in tasks
        .iter()
        .filter(|t| t["template"].as_str() == Some("build"))
    {
        let inputs: Vec<(&str, String)> = t["arguments"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap(),
                    p["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let argv: Vec<String> = strings(&templates["build"]["container"]["args"])
            .iter()
            .map(|a| substitute(a, &params, &inputs))
            .collect();
        argo_builds.push(argv);
    }
    let mut plan_builds: Vec<Vec<String>> = plan["builds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| serde_json::from_value(b["step"]["argv"].clone()).unwrap())
        .collect();
    argo_builds.sort();
    plan_builds.sort();
    assert_eq!(argo_builds.len(), 2, "api and web");
    assert_eq!(argo_builds, plan_builds);
}

#[test]
fn the_workflow_runs_the_plan_deploy_steps_in_order_where_the_plan_says() {
    let (plan, wf) = branch_renderings();
    // Deploy steps: compose, manifests, resolve, request, in that order.
    let deploy = workflow_deploy(&wf, &["compose", "manifests", "resolve", "request"]);
    assert_eq!(deploy, plan_argvs(&plan["steps"]["deploy"]));
    // They run where the plan says: the checkout or the work directory.
    let templates = workflow_templates(&wf);
    for (id, cwd) in [
        ("compose", "/work"),
        ("request", "/work"),
        ("build", "/work/src"),
    ] {
        assert_eq!(
            templates[id]["container"]["workingDir"].as_str(),
            Some(cwd),
            "{id}"
        );
    }
}

#[test]
fn the_argo_branch_flow_runs_the_plan_diff_command_line() {
    let (plan, _) = branch_renderings();
    let diff: Vec<String> = serde_json::from_value(plan["steps"]["diff"]["argv"].clone()).unwrap();
    let flow = std::fs::read_to_string(workspace_root().join("scripts/argo/branch-flow.yaml"))
        .expect("branch flow");
    let flow_params = BTreeMap::from([("base-branch".to_string(), "main".to_string())]);
    let flow = substitute(&flow, &flow_params, &[]).replace('"', "");
    assert!(
        flow.contains(&diff.join(" ")),
        "{diff:?} not in the branch flow"
    );
}

/// The deploy command lines of the workflow (`compose`, `manifests`, the pin step, `request`), parameters substituted.
fn workflow_deploy(wf: &serde_json::Value, ids: &[&str]) -> Vec<Vec<String>> {
    let params = workflow_params(wf);
    let templates = workflow_templates(wf);
    ids.iter()
        .map(|id| {
            let c = &templates[*id]["container"];
            let mut argv = strings(&c["command"]);
            argv.extend(strings(&c["args"]));
            argv.iter().map(|a| substitute(a, &params, &[])).collect()
        })
        .collect()
}

/// The gated environments of `examples/shop`'s main flow, with their gates.
const GATED: [(&str, &str); 2] = [("staging", "auto"), ("prod", "manual")];

/// The shop merged on `main`.
fn main_shop() -> Shop {
    shop(None, &["--main-branch"])
}

impl Shop {
    /// Runs `stackgen sub` for `env` on `main`, the schedule from `stdin`, else from `monobuild.json`.
    fn render(&self, sub: &str, env: &str, stdin: Option<&str>) -> String {
        let mut c = Cmd::new(bin("stackgen"))
            .current_dir(self.repo.path())
            .args([
                "--stack",
                "stack.yaml",
                sub,
                "--env",
                env,
                "--branch",
                "main",
            ])
            .args([
                "--registry",
                "127.0.0.1:5000",
                "--rc-registry",
                "127.0.0.1:5001",
            ])
            .args(["--cluster-repo", "file:///cluster.git", "--forge", "github"])
            .args(["--revision", &self.sha, "--repo", "file:///shop.git"]);
        c = match stdin {
            Some(s) => c.stdin(s),
            None => c.args(["--schedule", "monobuild.json"]),
        };
        let out = c.run();
        out.success();
        out.stdout
    }

    fn plan(&self, env: &str) -> serde_json::Value {
        serde_json::from_str(&self.render("plan", env, None)).unwrap()
    }

    fn workflow(&self, env: &str) -> serde_json::Value {
        serde_saphyr::from_str(&self.render("workflow", env, Some(&self.schedule))).unwrap()
    }
}

#[test]
fn the_plan_names_the_main_flow_staging_automatically_then_prod_manually() {
    let main = main_shop().plan("dev");
    let flow: Vec<(String, String)> = main["promotion"]["flow"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["environment"].as_str().unwrap().into(),
                f["gate"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        flow,
        [
            ("staging".into(), "auto".into()),
            ("prod".into(), "manual".into())
        ]
    );
}

#[test]
fn plan_and_workflow_run_identical_promotion_commands_for_each_gated_environment() {
    let shop = main_shop();
    for (env, _) in GATED {
        let plan = shop.plan(env);
        let wf = shop.workflow(env);
        let ids = ["compose", "manifests", "promote", "request"];
        assert_eq!(
            workflow_deploy(&wf, &ids),
            plan_argvs(&plan["steps"]["deploy"]),
            "{env}"
        );
    }
}

/// Checks that the workflow for `env` runs the plan's verify steps, `verify_ids`, one after the
/// other after `request`; returns the plan's verify command lines.
fn assert_verify_steps(shop: &Shop, env: &str, verify_ids: &[&str]) -> Vec<Vec<String>> {
    let plan = shop.plan(env);
    let wf = shop.workflow(env);
    let plan_verify = plan_argvs(&plan["steps"]["verify"]);
    assert_eq!(workflow_deploy(&wf, verify_ids), plan_verify, "{env}");
    let tasks = &wf["spec"]["templates"][0]["dag"]["tasks"];
    let depends_of = |name: &str| {
        tasks
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["dependencies"].clone())
    };
    let mut previous = "request";
    for id in verify_ids {
        assert_eq!(
            depends_of(id),
            Some(serde_json::json!([previous])),
            "{env}: {id}"
        );
        previous = id;
    }
    plan_verify
}

/// Behind an auto gate the child Workflow goes on until the environment is verified, so the
/// main flow's next child (prod's pull request) waits for staging's apply and smoke checks.
#[test]
fn behind_the_auto_gate_the_workflow_verifies_the_environment_after_the_request_like_the_plan() {
    let plan_verify = assert_verify_steps(
        &main_shop(),
        "staging",
        &["applied", "plan", "smoke", "report"],
    );
    assert_eq!(plan_verify[0][..2], ["deploy-bot", "status"]);
    assert!(plan_verify[2].starts_with(&["deploy-bot".into(), "smoke".into()]));
}

#[test]
fn behind_the_manual_gate_neither_plan_nor_workflow_verifies_the_environment() {
    let plan_verify = assert_verify_steps(&main_shop(), "prod", &[]);
    assert!(plan_verify.is_empty());
}

#[test]
fn promotion_pins_into_the_rc_registry_and_requests_directly_only_behind_the_auto_gate() {
    let shop = main_shop();
    for (env, gate) in GATED {
        let plan_deploy = plan_argvs(&shop.plan(env)["steps"]["deploy"]);
        assert_eq!(
            plan_deploy[2][..4],
            [
                "digest-resolve",
                "--in-place",
                "--promote-to",
                "127.0.0.1:5001"
            ]
        );
        assert_eq!(
            plan_deploy[3].contains(&"--direct".to_string()),
            gate == "auto",
            "{env}"
        );
        assert!(plan_deploy[3].ends_with(&["--release-candidate".into(), "promote.json".into()]));
    }
}

/// `scripts/argo`'s main flow renders a Workflow per gate with the same stackgen workflow command.
#[test]
fn the_argo_main_flow_renders_each_gate_with_the_stackgen_workflow_command() {
    let text = std::fs::read_to_string(workspace_root().join("scripts/argo/main-flow.yaml"))
        .expect("main flow");
    let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("main flow yaml");
    let defaults = workflow_params(&doc);
    assert_eq!(
        (
            defaults["auto-environment"].as_str(),
            defaults["manual-environment"].as_str()
        ),
        ("staging", "prod"),
        "the main flow's defaults are examples/shop's promotion"
    );
    assert!(text.contains("--rc-registry \"{{workflow.parameters.rc-registry}}\""));
    assert!(text.contains("--env \"$env\""));
}

/// Every tool renders its `--help` exit codes from the one table in `common`:
/// each line `  N   class…` names the table's class for N.
#[test]
fn every_tool_states_its_exit_codes_from_the_common_table() {
    for tool in [
        "monobuild",
        "build-with-cache",
        "stackgen",
        "digest-resolve",
        "deploy-bot",
    ] {
        let out = Cmd::new(bin(tool)).arg("--help").run();
        out.success();
        let section = out
            .stdout
            .split_once("Exit codes:\n")
            .unwrap_or_else(|| panic!("{tool} --help has no exit codes"))
            .1;
        let mut codes = Vec::new();
        for line in section.lines() {
            let Some(rest) = line.strip_prefix("  ") else {
                break;
            };
            let Some((code, text)) = rest.split_once(' ') else {
                continue; // a wrapped continuation line
            };
            let Ok(code) = code.parse::<u8>() else {
                continue;
            };
            let class = microplatform_common::exit::meaning(code)
                .unwrap_or_else(|| panic!("{tool}: exit code {code} is not in the table"));
            assert!(
                text.trim_start().starts_with(class),
                "{tool}: {line:?} does not start with the table's class {class:?}"
            );
            codes.push(code);
        }
        assert!(
            codes.len() >= 5 && codes.first() == Some(&0) && codes.last() == Some(&70),
            "{tool}: {codes:?}"
        );
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "{tool}: {codes:?}");
    }
}
