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
    /// Remove the namespace directory (teardown) instead of writing files.
    pub delete: bool,
    /// The forge.
    pub forge: Forge,
    /// The commit identity.
    pub identity: Identity,
    /// The release candidate the manifests deploy (`--release-candidate`): linked from the
    /// pull request and recorded in the commit message.
    pub release_candidate: Option<ReleaseCandidate>,
}

/// A release candidate: images promoted by digest into a release-candidate registry
/// (`digest-resolve --promote-report`'s JSON).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct ReleaseCandidate {
    /// The release-candidate registry (`REGISTRY[/PREFIX]`).
    pub destination: String,
    /// The promoted images.
    pub images: Vec<CandidateImage>,
}

/// One promoted image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CandidateImage {
    /// Where it was promoted from (`REG/REPO[:TAG]@sha256:…`).
    pub source: String,
    /// Its release-candidate reference (`RC/REPO[:TAG]@sha256:…`).
    pub target: String,
    /// The manifest digest (the same at source and target).
    pub digest: String,
}

impl ReleaseCandidate {
    /// Read a promotion report (`digest-resolve --promote-report FILE`).
    pub fn load(path: &Path) -> Result<ReleaseCandidate> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let rc: ReleaseCandidate = serde_json::from_str(&text).map_err(|e| Error::Json {
            path: format!("{}:{}:{}", path.display(), e.line(), e.column()),
            what: "not a digest-resolve promotion report".into(),
            source: e,
        })?;
        for i in &rc.images {
            if !i.digest.starts_with("sha256:") || !i.target.ends_with(&format!("@{}", i.digest)) {
                return Err(Error::Input {
                    path: path.display().to_string(),
                    message: format!(
                        "images[].target `{}` is not pinned by its digest `{}`",
                        i.target, i.digest
                    ),
                });
            }
        }
        Ok(rc)
    }

    /// The registry API URL of an image's manifest (`http` for loopback registries).
    pub fn manifest_url(target: &str, digest: &str) -> String {
        let name = target.split('@').next().unwrap_or(target);
        let (host, path) = name.split_once('/').unwrap_or((name, ""));
        // Strip the tag: a `:` after the last `/`.
        let repo = match path.rsplit_once('/') {
            Some((dir, last)) => format!("{dir}/{}", last.split(':').next().unwrap_or(last)),
            None => path.split(':').next().unwrap_or(path).to_string(),
        };
        let h = host.split(':').next().unwrap_or(host);
        let scheme = if h == "localhost" || h.starts_with("127.") || h == "[::1]" {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{repo}/manifests/{digest}")
    }

    /// The pull request's section: every image, pinned, linked to its manifest.
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "\n\n### Release candidate\n\nImages promoted by digest into `{}`:\n",
            self.destination
        );
        for i in &self.images {
            let _ = write!(
                s,
                "\n- [`{}`]({}) (from `{}`)",
                i.target,
                Self::manifest_url(&i.target, &i.digest),
                i.source
            );
        }
        s
    }
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

/// How often a push that lost a race (non-fast-forward) is rebuilt on the new head and retried.
pub const PUSH_ATTEMPTS: u32 = 10;

