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
    let (dir, tmp, from_stdin) = if context == "-" {
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
        let out = cmd
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| missing("build context", context, format!("cannot run git: {e}")))?;
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
        let client = microplatform_common::http::client_builder()
            .build()
            .map_err(|e| missing("build context", context, e.to_string()))?;
        let body = client
            .get(context)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| missing("build context", context, e.to_string()))?
            .bytes()
            .await
            .map_err(|e| missing("build context", context, e.to_string()))?;
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
                .map_err(|e| missing("build context", context, format!("cannot run tar: {e}")))?;
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
            Err(e) => return Err(missing("build context", context, e.to_string())),
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
        .map_err(|e| missing("Dockerfile", &display, e.to_string()))?;
    let dir = dir
        .canonicalize()
        .map_err(|e| missing("build context", context, e.to_string()))?;
    let dockerfile = dockerfile
        .canonicalize()
        .map_err(|e| missing("Dockerfile", &display, e.to_string()))?;
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
pub fn hash_context(dir: &Path, dockerfile: &Path) -> Result<String, BuildError> {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::PermissionsExt;

    let ignore = crate::dockerignore::Ignore::for_build(dir, dockerfile)?;
    let walk_all = ignore.has_exceptions();
    let io = |path: &Path, e: std::io::Error| BuildError::Io {
        path: path.display().to_string(),
        source: e,
    };
    let mut total = Sha256::new();
    let mut it = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            io(&path, e.into())
        })?;
        let rel_path = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let rel = rel_path.to_string_lossy().replace('\\', "/");
        let ft = entry.file_type();
        if rel == ".git" && ft.is_dir() {
            it.skip_current_dir();
            continue;
        }
        if ignore.excluded(&rel) {
            if ft.is_dir() && !walk_all {
                it.skip_current_dir();
            }
            continue;
        }
        let meta = entry.metadata().map_err(|e| io(entry.path(), e.into()))?;
        let mode = meta.permissions().mode() & 0o7777;
        let (kind, data) = if ft.is_symlink() {
            let target = std::fs::read_link(entry.path()).map_err(|e| io(entry.path(), e))?;
            ("l", target.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            ("d", String::new())
        } else {
            let mut f = std::fs::File::open(entry.path()).map_err(|e| io(entry.path(), e))?;
            let mut h = Sha256::new();
            std::io::copy(&mut f, &mut h).map_err(|e| io(entry.path(), e))?;
            ("f", hex::encode(h.finalize()))
        };
        for part in [kind, &format!("{mode:o}"), &rel, &data] {
            total.update(part.as_bytes());
            total.update([0u8]);
        }
    }
    Ok(format!("sha256:{}", hex::encode(total.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_hash_honours_dockerignore() {
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
    }
}
