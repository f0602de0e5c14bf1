//! Running git: a small wrapper with a fixed bot identity, no prompts, and errors that carry git's own message.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// The identity commits are made with.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Author and committer name.
    pub name: String,
    /// Author and committer email.
    pub email: String,
}

impl Default for Identity {
    fn default() -> Self {
        Self {
            name: "deploy-bot".into(),
            email: "deploy-bot@users.noreply.invalid".into(),
        }
    }
}

/// git, run in one directory (or with `--git-dir`).
#[derive(Debug, Clone)]
pub struct Git {
    dir: PathBuf,
    bare: Option<PathBuf>,
    identity: Identity,
}

impl Git {
    /// git in a working tree (or any directory).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            bare: None,
            identity: Identity::default(),
        }
    }

    /// git on a bare repository.
    pub fn bare(git_dir: impl Into<PathBuf>) -> Self {
        let g: PathBuf = git_dir.into();
        Self {
            dir: g.clone(),
            bare: Some(g),
            identity: Identity::default(),
        }
    }

    /// Use this identity for commits.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The directory git runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = microplatform_common::git::command(&self.dir);
        if let Some(gd) = &self.bare {
            cmd.arg("--git-dir").arg(gd);
        }
        cmd.args(["-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_NAME", &self.identity.name)
            .env("GIT_AUTHOR_EMAIL", &self.identity.email)
            .env("GIT_COMMITTER_NAME", &self.identity.name)
            .env("GIT_COMMITTER_EMAIL", &self.identity.email);
        // Git over HTTPS: GITHUB_TOKEN is handed to git by deploy-bot itself acting as GIT_ASKPASS (never in a URL or
        // an argument). A configured credential helper is asked first; an explicit GIT_ASKPASS is left alone.
        if std::env::var_os("GIT_ASKPASS").is_none()
            && std::env::var_os(TOKEN_ENV).is_some_and(|t| !t.is_empty())
            && let Ok(exe) = std::env::current_exe()
        {
            cmd.env("GIT_ASKPASS", exe).env(ASKPASS_ENV, "1");
        }
        cmd
    }

    /// Run git; on success return stdout (trimmed of the trailing newline).
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args, None)?;
        if out.0 {
            Ok(String::from_utf8_lossy(&out.1).trim_end().to_string())
        } else {
            Err(Self::error(args, &out.2))
        }
    }

    /// Run git and return raw stdout bytes.
    pub fn run_bytes(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.output(args, None)?;
        if out.0 {
            Ok(out.1)
        } else {
            Err(Self::error(args, &out.2))
        }
    }

    /// Run git and return only its exit code (`None` when a signal ended it), for commands whose
    /// codes say something (`ls-remote --exit-code`: 2 when no ref matches).
    pub fn code(&self, args: &[&str]) -> Result<Option<i32>> {
        let status = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|source| Error::GitIo {
                args: args.join(" "),
                source,
            })?;
        Ok(status.code())
    }

    /// Run git and report only whether it exited 0 (for `diff --quiet` and the like).
    pub fn status(&self, args: &[&str]) -> Result<bool> {
        Ok(self.output(args, None)?.0)
    }

    /// Run git; (success, stdout, stderr).
    pub fn output(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<(bool, Vec<u8>, Vec<u8>)> {
        let mut cmd = self.command(args);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|source| Error::GitIo {
            args: args.join(" "),
            source,
        })?;
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin piped");
            let input = input.to_vec();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            });
        }
        let out = child.wait_with_output().map_err(|source| Error::GitIo {
            args: args.join(" "),
            source,
        })?;
        Ok((out.status.success(), out.stdout, out.stderr))
    }

    fn error(args: &[&str], stderr: &[u8]) -> Error {
        let msg = String::from_utf8_lossy(stderr);
        let msg = msg
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        Error::Git {
            args: redact_args(args),
            message: if msg.is_empty() { "failed".into() } else { msg },
        }
    }
}

