//! The build context: a local directory, a git URL (shallow clone), an HTTP(S) URL of a Dockerfile or tarball, or `-` (Dockerfile on stdin, empty context); and where the Dockerfile is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
        let text = microplatform_common::io::read_stdin().map_err(|e| BuildError::Io {
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
        let mut cmd = Command::new("git");
        cmd.args(["clone", "--quiet", "--depth", "1", "--recurse-submodules"]);
        if !git_ref.is_empty() {
            cmd.args(["--branch", git_ref]);
        }
        cmd.arg(&url).arg(tmp.path().join("src"));
        let out = cmd
            .stdin(Stdio::null())
            .output()
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
        let body = reqwest::get(context)
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
