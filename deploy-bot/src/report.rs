//! `deploy-bot report`: post an environment's result back to the source repository (the monorepo): a commit status
//! on the commit that was deployed, and one comment on the branch's open pull request, edited in place on a rerun.
//!
//! The comment carries a hidden marker, `<!-- microplatform:ENV -->`, so the comment of an environment is found
//! again among all comments of the pull request and updated, never duplicated. Without an open pull request for the
//! branch, only the status is posted, and the output says so.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::github::{GitHub, PullRequest};

/// A commit status state, as GitHub names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The environment is up and its smoke tests passed.
    Success,
    /// The smoke tests (or the deploy) failed.
    Failure,
    /// The pipeline itself broke.
    Error,
    /// Still running.
    Pending,
}

impl State {
    /// GitHub's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Error => "error",
            Self::Pending => "pending",
        }
    }

    fn icon(self) -> &'static str {
        match self {
            Self::Success => "✅",
            Self::Failure | Self::Error => "❌",
            Self::Pending => "⏳",
        }
    }
}

/// One passed check of `deploy-bot smoke`'s output.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SmokeCheck {
    /// The service.
    pub service: String,
    /// The URL requested.
    pub url: String,
    /// The status it answered.
    pub status: u16,
    /// The pattern its body matched.
    #[serde(default)]
    pub body: Option<String>,
    /// Requests made.
    #[serde(default)]
    pub attempts: Option<u32>,
}

#[derive(Deserialize)]
struct SmokeFile {
    schema_version: u32,
    checks: Vec<SmokeCheck>,
}

/// Read a smoke result: `deploy-bot smoke`'s stdout (`{"schema_version":1,"checks":[…]}`), written only when every
/// check passed. Not JSON, another schema version, or no `checks` list: an input error naming the file.
pub fn read_smoke(path: &Path) -> Result<Vec<SmokeCheck>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound(format!("--smoke {}: no such file", path.display()))
        } else {
            Error::io(path, e)
        }
    })?;
    let input = |message: String| Error::Input {
        path: path.display().to_string(),
        message,
    };
    let f: SmokeFile = serde_json::from_str(&text).map_err(|source| Error::Json {
        path: path.display().to_string(),
        what: "not a smoke result (`deploy-bot smoke` output: schema_version, checks)".into(),
        source,
    })?;
    if f.schema_version != 1 {
        return Err(input(format!(
            "schema_version {}: only 1 is understood",
            f.schema_version
        )));
    }
    Ok(f.checks)
}

/// What to report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The environment (`dev`, `staging`): the status context and the comment's marker.
    pub environment: String,
    /// The source commit that was deployed (full sha).
    pub commit: String,
    /// The source branch: its open pull request gets the comment.
    pub branch: String,
    /// The environment's URL (the status's `target_url`).
    pub url: Option<String>,
    /// The outcome.
    pub state: State,
    /// One line (the status description: at most 140 characters there; whole in the comment).
    pub description: String,
    /// The smoke checks that passed (from `--smoke`), listed in the comment.
    pub checks: Vec<SmokeCheck>,
    /// The status context (default `microplatform/<environment>`).
    pub context: String,
}

/// The outcome to report: `success` with the checks of a smoke result (`--smoke`), else the
/// state given (`--state`); neither is a usage error.
pub fn outcome(smoke: Option<&Path>, state: Option<State>) -> Result<(State, Vec<SmokeCheck>)> {
    match (smoke, state) {
        (Some(f), _) => Ok((State::Success, read_smoke(f)?)),
        (None, Some(s)) => Ok((s, Vec::new())),
        (None, None) => Err(Error::Usage("pass --smoke FILE or --state STATE".into())),
    }
}

/// The description when none is given: from a smoke result, how many checks passed; else the
/// state's word (`smoke passed`, `smoke failed`, `error`, `pending`).
pub fn default_description(from_smoke: bool, state: State, checks: usize) -> String {
    match (from_smoke, state) {
        (true, _) if checks == 0 => "deployed; no smoke checks declared".into(),
        (true, _) => format!(
            "smoke passed: {checks} check{}",
            if checks == 1 { "" } else { "s" }
        ),
        (false, State::Success) => "smoke passed".into(),
        (false, State::Failure) => "smoke failed".into(),
        (false, s) => s.as_str().into(),
    }
}

/// The status context: `template` with `<ENV>` replaced by the environment.
pub fn context(template: &str, environment: &str) -> String {
    template.replace("<ENV>", environment)
}

