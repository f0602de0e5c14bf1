//! Load generator for the agent's webhook endpoint: N signed `push` deliveries (unique delivery ids) over C keep-alive connections,
//! bounded by count and time, loopback only; prints throughput and latency percentiles as JSON.
//!
//! `cargo run --release -p deploy-bot --example webhook_load -- URL SECRET REQUESTS CONCURRENCY`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: webhook_load URL SECRET REQUESTS CONCURRENCY");
        std::process::exit(2);
    }
    let url = args[1].clone();
    assert!(url.starts_with("http://127.0.0.1:"), "loopback only");
    let secret = args[2].clone();
    let total: u64 = args[3].parse().expect("REQUESTS");
    let conc: usize = args[4].parse().expect("CONCURRENCY");
    let body = serde_json::to_vec(&serde_json::json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": "1111111111111111111111111111111111111111",
        "repository": {"full_name": "acme/cluster"},
        "head_commit": {"message": "bench"},
    }))
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let result = rt.block_on(async move {
        let client = microplatform_common::http::client_builder()
            .pool_max_idle_per_host(conc)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let next = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let run_id = std::process::id();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        let mut handles = Vec::new();
        for _ in 0..conc {
            let (client, url, next, errors, body) = (
                client.clone(),
                url.clone(),
                next.clone(),
                errors.clone(),
                body.clone(),
            );
            // Signed once: the signature covers the body only; the delivery id is a header.
            let sig = deploy_bot::webhook::sign(secret.as_bytes(), &body);
            handles.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() > deadline {
                        break;
                    }
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("X-GitHub-Event", "push")
                        .header("X-GitHub-Delivery", format!("bench-{run_id}-{i}"))
                        .header("X-Hub-Signature-256", &sig)
                        .header("Content-Type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    let ok = match r {
                        Ok(resp) => {
                            let s = resp.status().as_u16();
                            let _ = resp.bytes().await;
                            s == 202
                        }
                        Err(_) => false,
                    };
                    lat.push(t.elapsed());
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.await.unwrap());
        }
        let elapsed = started.elapsed();
        (all, errors.load(Ordering::Relaxed), elapsed)
    });
    let (mut lat, errors, elapsed) = result;
    lat.sort();
    let pct = |per_mille: usize| {
        if lat.is_empty() {
            0.0
        } else {
            // Nearest-rank percentile: the smallest sample with at least p of the samples at or below it.
            let rank = lat.len() * per_mille / 1000;
            lat[rank.min(lat.len() - 1)].as_secs_f64() * 1000.0
        }
    };
    let out = serde_json::json!({
        "requests": lat.len(),
        "errors": errors,
        "concurrency": conc,
        "seconds": elapsed.as_secs_f64(),
        "requests_per_second": lat.len() as f64 / elapsed.as_secs_f64(),
        "latency_ms": {"p50": pct(500), "p90": pct(900), "p99": pct(990), "max": pct(1000)},
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
