//! The record of a pipeline run: `summary.json` and its human summary, assembled from what the plan's steps wrote in the run's directory.
//!
//! `scripts/pipeline` (and any other executor of the plan) runs the steps; this
//! reads their outputs, so the shape of a run's result lives in one place:
//!
//! | file (in the run directory `OUT`) | written by |
//! |---|---|
//! | `monobuild.json` | the diff step (`monobuild diff`) |
//! | `builds/<service>.json` | the build steps (`build-with-cache`) |
//! | `plan.json`, `request.json`, `notify.json`, `smoke.json` | `stackgen plan`, `deploy-bot request`, `deploy-bot notify`, `deploy-bot smoke` |
//! | `envs/<env>/…` (per `plan.json`'s `promotion.flow`) | the main flow: one directory per environment, with its `promote.json` |
//!
//! The environment described is the one applied last: the run's own, or in
//! the main flow the last environment whose gate is not `manual`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// What to summarise.
#[derive(Debug, Clone)]
pub struct SummaryOptions {
    /// The run directory.
    pub out_dir: PathBuf,
    /// Seconds the whole run took.
    pub seconds: f64,
    /// For the `try:` lines: the engine, its CLI and an image with `wget`.
    pub try_with: Option<TryWith>,
}

/// Seconds from `started_at` (seconds since the Unix epoch, as `date +%s.%N` prints) until now;
/// 0 when the clock reads earlier than that.
#[must_use]
pub fn seconds_since(started_at: f64) -> f64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (now - started_at).max(0.0)
}

/// How a user calls a service by name on the stack's network.
#[derive(Debug, Clone)]
pub struct TryWith {
    /// `DOCKER_HOST`.
    pub docker_host: String,
    /// The docker CLI.
    pub docker: String,
    /// An image with `wget` (busybox).
    pub image: String,
}

/// `summary.json` and the lines a person reads.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The run record (`schema_version` 1).
    pub json: Value,
    /// The human summary, one item per line.
    pub text: String,
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.display().to_string(),
        source,
    })
}

