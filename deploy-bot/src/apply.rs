//! Appliers: `kubectl` (server-side apply, field manager `deploy-bot`, namespace ensured, pruning by inventory label) and `swarm` (`docker stack deploy --prune`).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use crate::validate::{DEFAULT_KINDS, INVENTORY_LABEL, KubeSet, Policy, StackSet};

/// The field manager of server-side apply.
pub const FIELD_MANAGER: &str = "deploy-bot";

/// Which applier.
#[derive(Debug, Clone)]
pub enum Applier {
    /// `kubectl` at this path.
    Kubectl(PathBuf),
    /// `docker` at this path (a swarm manager's CLI).
    Swarm(PathBuf),
}

/// What was validated, ready to apply.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Kubernetes objects.
    Kube(KubeSet),
    /// A swarm stack.
    Stack(StackSet),
}

impl Prepared {
    /// A one-line summary.
    pub fn summary(&self) -> String {
        match self {
            Self::Kube(k) => format!("{} objects", k.objects.len()),
            Self::Stack(s) => format!("{} services", s.services.len()),
        }
    }
}

/// An applier failure: the external program's message.
#[derive(Debug, Clone)]
pub struct ApplyError(pub String);

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

async fn run(program: &Path, args: &[String], stdin: Option<&str>) -> Result<String, ApplyError> {
    let name = program.display().to_string();
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    tracing::info!("run {name} {}", args.join(" "));
    let mut child = cmd
        .spawn()
        .map_err(|e| ApplyError(format!("cannot run {name}: {e}")))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        let input = input.as_bytes().to_vec();
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| ApplyError(format!("{name}: {e}")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Err(ApplyError(format!(
            "{} {} failed ({}): {}",
            program.file_name().unwrap_or_default().to_string_lossy(),
            args.first().map_or("", String::as_str),
            out.status,
            err.join("; ")
        )))
    }
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| (*x).to_string()).collect()
}

fn namespace_doc(ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    app.kubernetes.io/managed-by: deploy-bot\n"
    )
}

fn prune_allowlist(policy: &Policy, set: Option<&KubeSet>) -> Vec<String> {
    let mut gvks: std::collections::BTreeSet<String> = DEFAULT_KINDS
        .iter()
        .filter(|(k, _)| policy.kinds.contains(*k))
        .map(|(k, gv)| format!("{gv}/{k}"))
        .collect();
    if let Some(set) = set {
        gvks.extend(set.gvks.iter().cloned());
    }
    gvks.into_iter().collect()
}

impl Applier {
    /// Apply a prepared namespace to `target` (the namespace or stack name).
    pub async fn apply(
        &self,
        target: &str,
        prepared: &Prepared,
        policy: &Policy,
    ) -> Result<String, ApplyError> {
        match (self, prepared) {
            (Self::Kubectl(k), Prepared::Kube(set)) => {
                let mut ns_args = s(&[
                    "apply",
                    "--server-side",
                    "--field-manager",
                    FIELD_MANAGER,
                    "-f",
                    "-",
                ]);
                ns_args.insert(1, "--force-conflicts".into());
                run(k, &ns_args, Some(&namespace_doc(target))).await?;
                let mut args = s(&[
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager",
                    FIELD_MANAGER,
                    "--namespace",
                    target,
                    "--prune",
                    "--selector",
                ]);
                args.push(format!("{INVENTORY_LABEL}={target}"));
                for g in prune_allowlist(policy, Some(set)) {
                    args.push("--prune-allowlist".into());
                    args.push(g);
                }
                args.extend(s(&["-f", "-"]));
                run(k, &args, Some(&set.yaml)).await
            }
            (Self::Swarm(d), Prepared::Stack(st)) => {
                let args = vec![
                    "stack".into(),
                    "deploy".into(),
                    "--prune".into(),
                    "--with-registry-auth".into(),
                    "--compose-file".into(),
                    st.file.display().to_string(),
                    target.into(),
                ];
                run(d, &args, None).await
            }
            _ => Err(ApplyError(
                "internal: applier and prepared set disagree".into(),
            )),
        }
    }

    /// Dry-run: server-side dry run for kubectl; swarm has none (validation only).
    pub async fn dry_run(&self, target: &str, prepared: &Prepared) -> Result<String, ApplyError> {
        match (self, prepared) {
            (Self::Kubectl(k), Prepared::Kube(set)) => {
                let mut args = s(&[
                    "apply",
                    "--server-side",
                    "--dry-run=server",
                    "--field-manager",
                    FIELD_MANAGER,
                    "--namespace",
                    target,
                    "-f",
                    "-",
                ]);
                args.insert(3, "--force-conflicts".into());
                run(k, &args, Some(&set.yaml)).await
            }
            (Self::Swarm(_), Prepared::Stack(_)) => {
                Ok("validated (swarm has no server-side dry run)".into())
            }
            _ => Err(ApplyError(
                "internal: applier and prepared set disagree".into(),
            )),
        }
    }

    /// Remove everything deploy-bot applied to `target`.
    /// `delete_namespace`: for preview environments the namespace itself goes.
    pub async fn teardown(
        &self,
        target: &str,
        policy: &Policy,
        delete_namespace: bool,
    ) -> Result<String, ApplyError> {
        match self {
            Self::Kubectl(k) => {
                if delete_namespace {
                    return run(
                        k,
                        &s(&[
                            "delete",
                            "namespace",
                            target,
                            "--ignore-not-found",
                            "--wait=false",
                        ]),
                        None,
                    )
                    .await;
                }
                let kinds: Vec<String> = prune_allowlist(policy, None)
                    .into_iter()
                    .map(|g| {
                        let mut parts = g.rsplitn(3, '/');
                        let kind = parts.next().unwrap_or_default().to_lowercase();
                        let _version = parts.next();
                        let group = parts.next().unwrap_or("core");
                        if group == "core" {
                            kind
                        } else {
                            format!("{kind}.{group}")
                        }
                    })
                    .collect();
                let mut args = s(&[
                    "delete",
                    "--namespace",
                    target,
                    "--ignore-not-found",
                    "--selector",
                ]);
                args.push(format!("{INVENTORY_LABEL}={target}"));
                args.push(kinds.join(","));
                run(k, &args, None).await
            }
            Self::Swarm(d) => run(d, &s(&["stack", "rm", target]), None).await,
        }
    }
}
