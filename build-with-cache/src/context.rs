//! The build context: a local directory, a git URL (shallow clone), an HTTP(S) URL of a Dockerfile or tarball, or `-` (Dockerfile on stdin, empty context); and where the Dockerfile is.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use crate::error::BuildError;

/// A context ready for the builder.
#[derive(Debug)]
pub struct Prepared {
    /// The directory to pass as the context.
    pub dir: PathBuf,
    /// The Dockerfile to pass with `-f`.
    pub dockerfile: PathBuf,
    /// The Dockerfile as named to the user (for error messages).
    pub dockerfile_display: String,
    /// The Dockerfile's text.
    pub text: String,
    /// Temporary directory holding a downloaded context (removed on drop).
    pub tmp: Option<tempfile::TempDir>,
}

/// A git URL: `git://…`, `git@…`, `github.com/…`, or any `scheme://…` URL
/// whose path ends in `.git` (`https://…/repo.git`, `file:///srv/repo.git`);
/// `#ref:subdir` may follow.
fn is_git_url(s: &str) -> bool {
    s.starts_with("git://")
        || s.starts_with("git@")
        || s.starts_with("github.com/")
        || (s.contains("://")
            && s.split('#')
                .next()
                .is_some_and(|u| u.to_ascii_lowercase().ends_with(".git")))
}

fn tmpdir() -> Result<tempfile::TempDir, BuildError> {
    tempfile::Builder::new()
        .prefix("build-with-cache-ctx-")
        .tempdir()
        .map_err(|e| BuildError::Io {
            path: std::env::temp_dir().display().to_string(),
            source: e,
        })
}

fn missing(what: &'static str, path: &str, message: impl Into<String>) -> BuildError {
    BuildError::Missing {
        what,
        path: path.to_string(),
        message: message.into(),
    }
}

/// Prepare the context named on the command line, with `-f` if given.
pub async fn prepare(context: &str, file: Option<&str>) -> Result<Prepared, BuildError> {
    let (dir, tmp, from_stdin) =
        if context == "-" {
            let tmp = tmpdir()?;
            let text = tokio::task::spawn_blocking(microplatform_common::io::read_stdin)
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(|e| BuildError::Io {
                    path: "<stdin>".into(),
                    source: e,
                })?;
            std::fs::write(tmp.path().join("Dockerfile"), text).map_err(|e| BuildError::Io {
                path: tmp.path().display().to_string(),
                source: e,
            })?;
            (tmp.path().to_path_buf(), Some(tmp), true)
        } else if is_git_url(context) {
            let tmp = tmpdir()?;
            let (url, fragment) = context.split_once('#').unwrap_or((context, ""));
            let (git_ref, subdir) = fragment.split_once(':').unwrap_or((fragment, ""));
            let url = if url.starts_with("github.com/") {
                format!("https://{url}")
            } else {
                url.to_string()
            };
            let mut cmd = Command::from(microplatform_common::git::command(tmp.path()));
            cmd.args(["clone", "--quiet", "--depth", "1", "--recurse-submodules"]);
            if !git_ref.is_empty() {
                cmd.args(["--branch", git_ref]);
            }
            cmd.arg(&url).arg(tmp.path().join("src"));
            let out = cmd.stdin(Stdio::null()).output().await.map_err(|source| {
                BuildError::ContextTool {
                    context: context.to_string(),
                    tool: "git",
                    source,
                }
            })?;
            if !out.status.success() {
                return Err(missing(
                    "build context",
                    context,
                    String::from_utf8_lossy(&out.stderr)
                        .trim()
                        .replace('\n', "; "),
                ));
            }
            let dir = tmp.path().join("src").join(subdir);
            (dir, Some(tmp), false)
        } else if context.starts_with("http://") || context.starts_with("https://") {
            let tmp = tmpdir()?;
            let fetch = |source| BuildError::ContextFetch {
                url: context.to_string(),
                source,
            };
            let client = microplatform_common::http::client_builder()
                .build()
                .map_err(fetch)?;
            let body = client
                .get(context)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(fetch)?
                .bytes()
                .await
                .map_err(fetch)?;
            let dir = tmp.path().join("src");
            std::fs::create_dir_all(&dir).map_err(|e| BuildError::Io {
                path: dir.display().to_string(),
                source: e,
            })?;
            let is_archive = body.starts_with(&[0x1f, 0x8b])
                || body.get(257..262) == Some(b"ustar".as_slice())
                || body.starts_with(b"BZh")
                || body.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']);
            if is_archive {
                let archive = tmp.path().join("context.tar");
                std::fs::write(&archive, &body).map_err(|e| BuildError::Io {
                    path: archive.display().to_string(),
                    source: e,
                })?;
                let st = Command::new("tar")
                    .arg("-xf")
                    .arg(&archive)
                    .arg("-C")
                    .arg(&dir)
                    .status()
                    .await
                    .map_err(|source| BuildError::ContextTool {
                        context: context.to_string(),
                        tool: "tar",
                        source,
                    })?;
                if !st.success() {
                    return Err(missing(
                        "build context",
                        context,
                        "cannot unpack the archive",
                    ));
                }
            } else {
                std::fs::write(dir.join("Dockerfile"), &body).map_err(|e| BuildError::Io {
                    path: dir.display().to_string(),
                    source: e,
                })?;
            }
            (dir, Some(tmp), false)
        } else {
            let p = PathBuf::from(context);
            match std::fs::metadata(&p) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(missing("build context", context, "not a directory")),
                Err(e) => {
                    return Err(BuildError::ContextRead {
                        what: "build context",
                        path: context.to_string(),
                        source: e,
                    });
                }
            }
            (p, None, false)
        };
    let (dockerfile, display) = match file {
        Some(f) if !from_stdin => {
            let p = Path::new(f);
            // docker reads -f relative to the working directory for local
            // contexts, relative to the context for downloaded ones.
            let p = if tmp.is_some() && p.is_relative() {
                dir.join(p)
            } else {
                p.to_path_buf()
            };
            (p, f.to_string())
        }
        _ if from_stdin => (dir.join("Dockerfile"), "<stdin>".to_string()),
        _ => {
            let p = dir.join("Dockerfile");
            let d = p.display().to_string();
            (p, d)
        }
    };
    // BuildKit reads any bytes; text that is not UTF-8 (a Latin-1 comment) must not refuse the file.
    let text = std::fs::read(&dockerfile)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| BuildError::ContextRead {
            what: "Dockerfile",
            path: display.clone(),
            source: e,
        })?;
    let dir = dir.canonicalize().map_err(|e| BuildError::ContextRead {
        what: "build context",
        path: context.to_string(),
        source: e,
    })?;
    let dockerfile = dockerfile
        .canonicalize()
        .map_err(|e| BuildError::ContextRead {
            what: "Dockerfile",
            path: display.clone(),
            source: e,
        })?;
    Ok(Prepared {
        dir,
        dockerfile,
        dockerfile_display: display,
        text,
        tmp,
    })
}

