//! The GitHub REST client: exactly the calls deploy-bot makes (find or open a pull request, commit statuses, comments), token never shown.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{Error, Result};

/// Default API root.
pub const DEFAULT_API_URL: &str = "https://api.github.com";

/// A token that never prints itself.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// Wrap a token.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The token from `file` (trimmed) when given, else from `GITHUB_TOKEN`; a missing or empty
    /// one is [`Error::NoToken`] (exit 7), naming where it was looked for.
    pub fn from_file_or_env(file: Option<&std::path::Path>) -> Result<Self> {
        let (token, missing) = match file {
            Some(f) => (
                std::fs::read_to_string(f)
                    .map_err(|e| Error::io(f, e))?
                    .trim()
                    .to_string(),
                format!("--token-file {}: empty", f.display()),
            ),
            None => (
                std::env::var("GITHUB_TOKEN").unwrap_or_default(),
                "GITHUB_TOKEN is not set".to_string(),
            ),
        };
        if token.is_empty() {
            return Err(Error::NoToken { what: missing });
        }
        Ok(Self(token))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(***)")
    }
}

/// `owner/name` of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    /// Owner (user or organisation).
    pub owner: String,
    /// Repository name (without `.git`).
    pub name: String,
}

impl std::fmt::Display for RepoId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

impl RepoId {
    /// Parse `owner/name`.
    pub fn parse(s: &str) -> Result<Self> {
        let (o, n) = s
            .split_once('/')
            .ok_or_else(|| Error::Usage(format!("--github-repo {s:?}: expected OWNER/NAME")))?;
        let ok = |x: &str| {
            !x.is_empty()
                && x != "."
                && x != ".."
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !ok(o) || !ok(n) {
            return Err(Error::Usage(format!(
                "--github-repo {s:?}: expected OWNER/NAME"
            )));
        }
        Ok(Self {
            owner: o.to_string(),
            name: n.trim_end_matches(".git").to_string(),
        })
    }

    /// Derive `owner/name` from a git URL: the last two path segments, `.git` stripped.
    /// Works for `https://host/o/r.git`, `ssh://git@host/o/r`, `git@host:o/r.git`, `git://host/o/r`, `file:///x/o/r.git` and plain paths.
    pub fn from_git_url(url: &str) -> Result<Self> {
        let path = if let Some((_, rest)) = url.split_once("://") {
            rest.split_once('/').map_or("", |(_, p)| p)
        } else if let Some((host, p)) = url.split_once(':')
            && !host.contains('/')
        {
            p
        } else {
            url
        };
        let segs: Vec<&str> = path
            .trim_end_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if segs.len() < 2 {
            return Err(Error::Usage(format!(
                "cannot derive OWNER/NAME from repo URL {:?}; pass --github-repo",
                crate::git::redact_url(url)
            )));
        }
        Self::parse(&format!(
            "{}/{}",
            segs[segs.len() - 2],
            segs[segs.len() - 1]
        ))
    }
}

/// A pull request as deploy-bot reports it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PullRequest {
    /// Its number.
    pub number: u64,
    /// Its web URL.
    pub url: String,
}

#[derive(Deserialize)]
struct ApiPull {
    number: u64,
    html_url: String,
}

/// A GitHub (or GitHub Enterprise) REST client for one repository.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: reqwest::Client,
    api: String,
    repo: RepoId,
    token: Token,
}