fn optional_json(path: &Path) -> Result<Option<Value>> {
    if path.exists() {
        read_json(path).map(Some)
    } else {
        Ok(None)
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

/// The main flow's environments, in the order of the run plan's `promotion.flow`, each from its
/// directory `envs/<env>` (none for a branch run, or before the first environment).
fn environments(out: &Path, plan: &Value) -> Result<Vec<Value>> {
    if plan["promotion"]["main_flow"].as_bool() != Some(true) {
        return Ok(Vec::new());
    }
    let mut envs = Vec::new();
    for step in plan["promotion"]["flow"].as_array().into_iter().flatten() {
        let env = str_of(step, "environment");
        let dir = out.join("envs").join(env);
        if env.is_empty() || !dir.join("request.json").exists() {
            continue;
        }
        let promoted = optional_json(&dir.join("promote.json"))?.map(|p| p["totals"].clone());
        envs.push(json!({
            "environment": env,
            "gate": step["gate"].as_str().unwrap_or_default(),
            "namespace": read_json(&dir.join("plan.json"))?["namespace"],
            "request": read_json(&dir.join("request.json"))?,
            "promoted": promoted.unwrap_or(Value::Null),
        }));
    }
    Ok(envs)
}

/// Built and skipped services, from the build steps' results (sorted by name).
fn builds(out: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let dir = out.join("builds");
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    let (mut built, mut skipped) = (Vec::new(), Vec::new());
    for f in files {
        let name = f
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if read_json(&f)?["skipped"].as_bool() == Some(true) {
            skipped.push(name);
        } else {
            built.push(name);
        }
    }
    Ok((built, skipped))
}

/// The components monobuild marked affected, sorted.
fn affected(out: &Path) -> Result<Vec<String>> {
    let schedule = read_json(&out.join("monobuild.json"))?;
    let mut names: Vec<String> = schedule["components"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, c)| c["affected"].as_bool() == Some(true))
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    Ok(names)
}

/// Assemble the record of the run in `o.out_dir`.
pub fn summarise(o: &SummaryOptions) -> Result<Summary> {
    let out = o.out_dir.as_path();
    let run_plan = read_json(&out.join("plan.json"))?;
    let envs = environments(out, &run_plan)?;
    // The directory of the environment applied last.
    let applied = match envs
        .iter()
        .rev()
        .find(|e| e["gate"].as_str() != Some("manual"))
    {
        Some(e) => out.join("envs").join(str_of(e, "environment")),
        None if envs.is_empty() => out.to_path_buf(),
        None => {
            return Err(Error::Input {
                path: out.join("plan.json").display().to_string(),
                message: "no environment was applied (every gate is manual): nothing to summarise"
                    .into(),
            });
        }
    };
    // A branch run applies its own environment: its plan is the run's.
    let plan = if applied == out {
        run_plan
    } else {
        read_json(&applied.join("plan.json"))?
    };
    let notify = read_json(&applied.join("notify.json"))?;
    let request = read_json(&applied.join("request.json"))?;
    let smoke = read_json(&applied.join("smoke.json"))?;
    let (built, skipped) = builds(out)?;
    let unchanged = request["unchanged"].as_bool().unwrap_or(false);
    let cluster_commit = str_of(&notify, "commit").to_string();
    let namespace = str_of(&plan, "namespace").to_string();
    let url = plan["url"].as_str().map(str::to_string);

    let mut record = json!({
        "schema_version": 1,
        "branch": plan["branch"],
        "commit": plan["revision"],
        "environment": plan["environment"],
        "namespace": namespace,
        "tag": plan["tag"],
        "affected": affected(out)?,
        "built": built,
        "skipped": skipped,
        "libraries": plan["libraries"],
        "deployed": {"unchanged": unchanged, "cluster_commit": cluster_commit, "images": notify["images"]},
        "urls": url.iter().collect::<Vec<_>>(),
        "smoke": smoke["checks"].as_array().into_iter().flatten()
            .map(|c| json!({"service": c["service"], "url": c["url"], "status": c["status"], "attempts": c["attempts"]}))
            .collect::<Vec<_>>(),
        "out_dir": out.display().to_string(),
        "seconds": (o.seconds * 10.0).round() / 10.0,
    });
    if !envs.is_empty() {
        let mut candidates: Vec<Value> = Vec::new();
        let mut bytes = 0u64;
        for e in &envs {
            let Some(p) = optional_json(
                &out.join("envs")
                    .join(str_of(e, "environment"))
                    .join("promote.json"),
            )?
            else {
                continue;
            };
            bytes += p["totals"]["bytes_copied"].as_u64().unwrap_or(0);
            for i in p["images"].as_array().into_iter().flatten() {
                let c =
                    json!({"source": i["source"], "target": i["target"], "digest": i["digest"]});
                if !candidates.contains(&c) {
                    candidates.push(c);
                }
            }
        }
        candidates.sort_by_key(Value::to_string);
        record["promotion"] = json!({
            "environments": envs,
            "release_candidates": candidates,
            "bytes_copied": bytes,
        });
    }

    let words = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(" ")
        }
    };
    let mut lines = vec![format!("pipeline: done in {:.1}s", o.seconds)];
    lines.push(format!("  built:    {}", words(&built)));
    lines.push(format!(
        "  skipped:  {} (image for this content key already in the registry)",
        words(&skipped)
    ));
    lines.push(if unchanged {
        format!(
            "  deployed: {namespace} unchanged (cluster main {})",
            short(&cluster_commit)
        )
    } else {
        format!(
            "  deployed: {namespace} at cluster main {}",
            short(&cluster_commit)
        )
    });
    if let Some(url) = &url {
        lines.push(format!("  url:      {url} (ingress host)"));
    }
    if let Some(t) = &o.try_with {
        for call in smoke["by_name"].as_array().into_iter().flatten() {
            if call["kind"].as_str() == Some("ingress") {
                lines.push(format!(
                    "  try:      DOCKER_HOST={} {} run --rm --network {namespace}_default {} wget -qO- {}",
                    t.docker_host,
                    t.docker,
                    t.image,
                    str_of(call, "url")
                ));
            }
        }
    }
    for e in &envs {
        let env = str_of(e, "environment");
        let r = &e["request"];
        let request = if r["unchanged"].as_bool() == Some(true) {
            "cluster repo unchanged".to_string()
        } else if let Some(pr) = r["pull_request"]["url"].as_str() {
            format!("pull request {pr} open")
        } else {
            format!("{} @ {}", str_of(r, "branch"), short(str_of(r, "commit")))
        };
        lines.push(format!(
            "  {env}:{} gate {}, {} release candidates ({} bytes copied), {request}",
            " ".repeat(8usize.saturating_sub(env.len())),
            str_of(e, "gate"),
            e["promoted"]["images"],
            e["promoted"]["bytes_copied"],
        ));
    }
    lines.push(format!(
        "  outputs:  {} (summary.json, plan.json, workflow.yaml, deploy/compose.yaml, manifests/)",
        out.display()
    ));
    let mut text = lines.join("\n");
    text.push('\n');
    Ok(Summary { json: record, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, v: &Value) {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, v.to_string()).expect("write");
    }

    fn run_dir(dir: &Path) {
        write(
            dir,
            "monobuild.json",
            &json!({"components": {"services/web": {"affected": true}, "libs/page": {"affected": true}, "services/api": {"affected": false}}}),
        );
        write(dir, "builds/web.json", &json!({"skipped": false}));
        write(dir, "builds/api.json", &json!({"skipped": true}));
    }

    fn env_files(dir: &Path, ns: &str, unchanged: bool) {
        write(
            dir,
            "plan.json",
            &json!({"branch": "feature-x", "revision": "af04", "environment": "dev", "namespace": ns,
                    "tag": "feature-x", "libraries": ["libs/page"], "url": "http://x.localhost:8088/"}),
        );
        write(
            dir,
            "notify.json",
            &json!({"commit": "9822aaaabbbbcccc", "images": {"web": "r/web@sha256:1"}}),
        );
        write(dir, "request.json", &json!({"unchanged": unchanged}));
        write(
            dir,
            "smoke.json",
            &json!({"checks": [{"service": "web", "url": "http://x.localhost:8088/", "status": 200, "attempts": 1, "body": "ok"}],
                    "by_name": [{"service": "web", "kind": "ingress", "url": "http://web:8080/"}]}),
        );
    }

    #[test]
    fn a_branch_run_is_summarised_from_its_step_outputs() {
        let tmp = tempfile::tempdir().expect("tmp");
        run_dir(tmp.path());
        env_files(tmp.path(), "shop-feature-x", false);
        let s = summarise(&SummaryOptions {
            out_dir: tmp.path().to_path_buf(),
            seconds: 14.83,
            try_with: Some(TryWith {
                docker_host: "unix:///s".into(),
                docker: "docker".into(),
                image: "bb".into(),
            }),
        })
        .expect("summary");
        assert_eq!(s.json["built"], json!(["web"]));
        assert_eq!(s.json["skipped"], json!(["api"]));
        assert_eq!(s.json["affected"], json!(["libs/page", "services/web"]));
        assert_eq!(s.json["deployed"]["cluster_commit"], "9822aaaabbbbcccc");
        assert_eq!(s.json["urls"], json!(["http://x.localhost:8088/"]));
        assert_eq!(
            s.json["smoke"],
            json!([{"service": "web", "url": "http://x.localhost:8088/", "status": 200, "attempts": 1}])
        );
        assert_eq!(s.json["seconds"], 14.8);
        assert!(s.json.get("promotion").is_none());
        assert!(
            s.text.starts_with("pipeline: done in 14.8s\n"),
            "{}",
            s.text
        );
        assert!(
            s.text
                .contains("  deployed: shop-feature-x at cluster main 9822aaaabbbb\n")
        );
        assert!(
            s.text
                .contains("  url:      http://x.localhost:8088/ (ingress host)\n")
        );
        assert!(s.text.contains(
            "  try:      DOCKER_HOST=unix:///s docker run --rm --network shop-feature-x_default bb wget -qO- http://web:8080/\n"
        ));
    }

    #[test]
    fn the_main_flow_describes_the_last_applied_environment_and_its_promotion() {
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path();
        run_dir(out);
        write(
            out,
            "plan.json",
            &json!({"promotion": {"main_flow": true, "flow": [
                {"environment": "staging", "gate": "auto"}, {"environment": "prod", "gate": "manual"}]}}),
        );
        env_files(&out.join("envs/staging"), "shop-staging", true);
        write(out, "envs/prod/plan.json", &json!({"namespace": "shop"}));
        write(
            out,
            "envs/prod/request.json",
            &json!({"branch": "deploy/shop/1", "commit": "a53534a8338b99"}),
        );
        let promote = json!({"totals": {"images": 1, "bytes_copied": 7},
            "images": [{"source": "a/web:main@sha256:1", "target": "rc/web:main@sha256:1", "digest": "sha256:1", "blobs": 3}]});
        write(out, "envs/staging/promote.json", &promote);
        write(out, "envs/prod/promote.json", &promote);
        let s = summarise(&SummaryOptions {
            out_dir: out.to_path_buf(),
            seconds: 9.9,
            try_with: None,
        })
        .expect("summary");
        assert_eq!(s.json["namespace"], "shop-staging");
        assert_eq!(s.json["deployed"]["unchanged"], true);
        let p = &s.json["promotion"];
        assert_eq!(p["environments"].as_array().map(Vec::len), Some(2));
        assert_eq!(
            p["environments"][1],
            json!({"environment": "prod", "gate": "manual", "namespace": "shop",
                   "request": {"branch": "deploy/shop/1", "commit": "a53534a8338b99"},
                   "promoted": {"images": 1, "bytes_copied": 7}})
        );
        assert_eq!(
            p["release_candidates"],
            json!([{"source": "a/web:main@sha256:1", "target": "rc/web:main@sha256:1", "digest": "sha256:1"}])
        );
        assert_eq!(p["bytes_copied"], 14);
        assert!(s.text.contains(
            "  staging:  gate auto, 1 release candidates (7 bytes copied), cluster repo unchanged\n"
        ));
        assert!(s.text.contains(
            "  prod:     gate manual, 1 release candidates (7 bytes copied), deploy/shop/1 @ a53534a8338b\n"
        ));
        assert!(!s.text.contains("try:"));
    }

    #[test]
    fn a_missing_step_output_is_named() {
        let tmp = tempfile::tempdir().expect("tmp");
        run_dir(tmp.path());
        write(tmp.path(), "request.json", &json!({}));
        let e = summarise(&SummaryOptions {
            out_dir: tmp.path().to_path_buf(),
            seconds: 1.0,
            try_with: None,
        })
        .expect_err("no plan.json");
        assert!(e.to_string().contains("plan.json"), "{e}");
    }
}
