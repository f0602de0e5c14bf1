//! GitHub webhooks: the shared secret, the `X-Hub-Signature-256` check (HMAC-SHA256 of the raw body, constant time) and the few payload fields deploy-bot reads.

use std::path::Path;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::error::{Error, Result};

/// Largest body accepted (GitHub caps payloads at 25 MB).
pub const MAX_BODY: usize = 25 * 1024 * 1024;

/// Read the webhook secret (the agent's and `notify`'s): the file (trailing newlines dropped),
/// else `DEPLOY_BOT_WEBHOOK_SECRET`; none, or an empty one, is refused.
pub fn read_secret(file: Option<&Path>) -> Result<Vec<u8>> {
    let secret = match file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| Error::io(f, e))?
            .trim_end_matches(['\n', '\r'])
            .as_bytes()
            .to_vec(),
        None => std::env::var("DEPLOY_BOT_WEBHOOK_SECRET")
            .unwrap_or_default()
            .into_bytes(),
    };
    if secret.is_empty() {
        return Err(Error::Usage(
            "no webhook secret: pass --secret-file FILE or set DEPLOY_BOT_WEBHOOK_SECRET".into(),
        ));
    }
    Ok(secret)
}

/// Verify `sha256=<hex>` against the HMAC-SHA256 of `body` with `secret`, in constant time.
pub fn verify_signature(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    if sig.len() != 32 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig).is_ok()
}

/// The signature header value GitHub would send.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The repository block of a payload.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Repository {
    /// `owner/name`.
    #[serde(default)]
    pub full_name: Option<String>,
    /// `https://github.com/o/r.git`.
    #[serde(default)]
    pub clone_url: Option<String>,
    /// `git@github.com:o/r.git`.
    #[serde(default)]
    pub ssh_url: Option<String>,
    /// `git://github.com/o/r.git`.
    #[serde(default)]
    pub git_url: Option<String>,
    /// `https://github.com/o/r`.
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A `push` event.
#[derive(Debug, Clone, Deserialize)]
pub struct PushEvent {
    /// `refs/heads/BRANCH`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The new head.
    pub after: String,
    /// The repository.
    pub repository: Repository,
    /// The head commit (absent for branch deletions).
    #[serde(default)]
    pub head_commit: Option<HeadCommit>,
}

/// The head commit of a push.
#[derive(Debug, Clone, Deserialize)]
pub struct HeadCommit {
    /// Its message.
    #[serde(default)]
    pub message: String,
}

/// A `pull_request` event.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestEvent {
    /// `opened`, `synchronize`, `closed`, ...
    pub action: String,
    /// The pull request number.
    pub number: u64,
    /// The pull request.
    pub pull_request: PullRequestBody,
    /// The repository.
    pub repository: Repository,
}

/// The pull request object.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestBody {
    /// Head.
    pub head: Branch,
    /// Base.
    pub base: Branch,
}

/// A branch end of a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct Branch {
    /// Branch name.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// Commit.
    pub sha: String,
}

/// The pull request a merge commit names: `Merge pull request #N` or a squash title ending `(#N)`.
pub fn merged_pull_request(message: &str) -> Option<u64> {
    let first = message.lines().next().unwrap_or_default();
    if let Some(rest) = first.strip_prefix("Merge pull request #") {
        return rest
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok();
    }
    let open = first.rfind("(#")?;
    first[open + 2..].strip_suffix(')')?.parse().ok()
}

/// Normalise a repository URL for comparison: scheme, credentials, `.git` and case dropped; `git@h:o/r` read as `h/o/r`.
pub fn normalize_repo_url(url: &str) -> String {
    let mut s = url.trim().to_ascii_lowercase();
    if let Some((_, rest)) = s.split_once("://") {
        s = rest.to_string();
    } else if let Some((host, path)) = s.split_once(':')
        && !host.contains('/')
    {
        s = format!("{host}/{path}");
    }
    if let Some((userinfo, rest)) = s.split_once('@')
        && !userinfo.contains('/')
    {
        s = rest.to_string();
    }
    s.trim_end_matches('/').trim_end_matches(".git").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        let secret = b"It's a Secret to Everybody";
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign(secret, b"Hello, World!"), sig);
        assert!(verify_signature(secret, b"Hello, World!", Some(sig)));
        assert!(!verify_signature(secret, b"Hello, World?", Some(sig)));
        assert!(!verify_signature(
            secret,
            b"Hello, World!",
            Some(&sig[..sig.len() - 2])
        ));
        assert!(!verify_signature(secret, b"Hello, World!", None));
        assert!(!verify_signature(
            secret,
            b"Hello, World!",
            Some("sha1=757107ea")
        ));
        assert!(!verify_signature(b"other", b"Hello, World!", Some(sig)));
    }

    #[test]
    fn merged_pr_numbers() {
        assert_eq!(
            merged_pull_request("Merge pull request #12 from a/b\n\nx"),
            Some(12)
        );
        assert_eq!(merged_pull_request("Deploy web (#7)"), Some(7));
        assert_eq!(merged_pull_request("deploy web"), None);
    }

    #[test]
    fn repo_urls() {
        assert_eq!(
            normalize_repo_url("git@github.com:Acme/Cluster.git"),
            "github.com/acme/cluster"
        );
        assert_eq!(
            normalize_repo_url("https://x:y@github.com/acme/cluster"),
            "github.com/acme/cluster"
        );
        assert_eq!(normalize_repo_url("file:///tmp/r.git"), "/tmp/r");
    }
}
