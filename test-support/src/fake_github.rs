//! A fake GitHub REST API on loopback implementing exactly the endpoints deploy-bot calls, backed by a real bare git repo:
//! `GET/POST /repos/{o}/{r}/pulls`, `POST /repos/{o}/{r}/statuses/{sha}`, `GET/POST /repos/{o}/{r}/issues/{n}/comments`
//! (listed in pages: `per_page`, default 30, at most 100, and `page`), `PATCH /repos/{o}/{r}/issues/comments/{id}`.
//! Served both at `/` and under `/api/v3` (GitHub Enterprise layout). Checks the bearer token.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use serde_json::{Value, json};

use crate::{TestDir, git_in};

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: u64,
    pub head: String,
    pub base: String,
    pub title: String,
    pub body: String,
    pub open: bool,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: String,
    pub target_url: Option<String>,
}

#[derive(Debug, Default)]
pub struct Recorded {
    pub pulls: Vec<Pull>,
    pub statuses: Vec<Status>,
    /// `(pull request, body)`; a comment's id is its index + 1.
    pub comments: Vec<(u64, String)>,
    /// `METHOD path?query` of every request.
    pub requests: Vec<String>,
    /// Authorization headers seen.
    pub auth: Vec<String>,
}

struct Shared {
    owner: String,
    name: String,
    token: String,
    bare: PathBuf,
    base_url: String,
    rec: Mutex<Recorded>,
}

pub struct FakeGitHub {
    shared: Arc<Shared>,
    pub addr: String,
    _rt: tokio::runtime::Runtime,
}

type S = State<Arc<Shared>>;

fn auth(s: &Shared, headers: &HeaderMap, line: String) -> Result<(), (StatusCode, Json<Value>)> {
    let a = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut rec = s.rec.lock().unwrap();
    rec.requests.push(line);
    rec.auth.push(a.clone());
    if a != format!("Bearer {}", s.token) {
        return Err((
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "Bad credentials"})),
        ));
    }
    Ok(())
}

fn repo_ok(s: &Shared, o: &str, r: &str) -> Result<(), (StatusCode, Json<Value>)> {
    if o == s.owner && r == s.name {
        Ok(())
    } else {
        Err((StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))))
    }
}

fn git_ok(s: &Shared, args: &[&str]) -> bool {
    std::process::Command::new("git")
        .args(args)
        .current_dir(&s.bare)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|x| x.success())
}

type R = Result<(StatusCode, Json<Value>), (StatusCode, Json<Value>)>;

async fn list_pulls(
    State(s): S,
    Path((o, r)): Path<(String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> R {
    auth(&s, &headers, format!("GET /repos/{o}/{r}/pulls {q:?}"))?;
    repo_ok(&s, &o, &r)?;
    let head = q.iter().find(|(k, _)| k == "head").map(|(_, v)| v.clone());
    let only_open = q.iter().any(|(k, v)| k == "state" && v == "open");
    let rec = s.rec.lock().unwrap();
    let list: Vec<Value> = rec
        .pulls
        .iter()
        .filter(|p| head.as_ref().is_none_or(|h| *h == format!("{}:{}", s.owner, p.head)))
        .filter(|p| !only_open || p.open)
        .map(|p| json!({"number": p.number, "html_url": format!("{}/{}/{}/pull/{}", s.base_url, s.owner, s.name, p.number), "state": if p.open {"open"} else {"closed"}}))
        .collect();
    Ok((StatusCode::OK, Json(Value::Array(list))))
}

async fn create_pull(
    State(s): S,
    Path((o, r)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> R {
    auth(&s, &headers, format!("POST /repos/{o}/{r}/pulls"))?;
    repo_ok(&s, &o, &r)?;
    let head = body["head"].as_str().unwrap_or_default().to_string();
    let base = body["base"].as_str().unwrap_or_default().to_string();
    let title = body["title"].as_str().unwrap_or_default().to_string();
    let text = body["body"].as_str().unwrap_or_default().to_string();
    let invalid = |m: &str| {
        Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": m})),
        ))
    };
    if title.is_empty()
        || !git_ok(
            &s,
            &["rev-parse", "--verify", &format!("refs/heads/{head}")],
        )
        || !git_ok(
            &s,
            &["rev-parse", "--verify", &format!("refs/heads/{base}")],
        )
    {
        return invalid("Validation Failed");
    }
    let mut rec = s.rec.lock().unwrap();
    if rec.pulls.iter().any(|p| p.open && p.head == head) {
        return invalid("A pull request already exists");
    }
    let number = rec.pulls.len() as u64 + 1;
    rec.pulls.push(Pull {
        number,
        head,
        base,
        title,
        body: text,
        open: true,
    });
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"number": number, "html_url": format!("{}/{}/{}/pull/{number}", s.base_url, s.owner, s.name)}),
        ),
    ))
}

