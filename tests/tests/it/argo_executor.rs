//! The Argo path run for real without Kubernetes: a small executor takes `scripts/argo/branch-flow.yaml` and the Workflow it generates, substitutes parameters, and runs each container template's command in the toolkit image on the local engine in DAG order (the engine's socket instead of the Docker-in-Docker sidecar, a host directory instead of the work volume). It must reach the end state of `scripts/pipeline` for `examples/shop` (same image digests, byte-identical cluster-repo tree) running the same tool command lines, and rebuild api and web after a new base image under the same tag.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use microplatform_test_support::dockerd::{Dockerd, ImageCleanup};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{Cmd, Output, TestDir, git_in};
use serde_json::Value;

use crate::pipeline::shop_repo;
use crate::platform::{Platform, StackGuard, bin_dir, unique, workspace_root};

const TOOLS: [&str; 5] = [
    "monobuild",
    "build-with-cache",
    "stackgen",
    "digest-resolve",
    "deploy-bot",
];

/// Wrappers that append each tool's argv (fields separated by 0x1f) to LOG, then run the tool in DIR.
fn shims(dir: &Path, tools_dir: &str, log: &str) {
    std::fs::create_dir_all(dir).expect("shim dir");
    for t in TOOLS {
        let p = dir.join(t);
        std::fs::write(
            &p,
            format!(
                // One line, one write: builds of a stage run at the same time.
                "#!/bin/sh\nus=$(printf '\\037'); line='{t}'\nfor a in \"$@\"; do line=\"$line$us$a\"; done\nprintf '%s\\n' \"$line\" >> {log}\nexec {tools_dir}/{t} \"$@\"\n"
            ),
        )
        .expect("shim");
        std::process::Command::new("chmod")
            .arg("755")
            .arg(&p)
            .status()
            .expect("chmod");
    }
}

/// The recorded command lines of the delivery steps (orchestration left out).
fn commands(log: &Path, replace: &[(&str, &str)]) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split('\x1f').collect();
            // Orchestration aside: the local driver's plan/workflow calls, its
            // merge of the deploy branch (the forge's merge button), its webhook
            // to the local agent and its smoke calls against the local platform's
            // ingress (on Kubernetes the agent applies on its own), and its run
            // record (`stackgen summary`; on Argo the Workflow's status is the record).
            !(f[0] == "stackgen"
                && (f.contains(&"plan") || f.contains(&"workflow") || f.contains(&"summary"))
                || f[0] == "deploy-bot"
                    && matches!(f.get(1), Some(&"notify" | &"smoke" | &"merge")))
        })
        .map(|l| {
            let mut s = l.replace('\x1f', " ");
            for (a, b) in replace {
                s = s.replace(a, b);
            }
            s
        })
        .collect();
    v.sort();
    v
}

/// Runs Argo templates' containers on the local engine.
struct Executor<'a> {
    dockerd: &'a Dockerd,
    image: String,
    /// Host paths mounted at the same path (the git repos).
    mounts: Vec<PathBuf>,
    shim: PathBuf,
    log_dir: PathBuf,
    /// Stdout of every build task (build-with-cache's JSON).
    builds: Vec<serde_json::Value>,
    /// Work directories (one per workflow), kept until the end.
    works: Vec<TestDir>,
}

struct Ctx {
    params: BTreeMap<String, String>,
    templates: BTreeMap<String, Value>,
    work: PathBuf,
}

fn subst(
    s: &str,
    ctx: &Ctx,
    inputs: &BTreeMap<String, String>,
    tasks: &BTreeMap<String, BTreeMap<String, String>>,
) -> String {
    let mut out = s.to_string();
    for (k, v) in &ctx.params {
        out = out.replace(&format!("{{{{workflow.parameters.{k}}}}}"), v);
    }
    for (k, v) in inputs {
        out = out.replace(&format!("{{{{inputs.parameters.{k}}}}}"), v);
    }
    for (t, outs) in tasks {
        for (k, v) in outs {
            out = out.replace(&format!("{{{{tasks.{t}.outputs.parameters.{k}}}}}"), v);
        }
    }
    out.replace("{{workflow.name}}", "local")
        .replace("{{workflow.status}}", "Succeeded")
        .replace("{{workflow.failures}}", "")
}

fn seq_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|s| {
            s.iter()
                .map(|x| x.as_str().expect("string").to_string())
                .collect()
        })
        .unwrap_or_default()
}

