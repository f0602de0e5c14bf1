//! Everything monobuild asks git: repository facts, base resolution, `-z` name-status diffs, manifest listing and directory tree ids (one `ls-tree` pass).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The kind of change git reports for a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// A new file.
    Added,
    /// Content or mode changed (also unmerged paths and stdin input).
    Modified,
    /// The file is gone.
    Deleted,
    /// Moved (possibly with edits); `old_path` says from where.
    Renamed,
    /// Copied from `old_path`.
    Copied,
    /// File type changed (file, symlink, submodule).
    TypeChanged,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Path relative to the monobuild root.
    pub path: String,
    /// What happened.
    pub status: Status,
    /// The source of a rename or copy.
    pub old_path: Option<String>,
}

/// Facts about the repository around the working directory.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    /// Path of the working directory from the top of the repository (`""` or ending in `/`).
    pub prefix: String,
    /// Whether the clone is shallow.
    pub shallow: bool,
    /// The repository's top-level directory.
    pub toplevel: PathBuf,
}

/// Runs git in one directory.
#[derive(Debug, Clone)]
pub struct Git {
    cwd: PathBuf,
}

fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("(no message)").to_string();
    first.strip_prefix("fatal: ").unwrap_or(&first).to_string()
}

fn split_z(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split(|b| *b == 0).filter(|s| !s.is_empty())
}

fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Git {
    /// git in `cwd`.
    pub fn new(cwd: impl Into<PathBuf>) -> Self {
        Self { cwd: cwd.into() }
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new("git");
        cmd.args(args)
            .current_dir(&self.cwd)
            .env("GIT_OPTIONAL_LOCKS", "0")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        cmd
    }

    /// Run git; Ok((success, stdout, stderr)).
    fn output<I, S>(&self, args: I, env: &[(&str, &OsStr)]) -> Result<(bool, Vec<u8>, Vec<u8>)>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        tracing::debug!(?cmd, "git");
        let out = cmd.output().map_err(Error::GitSpawn)?;
        Ok((out.status.success(), out.stdout, out.stderr))
    }

    /// Run git and fail with its first stderr line.
    fn run(&self, args: &[&str]) -> Result<Vec<u8>> {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Result<Vec<u8>> {
        let (ok, out, err) = self.output(args, env)?;
        if ok {
            Ok(out)
        } else {
            Err(Error::Git {
                command: args.iter().take(3).copied().collect::<Vec<_>>().join(" "),
                message: first_line(&err),
            })
        }
    }

    /// The repository around the working directory, or `None` outside one.
    pub fn repo_info(&self) -> Result<Option<RepoInfo>> {
        let (ok, out, err) = self.output(
            [
                "rev-parse",
                "--show-prefix",
                "--is-shallow-repository",
                "--show-toplevel",
            ],
            &[],
        )?;
        if !ok {
            let msg = first_line(&err);
            if msg.contains("not a git repository") {
                return Ok(None);
            }
            return Err(Error::Git {
                command: "rev-parse".into(),
                message: msg,
            });
        }
        let text = utf8(&out);
        let mut lines = text.lines();
        let prefix = lines.next().unwrap_or_default().to_string();
        let shallow = lines.next() == Some("true");
        let toplevel = PathBuf::from(lines.next().unwrap_or_default());
        Ok(Some(RepoInfo {
            prefix,
            shallow,
            toplevel,
        }))
    }

    /// Resolve a revision to a commit id, `None` when it does not exist.
    pub fn commit_of(&self, rev: &str) -> Result<Option<String>> {
        let spec = format!("{rev}^{{commit}}");
        let (ok, out, _) = self.output(
            [
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
            &[],
        )?;
        Ok(ok.then(|| utf8(&out).trim().to_string()))
    }

    /// Whether a commit has no parents.
    pub fn is_root_commit(&self, commit: &str) -> Result<bool> {
        let out = self.run(&["rev-list", "--parents", "-n", "1", commit])?;
        Ok(utf8(&out).split_whitespace().count() == 1)
    }

    /// `git merge-base a b`, `None` when the histories are unrelated.
    pub fn merge_base(&self, a: &str, b: &str) -> Result<Option<String>> {
        let (ok, out, err) = self.output(["merge-base", a, b], &[])?;
        if ok {
            return Ok(Some(utf8(&out).trim().to_string()));
        }
        if err.is_empty() {
            return Ok(None);
        }
        Err(Error::Git {
            command: "merge-base".into(),
            message: first_line(&err),
        })
    }

    /// The default base branch: the remote's HEAD, then `main`, then `master` (local, then origin).
    pub fn default_base(&self) -> Result<Option<String>> {
        let (ok, out, _) = self.output(
            [
                "symbolic-ref",
                "--quiet",
                "--short",
                "refs/remotes/origin/HEAD",
            ],
            &[],
        )?;
        if ok {
            let name = utf8(&out).trim().to_string();
            if !name.is_empty() {
                return Ok(Some(name));
            }
        }
        for candidate in ["main", "master", "origin/main", "origin/master"] {
            if self.commit_of(candidate)?.is_some() {
                return Ok(Some(candidate.to_string()));
            }
        }
        Ok(None)
    }

    /// Changes between `base` and `head` (or the working tree when `head` is `None`), relative to the
    /// working directory, paths outside it ignored. Renames are detected (`-M`).
    pub fn diff(&self, base: &str, head: Option<&str>) -> Result<Vec<Change>> {
        let mut args = vec![
            "-c",
            "core.quotePath=false",
            "diff",
            "-z",
            "-M",
            "--name-status",
            "--relative",
            "--no-ext-diff",
            "--no-textconv",
            "--no-color",
            base,
        ];
        if let Some(h) = head {
            args.push(h);
        }
        args.push("--");
        let out = self.run(&args)?;
        parse_name_status(&out)
    }

    /// Untracked, not ignored files below the working directory.
    pub fn untracked(&self) -> Result<Vec<String>> {
        let out = self.run(&["ls-files", "-z", "--others", "--exclude-standard"])?;
        Ok(split_z(&out).map(utf8).collect())
    }

    /// Files below the working directory matching a glob pathspec (tracked; plus untracked when `others`).
    pub fn ls_files_glob(&self, glob: &str, others: bool) -> Result<Vec<String>> {
        let spec = format!(":(glob){glob}");
        let mut args = vec!["ls-files", "-z", "--cached"];
        if others {
            args.extend(["--others", "--exclude-standard"]);
        }
        args.extend(["--", &spec]);
        let out = self.run(&args)?;
        let mut v: Vec<String> = split_z(&out).map(utf8).collect();
        v.sort_unstable();
        v.dedup();
        Ok(v)
    }

    /// Tree ids of the directories named in `wanted` (paths relative to the working directory) in
    /// `tree` (a commit or tree id), in one `git ls-tree -r -d` pass. `.` is the working directory itself.
    pub fn tree_ids(
        &self,
        tree: &str,
        prefix: &str,
        wanted: &HashMap<String, usize>,
        n: usize,
    ) -> Result<Vec<Option<String>>> {
        let mut out = vec![None; n];
        let treeish = format!("{tree}:{prefix}");
        let (ok, bytes, err) =
            self.output(["ls-tree", "--full-tree", "-r", "-d", "-z", &treeish], &[])?;
        if !ok {
            // The working directory does not exist in that tree: nothing is there.
            tracing::debug!("ls-tree {treeish}: {}", first_line(&err));
            return Ok(out);
        }
        for rec in split_z(&bytes) {
            // "<mode> SP <type> SP <id> TAB <path>"
            let Some(tab) = rec.iter().position(|b| *b == b'\t') else {
                continue;
            };
            let path = std::str::from_utf8(&rec[tab + 1..]).unwrap_or_default();
            if let Some(&i) = wanted.get(path) {
                let meta = &rec[..tab];
                let id = meta.rsplit(|b| *b == b' ').next().unwrap_or_default();
                out[i] = Some(utf8(id));
            }
        }
        if let Some(&i) = wanted.get(".")
            && let Some(id) = self.commit_or_tree(&treeish)?
        {
            out[i] = Some(id);
        }
        Ok(out)
    }

    fn commit_or_tree(&self, spec: &str) -> Result<Option<String>> {
        let (ok, out, _) = self.output(["rev-parse", "--verify", "--quiet", spec], &[])?;
        Ok(ok.then(|| utf8(&out).trim().to_string()))
    }

    /// Blob ids of `paths` (relative to the working directory) in `tree`, as `(path, id)` sorted.
    pub fn blob_ids(
        &self,
        tree: &str,
        prefix: &str,
        paths: &[String],
    ) -> Result<Vec<(String, String)>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        let treeish = format!("{tree}:{prefix}");
        let mut args: Vec<&str> = vec!["ls-tree", "--full-tree", "-r", "-z", &treeish, "--"];
        args.extend(paths.iter().map(String::as_str));
        let (ok, bytes, _) = self.output(&args, &[])?;
        let mut v = Vec::new();
        if ok {
            for rec in split_z(&bytes) {
                let Some(tab) = rec.iter().position(|b| *b == b'\t') else {
                    continue;
                };
                let id = rec[..tab].rsplit(|b| *b == b' ').next().unwrap_or_default();
                v.push((utf8(&rec[tab + 1..]), utf8(id)));
            }
        }
        v.sort();
        Ok(v)
    }

    /// A tree id for the working tree as it is (tracked changes and untracked, not ignored files),
    /// written through a temporary index so the real index is untouched.
    pub fn worktree_tree(&self, toplevel: &Path) -> Result<String> {
        let index =
            utf8(&self.run(&["rev-parse", "--path-format=absolute", "--git-path", "index"])?)
                .trim()
                .to_string();
        let tmp = tempfile::Builder::new()
            .prefix("monobuild-index-")
            .tempfile()
            .map_err(|e| Error::Git {
                command: "temporary index".into(),
                message: e.to_string(),
            })?;
        if Path::new(&index).exists() {
            std::fs::copy(&index, tmp.path()).map_err(|e| Error::Git {
                command: "temporary index".into(),
                message: format!("copy {index}: {e}"),
            })?;
        } else {
            // An empty file is not a valid index; let git create it.
            let _ = std::fs::remove_file(tmp.path());
        }
        let env = [("GIT_INDEX_FILE", tmp.path().as_os_str())];
        let top = Git::new(toplevel);
        top.run_env(&["add", "-A", "--", "."], &env)?;
        let out = top.run_env(&["write-tree"], &env)?;
        Ok(utf8(&out).trim().to_string())
    }
}