/// Run `request`.
pub async fn request(opts: &RequestOptions, files: &Files) -> Result<RequestOutcome> {
    check_namespace(&opts.namespace)?;
    crate::git::check_url_credentials(&opts.repo)?;
    for p in files.keys() {
        check_relative_path(p)?;
    }
    if opts.delete && !files.is_empty() {
        return Err(Error::Usage("--delete takes no manifests".into()));
    }
    let sha = match &opts.sha {
        Some(s) => {
            check_sha(s)?;
            s.clone()
        }
        None if opts.delete => "delete".to_string(),
        None => content_id(files),
    };
    let base = match &opts.base {
        Some(b) => b.clone(),
        None => remote_default_branch(&opts.repo)?,
    };
    let branch = if opts.direct {
        base.clone()
    } else if opts.delete && opts.sha.is_some() {
        format!("deploy/{}/delete-{sha}", opts.namespace)
    } else {
        format!("deploy/{}/{sha}", opts.namespace)
    };
    let tmp = tempfile::Builder::new()
        .prefix("deploy-bot-")
        .tempdir()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let work = tmp.path().join("repo");
    clone_base(opts, &base, &work)?;
    let git = Git::new(&work).with_identity(opts.identity.clone());
    let mut attempt = 0;
    let (commit, created) = loop {
        attempt += 1;
        let Some(commit) = commit_change(opts, files, &sha, &work)? else {
            return Ok(RequestOutcome::Unchanged {
                schema_version: 1,
                unchanged: true,
            });
        };
        if opts.direct {
            let target = format!("HEAD:refs/heads/{base}");
            match git.output(&["push", "--quiet", "--porcelain", "origin", &target], None)? {
                (true, _, _) => break (commit, None),
                (false, out, err) => {
                    let text = format!(
                        "{} {}",
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&err)
                    );
                    // `[rejected]` is a lost race; `[remote rejected]` (a hook, permissions) is not.
                    let lost_race = [
                        "[rejected]",
                        "non-fast-forward",
                        "fetch first",
                        "cannot lock ref",
                        "failed to update ref",
                    ]
                    .iter()
                    .any(|m| text.contains(m));
                    if !lost_race || attempt >= PUSH_ATTEMPTS {
                        return Err(Error::Git {
                            args: format!("push origin {target}"),
                            message: text.split_whitespace().collect::<Vec<_>>().join(" "),
                        });
                    }
                    // Another pusher moved the base: rebuild our one-directory change on its new head.
                    tracing::info!(
                        "push to {base} lost a race (attempt {attempt}/{PUSH_ATTEMPTS}); rebasing {}/ on the new head",
                        opts.namespace
                    );
                    backoff(attempt).await;
                    git.run(&[
                        "fetch",
                        "--quiet",
                        "origin",
                        &format!("+refs/heads/{base}:refs/remotes/origin/{base}"),
                    ])?;
                    git.run(&[
                        "reset",
                        "--quiet",
                        "--hard",
                        &format!("refs/remotes/origin/{base}"),
                    ])?;
                }
            }
        } else {
            // Same content already on the branch (same parent, same tree): keep it.
            let existing = remote_branch_commit(&opts.repo, &branch)?;
            if let Some(old) = &existing {
                git.run(&[
                    "fetch",
                    "--quiet",
                    "origin",
                    &format!("+refs/heads/{branch}:refs/deploy-bot/old"),
                ])?;
                let same = git.run(&["rev-parse", "refs/deploy-bot/old^{tree}"])?
                    == git.run(&["rev-parse", "HEAD^{tree}"])?
                    && git.run(&["rev-parse", "refs/deploy-bot/old^"]).ok()
                        == git.run(&["rev-parse", "HEAD^"]).ok();
                if same {
                    tracing::info!("branch {branch} already holds this content");
                    break (
                        old.clone(),
                        Some(Pushed {
                            previous: Some(old.clone()),
                            ours: false,
                        }),
                    );
                }
            }
            git.run(&[
                "push",
                "--quiet",
                "--force",
                "origin",
                &format!("HEAD:refs/heads/{branch}"),
            ])?;
            break (
                commit,
                Some(Pushed {
                    previous: existing,
                    ours: true,
                }),
            );
        }
    };
    let pull_request = match (&opts.forge, opts.direct) {
        (Forge::GitHub(gh), false) => {
            let (title, mut body) = if opts.delete {
                (
                    format!("Tear down {}", opts.namespace),
                    format!(
                        "Removes directory `{}/`: the agent tears namespace `{}` down once this is merged.\n\nOpened by deploy-bot.",
                        opts.namespace, opts.namespace
                    ),
                )
            } else {
                (
                    format!("Deploy {} at {sha}", opts.namespace),
                    format!(
                        "Deploys `{sha}` to namespace `{}` (directory `{}/`).\n\nOpened by deploy-bot.",
                        opts.namespace, opts.namespace
                    ),
                )
            };
            for (k, v) in &opts.labels {
                let _ = write!(body, "\n- {k}: {v}");
            }
            if let Some(rc) = &opts.release_candidate {
                body.push_str(&rc.markdown());
            }
            match gh.ensure_pull(&title, &branch, &base, &body).await {
                Ok(p) => Some(p),
                Err(e) => {
                    // Never leave a branch behind: undo our push (delete the branch we created, or put back what was there).
                    if let Some(Pushed {
                        previous,
                        ours: true,
                    }) = &created
                    {
                        let undo = match previous {
                            None => git.run(&[
                                "push",
                                "--quiet",
                                &format!("--force-with-lease=refs/heads/{branch}:{commit}"),
                                "origin",
                                &format!(":refs/heads/{branch}"),
                            ]),
                            Some(old) => git.run(&[
                                "push",
                                "--quiet",
                                &format!("--force-with-lease=refs/heads/{branch}:{commit}"),
                                "origin",
                                &format!("{old}:refs/heads/{branch}"),
                            ]),
                        };
                        match undo {
                            Ok(_) => {
                                tracing::info!("pull request failed; branch {branch} restored");
                            }
                            Err(u) => tracing::warn!(
                                "pull request failed, and branch {branch} could not be restored: {u}"
                            ),
                        }
                    }
                    return Err(e);
                }
            }
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

/// What `request` pushed to a deploy branch, so a failure after the push can undo it.
struct Pushed {
    previous: Option<String>,
    ours: bool,
}

/// Wait before retry `attempt`: 50 ms doubling up to 1.6 s, with jitter from the clock so racers spread out.
async fn backoff(attempt: u32) {
    let base = 50u64 << attempt.min(5);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos()),
    ) % base;
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// Clone the base branch into `work`.
fn clone_base(opts: &RequestOptions, base: &str, work: &Path) -> Result<()> {
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
    .map_err(|e| {
        // Told by git's exit code, not its message: `ls-remote --exit-code` exits 2 when no ref matches.
        let head = format!("refs/heads/{base}");
        match git.code(&["ls-remote", "--exit-code", "--heads", &opts.repo, &head]) {
            Ok(Some(2)) => Error::NotFound(format!(
                "branch {base:?} does not exist in {}",
                redact_url(&opts.repo)
            )),
            _ => e,
        }
    })?;
    Ok(())
}

/// On the checked-out head of `work`: replace `NS/` with `files` (or remove it for `--delete`), and commit.
/// `None` when the directory does not change.
fn commit_change(
    opts: &RequestOptions,
    files: &Files,
    sha: &str,
    work: &Path,
) -> Result<Option<String>> {
    let git = Git::new(work).with_identity(opts.identity.clone());
    let ns_dir = work.join(&opts.namespace);
    let tracked = !git
        .run(&["ls-tree", "--name-only", "HEAD", "--", &opts.namespace])?
        .is_empty();
    if opts.delete && !tracked {
        return Ok(None);
    }
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
    let mut msg = if opts.delete {
        format!(
            "teardown {ns}\n\nDeploy-Namespace: {ns}\nDeploy-Action: delete\n",
            ns = opts.namespace
        )
    } else {
        format!(
            "deploy {ns}: {sha}\n\nDeploy-Namespace: {ns}\nDeploy-Sha: {sha}\n",
            ns = opts.namespace
        )
    };
    for (k, v) in &opts.labels {
        let _ = writeln!(msg, "Deploy-Label: {k}={v}");
    }
    for i in opts.release_candidate.iter().flat_map(|rc| &rc.images) {
        let _ = writeln!(msg, "Release-Candidate: {}", i.target);
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