impl Executor<'_> {
    fn workflow(&mut self, doc: &Value, overrides: &BTreeMap<String, String>) {
        let spec = &doc["spec"];
        let mut params: BTreeMap<String, String> = spec["arguments"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        params.extend(overrides.clone());
        let templates = spec["templates"]
            .as_array()
            .expect("templates")
            .iter()
            .map(|t| (t["name"].as_str().unwrap().to_string(), t.clone()))
            .collect();
        let work = TestDir::new();
        let ctx = Ctx {
            params,
            templates,
            work: work.path().to_path_buf(),
        };
        self.works.push(work);
        let entry = spec["entrypoint"].as_str().expect("entrypoint").to_string();
        self.template(&ctx, &entry, &BTreeMap::new());
        if let Some(exit) = spec["onExit"].as_str() {
            self.template(&ctx, exit, &BTreeMap::new());
        }
    }

    fn template(
        &mut self,
        ctx: &Ctx,
        name: &str,
        inputs: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let t = ctx.templates[name].clone();
        let none = BTreeMap::new();
        if let Some(tasks) = t["dag"]["tasks"].as_array() {
            let mut done: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            while done.len() < tasks.len() {
                let before = done.len();
                for task in tasks {
                    let tn = task["name"].as_str().unwrap().to_string();
                    if done.contains_key(&tn) {
                        continue;
                    }
                    let mut deps = seq_strings(&task["dependencies"]);
                    if let Some(d) = task["depends"].as_str() {
                        deps.extend(
                            d.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                                .filter(|w| !w.is_empty())
                                .map(str::to_string),
                        );
                    }
                    if !deps.iter().all(|d| done.contains_key(d)) {
                        continue;
                    }
                    let args: BTreeMap<String, String> = task["arguments"]["parameters"]
                        .as_array()
                        .map(|ps| {
                            ps.iter()
                                .map(|p| {
                                    (
                                        p["name"].as_str().unwrap().to_string(),
                                        subst(
                                            p["value"].as_str().unwrap_or_default(),
                                            ctx,
                                            inputs,
                                            &done,
                                        ),
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let out = self.template(ctx, task["template"].as_str().unwrap(), &args);
                    done.insert(tn, out);
                }
                assert!(
                    done.len() > before,
                    "template {name}: a dependency cycle or an undefined task"
                );
            }
            return BTreeMap::new();
        }
        if t.get("suspend").is_some() {
            return BTreeMap::new();
        }
        if let Some(manifest) = t["resource"]["manifest"].as_str() {
            let child: Value = serde_saphyr::from_str(&subst(manifest, ctx, inputs, &none))
                .expect("child workflow");
            self.workflow(&child, &BTreeMap::new());
            return BTreeMap::new();
        }
        let c = &t["container"];
        assert!(!c.is_null(), "template {name}: unsupported kind");
        let s = |x: &str| subst(x, ctx, inputs, &none);
        let mut argv: Vec<String> = seq_strings(&c["command"]).iter().map(|x| s(x)).collect();
        argv.extend(seq_strings(&c["args"]).iter().map(|x| s(x)));
        let sock = self.dockerd.host.trim_start_matches("unix://").to_string();
        let mut run: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--network".into(),
            "host".into(),
            "-v".into(),
            format!("{}:/work", ctx.work.display()),
            "-v".into(),
            format!("{sock}:/var/run/docker.sock"),
            "-v".into(),
            format!("{}:/shim:ro", self.shim.display()),
            "-v".into(),
            format!("{}:/log", self.log_dir.display()),
        ];
        for m in &self.mounts {
            run.extend(["-v".into(), format!("{}:{}", m.display(), m.display())]);
        }
        if let Some(env) = c["env"].as_array() {
            for e in env {
                if let Some(v) = e["value"].as_str() {
                    run.extend([
                        "-e".into(),
                        format!("{}={}", e["name"].as_str().unwrap(), s(v)),
                    ]);
                }
            }
        }
        // The engine's socket replaces the DinD sidecar; the shims record the tools' command lines.
        run.extend([
            "-e".into(),
            "DOCKER_HOST=unix:///var/run/docker.sock".into(),
            "-e".into(),
            "PATH=/shim:/usr/local/bin:/usr/bin:/bin".into(),
        ]);
        if let Some(wd) = c["workingDir"].as_str() {
            run.extend(["-w".into(), s(wd)]);
        }
        run.extend(["--entrypoint".into(), argv[0].clone(), self.image.clone()]);
        run.extend(argv[1..].iter().cloned());
        let run_args: Vec<&str> = run.iter().map(String::as_str).collect();
        let out = self.dockerd.try_run(&run_args);
        assert!(
            out.code == Some(0),
            "template {name} failed:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        if name == "build" {
            self.builds.push(
                serde_json::from_str(out.stdout.trim())
                    .unwrap_or_else(|e| panic!("build JSON: {e}: {}", out.stdout)),
            );
        }
        let mut outputs = BTreeMap::new();
        if let Some(ps) = t["outputs"]["parameters"].as_array() {
            for p in ps {
                let path = p["valueFrom"]["path"].as_str().expect("valueFrom.path");
                let host = ctx
                    .work
                    .join(path.strip_prefix("/work/").expect("under /work"));
                outputs.insert(
                    p["name"].as_str().unwrap().to_string(),
                    std::fs::read_to_string(&host).expect("output parameter"),
                );
            }
        }
        outputs
    }
}

fn bare_cluster_repo(dir: &Path) -> PathBuf {
    let seed = dir.join("seed");
    std::fs::create_dir_all(&seed).unwrap();
    git_in(&seed, &["init", "-q", "-b", "main"]);
    std::fs::write(seed.join("README.md"), "# Cluster repo\n").unwrap();
    git_in(&seed, &["add", "-A"]);
    git_in(
        &seed,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@x",
            "commit",
            "-q",
            "-m",
            "seed",
        ],
    );
    let bare = dir.join("cluster.git");
    git_in(
        dir,
        &[
            "clone",
            "-q",
            "--bare",
            &seed.to_string_lossy(),
            &bare.to_string_lossy(),
        ],
    );
    bare
}

/// `git ls-tree -r` of NS/ at a ref: paths and blob ids (the bytes).
fn ns_tree(repo: &Path, rev: &str, ns: &str) -> String {
    git_in(repo, &["ls-tree", "-r", &format!("{rev}:{ns}")])
}

/// `examples/shop/tools/make-base-image [--force] BASE`: the base image in the registry;
/// `--force`, a new one under the same tag.
fn make_base_image(dockerd: &Dockerd, base: &str, force: bool) {
    let mut c = Cmd::new(workspace_root().join("examples/shop/tools/make-base-image"));
    if force {
        c = c.arg("--force");
    }
    c.arg(base)
        .env("DOCKER_HOST", &dockerd.host)
        .run()
        .success();
}

/// `scripts/toolkit-image` on BASE, pushed to REG as `microplatform/toolkit:argo-e2e` and pulled
/// into the engine: the image the Argo templates run.
fn toolkit_image(reg: &Registry, dockerd: &Dockerd, base: &str) -> String {
    Cmd::new(workspace_root().join("scripts/toolkit-image"))
        .env("DOCKER_HOST", &dockerd.host)
        .env("MICROPLATFORM_STATE_DIR", "/nonexistent")
        .args([
            "--registry",
            &reg.addr,
            "--tag",
            "argo-e2e",
            "--base-image",
            base,
        ])
        .arg("--bin-dir")
        .arg(bin_dir())
        .run()
        .success();
    let image = format!("{}/microplatform/toolkit:argo-e2e", reg.addr);
    dockerd.run(&["pull", "-q", &image]);
    image
}

/// What both executors run on: a registry holding the base image and the toolkit image, the shop
/// on a branch, and the local platform (executor 1) with scripts/pipeline's tools behind
/// recording shims. The fields drop in order, also when an assertion fails: the platform goes
/// down first (its agent would re-apply a removed stack), then the stack, then the registry's
/// images, then the registry.
struct Bench {
    platform: Platform,
    _stack: StackGuard<'static>,
    _images: ImageCleanup<'static>,
    reg: Registry,
    dockerd: &'static Dockerd,
    /// The base image, `REGISTRY/base/busybox:1`.
    base: String,
    /// The toolkit image the Argo templates run.
    image: String,
    branch: String,
    /// The branch's commit.
    sha: String,
    /// The branch's stack, `shop-BRANCH`.
    ns: String,
    repo: TestDir,
    /// The runs' out directories, the shims and their logs.
    logs: TestDir,
    host_shims: PathBuf,
    host_log: PathBuf,
}

impl Bench {
    /// Builds the base and toolkit images, brings the platform up and puts its tools behind shims.
    fn start() -> Self {
        let reg = Registry::start();
        let dockerd = Dockerd::shared();
        dockerd.ensure_swarm();
        let images = ImageCleanup {
            dockerd,
            registry: reg.addr.clone(),
        };
        let base = format!("{}/base/busybox:1", reg.addr);
        make_base_image(dockerd, &base, false);
        let image = toolkit_image(&reg, dockerd, &base);
        let branch = unique("argo");
        let repo = shop_repo(&branch);
        let ns = format!("shop-{branch}");
        let stack = StackGuard {
            dockerd,
            name: ns.clone(),
        };
        let (platform, _) = Platform::up(&reg, dockerd);
        let logs = TestDir::new();
        let (host_shims, host_log) = (logs.join("host-shims"), logs.join("pipeline.log"));
        shims(
            &host_shims,
            &bin_dir().to_string_lossy(),
            &host_log.to_string_lossy(),
        );
        Bench {
            platform,
            _stack: stack,
            _images: images,
            reg,
            dockerd,
            base,
            image,
            branch,
            sha: repo.git(&["rev-parse", "HEAD"]),
            ns,
            repo,
            logs,
            host_shims,
            host_log,
        }
    }

    /// Executor 1: scripts/pipeline on the platform, its tools behind the recording shims, with
    /// `--out LOGS/OUT`.
    fn pipeline(&self, out: &str) -> Output {
        self.platform
            .pipeline_cmd()
            .arg("--bin-dir")
            .arg(&self.host_shims)
            .args(["--out", &self.logs.join(out).to_string_lossy()])
            .arg(self.repo.path())
            .arg(&self.branch)
            .run()
    }

    /// `LOGS/OUT/summary.json` of a pipeline run.
    fn summary(&self, out: &str) -> Value {
        let path = self.logs.join(out).join("summary.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
    }

    /// The deploy branch the Argo flow leaves in its cluster repo (no forge merges it).
    fn deploy_branch(&self) -> String {
        format!("refs/heads/deploy/{}/{}", self.ns, self.sha)
    }

    /// Stops the platform, then removes the stack (both idempotent; dropping does it too).
    fn tear_down(&self) {
        self.platform.down();
        let _ = self.dockerd.try_run(&["stack", "rm", &self.ns]);
    }
}

/// Executor 2: the Argo branch flow and its child Workflow, in the toolkit image, against a
/// cluster repo of its own.
struct ArgoFlow {
    exec: Executor<'static>,
    flow: Value,
    params: BTreeMap<String, String>,
    cluster: PathBuf,
    cluster_url: String,
    _dir: TestDir,
}

impl ArgoFlow {
    /// `scripts/argo/branch-flow.yaml` with the bench's branch, registry, images and a fresh
    /// bare cluster repo; its tools behind shims logging to `LOGS/argo.log`.
    fn new(bench: &Bench) -> Self {
        let dir = TestDir::new();
        let cluster = bare_cluster_repo(dir.path());
        let shim = bench.logs.join("argo-shims");
        shims(&shim, "/usr/local/bin", "/log/argo.log");
        let flow_path = workspace_root().join("scripts/argo/branch-flow.yaml");
        let flow: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(flow_path).unwrap()).unwrap();
        let cluster_url = format!("file://{}", cluster.display());
        let params = [
            ("repo-url", bench.repo.path().to_string_lossy().into_owned()),
            ("branch", bench.branch.clone()),
            ("revision", bench.sha.clone()),
            ("registry", bench.reg.addr.clone()),
            ("environment", "dev".into()),
            ("cluster-repo", cluster_url.clone()),
            ("forge", "none".into()),
            ("base-image", bench.base.clone()),
            ("toolkit-image", bench.image.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let exec = Executor {
            dockerd: bench.dockerd,
            image: bench.image.clone(),
            mounts: vec![bench.repo.path().to_path_buf(), dir.path().to_path_buf()],
            shim,
            log_dir: bench.logs.path().to_path_buf(),
            builds: Vec::new(),
            works: Vec::new(),
        };
        ArgoFlow {
            exec,
            flow,
            params,
            cluster,
            cluster_url,
            _dir: dir,
        }
    }

    /// Runs the flow (and the child Workflow it creates) once more, its build outputs afresh.
    fn run(&mut self) {
        self.exec.builds.clear();
        self.exec.workflow(&self.flow, &self.params);
    }

    /// `git ls-tree -r` of the stack's directory on the flow's deploy branch.
    fn tree(&self, bench: &Bench) -> String {
        ns_tree(&self.cluster, &bench.deploy_branch(), &bench.ns)
    }
}

/// Both executors deploy the same branch, and each step compares the end state one reached with
/// the other's, on the state the step before left (the Argo flow finds the pipeline's images, the
/// pipeline finds the Argo flow's rebuilds). Building the toolkit image and running each flow take
/// minutes, so the steps share this test.
#[test]
fn argo_flow_reaches_the_pipelines_end_state_with_the_same_commands() {
    let bench = Bench::start();
    let cluster1 = the_pipeline_builds_both_images_and_deploys_the_branch(&bench);
    let mut argo = ArgoFlow::new(&bench);
    argo.run();
    the_argo_flow_skips_both_builds_and_writes_the_same_tree(&bench, &argo, &cluster1);
    the_argo_flow_runs_the_pipelines_tool_command_lines(&bench, &argo, &cluster1);
    a_new_base_image_makes_the_argo_flow_rebuild_api_and_web(&bench, &mut argo);
    the_pipeline_then_builds_nothing_and_deploys_the_argo_flows_tree(&bench, &argo, &cluster1);
}

/// Executor 1, scripts/pipeline on the local platform through the recording shims, builds both
/// images and deploys the branch. Returns the platform's cluster repo.
fn the_pipeline_builds_both_images_and_deploys_the_branch(bench: &Bench) -> PathBuf {
    bench.pipeline("run1").success();
    let s1 = bench.summary("run1");
    let mut built = seq_strings(&s1["built"]);
    built.sort();
    assert_eq!(built, ["api", "web"], "{s1}");
    bench.platform.cluster_repo()
}

/// Both images exist (the pipeline built them), so the Argo flow skips both builds, and its
/// deploy branch holds a byte-identical tree.
fn the_argo_flow_skips_both_builds_and_writes_the_same_tree(
    bench: &Bench,
    argo: &ArgoFlow,
    cluster1: &Path,
) {
    let builds = &argo.exec.builds;
    assert_eq!(builds.len(), 2, "{builds:?}");
    assert!(
        builds.iter().all(|b| b["skipped"] == Value::Bool(true)),
        "{builds:?}"
    );
    assert_eq!(argo.tree(bench), ns_tree(cluster1, "main", &bench.ns));
}

/// The Argo flow ran the pipeline's tool command lines (the cluster repo URL aside).
fn the_argo_flow_runs_the_pipelines_tool_command_lines(
    bench: &Bench,
    argo: &ArgoFlow,
    cluster1: &Path,
) {
    let c1_url = format!("file://{}", cluster1.display());
    assert_eq!(
        commands(
            &bench.logs.join("argo.log"),
            &[(&argo.cluster_url, &c1_url)]
        ),
        commands(&bench.host_log, &[]),
    );
}

/// A new base image under the same tag: the Argo flow rebuilds api and web.
fn a_new_base_image_makes_the_argo_flow_rebuild_api_and_web(bench: &Bench, argo: &mut ArgoFlow) {
    make_base_image(bench.dockerd, &bench.base, true);
    argo.run();
    let rebuilt: BTreeSet<String> = argo
        .exec
        .builds
        .iter()
        .filter(|b| b["skipped"] == Value::Bool(false))
        .map(|b| {
            b["tag"]
                .as_str()
                .or(b["image"].as_str())
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(
        rebuilt.len(),
        2,
        "api and web rebuilt: {:?}",
        argo.exec.builds
    );
}

/// The pipeline then finds both images (same content key), builds nothing, and deploys the Argo
/// flow's digests: the same tree.
fn the_pipeline_then_builds_nothing_and_deploys_the_argo_flows_tree(
    bench: &Bench,
    argo: &ArgoFlow,
    cluster1: &Path,
) {
    let run2 = bench.pipeline("run2");
    bench.tear_down();
    run2.success();
    let s2 = bench.summary("run2");
    assert_eq!(s2["built"], serde_json::json!([]), "{s2}");
    assert_eq!(argo.tree(bench), ns_tree(cluster1, "main", &bench.ns));
}