/// The hidden marker that identifies the comment of `environment`.
pub fn marker(environment: &str) -> String {
    format!("<!-- microplatform:{environment} -->")
}

/// Check the inputs: environment a DNS label, commit a full hex sha, branch a plausible ref name, URL http(s).
pub fn check(r: &Report) -> Result<()> {
    crate::names::check_namespace(&r.environment).map_err(|_| Error::Name {
        what: "environment",
        value: r.environment.clone(),
        reason: "expected a DNS label ([a-z0-9-], at most 63)".into(),
    })?;
    if !matches!(r.commit.len(), 40 | 64) || !r.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Name {
            what: "commit",
            value: r.commit.clone(),
            reason: "expected a full commit sha (40 or 64 hex digits)".into(),
        });
    }
    crate::names::check_branch(&r.branch)?;
    if let Some(u) = &r.url {
        let ok = url::Url::parse(u).is_ok_and(|p| matches!(p.scheme(), "http" | "https"));
        if !ok {
            return Err(Error::Usage(format!(
                "--url {u:?}: expected an http:// or https:// URL"
            )));
        }
    }
    Ok(())
}

/// The comment's Markdown: marker, outcome, URL, commit, the checks.
pub fn comment_body(r: &Report) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{}\n### {} `{}`: {}\n",
        marker(&r.environment),
        r.state.icon(),
        r.environment,
        r.state.as_str()
    );
    for line in r.description.lines() {
        let _ = writeln!(s, "> {line}");
    }
    s.push('\n');
    if let Some(u) = &r.url {
        let _ = writeln!(s, "**Environment:** {u}\n");
    }
    let _ = writeln!(s, "**Commit:** `{}` (branch `{}`)\n", r.commit, r.branch);
    if !r.checks.is_empty() {
        s.push_str("| service | URL | answer | attempts |\n|---|---|---|---|\n");
        for c in &r.checks {
            let body = c
                .body
                .as_deref()
                .map(|b| {
                    format!(
                        ", body matches `{}`",
                        b.replace('|', "\\|").replace('`', "'")
                    )
                })
                .unwrap_or_default();
            let _ = writeln!(
                s,
                "| {} | {} | {}{body} | {} |",
                c.service,
                c.url,
                c.status,
                c.attempts
                    .map_or_else(|| "-".to_string(), |a| a.to_string())
            );
        }
        s.push('\n');
    }
    s.push_str("<sub>Posted by `deploy-bot report`; a rerun updates this comment.</sub>\n");
    s
}

/// The status as posted (or, with no forge, as it would be).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StatusOut {
    /// `microplatform/<environment>` unless `--context`.
    pub context: String,
    /// `success`, `failure`, `error`, `pending`.
    pub state: String,
    /// The description (at most 140 characters).
    pub description: String,
    /// The environment URL.
    pub target_url: Option<String>,
    /// Whether it was posted.
    pub posted: bool,
}

/// What happened to the comment.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CommentOut {
    /// `created`, `updated`, or `unchanged` (the earlier comment already said this).
    pub action: String,
    /// The comment's id.
    pub id: u64,
    /// Its web URL.
    pub url: String,
}

/// What `deploy-bot report` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ReportOut {
    /// 1.
    pub schema_version: u32,
    /// `github` or `none`.
    pub forge: String,
    /// `OWNER/NAME` of the source repository (null with `--forge none`).
    pub repo: Option<String>,
    /// The environment.
    pub environment: String,
    /// The commit.
    pub commit: String,
    /// The branch.
    pub branch: String,
    /// The commit status.
    pub status: StatusOut,
    /// The branch's open pull request, or null.
    pub pull_request: Option<PullRequest>,
    /// The comment, or null (see `skipped`).
    pub comment: Option<CommentOut>,
    /// Why something was not posted (empty when everything was).
    pub skipped: Vec<String>,
}