impl GitHub {
    /// A client for `repo` at `api_url` (`https://api.github.com` or `https://HOST/api/v3`).
    pub fn new(api_url: &str, repo: RepoId, token: Token) -> Result<Self> {
        let http = microplatform_common::http::client_builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("deploy-bot/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::setup("http client", e))?;
        Ok(Self {
            http,
            api: api_url.trim_end_matches('/').to_string(),
            repo,
            token,
        })
    }

    /// The repository.
    pub fn repo(&self) -> &RepoId {
        &self.repo
    }

    fn url(&self, tail: &str) -> String {
        format!(
            "{}/repos/{}/{}/{tail}",
            self.api, self.repo.owner, self.repo.name
        )
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<serde_json::Value>,
    ) -> Result<(u16, serde_json::Value)> {
        let mut rb = self
            .http
            .request(method, url)
            .bearer_auth(&self.token.0)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let resp = rb.send().await.map_err(|e| Error::http(url, e, ""))?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(|e| Error::http(url, e, ""))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        match status {
            200..=299 => Ok((status, value)),
            401 | 403 => Err(Error::Auth {
                url: url.to_string(),
                status,
            }),
            _ => Err(Error::Api {
                url: url.to_string(),
                status,
                message: value
                    .get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or("unexpected answer")
                    .to_string(),
            }),
        }
    }

    /// `GET /repos/{o}/{r}/pulls?head=owner:branch&state=open`: the open pull request for a branch.
    pub async fn find_open_pull(&self, branch: &str) -> Result<Option<PullRequest>> {
        let mut url = reqwest::Url::parse(&self.url("pulls")).map_err(|source| Error::Url {
            option: "--api-url",
            value: self.api.clone(),
            source,
        })?;
        url.query_pairs_mut()
            .append_pair("head", &format!("{}:{branch}", self.repo.owner))
            .append_pair("state", "open");
        let (_, v) = self.call(reqwest::Method::GET, url.as_str(), None).await?;
        let pulls: Vec<ApiPull> =
            serde_json::from_value(v).map_err(|e| answer(url.as_str(), 200, "pull list", e))?;
        Ok(pulls.into_iter().next().map(|p| PullRequest {
            number: p.number,
            url: p.html_url,
        }))
    }

    /// `POST /repos/{o}/{r}/pulls`.
    pub async fn create_pull(
        &self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<PullRequest> {
        let url = self.url("pulls");
        let (_, v) = self
            .call(
                reqwest::Method::POST,
                &url,
                Some(json!({"title": title, "head": head, "base": base, "body": body})),
            )
            .await?;
        let p: ApiPull =
            serde_json::from_value(v).map_err(|e| answer(&url, 201, "pull request", e))?;
        Ok(PullRequest {
            number: p.number,
            url: p.html_url,
        })
    }

    /// Reuse the open pull request for `head`, or open one.
    pub async fn ensure_pull(
        &self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<PullRequest> {
        if let Some(p) = self.find_open_pull(head).await? {
            return Ok(p);
        }
        match self.create_pull(title, head, base, body).await {
            Ok(p) => Ok(p),
            // Raced with another request: 422 "A pull request already exists".
            Err(Error::Api { status: 422, .. }) if self.find_open_pull(head).await?.is_some() => {
                Ok(self.find_open_pull(head).await?.expect("just found"))
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /repos/{o}/{r}/statuses/{sha}`.
    pub async fn create_status(
        &self,
        sha: &str,
        state: &str,
        context: &str,
        description: &str,
        target_url: Option<&str>,
    ) -> Result<()> {
        let mut description: String = description.chars().take(140).collect();
        if description.is_empty() {
            description = state.to_string();
        }
        let mut body = json!({"state": state, "context": context, "description": description});
        if let Some(t) = target_url {
            body["target_url"] = json!(t);
        }
        self.call(
            reqwest::Method::POST,
            &self.url(&format!("statuses/{sha}")),
            Some(body),
        )
        .await
        .map(|_| ())
    }

    /// `POST /repos/{o}/{r}/issues/{n}/comments`: the new comment.
    pub async fn create_comment(&self, number: u64, body: &str) -> Result<Comment> {
        let url = self.url(&format!("issues/{number}/comments"));
        let (_, v) = self
            .call(reqwest::Method::POST, &url, Some(json!({"body": body})))
            .await?;
        comment_from(&url, v)
    }

    /// `GET /repos/{o}/{r}/issues/{n}/comments?per_page=100&page=P`, every page: all comments of an issue or pull
    /// request, oldest first.
    pub async fn list_comments(&self, number: u64) -> Result<Vec<Comment>> {
        const PER_PAGE: usize = 100;
        let mut all = Vec::new();
        for page in 1.. {
            let url = format!(
                "{}?per_page={PER_PAGE}&page={page}",
                self.url(&format!("issues/{number}/comments"))
            );
            let (_, v) = self.call(reqwest::Method::GET, &url, None).await?;
            let batch: Vec<Comment> =
                serde_json::from_value(v).map_err(|e| answer(&url, 200, "comment list", e))?;
            let n = batch.len();
            all.extend(batch);
            if n < PER_PAGE {
                break;
            }
        }
        Ok(all)
    }

    /// `PATCH /repos/{o}/{r}/issues/comments/{id}`: replace a comment's body.
    pub async fn update_comment(&self, id: u64, body: &str) -> Result<Comment> {
        let url = self.url(&format!("issues/comments/{id}"));
        let (_, v) = self
            .call(reqwest::Method::PATCH, &url, Some(json!({"body": body})))
            .await?;
        comment_from(&url, v)
    }
}

/// An issue or pull-request comment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Comment {
    /// Its id (for `PATCH …/issues/comments/{id}`).
    pub id: u64,
    /// Its web URL.
    #[serde(rename = "html_url", default)]
    pub url: String,
    /// Its Markdown text.
    #[serde(default)]
    pub body: String,
}

fn comment_from(url: &str, v: serde_json::Value) -> Result<Comment> {
    serde_json::from_value(v).map_err(|e| answer(url, 200, "comment", e))
}

/// An answer of the API (`status`) that is not the `what` expected.
fn answer(url: &str, status: u16, what: &str, source: serde_json::Error) -> Error {
    Error::Answer {
        url: url.to_string(),
        what: format!("HTTP {status}: unexpected {what}"),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_from_urls() {
        for (url, want) in [
            ("https://github.com/acme/cluster.git", "acme/cluster"),
            ("git@github.com:acme/cluster.git", "acme/cluster"),
            ("ssh://git@ghe.corp/acme/cluster", "acme/cluster"),
            ("git://127.0.0.1:9418/acme/cluster.git", "acme/cluster"),
            ("file:///tmp/x/acme/cluster.git", "acme/cluster"),
            ("/tmp/x/acme/cluster.git", "acme/cluster"),
        ] {
            assert_eq!(
                RepoId::from_git_url(url).unwrap().to_string(),
                want,
                "{url}"
            );
        }
        assert!(RepoId::from_git_url("https://github.com/x").is_err());
        assert!(RepoId::parse("a/..").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_api_is_an_http_error_caused_by_the_clients_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let gh = GitHub::new(
            &format!("http://127.0.0.1:{port}"),
            RepoId::parse("acme/cluster").unwrap(),
            Token::new("t"),
        )
        .unwrap();
        let e = gh.list_comments(1).await.unwrap_err();
        assert!(matches!(e, Error::Http { .. }), "{e}");
        assert_eq!(
            microplatform_common::exit::ExitCode::exit_code(&e),
            microplatform_common::exit::NETWORK
        );
        let http = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<reqwest::Error>())
            .expect("the reqwest::Error is the source");
        assert!(http.is_connect(), "{http}");
        assert!(
            http.url().is_none(),
            "the URL is said once, by the outer error"
        );
        assert!(
            e.to_string().starts_with(&format!(
                "http://127.0.0.1:{port}/repos/acme/cluster/issues/1/comments"
            )),
            "{e}"
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        assert_eq!(format!("{:?}", Token::new("ghp_secret")), "Token(***)");
    }
}
