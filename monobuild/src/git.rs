//! Everything monobuild asks git as a subprocess: repository facts, base resolution, `-z` name-status diffs, temporary indexes and blob contents (`cat-file --batch`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};
use crate::snapshot::ObjectFormat;

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
    /// The index file (`$GIT_INDEX_FILE` or the worktree's index).
    pub index: PathBuf,
    /// The object directory (`$GIT_OBJECT_DIRECTORY` or `.git/objects`).
    pub objects: PathBuf,
    /// The object format (`sha1` or `sha256`).
    pub format: ObjectFormat,
    /// The tree id of the working directory in HEAD (`None` without commits, or when HEAD lacks
    /// the directory).
    pub head_tree: Option<String>,
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
        let mut cmd = microplatform_common::git::command(&self.cwd);
        cmd.args(args);
        cmd
    }

    /// Run git; Ok((success, stdout, stderr)).
    pub(crate) fn output<I, S>(
        &self,
        args: I,
        env: &[(&str, &OsStr)],
    ) -> Result<(bool, Vec<u8>, Vec<u8>)>
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

    pub(crate) fn run_env(&self, args: &[&str], env: &[(&str, &OsStr)]) -> Result<Vec<u8>> {
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
                "--show-object-format",
                "--path-format=absolute",
                "--git-path",
                "index",
                "--git-path",
                "objects",
                "HEAD:./",
                "--",
            ],
            &[],
        )?;
        // A missing `HEAD:./` (no commit yet, or a directory not in HEAD) fails the call after
        // the repository facts were printed.
        let complete = utf8(&out).lines().count() >= 6;
        if !ok && !complete {
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
        let format = ObjectFormat::parse(lines.next().unwrap_or_default())?;
        let index = PathBuf::from(lines.next().unwrap_or_default());
        let objects = PathBuf::from(lines.next().unwrap_or_default());
        let head_tree = if ok {
            lines.next().map(str::to_string)
        } else {
            None
        };
        Ok(Some(RepoInfo {
            prefix,
            shallow,
            toplevel,
            index,
            objects,
            format,
            head_tree,
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

    /// HEAD's commit and the merge base of `branch` and HEAD in one call (`git rev-parse
    /// BRANCH...HEAD`), when both exist and the merge base is unique; `None` otherwise (the caller
    /// then asks step by step, for precise errors).
    pub fn head_and_merge_base(&self, branch: &str) -> Result<Option<(String, String)>> {
        if branch.starts_with('-') {
            return Ok(None);
        }
        let (ok, out, _) = self.output(["rev-parse", &format!("{branch}...HEAD"), "--"], &[])?;
        if !ok {
            return Ok(None);
        }
        let text = utf8(&out);
        let lines: Vec<&str> = text.lines().filter(|l| *l != "--").collect();
        let bases: Vec<&str> = lines.iter().filter_map(|l| l.strip_prefix('^')).collect();
        let is_id =
            |s: &str| (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit());
        match (lines.first(), bases.as_slice()) {
            (Some(head), [base]) if lines.len() == 3 && is_id(head) && is_id(base) => {
                Ok(Some(((*head).to_string(), (*base).to_string())))
            }
            _ => Ok(None),
        }
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

    /// The contents of `path` (relative to the working directory) in `commit`, `None` when absent.
    pub fn show(&self, commit: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let spec = format!("{commit}:./{path}");
        let (ok, out, _) = self.output(["cat-file", "blob", &spec], &[])?;
        Ok(ok.then_some(out))
    }

    /// Untracked, not ignored files below the working directory.
    pub fn untracked(&self) -> Result<Vec<String>> {
        let out = self.run(&["ls-files", "-z", "--others", "--exclude-standard"])?;
        Ok(split_z(&out).map(utf8).collect())
    }

    /// `git ls-files -s -z` of the index or of the temporary index `index`: every file below the
    /// working directory with mode, blob id and stage (a sparse index expanded).
    pub fn ls_files_stage(&self, index: Option<&Path>) -> Result<Vec<u8>> {
        let env: Vec<(&str, &OsStr)> = index
            .map(|i| ("GIT_INDEX_FILE", i.as_os_str()))
            .into_iter()
            .collect();
        self.run_env(&["ls-files", "-s", "-z"], &env)
    }

    /// Start a `git cat-file --batch` process now, so that its start overlaps other work.
    pub fn cat_file(&self) -> Result<CatFile> {
        use std::io::Read;
        let mut child = self
            .command(["cat-file", "--batch", "--buffer"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(Error::GitSpawn)?;
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            let mut v = Vec::with_capacity(1 << 20);
            stdout.read_to_end(&mut v).map(|_| v)
        });
        Ok(CatFile {
            child,
            stdin,
            reader,
        })
    }

    /// A temporary index holding `commit`'s files (`git read-tree`), removed on drop.
    pub fn commit_index(&self, commit: &str) -> Result<tempfile::TempPath> {
        let tmp = temp_index()?;
        self.run_env(
            &["read-tree", commit],
            &[("GIT_INDEX_FILE", tmp.as_os_str())],
        )?;
        Ok(tmp)
    }

    /// A temporary index holding the working tree as it is (tracked changes and untracked, not
    /// ignored files): a copy of the index plus `git add -A`. The real index is untouched; the new
    /// contents are written to the object store as loose blobs, as `git stash create` would.
    pub fn worktree_index(&self, index: &Path) -> Result<tempfile::TempPath> {
        let tmp = temp_index()?;
        if index.exists() {
            std::fs::copy(index, &tmp).map_err(|source| Error::GitIo {
                command: format!("temporary index (a copy of {})", index.display()),
                source,
            })?;
        }
        // Only the working directory's subtree matters; the rest keeps the index's state.
        self.run_env(
            &["add", "-A", "--", "."],
            &[("GIT_INDEX_FILE", tmp.as_os_str())],
        )?;
        Ok(tmp)
    }
}

/// A running `git cat-file --batch`, see [`Git::cat_file`].
#[derive(Debug)]
pub struct CatFile {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    reader: std::thread::JoinHandle<std::io::Result<Vec<u8>>>,
}

impl CatFile {
    /// Ask for the blobs `ids` (hex) from a writer thread, so the caller can work meanwhile;
    /// [`PendingBlobs::wait`] returns their contents in order.
    pub fn request(self, ids: Vec<String>) -> PendingBlobs {
        let Self {
            child,
            stdin,
            reader,
        } = self;
        let writer = std::thread::spawn(move || {
            use std::io::{BufWriter, Write};
            let mut input = BufWriter::with_capacity(1 << 16, stdin);
            for id in &ids {
                input.write_all(id.as_bytes())?;
                input.write_all(b"\n")?;
            }
            input.flush()?;
            Ok(ids)
        });
        PendingBlobs {
            child,
            writer,
            reader,
        }
    }
}

/// Blobs being read by `git cat-file --batch`, see [`CatFile::request`].
#[derive(Debug)]
pub struct PendingBlobs {
    child: std::process::Child,
    writer: std::thread::JoinHandle<std::io::Result<Vec<String>>>,
    reader: std::thread::JoinHandle<std::io::Result<Vec<u8>>>,
}

impl PendingBlobs {
    /// The contents of the requested blobs, in order; the process ends.
    pub fn wait(self) -> Result<Vec<Vec<u8>>> {
        let io = |source: std::io::Error| Error::GitIo {
            command: "cat-file --batch".into(),
            source,
        };
        let Self {
            mut child,
            writer,
            reader,
        } = self;
        let ids = writer
            .join()
            .expect("cat-file writer panicked")
            .map_err(io)?;
        let out = reader
            .join()
            .expect("cat-file reader panicked")
            .map_err(io)?;
        let _ = child.wait();
        // "<id> <type> <size>\n<content>\n" per object.
        let mut blobs = Vec::with_capacity(ids.len());
        let mut pos = 0;
        for id in ids {
            let bad = |m: &str| Error::Git {
                command: "cat-file --batch".into(),
                message: format!("{id}: {m}"),
            };
            let nl = out[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .ok_or_else(|| bad("truncated output"))?;
            let header = std::str::from_utf8(&out[pos..pos + nl]).map_err(|_| bad("bad header"))?;
            let mut parts = header.split(' ');
            let (Some(_), Some("blob"), Some(size)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(bad(header));
            };
            let size: usize = size.parse().map_err(|_| bad(header))?;
            let start = pos + nl + 1;
            let end = start + size;
            if end > out.len() {
                return Err(bad("truncated content"));
            }
            blobs.push(out[start..end].to_vec());
            pos = end + 1;
        }
        Ok(blobs)
    }
}

/// A path for a temporary index file that does not exist yet (git creates it), removed on drop.
fn temp_index() -> Result<tempfile::TempPath> {
    let tmp = tempfile::Builder::new()
        .prefix("monobuild-index-")
        .tempfile()
        .map_err(|source| Error::GitIo {
            command: "temporary index".into(),
            source,
        })?
        .into_temp_path();
    // An empty file is not a valid index; git creates it.
    let _ = std::fs::remove_file(&tmp);
    Ok(tmp)
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
