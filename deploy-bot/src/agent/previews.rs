//! Pull-request previews: a pull request of the cluster repo validated, dry-run and applied to `<NS>-pr-<N>`, torn down when it closes.

use super::{Agent, Arc, BTreeSet, Job, Ordering, Outcome, Result};

impl Agent {
    pub(super) fn preview_name(ns: &str, number: u64) -> String {
        let suffix = format!("-pr-{number}");
        let keep = 63usize.saturating_sub(suffix.len());
        let base: String = ns.chars().take(keep).collect();
        format!("{}{suffix}", base.trim_end_matches('-'))
    }

    pub(super) async fn pull_request(self: &Arc<Self>, job: Job) -> Result<()> {
        let Job::PullRequest {
            action,
            number,
            head_sha,
            head_ref,
            base_ref,
        } = job
        else {
            return Ok(());
        };
        self.metrics.pr_checks.fetch_add(1, Ordering::Relaxed);
        let previews_path = self
            .cfg
            .state_dir
            .join("previews")
            .join(format!("{number}.json"));
        if action == "closed" {
            if !self.cfg.teardown_on_close {
                return Ok(());
            }
            let targets: Vec<String> = std::fs::read(&previews_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            let mut lines = Vec::new();
            for t in &targets {
                let lock = self.lock_for(t);
                let _g = lock.lock().await;
                match self.cfg.applier.teardown(t, &self.cfg.policy, true).await {
                    Ok(_) => lines.push(format!("- `{t}`: torn down")),
                    Err(e) => lines.push(format!("- `{t}`: teardown failed: {e}")),
                }
            }
            let _ = std::fs::remove_file(&previews_path);
            if !targets.is_empty() {
                self.comment(
                    number,
                    &format!(
                        "**deploy-bot**: pull request closed; preview environments:\n{}",
                        lines.join("\n")
                    ),
                )
                .await;
            }
            return Ok(());
        }
        let pr_ref = format!("refs/deploy-bot/pr/{number}");
        if self
            .fetch(vec![format!("+refs/pull/{number}/head:{pr_ref}")])
            .await
            .is_err()
        {
            self.fetch(vec![format!("+refs/heads/{head_ref}:{pr_ref}")])
                .await?;
        }
        self.fetch(vec![format!(
            "+refs/heads/{base_ref}:refs/deploy-bot/base/{number}"
        )])
        .await?;
        let head = if self
            .git(&["cat-file", "-e", &format!("{head_sha}^{{commit}}")])
            .await
            .is_ok()
        {
            head_sha
        } else {
            self.git(&["rev-parse", &pr_ref]).await?
        };
        let base = self
            .git(&[
                "merge-base",
                &format!("refs/deploy-bot/base/{number}"),
                &head,
            ])
            .await?;
        let changed = self.git(&["diff", "--name-only", &base, &head]).await?;
        let present = self.namespaces_at(&head).await?;
        let namespaces: BTreeSet<String> = changed
            .lines()
            .filter_map(|p| p.split_once('/').map(|(d, _)| d.to_string()))
            .filter(|d| self.managed(d) && present.contains(d))
            .collect();
        let mut sections = Vec::new();
        let mut previews: Vec<String> = std::fs::read(&previews_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        for ns in &namespaces {
            self.status(&head, ns, "pending", "validating").await;
            let target = if self.cfg.preview {
                Self::preview_name(ns, number)
            } else {
                ns.clone()
            };
            let (_work, loaded) = self.load(&head, ns, &target).await;
            let outcome = match loaded {
                Err(o) => o,
                Ok(prepared) => {
                    let lock = self.lock_for(&target);
                    let _g = lock.lock().await;
                    let r = if self.cfg.preview {
                        self.cfg
                            .applier
                            .apply(&target, &prepared, &self.cfg.policy)
                            .await
                    } else {
                        self.cfg.applier.dry_run(&target, &prepared).await
                    };
                    match r {
                        Ok(_) => {
                            if self.cfg.preview && !previews.contains(&target) {
                                previews.push(target.clone());
                            }
                            Outcome::Applied(prepared.summary())
                        }
                        Err(e) => Outcome::Failed(e.to_string()),
                    }
                }
            };
            let (state, desc) = match &outcome {
                Outcome::Applied(s) if self.cfg.preview => {
                    ("success", format!("preview {target}: {s}"))
                }
                Outcome::Applied(s) => ("success", format!("valid, dry run passed: {s}")),
                Outcome::Invalid(p) => ("failure", format!("validation failed: {}", p.join("; "))),
                Outcome::Failed(m) => ("failure", format!("dry run failed: {m}")),
                Outcome::Error(m) => ("error", format!("deploy-bot error: {m}")),
            };
            self.status(&head, ns, state, &desc).await;
            sections.push(self.describe(
                ns,
                &head,
                &outcome,
                if self.cfg.preview { "preview" } else { "check" },
            ));
        }
        if self.cfg.preview {
            let _ = microplatform_common::io::atomic_write(
                &previews_path,
                &serde_json::to_vec(&previews).expect("json"),
            );
        }
        if !sections.is_empty() {
            self.comment(number, &sections.join("\n\n---\n\n")).await;
        }
        Ok(())
    }
}