async fn create_status(
    State(s): S,
    Path((o, r, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> R {
    auth(&s, &headers, format!("POST /repos/{o}/{r}/statuses/{sha}"))?;
    repo_ok(&s, &o, &r)?;
    let state = body["state"].as_str().unwrap_or_default().to_string();
    if !["error", "failure", "pending", "success"].contains(&state.as_str())
        || !git_ok(&s, &["cat-file", "-e", &format!("{sha}^{{commit}}")])
    {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed"})),
        ));
    }
    s.rec.lock().unwrap().statuses.push(Status {
        sha,
        state,
        context: body["context"].as_str().unwrap_or("default").to_string(),
        description: body["description"].as_str().unwrap_or_default().to_string(),
        target_url: body["target_url"].as_str().map(str::to_string),
    });
    Ok((StatusCode::CREATED, Json(json!({"id": 1}))))
}

async fn create_comment(
    State(s): S,
    Path((o, r, n)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> R {
    auth(
        &s,
        &headers,
        format!("POST /repos/{o}/{r}/issues/{n}/comments"),
    )?;
    repo_ok(&s, &o, &r)?;
    let mut rec = s.rec.lock().unwrap();
    if !rec.pulls.iter().any(|p| p.number == n) {
        return Err((StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))));
    }
    let text = body["body"].as_str().unwrap_or_default().to_string();
    rec.comments.push((n, text.clone()));
    let id = rec.comments.len() as u64;
    Ok((StatusCode::CREATED, Json(comment_json(&s, n, id, &text))))
}

fn comment_json(s: &Shared, n: u64, id: u64, body: &str) -> Value {
    json!({"id": id, "html_url": format!("{}/{}/{}/pull/{n}#issuecomment-{id}", s.base_url, s.owner, s.name), "body": body, "user": {"login": "deploy-bot"}})
}

async fn list_comments(
    State(s): S,
    Path((o, r, n)): Path<(String, String, u64)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> R {
    auth(
        &s,
        &headers,
        format!("GET /repos/{o}/{r}/issues/{n}/comments {query:?}"),
    )?;
    repo_ok(&s, &o, &r)?;
    let num = |k: &str, d: usize| {
        query
            .iter()
            .find(|(x, _)| x == k)
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(d)
    };
    let (per_page, page) = (num("per_page", 30).clamp(1, 100), num("page", 1).max(1));
    let rec = s.rec.lock().unwrap();
    if !rec.pulls.iter().any(|p| p.number == n) {
        return Err((StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))));
    }
    let list: Vec<Value> = rec
        .comments
        .iter()
        .enumerate()
        .filter(|(_, (pr, _))| *pr == n)
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(i, (_, body))| comment_json(&s, n, i as u64 + 1, body))
        .collect();
    Ok((StatusCode::OK, Json(Value::Array(list))))
}