/// Post `r`: the status, then the pull request's comment (created, or the marked one updated). `gh` None: nothing
/// is posted (`--forge none`), the output shows what would be.
pub async fn report(gh: Option<&GitHub>, r: &Report) -> Result<ReportOut> {
    check(r)?;
    let description = if r.description.trim().is_empty() {
        r.state.as_str().to_string()
    } else {
        r.description.lines().next().unwrap_or_default().to_string()
    };
    let mut out = ReportOut {
        schema_version: 1,
        forge: if gh.is_some() { "github" } else { "none" }.to_string(),
        repo: gh.map(|g| g.repo().to_string()),
        environment: r.environment.clone(),
        commit: r.commit.clone(),
        branch: r.branch.clone(),
        status: StatusOut {
            context: r.context.clone(),
            state: r.state.as_str().to_string(),
            description: description.chars().take(140).collect(),
            target_url: r.url.clone(),
            posted: false,
        },
        pull_request: None,
        comment: None,
        skipped: Vec::new(),
    };
    let Some(gh) = gh else {
        out.skipped
            .push("--forge none: no status or comment posted".into());
        return Ok(out);
    };
    gh.create_status(
        &r.commit,
        r.state.as_str(),
        &r.context,
        &description,
        r.url.as_deref(),
    )
    .await?;
    out.status.posted = true;
    let Some(pull) = gh.find_open_pull(&r.branch).await? else {
        out.skipped.push(format!(
            "no open pull request for branch {}: commit status only",
            r.branch
        ));
        return Ok(out);
    };
    let body = comment_body(r);
    let mark = marker(&r.environment);
    let earlier = gh
        .list_comments(pull.number)
        .await?
        .into_iter()
        .find(|c| c.body.contains(&mark));
    let (action, c) = match earlier {
        Some(c) if c.body == body => ("unchanged", c),
        Some(c) => ("updated", gh.update_comment(c.id, &body).await?),
        None => ("created", gh.create_comment(pull.number, &body).await?),
    };
    out.comment = Some(CommentOut {
        action: action.into(),
        id: c.id,
        url: c.url,
    });
    out.pull_request = Some(pull);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_descriptions_count_smoke_checks_or_name_the_state() {
        assert_eq!(
            default_description(true, State::Success, 0),
            "deployed; no smoke checks declared"
        );
        assert_eq!(
            default_description(true, State::Success, 1),
            "smoke passed: 1 check"
        );
        assert_eq!(
            default_description(true, State::Success, 3),
            "smoke passed: 3 checks"
        );
        assert_eq!(
            default_description(false, State::Success, 0),
            "smoke passed"
        );
        assert_eq!(
            default_description(false, State::Failure, 0),
            "smoke failed"
        );
        assert_eq!(default_description(false, State::Pending, 0), "pending");
        assert_eq!(default_description(false, State::Error, 0), "error");
    }

    #[test]
    fn outcome_needs_a_smoke_file_or_a_state_and_context_names_the_environment() {
        assert!(matches!(outcome(None, None), Err(Error::Usage(_))));
        let (state, checks) = outcome(None, Some(State::Failure)).unwrap();
        assert_eq!((state, checks.len()), (State::Failure, 0));
        assert_eq!(
            context("microplatform/<ENV>", "staging"),
            "microplatform/staging"
        );
    }

    fn sample() -> Report {
        Report {
            environment: "dev".into(),
            commit: "a".repeat(40),
            branch: "feature/x".into(),
            url: Some("http://feature-x.shop.dev.localhost:8088/".into()),
            state: State::Success,
            description: "smoke passed: 1 check".into(),
            checks: vec![SmokeCheck {
                service: "web".into(),
                url: "http://feature-x.shop.dev.localhost:8088/".into(),
                status: 200,
                body: Some("status: ok|fine".into()),
                attempts: Some(2),
            }],
            context: "microplatform/dev".into(),
        }
    }

    #[test]
    fn comment_starts_with_the_marker_and_escapes_table_cells() {
        let b = comment_body(&sample());
        assert!(b.starts_with("<!-- microplatform:dev -->\n"), "{b}");
        assert!(b.contains("**Environment:** http://feature-x.shop.dev.localhost:8088/"));
        assert!(
            b.contains("| web | http://feature-x.shop.dev.localhost:8088/ | 200, body matches `status: ok\\|fine` | 2 |"),
            "{b}"
        );
    }

    #[test]
    fn inputs_are_checked() {
        assert!(check(&sample()).is_ok());
        let bad = |f: fn(&mut Report)| {
            let mut r = sample();
            f(&mut r);
            check(&r).unwrap_err().to_string()
        };
        assert!(bad(|r| r.commit = "abc123".into()).contains("commit"));
        assert!(bad(|r| r.environment = "Dev_1".into()).contains("environment"));
        assert!(bad(|r| r.branch = "a..b".into()).contains("branch"));
        assert!(bad(|r| r.url = Some("ftp://x/".into())).contains("--url"));
    }
}
