//! Appliers: `kubectl` (server-side apply, field manager `deploy-bot`, namespace ensured, pruning by inventory label) and `swarm` (`docker stack deploy --prune`).

use std::collections::BTreeMap;
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

/// An applier failure.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The program ran and failed, or the applier refused: the message (the program's own
    /// error output, which is all it says).
    #[error("{0}")]
    Failed(String),
    /// The program could not be run, or its output not read.
    #[error("{what}: {source}")]
    Io {
        /// What was done (`cannot run /usr/bin/kubectl`, `stack file`).
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The stack file does not parse.
    #[error("{0}")]
    Stack(#[source] crate::Error),
    /// `docker service inspect` printed something that is not JSON.
    #[error("docker service inspect: {0}")]
    Inspect(#[source] serde_json::Error),
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ApplyError {
    move |source| ApplyError::Io { what, source }
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
    let mut child = cmd.spawn().map_err(io(format!("cannot run {name}")))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        let input = input.as_bytes().to_vec();
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }
    let out = child.wait_with_output().await.map_err(io(name))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err: Vec<&str> = err
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        Err(ApplyError::Failed(format!(
            "{} {} failed ({}): {}",
            program.file_name().unwrap_or_default().to_string_lossy(),
            args.first().map_or("", String::as_str),
            out.status,
            err.join("; ")
        )))
    }
}

/// Run a program and return (exit code, stdout, stderr); only a failure to start it is an error.
async fn run_status(
    program: &Path,
    args: &[String],
    stdin: Option<&str>,
) -> Result<(i32, String, String), ApplyError> {
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
    tracing::debug!("run {name} {}", args.join(" "));
    let mut child = cmd.spawn().map_err(io(format!("cannot run {name}")))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        let input = input.as_bytes().to_vec();
        tokio::spawn(async move {
            let _ = pipe.write_all(&input).await;
            let _ = pipe.shutdown().await;
        });
    }
    let out = child.wait_with_output().await.map_err(io(name))?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// The objects a `kubectl diff` output names: `diff -u -N …/LIVE-x/apps.v1.Deployment.team.web …` → `apps.v1.Deployment.team.web`.
fn diffed_objects(out: &str) -> Vec<String> {
    let mut v: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("diff "))
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.contains('/'))
                .and_then(|p| p.rsplit('/').next())
                .map(str::to_string)
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The mode a compose service asks for.
enum Replicas {
    Global,
    Count(u64),
    /// Replicated, the count not a literal number (left to the apply).
    Unknown,
}

/// What a compose service should look like live.
struct WantService {
    image: String,
    replicas: Replicas,
}

fn wanted_services(file: &Path) -> Result<BTreeMap<String, WantService>, ApplyError> {
    let text = std::fs::read_to_string(file).map_err(io("stack file".into()))?;
    let docs = crate::manifests::parse_documents(&text, "stack file").map_err(ApplyError::Stack)?;
    let mut want = BTreeMap::new();
    let Some(services) = docs
        .first()
        .and_then(|d| d.get("services"))
        .and_then(serde_json::Value::as_object)
    else {
        return Ok(want);
    };
    for (k, svc) in services {
        let name = k.as_str();
        let image = svc
            .get("image")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string();
        let deploy = svc.get("deploy");
        let global = deploy
            .and_then(|d| d.get("mode"))
            .and_then(serde_json::Value::as_str)
            == Some("global");
        let replicas = if global {
            Replicas::Global
        } else {
            match deploy.and_then(|d| d.get("replicas")) {
                None => Replicas::Count(1),
                Some(v) => v.as_u64().map_or(Replicas::Unknown, Replicas::Count),
            }
        };
        want.insert(name.to_string(), WantService { image, replicas });
    }
    Ok(want)
}

