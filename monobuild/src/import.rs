//! `monobuild import`: a plain directory (no git) recorded as a branch of a repository, so the diff has a history to work on.
//!
//! The repository (bare, created when missing) gets a `main` holding one
//! empty commit, and the branch gets one commit per import whose tree is the
//! directory as `git add -A` sees it (`.gitignore` honoured, `.git` skipped).
//! Importing an unchanged directory again adds nothing. Refs move by
//! compare-and-swap, so two imports at once never lose a commit.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::git::Git;

/// What `monobuild import` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// Always 1.
    pub schema_version: u32,
    /// The repository.
    pub repo: String,
    /// The branch.
    pub branch: String,
    /// The branch's commit after the import.
    pub commit: String,
    /// Whether the directory was already the branch's tree (nothing committed).
    pub unchanged: bool,
}

const NO_COMMIT: &str = "0000000000000000000000000000000000000000";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).trim().to_string()
}

/// Record `dir` as `branch` of the repository `repo`.
pub fn import(dir: &Path, repo: &Path, branch: &str, base: &str) -> Result<Imported> {
    let dir = dir.canonicalize().map_err(|e| Error::Read {
        path: dir.display().to_string(),
        source: e,
    })?;
    if !repo.join("HEAD").exists() && !repo.join(".git").exists() {
        std::fs::create_dir_all(repo).map_err(|e| Error::Write {
            path: repo.display().to_string(),
            source: e,
        })?;
        Git::new(repo).run_env(&["init", "-q", "--bare", "-b", base], &[])?;
    }
    let git = Git::new(repo);
    let who: [(&str, &OsStr); 4] = [
        ("GIT_AUTHOR_NAME", OsStr::new("monobuild import")),
        ("GIT_AUTHOR_EMAIL", OsStr::new("import@localhost")),
        ("GIT_COMMITTER_NAME", OsStr::new("monobuild import")),
        ("GIT_COMMITTER_EMAIL", OsStr::new("import@localhost")),
    ];
    let base_ref = format!("refs/heads/{base}");
    let branch_ref = format!("refs/heads/{branch}");
    let verify = |r: &str| -> Result<Option<String>> {
        let (ok, out, _) = git.output(
            ["rev-parse", "-q", "--verify", &format!("{r}^{{commit}}")],
            &[],
        )?;
        Ok(ok.then(|| text(&out)))
    };
    // The base branch: one empty commit (created once; a concurrent import may win the race).
    if verify(&base_ref)?.is_none() {
        let empty = text(&git.run_env(&["hash-object", "-t", "tree", "-w", "--stdin"], &[])?);
        let message = format!("Empty {base} branch (import of {})", dir.display());
        let commit = text(&git.run_env(&["commit-tree", &empty, "-m", &message], &who)?);
        let _ = git.output(["update-ref", &base_ref, &commit, NO_COMMIT], &[])?;
    }
    let branch_head = verify(&branch_ref)?;
    let exists = branch_head.is_some();
    let parent = match branch_head {
        Some(c) => c,
        None => verify(&base_ref)?.ok_or_else(|| Error::Git {
            command: format!("rev-parse {base_ref}"),
            message: "the base branch vanished during the import".into(),
        })?,
    };
    // The directory's tree, through an index of our own: the repository's files are not touched.
    let index = tempfile::NamedTempFile::new().map_err(|e| Error::Write {
        path: std::env::temp_dir().display().to_string(),
        source: e,
    })?;
    let index_path: PathBuf = index.path().to_path_buf();
    let _ = std::fs::remove_file(&index_path); // git wants a missing or valid index
    let work: [(&str, &OsStr); 2] = [
        ("GIT_INDEX_FILE", index_path.as_os_str()),
        ("GIT_WORK_TREE", dir.as_os_str()),
    ];
    git.run_env(&["add", "-A"], &work)?;
    let tree = text(&git.run_env(&["write-tree"], &work)?);
    let parent_tree = text(&git.run_env(&["rev-parse", &format!("{parent}^{{tree}}")], &[])?);
    if tree == parent_tree && exists {
        return Ok(Imported {
            schema_version: 1,
            repo: repo.display().to_string(),
            branch: branch.to_string(),
            commit: parent,
            unchanged: true,
        });
    }
    let commit = if tree == parent_tree {
        parent.clone() // a new branch with the base's tree: point it there
    } else {
        let message = format!("Import {}", dir.display());
        text(&git.run_env(&["commit-tree", &tree, "-p", &parent, "-m", &message], &who)?)
    };
    let old = if exists { parent.as_str() } else { NO_COMMIT };
    git.run_env(&["update-ref", &branch_ref, &commit, old], &[])?;
    Ok(Imported {
        schema_version: 1,
        repo: repo.display().to_string(),
        branch: branch.to_string(),
        commit,
        unchanged: false,
    })
}
