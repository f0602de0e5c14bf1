//! Benchmark: self-heal on a real swarm: time from `docker service scale NS_web=0` to the service running 1/1 again,
//! with the agent reconciling every POLL (a real dockerd in swarm mode, a real registry, images pinned by digest).
//! Set `MICROPLATFORM_BIN_DIR` to the directory of the `deploy-bot` binary. Prints JSON.
//!
//! `cargo run --release -p deploy-bot --example swarm_heal -- ROUNDS POLL`

#[path = "../tests/it/support.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod support;

use std::time::{Duration, Instant};

use microplatform_test_support::dockerd::{Dockerd, docker_cli};
use microplatform_test_support::registry::Registry;
use microplatform_test_support::{TestDir, wait_until};
use support::{AgentProc, ClusterRepo};

fn replicas(d: &Dockerd, service: &str) -> String {
    d.run(&[
        "service",
        "ls",
        "--filter",
        &format!("name={service}"),
        "--format",
        "{{.Replicas}}",
    ])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().map_or(5, |a| a.parse().expect("ROUNDS"));
    let poll = args.next().unwrap_or_else(|| "2s".into());
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
    let ns = format!("heal{}", std::process::id());
    let repo = ClusterRepo::new();
    // A process that stops on SIGTERM: a bare `sleep` as PID 1 ignores it, and each scale-down would then wait out
    // the 10 s stop grace period, which is swarm's time, not the agent's.
    let compose = format!(
        "version: \"3.8\"\nservices:\n  web:\n    image: \"{image}\"\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; while true; do sleep 1; done\"]\n    deploy:\n      replicas: 1\n"
    );
    repo.commit(&[(&format!("{ns}/compose.yaml"), &compose)], &[], "deploy");
    let state = TestDir::new();
    let st = state.join("s");
    let docker = docker_cli().to_string_lossy().into_owned();
    let agent = AgentProc::start_with(
        &st,
        &["-q"],
        &[
            "--repo",
            &repo.url(),
            "--branch",
            "main",
            "--poll-interval",
            &poll,
            "--applier",
            "swarm",
            "--docker",
            &docker,
            "--namespace",
            &ns,
        ],
        &[("DOCKER_HOST", &d.host)],
    );
    let web = format!("{ns}_web");
    assert!(
        wait_until(Duration::from_secs(300), || replicas(d, &web) == "1/1"),
        "{}",
        agent.log()
    );
    let repairs = || {
        agent
            .get("/metrics")
            .1
            .lines()
            .find_map(|l| l.strip_prefix("deploy_bot_drift_repairs_total "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stopping = || {
        d.run(&[
            "service",
            "ps",
            &web,
            "--filter",
            "desired-state=shutdown",
            "--format",
            "{{.CurrentState}}",
        ])
        .lines()
        .filter(|l| l.starts_with("Running"))
        .count()
    };
    let mut results = Vec::new();
    let mut repaired = Vec::new();
    for round in 0..rounds {
        // Rounds start at different points of the reconcile interval, once the last scale-down has finished.
        assert!(wait_until(Duration::from_secs(60), || stopping() == 0));
        std::thread::sleep(Duration::from_millis(300 + (370 * round as u64) % 2000));
        let before = repairs();
        let t0 = Instant::now();
        d.run(&["service", "scale", "--detach", &format!("{web}=0")]);
        assert!(
            wait_until(Duration::from_secs(300), || repairs() > before),
            "{}",
            agent.log()
        );
        repaired.push(t0.elapsed().as_secs_f64());
        assert!(
            wait_until(Duration::from_secs(300), || replicas(d, &web) == "1/1"),
            "{}",
            agent.log()
        );
        results.push(t0.elapsed().as_secs_f64());
    }
    let _ = d.try_run(&["stack", "rm", &ns]);
    let mut sorted = results.clone();
    sorted.sort_by(f64::total_cmp);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "poll_interval": poll,
            "scale_to_zero_to_drift_repaired_seconds": repaired,
            "scale_to_zero_to_running_seconds": results,
            "median_seconds": sorted[sorted.len() / 2],
            "max_seconds": sorted[sorted.len() - 1],
        }))
        .unwrap()
    );
}
