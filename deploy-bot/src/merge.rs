//! `deploy-bot merge`: merge a deploy branch of the cluster repo into its base the way a forge's merge button does,
//! for set-ups without a forge (`request --forge none`): fast-forward when the base has not moved, else a merge
//! commit; then the base is pushed and the deploy branch deleted, in one atomic push.
//!
//! Everything happens in a temporary bare repository (no work tree): `merge-tree --write-tree` makes the merged tree,
//! so a conflict is found without checking anything out, and nothing is pushed.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::{Git, Identity, redact_url};

/// What to merge.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The cluster repo (any git URL).
    pub repo: String,
    /// The deploy branch.
    pub branch: String,
    /// The base branch.
    pub base: String,
    /// The identity of a merge commit.
    pub identity: Identity,
}

/// What `deploy-bot merge` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MergeOutcome {
    /// 1.
    pub schema_version: u32,
    /// The base branch.
    pub base: String,
    /// The deploy branch (deleted).
    pub branch: String,
    /// The base's new head.
    pub commit: String,
    /// `fast-forward`, `merge commit`, or `already merged` (the branch was in the base already).
    pub how: String,
}

/// Merge `branch` into `base` and delete `branch`.
pub fn merge(opts: &MergeOptions) -> Result<MergeOutcome> {
    crate::names::check_branch(&opts.branch)?;
    crate::names::check_branch(&opts.base)?;
    if opts.branch == opts.base {
        return Err(Error::Usage(format!(
            "--branch {:?} is the base branch",
            opts.branch
        )));
    }
    let url = redact_url(&opts.repo);
    for b in [&opts.base, &opts.branch] {
        if crate::git::remote_branch_commit(&opts.repo, b)?.is_none() {
            return Err(Error::NotFound(format!("{url}: no branch {b}")));
        }
    }
    let tmp = tempfile::Builder::new()
        .prefix("deploy-bot-merge-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let dir = tmp.path().join("repo.git");
    Git::new(tmp.path()).run(&["init", "-q", "--bare", &dir.to_string_lossy()])?;
    let git = Git::bare(&dir).with_identity(opts.identity.clone());
    git.run(&[
        "fetch",
        "-q",
        &opts.repo,
        &format!("+refs/heads/{}:refs/remotes/c/base", opts.base),
        &format!("+refs/heads/{}:refs/remotes/c/deploy", opts.branch),
    ])?;
    let base = git.run(&["rev-parse", "refs/remotes/c/base"])?;
    let deploy = git.run(&["rev-parse", "refs/remotes/c/deploy"])?;
    let ancestor = |a: &str, b: &str| git.status(&["merge-base", "--is-ancestor", a, b]);
    let (commit, how) = if ancestor(&deploy, &base)? {
        (base.clone(), "already merged")
    } else if ancestor(&base, &deploy)? {
        (deploy.clone(), "fast-forward")
    } else {
        let (ok, out, err) = git.output(
            &[
                "merge-tree",
                "--write-tree",
                "--name-only",
                "--no-messages",
                &base,
                &deploy,
            ],
            None,
        )?;
        let out = String::from_utf8_lossy(&out);
        let mut lines = out.lines();
        let tree = lines.next().unwrap_or_default().to_string();
        if !ok {
            let files: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
            if files.is_empty() || tree.len() < 40 {
                return Err(Error::Git {
                    args: "merge-tree --write-tree".into(),
                    message: String::from_utf8_lossy(&err).trim().to_string(),
                });
            }
            return Err(Error::Git {
                args: format!("merge {} into {}", opts.branch, opts.base),
                message: format!(
                    "merge conflict in {}; nothing pushed, the branch is kept",
                    files.join(", ")
                ),
            });
        }
        let message = format!("Merge branch '{}' into {}", opts.branch, opts.base);
        let c = git.run(&[
            "commit-tree",
            &tree,
            "-p",
            &base,
            "-p",
            &deploy,
            "-m",
            &message,
        ])?;
        (c, "merge commit")
    };
    git.run(&[
        "push",
        "-q",
        "--atomic",
        &opts.repo,
        &format!("{commit}:refs/heads/{}", opts.base),
        &format!(":refs/heads/{}", opts.branch),
    ])?;
    Ok(MergeOutcome {
        schema_version: 1,
        base: opts.base.clone(),
        branch: opts.branch.clone(),
        commit,
        how: how.to_string(),
    })
}