/// The environment variable holding the forge token (also used for git over HTTPS).
pub const TOKEN_ENV: &str = "GITHUB_TOKEN";

/// Set in git's environment when deploy-bot is its `GIT_ASKPASS`.
pub const ASKPASS_ENV: &str = "DEPLOY_BOT_ASKPASS";

/// The answer of deploy-bot run as `GIT_ASKPASS` (git passes the prompt as the only argument): the user name
/// `x-access-token` for a `Username` prompt, the token for a `Password` prompt. `None` for any other prompt.
pub fn askpass_answer(prompt: &str) -> Option<String> {
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())?;
    if prompt.starts_with("Username") {
        Some("x-access-token".into())
    } else if prompt.starts_with("Password") {
        Some(token)
    } else {
        None
    }
}

/// Refuse a repo URL that carries a password or token: credentials belong in a credential helper or in
/// `GITHUB_TOKEN` (given to git through `GIT_ASKPASS`), never in the URL, where logs and `ps` would show them.
pub fn check_url_credentials(url: &str) -> Result<()> {
    if let Some((_, rest)) = url.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        let tokenish = [
            "ghp_",
            "gho_",
            "ghu_",
            "ghs_",
            "ghr_",
            "github_pat_",
            "glpat-",
        ]
        .iter()
        .any(|p| userinfo.starts_with(p));
        if userinfo.contains(':') || tokenish {
            return Err(Error::Usage(format!(
                "--repo {}: credentials in the URL are refused; use a git credential helper, or set GITHUB_TOKEN \
                 (deploy-bot gives it to git through GIT_ASKPASS)",
                redact_url(url)
            )));
        }
    }
    Ok(())
}

/// Drop credentials from URLs in an argument list before it is shown.
fn redact_args(args: &[&str]) -> String {
    args.iter()
        .map(|a| redact_url(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `https://user:token@host/x` → `https://***@host/x`.
pub fn redact_url(s: &str) -> String {
    if let Some((scheme, rest)) = s.split_once("://")
        && let Some((userinfo, host)) = rest.split_once('@')
        && !userinfo.contains('/')
    {
        return format!("{scheme}://***@{host}");
    }
    s.to_string()
}

/// The default branch of a remote, from `git ls-remote --symref URL HEAD`.
pub fn remote_default_branch(url: &str) -> Result<String> {
    let git = Git::new(std::env::temp_dir());
    let out = git.run(&["ls-remote", "--symref", url, "HEAD"])?;
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("ref: ")
            && let Some((r, _)) = rest.split_once('\t')
            && let Some(b) = r.strip_prefix("refs/heads/")
        {
            return Ok(b.to_string());
        }
    }
    Err(Error::NotFound(format!(
        "{}: the remote has no default branch (HEAD); pass --base",
        redact_url(url)
    )))
}

/// The commit a remote branch points at, if the branch exists.
pub fn remote_branch_commit(url: &str, branch: &str) -> Result<Option<String>> {
    let git = Git::new(std::env::temp_dir());
    let refname = format!("refs/heads/{branch}");
    let out = git.run(&["ls-remote", url, &refname])?;
    Ok(out.lines().find_map(|l| {
        let (sha, r) = l.split_once('\t')?;
        (r == refname).then(|| sha.to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_refused() {
        assert!(check_url_credentials("https://x:secret@github.com/o/r.git").is_err());
        assert!(check_url_credentials("https://ghp_abc@github.com/o/r.git").is_err());
        assert!(check_url_credentials("https://github.com/o/r.git").is_ok());
        assert!(check_url_credentials("ssh://git@github.com/o/r.git").is_ok());
        assert!(check_url_credentials("git@github.com:o/r.git").is_ok());
    }

    #[test]
    fn redacts_userinfo() {
        assert_eq!(
            redact_url("https://x:secret@github.com/o/r.git"),
            "https://***@github.com/o/r.git"
        );
        assert_eq!(redact_url("file:///tmp/r.git"), "file:///tmp/r.git");
    }
}