/// Whether a live image satisfies the wanted one: the same reference, the same digest, or the tag resolved to a digest.
fn image_matches(live: &str, want: &str) -> bool {
    if live == want {
        return true;
    }
    match want.rsplit_once('@') {
        Some((_, digest)) => live.ends_with(&format!("@{digest}")),
        None => live.starts_with(&format!("{want}@")),
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
            _ => Err(ApplyError::Failed(
                "internal: applier and prepared set disagree".into(),
            )),
        }
    }

    /// Compare the live state of `target` with what `prepared` would apply: the differences found (empty: in sync).
    ///
    /// kubectl: `kubectl diff --server-side` (exit 1 means drift; the objects it names are returned).
    /// swarm: the stack's services as `docker service inspect` reports them: a service missing or not in the
    /// stack file, another image, another mode or replica count.
    pub async fn drift(
        &self,
        target: &str,
        prepared: &Prepared,
    ) -> Result<Vec<String>, ApplyError> {
        match (self, prepared) {
            (Self::Kubectl(k), Prepared::Kube(set)) => {
                let args = s(&[
                    "diff",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager",
                    FIELD_MANAGER,
                    "--namespace",
                    target,
                    "-f",
                    "-",
                ]);
                let (code, out, err) = run_status(k, &args, Some(&set.yaml)).await?;
                match code {
                    0 => Ok(Vec::new()),
                    1 => {
                        let objs = diffed_objects(&out);
                        Ok(if objs.is_empty() {
                            vec!["objects differ".to_string()]
                        } else {
                            objs.into_iter().map(|o| format!("{o} differs")).collect()
                        })
                    }
                    _ => Err(ApplyError::Failed(format!(
                        "kubectl diff failed (exit {code}): {}",
                        err.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ))),
                }
            }
            (Self::Swarm(d), Prepared::Stack(st)) => {
                let want = wanted_services(&st.file)?;
                let ids = run(
                    d,
                    &[
                        "service".into(),
                        "ls".into(),
                        "--quiet".into(),
                        "--filter".into(),
                        format!("label=com.docker.stack.namespace={target}"),
                    ],
                    None,
                )
                .await?;
                let ids: Vec<String> = ids.split_whitespace().map(str::to_string).collect();
                let mut live = BTreeMap::new();
                if !ids.is_empty() {
                    let mut args = s(&["service", "inspect", "--format", "{{json .Spec}}"]);
                    args.extend(ids);
                    let out = run(d, &args, None).await?;
                    for line in out.lines().filter(|l| !l.trim().is_empty()) {
                        let spec: serde_json::Value =
                            serde_json::from_str(line).map_err(ApplyError::Inspect)?;
                        let name = spec["Name"].as_str().unwrap_or_default().to_string();
                        live.insert(name, spec);
                    }
                }
                let mut diffs = Vec::new();
                for (svc, w) in &want {
                    let full = format!("{target}_{svc}");
                    let Some(spec) = live.remove(&full) else {
                        diffs.push(format!("{full}: missing"));
                        continue;
                    };
                    let image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
                        .as_str()
                        .unwrap_or_default();
                    if !image_matches(image, &w.image) {
                        diffs.push(format!("{full}: image {image}, want {}", w.image));
                    }
                    let live_replicas = spec["Mode"]["Replicated"]["Replicas"].as_u64();
                    let live_global = spec["Mode"].get("Global").is_some();
                    match w.replicas {
                        Replicas::Global if !live_global => {
                            diffs.push(format!("{full}: not global"));
                        }
                        Replicas::Count(n) if live_replicas != Some(n) => diffs.push(format!(
                            "{full}: replicas {}, want {n}",
                            live_replicas.map_or_else(|| "-".to_string(), |r| r.to_string())
                        )),
                        Replicas::Count(_) | Replicas::Unknown if live_global => {
                            diffs.push(format!("{full}: global, want replicated"));
                        }
                        _ => {}
                    }
                }
                for extra in live.keys() {
                    diffs.push(format!("{extra}: not in the stack file"));
                }
                Ok(diffs)
            }
            _ => Err(ApplyError::Failed(
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
            _ => Err(ApplyError::Failed(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_diff_names_objects() {
        let out = "diff -u -N /tmp/LIVE-1/apps.v1.Deployment.team.web /tmp/MERGED-1/apps.v1.Deployment.team.web\n--- x\n+++ y\n";
        assert_eq!(diffed_objects(out), ["apps.v1.Deployment.team.web"]);
    }

    #[test]
    fn images_match_by_reference_or_digest() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert!(image_matches(&format!("r/a@{d}"), &format!("r/a@{d}")));
        assert!(image_matches(&format!("r/a:1@{d}"), &format!("r/a@{d}")));
        assert!(image_matches(&format!("r/a:1@{d}"), "r/a:1"));
        assert!(!image_matches("r/b:2", &format!("r/a@{d}")));
    }
}
