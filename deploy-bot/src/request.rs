//! `deploy-bot request`: put a namespace's manifests into the cluster repo on a branch (or the base branch) and open or reuse the pull request.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::{Git, Identity, redact_url, remote_branch_commit, remote_default_branch};
use crate::github::{GitHub, PullRequest};
use crate::manifests::Files;
use crate::names::{check_namespace, check_relative_path, check_sha};

/// Which forge to open pull requests on.
#[derive(Debug, Clone)]
pub enum Forge {
    /// Only push the branch.
    None,
    /// GitHub (or GitHub Enterprise) through its REST API.
    GitHub(GitHub),
}

/// What to request.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// The cluster repo (any git URL).
    pub repo: String,
    /// The namespace (directory) to replace.
    pub namespace: String,
    /// Source sha (or version) recorded in the branch name and commit message.
    pub sha: Option<String>,
    /// `key=value` labels recorded in the commit message.
    pub labels: Vec<(String, String)>,
    /// Base branch; `None` = the remote's default branch.
    pub base: Option<String>,
    /// Commit straight to the base branch.
    pub direct: bool,
    /// The forge.
    pub forge: Forge,
    /// The commit identity.
    pub identity: Identity,
}

/// The JSON `request` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum RequestOutcome {
    /// Something was pushed.
    Pushed {
        /// Output format version.
        schema_version: u32,
        /// The branch pushed (the base branch for `--direct`).
        branch: String,
        /// The commit on it.
        commit: String,
        /// The pull request, when one was opened or reused.
        pull_request: Option<PullRequest>,
    },
    /// The directory would not change: nothing pushed or opened.
    Unchanged {
        /// Output format version.
        schema_version: u32,
        /// Always true.
        unchanged: bool,
    },
}

/// Run `request`.
pub async fn request(opts: &RequestOptions, files: &Files) -> Result<RequestOutcome> {
    check_namespace(&opts.namespace)?;
    for p in files.keys() {
        check_relative_path(p)?;
    }
    let sha = match &opts.sha {
        Some(s) => {
            check_sha(s)?;
            s.clone()
        }
        None => content_id(files),
    };
    let base = match &opts.base {
        Some(b) => b.clone(),
        None => remote_default_branch(&opts.repo)?,
    };
    let branch = if opts.direct {
        base.clone()
    } else {
        format!("deploy/{}/{sha}", opts.namespace)
    };
    let tmp = tempfile::Builder::new()
        .prefix("deploy-bot-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    // A direct commit can race with other pushers: rebuild on the new head and retry.
    let mut attempt = 0;
    let commit = loop {
        attempt += 1;
        let work = tmp.path().join(format!("repo{attempt}"));
        match prepare_commit(opts, files, &base, &sha, &work)? {
            None => {
                return Ok(RequestOutcome::Unchanged {
                    schema_version: 1,
                    unchanged: true,
                });
            }
            Some(commit) => {
                let git = Git::new(&work);
                if opts.direct {
                    let target = format!("HEAD:refs/heads/{base}");
                    match git.run(&["push", "--quiet", "origin", &target]) {
                        Ok(_) => break commit,
                        Err(e) if attempt < 3 => {
                            tracing::warn!("push to {base} rejected, retrying: {e}");
                        }
                        Err(e) => return Err(e),
                    }
                } else {
                    // Same content already on the branch (same parent, same tree): keep it.
                    let existing = remote_branch_commit(&opts.repo, &branch)?;
                    if let Some(old) = existing {
                        git.run(&[
                            "fetch",
                            "--quiet",
                            "origin",
                            &format!("refs/heads/{branch}"),
                        ])?;
                        let same = git.run(&["rev-parse", "FETCH_HEAD^{tree}"])?
                            == git.run(&["rev-parse", "HEAD^{tree}"])?
                            && git.run(&["rev-parse", "FETCH_HEAD^"]).ok()
                                == git.run(&["rev-parse", "HEAD^"]).ok();
                        if same {
                            tracing::info!("branch {branch} already holds this content");
                            break old;
                        }
                    }
                    git.run(&[
                        "push",
                        "--quiet",
                        "--force",
                        "origin",
                        &format!("HEAD:refs/heads/{branch}"),
                    ])?;
                    break commit;
                }
            }
        }
    };
    let pull_request = match (&opts.forge, opts.direct) {
        (Forge::GitHub(gh), false) => {
            let title = format!("Deploy {} at {sha}", opts.namespace);
            let mut body = format!(
                "Deploys `{sha}` to namespace `{}` (directory `{}/`).\n\nOpened by deploy-bot.",
                opts.namespace, opts.namespace
            );
            for (k, v) in &opts.labels {
                let _ = write!(body, "\n- {k}: {v}");
            }
            Some(gh.ensure_pull(&title, &branch, &base, &body).await?)
        }
        _ => None,
    };
    Ok(RequestOutcome::Pushed {
        schema_version: 1,
        branch,
        commit,
        pull_request,
    })
}

/// Clone the base branch into `work`, replace `NS/` with `files`, and commit.
/// `None` when the directory does not change.
fn prepare_commit(
    opts: &RequestOptions,
    files: &Files,
    base: &str,
    sha: &str,
    work: &Path,
) -> Result<Option<String>> {
    let parent = work.parent().expect("work dir has a parent");
    let git = Git::new(parent).with_identity(opts.identity.clone());
    git.run(&[
        "clone",
        "--quiet",
        "--no-tags",
        "--single-branch",
        "--branch",
        base,
        &opts.repo,
        &work.to_string_lossy(),
    ])
    .map_err(|e| match e {
        Error::Git { message, .. } if message.contains("not found in upstream") => {
            Error::NotFound(format!(
                "branch {base:?} does not exist in {}",
                redact_url(&opts.repo)
            ))
        }
        other => other,
    })?;
    let git = Git::new(work).with_identity(opts.identity.clone());
    let ns_dir = work.join(&opts.namespace);
    if ns_dir.exists() {
        std::fs::remove_dir_all(&ns_dir).map_err(|e| Error::io(&ns_dir, e))?;
    }
    for (rel, bytes) in files {
        let p = ns_dir.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
    }
    git.run(&["add", "-A", "--", &opts.namespace])?;
    if git.status(&["diff", "--cached", "--quiet", "--", &opts.namespace])? {
        return Ok(None);
    }
    let mut msg = format!("deploy {}: {sha}\n\n", opts.namespace);
    let _ = write!(
        msg,
        "Deploy-Namespace: {}
Deploy-Sha: {sha}
",
        opts.namespace
    );
    for (k, v) in &opts.labels {
        let _ = writeln!(msg, "Deploy-Label: {k}={v}");
    }
    git.output(
        &["commit", "--quiet", "--no-verify", "-F", "-"],
        Some(msg.as_bytes()),
    )
    .and_then(|(ok, _, err)| {
        if ok {
            Ok(())
        } else {
            Err(Error::Git {
                args: "commit".into(),
                message: String::from_utf8_lossy(&err).trim().to_string(),
            })
        }
    })?;
    Ok(Some(git.run(&["rev-parse", "HEAD"])?))
}

/// A short content id for the branch name when no `--sha` is given.
fn content_id(files: &Files) -> String {
    let mut all = Vec::new();
    for (p, b) in files {
        all.extend_from_slice(p.to_string_lossy().as_bytes());
        all.push(0);
        all.extend_from_slice(&(b.len() as u64).to_be_bytes());
        all.extend_from_slice(b);
    }
    let d = microplatform_common::io::sha256_digest(&all);
    d.trim_start_matches("sha256:")[..12].to_string()
}