/// The content hash of a build context as the builder sees it: every file,
/// directory and symlink not excluded by the build's `.dockerignore`, in path
/// order, as the records `<kind>\0<mode>\0<path>\0<data>\0` (kind `f`, `d` or
/// `l`; mode the octal permission bits; path relative, `/`-separated; data
/// the file content's sha256 hex, the link target, or empty), hashed with
/// sha256: `sha256:<hex>`. A `.git` directory at the top is left out.
///
/// The tree is walked and its files hashed on several threads (the `ignore`
/// crate's parallel walker, none of its own ignore-file rules: `.dockerignore`
/// is not `.gitignore`, see [`crate::dockerignore`]); the records are then
/// sorted by path, component by component, so the hash does not depend on the
/// walk's order.
pub fn hash_context(dir: &Path, dockerfile: &Path) -> Result<String, BuildError> {
    use sha2::{Digest, Sha256};
    use std::sync::{Arc, Mutex};

    let ignore = Arc::new(crate::dockerignore::Ignore::for_build(dir, dockerfile)?);
    let walk_all = ignore.has_exceptions();
    let root = dir.to_path_buf();
    let records: Mutex<Vec<(PathBuf, Record)>> = Mutex::new(Vec::new());
    let failure: Mutex<Option<BuildError>> = Mutex::new(None);
    let mut walk = ignore::WalkBuilder::new(dir);
    walk.standard_filters(false)
        .follow_links(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get().min(8)));
    {
        let (ignore, root) = (Arc::clone(&ignore), root.clone());
        // Excluded directories are not entered unless an exception may re-include something in them.
        walk.filter_entry(move |e| {
            // Only directories are pruned here (files are matched once, by the visitor).
            if !e.file_type().is_some_and(|t| t.is_dir()) {
                return true;
            }
            relative(&root, e.path())
                .is_none_or(|rel| !(rel == ".git" || (!walk_all && ignore.excluded(&rel))))
        });
    }
    walk.build_parallel().run(|| {
        let (ignore, root, records, failure) = (&ignore, &root, &records, &failure);
        Box::new(move |entry| {
            use ignore::WalkState;
            let result = entry
                .map_err(|e| BuildError::Io {
                    path: root.display().to_string(),
                    source: e
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("walk failed")),
                })
                .and_then(|entry| {
                    let Some(rel) = relative(root, entry.path()) else {
                        return Ok(());
                    };
                    if ignore.excluded(&rel) {
                        return Ok(());
                    }
                    let record = Record::read(&entry, rel)?;
                    records
                        .lock()
                        .expect("records lock")
                        .push((entry.into_path(), record));
                    Ok(())
                });
            match result {
                Ok(()) => WalkState::Continue,
                Err(e) => {
                    failure.lock().expect("failure lock").get_or_insert(e);
                    WalkState::Quit
                }
            }
        })
    });
    if let Some(e) = failure.into_inner().expect("failure lock") {
        return Err(e);
    }
    let mut records = records.into_inner().expect("records lock");
    records.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut total = Sha256::new();
    for (_, r) in &records {
        for part in [r.kind, &format!("{:o}", r.mode), &r.rel, &r.data] {
            total.update(part.as_bytes());
            total.update([0u8]);
        }
    }
    Ok(format!("sha256:{}", hex::encode(total.finalize())))
}

