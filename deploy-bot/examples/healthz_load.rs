//! Benchmark: `/healthz` latency of the agent (1) idle, (2) while SLOW connections that never finish their request head
//! are open, (3) while commits with deeply nested YAML (200 KB, 100,000 levels) are validated. Loopback only, bounded
//! in count and time. Uses the test harness (fake kubectl, real git); set `MICROPLATFORM_BIN_DIR` to the directory of
//! the `deploy-bot` binary. Prints JSON.
//!
//! `cargo run --release -p deploy-bot --example healthz_load -- SLOW REQUESTS HOSTILE_COMMITS`

#[path = "../tests/it/support.rs"]
#[allow(dead_code, clippy::all, clippy::pedantic)]
mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use microplatform_test_support::{TestDir, git_in, wait_until};
use support::{AgentProc, ClusterRepo, FakeKubectl, IMAGE, deployment, push_event};

/// One `GET /healthz` on a fresh connection; its latency, or None on any failure.
fn probe(port: u16) -> Option<Duration> {
    let t = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    buf.starts_with(b"HTTP/1.1 200").then(|| t.elapsed())
}

fn summary(mut lat: Vec<Duration>, failures: usize) -> serde_json::Value {
    lat.sort();
    let pct = |per_mille: usize| {
        if lat.is_empty() {
            return 0.0;
        }
        let rank = lat.len() * per_mille / 1000;
        lat[rank.min(lat.len() - 1)].as_secs_f64() * 1000.0
    };
    serde_json::json!({
        "requests": lat.len(),
        "failures": failures,
        "latency_ms": {"p50": pct(500), "p90": pct(900), "p99": pct(990), "max": pct(1000)},
    })
}

fn probes(port: u16, n: usize) -> serde_json::Value {
    let mut lat = Vec::new();
    let mut failures = 0;
    for _ in 0..n {
        match probe(port) {
            Some(d) => lat.push(d),
            None => failures += 1,
        }
    }
    summary(lat, failures)
}

fn metric(agent: &AgentProc, name: &str) -> u64 {
    let (_, text) = agent.get("/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("SLOW REQUESTS HOSTILE_COMMITS"))
        .collect();
    let (slow_n, requests, hostile_n) = match args.as_slice() {
        [a, b, c] => (*a, *b, *c),
        _ => (500, 2000, 10),
    };
    let repo = ClusterRepo::new();
    let k = FakeKubectl::new();
    let state = TestDir::new();
    let st = state.join("s");
    let kubectl = k.path().to_string_lossy().into_owned();
    let url = repo.url();
    let agent = AgentProc::start_with(
        &st,
        &["-q"],
        &[
            "--repo",
            &url,
            "--branch",
            "main",
            "--poll-interval",
            "1h",
            "--kubectl",
            &kubectl,
        ],
        &[],
    );
    let port = agent.port;
    let _ = probes(port, 200); // warm-up
    let idle = probes(port, requests);

    // (2) SLOW connections that send part of a request head and stop (the default 10 s head timeout is longer than
    // this phase, so they stay open while the probes run).
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..slow_n {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"POST /webhooks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
            slow.push(s);
        }
    }
    let open_before = metric(&agent, "deploy_bot_connections_open");
    let under_slow = probes(port, requests);
    let open_after = metric(&agent, "deploy_bot_connections_open");
    let phase_seconds = started.elapsed().as_secs_f64();
    drop(slow);

    // (3) Hostile commits: each adds a distinct 200 KB file nested 100,000 levels deep to `team/`; probes run until
    // every one of them has been rejected.
    let mut hostile_lat = Vec::new();
    let mut hostile_fail = 0;
    let mut reject_ms = Vec::new();
    repo.commit(
        &[("team/web.yaml", &deployment("team", "web", IMAGE))],
        &[],
        "seed",
    );
    for i in 0..hostile_n {
        let text = format!("# {i}\na: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let c = repo.commit(&[("team/deep.yaml", &text)], &[], &format!("hostile {i}"));
        let tree = git_in(&repo.bare, &["rev-parse", &format!("{c}:team")]);
        let t0 = Instant::now();
        let (s, _) = agent.send(
            "push",
            &format!("hostile-{i}"),
            &push_event("refs/heads/main", &c, "acme/cluster", "x"),
            None,
        );
        assert_eq!(s, 202);
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let rejected = st.join("rejected/team.json");
        let watcher = std::thread::spawn(move || {
            let ok = wait_until(Duration::from_secs(60), || {
                std::fs::read_to_string(&rejected).is_ok_and(|t| t.contains(&tree))
            });
            flag.store(true, Ordering::Relaxed);
            (ok, t0.elapsed())
        });
        while !done.load(Ordering::Relaxed) {
            match probe(port) {
                Some(d) => hostile_lat.push(d),
                None => hostile_fail += 1,
            }
        }
        let (ok, took) = watcher.join().unwrap();
        assert!(ok, "hostile commit {i} not rejected:\n{}", agent.log());
        reject_ms.push(took.as_secs_f64() * 1000.0);
    }
    reject_ms.sort_by(f64::total_cmp);
    let out = serde_json::json!({
        "idle": idle,
        "slow_connections": {
            "slow": slow_n,
            "connections_open_before": open_before,
            "connections_open_after": open_after,
            "phase_seconds": phase_seconds,
            "healthz": under_slow,
        },
        "hostile_yaml": {
            "commits": hostile_n,
            "file_bytes": 200_008,
            "nesting": 100_000,
            "webhook_to_rejected_ms": {"median": reject_ms.get(reject_ms.len() / 2), "max": reject_ms.last()},
            "healthz": summary(hostile_lat, hostile_fail),
        },
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