/// Parse `git diff -z --name-status` output.
pub fn parse_name_status(out: &[u8]) -> Result<Vec<Change>> {
    let mut fields = out.split(|b| *b == 0);
    let mut changes = Vec::new();
    let bad = |m: &str| Error::Git {
        command: "diff".into(),
        message: format!("unexpected --name-status output: {m}"),
    };
    while let Some(status) = fields.next() {
        if status.is_empty() {
            continue;
        }
        let code = status[0];
        let path = fields.next().ok_or_else(|| bad("missing path"))?;
        let change = match code {
            b'R' | b'C' => {
                let new = fields.next().ok_or_else(|| bad("missing rename target"))?;
                Change {
                    path: utf8(new),
                    status: if code == b'R' {
                        Status::Renamed
                    } else {
                        Status::Copied
                    },
                    old_path: Some(utf8(path)),
                }
            }
            _ => Change {
                path: utf8(path),
                status: match code {
                    b'A' => Status::Added,
                    b'D' => Status::Deleted,
                    b'T' => Status::TypeChanged,
                    _ => Status::Modified,
                },
                old_path: None,
            },
        };
        changes.push(change);
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_status_with_renames_and_odd_names() {
        let out = b"M\0a/b.txt\0R087\0old dir/x\0new dir/\xc3\xa9\0D\0gone\0A\0new\0T\0link\0";
        let c = parse_name_status(out).unwrap();
        assert_eq!(c.len(), 5);
        assert_eq!(c[1].path, "new dir/é");
        assert_eq!(c[1].old_path.as_deref(), Some("old dir/x"));
        assert_eq!(c[1].status, Status::Renamed);
        assert_eq!(c[2].status, Status::Deleted);
        assert_eq!(c[4].status, Status::TypeChanged);
    }
}
