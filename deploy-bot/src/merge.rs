//! `deploy-bot merge`: merge a deploy branch of the cluster repo into its base branch and delete the branch, as a
//! forge's merge button does. Used where there is no forge (`--forge none`): the branch `request` pushed is merged
//! by a fast-forward when the base has not moved, else by a merge commit; a conflict merges nothing.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::{Git, Identity, check_url_credentials, redact_url};

/// What to merge.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The cluster repo (any git URL).
    pub repo: String,
    /// The branch to merge (a deploy branch), deleted once merged.
    pub branch: String,
    /// The branch it is merged into.
    pub base: String,
    /// The identity of a merge commit.
    pub identity: Identity,
}

/// What `deploy-bot merge` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MergeResult {
    /// 1.
    pub schema_version: u32,
    /// The base branch.
    pub base: String,
    /// The merged (and deleted) branch.
    pub branch: String,
    /// The commit the base branch now points at.
    pub commit: String,
    /// `fast-forward` or `merge commit`.
    pub how: &'static str,
}

/// Merge `branch` into `base` in the remote repo, push the base and delete the branch (one atomic push: either
/// both happen or neither).
pub fn merge(o: &MergeOptions) -> Result<MergeResult> {
    check_url_credentials(&o.repo)?;
    let tmp = tempfile::Builder::new()
        .prefix("deploy-bot-merge-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let git = Git::new(tmp.path()).with_identity(o.identity.clone());
    git.run(&["init", "--quiet"])?;
    for (name, local) in [
        (&o.base, "refs/remotes/c/base"),
        (&o.branch, "refs/remotes/c/branch"),
    ] {
        git.run(&[
            "fetch",
            "--quiet",
            "--no-tags",
            &o.repo,
            &format!("+refs/heads/{name}:{local}"),
        ])
        .map_err(|e| match e {
            Error::Git { message, .. } if message.contains("couldn't find remote ref") => {
                Error::NotFound(format!(
                    "branch {name:?} does not exist in {}",
                    redact_url(&o.repo)
                ))
            }
            other => other,
        })?;
    }
    let (commit, how) = if git.status(&[
        "merge-base",
        "--is-ancestor",
        "refs/remotes/c/base",
        "refs/remotes/c/branch",
    ])? {
        (
            git.run(&["rev-parse", "refs/remotes/c/branch"])?,
            "fast-forward",
        )
    } else {
        git.run(&["checkout", "--quiet", "-b", "merge", "refs/remotes/c/base"])?;
        let message = format!("Merge branch '{}' into {}", o.branch, o.base);
        let (ok, _, err) = git.output(
            &[
                "merge",
                "--quiet",
                "--no-edit",
                "-m",
                &message,
                "refs/remotes/c/branch",
            ],
            None,
        )?;
        if !ok {
            let conflicts = git
                .run(&["diff", "--name-only", "--diff-filter=U"])
                .unwrap_or_default();
            let why = if conflicts.is_empty() {
                String::from_utf8_lossy(&err).trim().replace('\n', "; ")
            } else {
                format!(
                    "conflict in {}",
                    conflicts.lines().collect::<Vec<_>>().join(", ")
                )
            };
            return Err(Error::Git {
                args: format!("merge {} into {}", o.branch, o.base),
                message: format!("{why}; nothing merged, the branch is left as it was"),
            });
        }
        (git.run(&["rev-parse", "HEAD"])?, "merge commit")
    };
    git.run(&[
        "push",
        "--quiet",
        "--atomic",
        &o.repo,
        &format!("{commit}:refs/heads/{}", o.base),
        &format!(":refs/heads/{}", o.branch),
    ])?;
    Ok(MergeResult {
        schema_version: 1,
        base: o.base.clone(),
        branch: o.branch.clone(),
        commit,
        how,
    })
}