async fn update_comment(
    State(s): S,
    Path((o, r, id)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> R {
    auth(
        &s,
        &headers,
        format!("PATCH /repos/{o}/{r}/issues/comments/{id}"),
    )?;
    repo_ok(&s, &o, &r)?;
    let Some(text) = body["body"].as_str() else {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"message": "Validation Failed"})),
        ));
    };
    let mut rec = s.rec.lock().unwrap();
    let Some(comment) = usize::try_from(id)
        .ok()
        .and_then(|i| i.checked_sub(1))
        .and_then(|i| rec.comments.get_mut(i))
    else {
        return Err((StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))));
    };
    comment.1 = text.to_string();
    let pull = comment.0;
    Ok((StatusCode::OK, Json(comment_json(&s, pull, id, text))))
}

impl FakeGitHub {
    /// Serve `owner/name` backed by the bare repo, accepting `token`.
    pub fn start(owner: &str, name: &str, bare: &std::path::Path, token: &str) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            owner: owner.into(),
            name: name.into(),
            token: token.into(),
            bare: bare.to_path_buf(),
            base_url: format!("http://{addr}"),
            rec: Mutex::new(Recorded::default()),
        });
        let api = Router::new()
            .route("/repos/{o}/{r}/pulls", get(list_pulls).post(create_pull))
            .route("/repos/{o}/{r}/statuses/{sha}", post(create_status))
            .route(
                "/repos/{o}/{r}/issues/{n}/comments",
                get(list_comments).post(create_comment),
            )
            .route("/repos/{o}/{r}/issues/comments/{id}", patch(update_comment));
        let app = api.clone().nest("/api/v3", api).with_state(shared.clone());
        rt.spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            shared,
            addr,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn with<T>(&self, f: impl FnOnce(&Recorded) -> T) -> T {
        f(&self.shared.rec.lock().unwrap())
    }

    /// Open a pull request directly (as a person would).
    pub fn open_pull(&self, head: &str) -> u64 {
        let mut rec = self.shared.rec.lock().unwrap();
        let number = rec.pulls.len() as u64 + 1;
        rec.pulls.push(Pull {
            number,
            head: head.into(),
            base: "main".into(),
            title: head.into(),
            body: String::new(),
            open: true,
        });
        number
    }

    /// Merge a pull request into its base in the bare repo (a merge commit `Merge pull request #N from o/head`); returns the merge commit.
    pub fn merge(&self, number: u64) -> String {
        let pull = {
            let mut rec = self.shared.rec.lock().unwrap();
            let p = rec
                .pulls
                .iter_mut()
                .find(|p| p.number == number)
                .expect("pull exists");
            p.open = false;
            p.clone()
        };
        let tmp = TestDir::new();
        let w = tmp.join("w");
        git_in(
            tmp.path(),
            &[
                "clone",
                "-q",
                "-b",
                &pull.base,
                &self.shared.bare.to_string_lossy(),
                "w",
            ],
        );
        git_in(&w, &["fetch", "-q", "origin", &pull.head]);
        git_in(
            &w,
            &[
                "merge",
                "-q",
                "--no-ff",
                "-m",
                &format!(
                    "Merge pull request #{number} from {}/{}",
                    self.shared.owner, pull.head
                ),
                "FETCH_HEAD",
            ],
        );
        git_in(&w, &["push", "-q", "origin", &pull.base]);
        git_in(&w, &["rev-parse", "HEAD"])
    }

    /// Add a comment to a pull request directly (as a person would); returns its id.
    pub fn add_comment(&self, number: u64, body: &str) -> u64 {
        let mut rec = self.shared.rec.lock().unwrap();
        rec.comments.push((number, body.into()));
        rec.comments.len() as u64
    }

    pub fn statuses_for(&self, context: &str) -> Vec<Status> {
        self.with(|r| {
            r.statuses
                .iter()
                .filter(|s| s.context == context)
                .cloned()
                .collect()
        })
    }
}