/// `path` relative to `root`, `/`-separated; `None` for the root itself.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    (!rel.as_os_str().is_empty()).then(|| rel.to_string_lossy().replace('\\', "/"))
}

/// One entry of the context hash.
struct Record {
    /// `f`, `d` or `l`.
    kind: &'static str,
    /// Permission bits.
    mode: u32,
    /// Relative, `/`-separated path.
    rel: String,
    /// Content sha256 hex, link target, or empty.
    data: String,
}

impl Record {
    fn read(entry: &ignore::DirEntry, rel: String) -> Result<Self, BuildError> {
        use sha2::{Digest, Sha256};
        use std::os::unix::fs::PermissionsExt;

        let io = |e: std::io::Error| BuildError::Io {
            path: entry.path().display().to_string(),
            source: e,
        };
        let meta = std::fs::symlink_metadata(entry.path()).map_err(io)?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        let (kind, data) = if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(io)?;
            ("l", target.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            ("d", String::new())
        } else {
            let mut f = std::fs::File::open(entry.path()).map_err(io)?;
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h).map_err(io)?;
            ("f", hex::encode(h.finalize()))
        };
        Ok(Self {
            kind,
            mode,
            rel,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented record format and order (depth first, names sorted: `a`, `a/b`, `a.txt`),
    /// computed independently (Python's hashlib over the same records).
    #[test]
    fn context_hash_is_the_documented_records_in_path_order() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        let mode = |path: &Path, m: u32| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
        };
        std::fs::write(p.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::create_dir(p.join("a")).unwrap();
        std::fs::write(p.join("a/b"), "1").unwrap();
        std::fs::write(p.join("a.txt"), "2").unwrap();
        std::os::unix::fs::symlink("a.txt", p.join("l")).unwrap();
        std::fs::create_dir_all(p.join(".git/objects")).unwrap();
        mode(&p.join("Dockerfile"), 0o644);
        mode(&p.join("a"), 0o755);
        mode(&p.join("a/b"), 0o644);
        mode(&p.join("a.txt"), 0o600);
        assert_eq!(
            hash_context(p, &p.join("Dockerfile")).unwrap(),
            "sha256:bc30178624fa19d252494c34e915ab66dc7aa434ca12fa9770b8a703925e44df"
        );
    }

    #[test]
    fn context_hash_honours_dockerignore() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::write(p.join("Dockerfile"), "FROM x\n").unwrap();
        std::fs::write(p.join("app.txt"), "a\n").unwrap();
        std::fs::create_dir(p.join("node_modules")).unwrap();
        std::fs::write(p.join("node_modules/big"), "1").unwrap();
        let df = p.join("Dockerfile");
        let h0 = hash_context(p, &df).unwrap();
        assert!(h0.starts_with("sha256:"));
        std::fs::write(p.join(".dockerignore"), "node_modules\n*.log\n").unwrap();
        let h1 = hash_context(p, &df).unwrap();
        assert_ne!(h0, h1, "the .dockerignore itself is in the context");
        std::fs::write(p.join("node_modules/big"), "2").unwrap();
        std::fs::write(p.join("x.log"), "log").unwrap();
        assert_eq!(hash_context(p, &df).unwrap(), h1, "ignored files");
        std::fs::write(p.join("app.txt"), "b\n").unwrap();
        let h2 = hash_context(p, &df).unwrap();
        assert_ne!(h1, h2);
        let mut perm = std::fs::metadata(p.join("app.txt")).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(p.join("app.txt"), perm).unwrap();
        assert_ne!(hash_context(p, &df).unwrap(), h2, "mode counts");
        // A Dockerfile-specific ignore file wins over the context's.
        std::fs::write(p.join("Dockerfile.dockerignore"), "app.txt\n").unwrap();
        let h3 = hash_context(p, &df).unwrap();
        std::fs::write(p.join("app.txt"), "c\n").unwrap();
        assert_eq!(hash_context(p, &df).unwrap(), h3);
        // An exception re-includes a file inside an excluded directory (unlike .gitignore).
        std::fs::write(
            p.join("Dockerfile.dockerignore"),
            "node_modules\n!node_modules/big\n",
        )
        .unwrap();
        let h4 = hash_context(p, &df).unwrap();
        std::fs::write(p.join("node_modules/big"), "3").unwrap();
        assert_ne!(hash_context(p, &df).unwrap(), h4, "re-included");
        // An unreadable file is named.
        std::fs::create_dir(p.join("locked")).unwrap();
        std::fs::write(p.join("locked/f"), "x").unwrap();
        std::fs::set_permissions(p.join("locked/f"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        if std::fs::read(p.join("locked/f")).is_err() {
            let e = hash_context(p, &df).unwrap_err().to_string();
            assert!(e.contains("locked/f"), "{e}");
        }
    }
}
