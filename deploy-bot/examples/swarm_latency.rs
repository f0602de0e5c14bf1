//! Benchmark: time from a merged commit to the applied swarm stack (5 services, images pinned by digest in a real registry).
//! Uses the test harness (shared dockerd in swarm mode, a real registry); set `MICROPLATFORM_BIN_DIR` to the directory of the
//! `deploy-bot` binary. Prints JSON: per round the time until the agent recorded the apply and until all 5 services ran 1/1.
//!
//! `cargo run --release -p deploy-bot --example swarm_latency -- ROUNDS`

#[path = "../tests/it/support.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use microplatform_test_support::dockerd::{Dockerd, docker_cli};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{TestDir, wait_until};
use support::fake_github::FakeGitHub;
use support::{AgentProc, ClusterRepo, push_event};

fn compose(image: &str, round: usize) -> String {
    let mut s = String::from("version: \"3.8\"\nservices:\n");
    for i in 1..=5 {
        let _ = write!(
            s,
            "  svc{i}:\n    image: \"{image}\"\n    command: [\"sleep\", \"3600\"]\n    environment:\n      ROUND: \"{round}\"\n    deploy:\n      replicas: 1\n"
        );
    }
    s
}

fn running(d: &Dockerd, stack: &str) -> usize {
    let out = d.run(&[
        "service",
        "ls",
        "--filter",
        &format!("label=com.docker.stack.namespace={stack}"),
        "--format",
        "{{.Replicas}}",
    ]);
    out.lines().filter(|l| l.trim() == "1/1").count()
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(3, |a| a.parse().expect("ROUNDS"));
    let d = Dockerd::shared();
    d.ensure_swarm();
    let reg = Registry::start();
    let base = d.base_image(&reg.addr);
    let (_, digest, _) = reg.get_manifest("base/busybox", "1");
    let image = format!(
        "{}@{}",
        base.trim_end_matches(":1"),
        digest.expect("digest")
    );
    let repo = ClusterRepo::new();
    let gh = FakeGitHub::start("acme", "cluster", &repo.bare, "bench-token");
    let state = TestDir::new();
    let st = state.join("s");
    let docker = docker_cli().to_string_lossy().into_owned();
    let ghu = gh.url();
    let agent = AgentProc::follow(
        &st,
        &repo,
        "1h",
        &[
            "--applier",
            "swarm",
            "--docker",
            &docker,
            "--forge",
            "github",
            "--api-url",
            &ghu,
        ],
        &[("DOCKER_HOST", &d.host), ("GITHUB_TOKEN", "bench-token")],
    );
    let mut results = Vec::new();
    for round in 0..rounds {
        let ns = format!("bench{}r{round}", std::process::id());
        let branch = format!("deploy/{ns}/r{round}");
        repo.branch(
            &branch,
            &[(&format!("{ns}/compose.yaml"), &compose(&image, round))],
        );
        let n = gh.open_pull(&branch);
        // The merge is the start: merge commit pushed, GitHub sends the push webhook.
        let t0 = Instant::now();
        let merged = gh.merge(n);
        let msg = format!("Merge pull request #{n} from acme/{branch}");
        assert_eq!(
            agent
                .send(
                    "push",
                    &format!("bench-{ns}"),
                    &push_event("refs/heads/main", &merged, "acme/cluster", &msg),
                    None
                )
                .0,
            202
        );
        let applied_file = st.join(format!("applied/{ns}.json"));
        assert!(
            wait_until(Duration::from_secs(300), || std::fs::read_to_string(
                &applied_file
            )
            .is_ok_and(|t| t.contains(&merged))),
            "{}",
            agent.log()
        );
        let t_applied = t0.elapsed();
        assert!(wait_until(Duration::from_secs(300), || running(d, &ns) == 5));
        let t_running = t0.elapsed();
        let _ = d.try_run(&["stack", "rm", &ns]);
        results.push(serde_json::json!({"stack": ns, "applied_seconds": t_applied.as_secs_f64(), "running_seconds": t_running.as_secs_f64()}));
    }
    let mut r: Vec<f64> = results
        .iter()
        .map(|v| v["running_seconds"].as_f64().unwrap())
        .collect();
    r.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"services": 5, "rounds": results, "median_running_seconds": r[r.len() / 2]})).unwrap()
    );
}
