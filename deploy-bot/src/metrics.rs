//! The agent's Prometheus metrics: counters and gauges kept in atomics, rendered as text exposition format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Webhook answers, by outcome.
pub const OUTCOMES: [&str; 10] = [
    "queued",
    "duplicate",
    "ignored",
    "ping",
    "unauthorized",
    "bad_request",
    "too_large",
    "unsupported",
    "error",
    "timeout",
];

/// All metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    webhooks: [AtomicU64; 10],
    /// Namespace applies that succeeded.
    pub applies_ok: AtomicU64,
    /// Namespace applies that failed validation.
    pub applies_invalid: AtomicU64,
    /// Namespace applies the applier failed.
    pub applies_failed: AtomicU64,
    /// Namespace applies skipped (already applied).
    pub applies_skipped: AtomicU64,
    /// Pull request checks run.
    pub pr_checks: AtomicU64,
    /// Reconcile runs.
    pub reconciles: AtomicU64,
    /// Fetch failures.
    pub fetch_errors: AtomicU64,
    /// Unix time of the last successful apply.
    pub last_apply: AtomicU64,
    /// Drift checks run (self-heal).
    pub drift_checks: AtomicU64,
    /// Drift checks that could not compare (the applier failed).
    pub drift_check_errors: AtomicU64,
    /// Drift repaired: live state differed from the repo and was applied again.
    pub drift_repairs: AtomicU64,
    /// Namespaces torn down (directory removed from the repo).
    pub teardowns: AtomicU64,
}

impl Metrics {
    /// Count a webhook answer.
    pub fn webhook(&self, outcome: &str) {
        if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
            self.webhooks[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Render as Prometheus text.
    pub fn render(
        &self,
        queue_depth: usize,
        ready: bool,
        server: &crate::server::ServerStats,
    ) -> String {
        let mut s = String::new();
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s.push_str("# HELP deploy_bot_webhook_requests_total Webhook requests by outcome.\n# TYPE deploy_bot_webhook_requests_total counter\n");
        for (i, o) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                s,
                "deploy_bot_webhook_requests_total{{outcome=\"{o}\"}} {}",
                g(&self.webhooks[i])
            );
        }
        s.push_str("# HELP deploy_bot_applies_total Namespace applies by result.\n# TYPE deploy_bot_applies_total counter\n");
        for (r, v) in [
            ("success", &self.applies_ok),
            ("invalid", &self.applies_invalid),
            ("failure", &self.applies_failed),
            ("skipped", &self.applies_skipped),
        ] {
            let _ = writeln!(s, "deploy_bot_applies_total{{result=\"{r}\"}} {}", g(v));
        }
        for (name, help, v) in [
            (
                "deploy_bot_pull_request_checks_total",
                "Pull request validations run.",
                &self.pr_checks,
            ),
            (
                "deploy_bot_reconciles_total",
                "Reconcile runs.",
                &self.reconciles,
            ),
            (
                "deploy_bot_fetch_errors_total",
                "Failed fetches of the cluster repo.",
                &self.fetch_errors,
            ),
            (
                "deploy_bot_drift_checks_total",
                "Self-heal comparisons of live state with the repo.",
                &self.drift_checks,
            ),
            (
                "deploy_bot_drift_check_errors_total",
                "Self-heal comparisons that failed.",
                &self.drift_check_errors,
            ),
            (
                "deploy_bot_drift_repairs_total",
                "Drift repaired: the live state differed from the repo and was applied again.",
                &self.drift_repairs,
            ),
            (
                "deploy_bot_teardowns_total",
                "Namespaces torn down after their directory left the repo.",
                &self.teardowns,
            ),
            (
                "deploy_bot_connections_timed_out_total",
                "Connections closed for a slow or missing request head, or idleness.",
                &server.timed_out,
            ),
            (
                "deploy_bot_connections_shed_total",
                "Connections closed to make room at the connection limit.",
                &server.shed,
            ),
        ] {
            let _ = writeln!(
                s,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                g(v)
            );
        }
        let _ = writeln!(
            s,
            "# HELP deploy_bot_last_apply_timestamp_seconds Unix time of the last successful apply.\n# TYPE deploy_bot_last_apply_timestamp_seconds gauge\ndeploy_bot_last_apply_timestamp_seconds {}",
            g(&self.last_apply)
        );
        let _ = writeln!(
            s,
            "# HELP deploy_bot_connections_open HTTP connections open.\n# TYPE deploy_bot_connections_open gauge\ndeploy_bot_connections_open {}",
            g(&server.open)
        );
        let _ = writeln!(
            s,
            "# HELP deploy_bot_queue_depth Deliveries waiting.\n# TYPE deploy_bot_queue_depth gauge\ndeploy_bot_queue_depth {queue_depth}"
        );
        let _ = writeln!(
            s,
            "# HELP deploy_bot_ready Whether the agent is ready.\n# TYPE deploy_bot_ready gauge\ndeploy_bot_ready {}",
            u8::from(ready)
        );
        s
    }
}
