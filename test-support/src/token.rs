//! A Bearer token server for tests (RS256 JWTs with an `x5c` header, signed with the `openssl` CLI), plus the tiny HTTP server it runs on.
//!
//! ```no_run
//! use microplatform_test_support::{registry::Registry, token::TokenServer};
//! let tokens = TokenServer::start("alice", "secret");
//! let reg = Registry::start_with(tokens.registry_auth());
//! tokens.push_image(&reg, "demo", "v1", microplatform_test_support::registry::OCI_MANIFEST, "x");
//! ```

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::json;

use super::registry::{Registry, RegistryAuth};
use super::{TestDir, require};

/// One HTTP request as the tiny server saw it.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// Path and query, e.g. `/token?scope=...`.
    pub target: String,
    /// Headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// The body (by `Content-Length`).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first header with this (lowercase) name.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response from a handler.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers (`Content-Length` and `Connection` are added).
    pub headers: Vec<(String, String)>,
    /// Body (not sent for HEAD, but its length is, unless a
    /// `Content-Length` header is given).
    pub body: Vec<u8>,
}

type Handler = dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync;

/// A minimal threaded HTTP/1.1 server on 127.0.0.1 (one request per
/// connection), for test doubles: token servers, proxies that drop headers.
pub struct TinyServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl TinyServer {
    /// Serve `handler` on a free loopback port until dropped.
    pub fn start(handler: impl Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let h = handler.clone();
                std::thread::spawn(move || {
                    let _ = serve_conn(conn, &*h);
                });
            }
        });
        Self { addr, stop }
    }

    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for TinyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve_conn(conn: TcpStream, handler: &Handler) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body)?;
    let req = HttpRequest {
        method,
        target,
        headers,
        body,
    };
    let resp = handler(&req);
    let mut out = conn;
    let reason = match resp.status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Status",
    };
    let mut head = format!("HTTP/1.1 {} {reason}\r\nConnection: close\r\n", resp.status);
    let has_len = resp
        .headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
    for (k, v) in &resp.headers {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    if !has_len {
        let _ = write!(head, "Content-Length: {}\r\n", resp.body.len());
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if req.method != "HEAD" {
        out.write_all(&resp.body)?;
    }
    out.flush()
}

/// A Bearer token server in the style of `docker_auth`: checks Basic
/// credentials and issues RS256 JWTs granting the requested scopes.
pub struct TokenServer {
    server: TinyServer,
    dir: TestDir,
    /// The `service` the registry is configured with (the JWT `aud`).
    pub service: String,
    /// The JWT issuer.
    pub issuer: String,
    /// Every token request's scopes, in order (for asserting token reuse).
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl TokenServer {
    /// Generate a key and a self-signed certificate, and start serving
    /// `/token` for one user.
    #[must_use]
    pub fn start(user: &str, password: &str) -> Self {
        let openssl = require("openssl", "openssl");
        let dir = TestDir::new();
        let out = Command::new(&openssl)
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=microplatform-test-token",
            ])
            .arg("-keyout")
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdin(Stdio::null())
            .output()
            .expect("openssl req");
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = Command::new(&openssl)
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.join("cert.pem"))
            .output()
            .expect("openssl x509");
        assert!(der.status.success(), "openssl x509 failed");
        let x5c = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        let service = "microplatform-test-registry".to_string();
        let issuer = "microplatform-test-issuer".to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let key = dir.join("key.pem");
        let (u, p, svc, iss, reqs) = (
            user.to_string(),
            password.to_string(),
            service.clone(),
            issuer.clone(),
            requests.clone(),
        );
        let server = TinyServer::start(move |req| {
            let url = url::Url::parse(&format!("http://x{}", req.target)).expect("target");
            if url.path() != "/token" {
                return HttpResponse {
                    status: 404,
                    headers: vec![],
                    body: b"not found".to_vec(),
                };
            }
            let scopes: Vec<String> = url
                .query_pairs()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.into_owned())
                .collect();
            reqs.lock().unwrap().push(scopes.join(" "));
            let ok = req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .is_some_and(|raw| raw == format!("{u}:{p}").as_bytes());
            if !ok {
                return HttpResponse {
                    status: 401,
                    headers: vec![("Content-Type".into(), "application/json".into())],
                    body: br#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#.to_vec(),
                };
            }
            let token = sign_jwt(&openssl, &key, &x5c, &iss, &svc, &u, &scopes);
            HttpResponse {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: serde_json::to_vec(
                    &json!({"token": token, "access_token": token, "expires_in": 300}),
                )
                .unwrap(),
            }
        });
        Self {
            server,
            dir,
            service,
            issuer,
            requests,
        }
    }

    /// The token endpoint (`realm`).
    #[must_use]
    pub fn realm(&self) -> String {
        format!("{}/token", self.server.url())
    }

    /// The `auth.token` settings for `Registry::start_with`.
    #[must_use]
    pub fn registry_auth(&self) -> RegistryAuth {
        RegistryAuth::Token {
            realm: self.realm(),
            service: self.service.clone(),
            issuer: self.issuer.clone(),
            rootcertbundle: self.cert_path(),
        }
    }

    /// The certificate the registry must trust.
    #[must_use]
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// Scopes of the token requests received so far.
    #[must_use]
    pub fn scopes_requested(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// A token for `repository:REPO:pull,push`, minted directly (for seeding).
    #[must_use]
    pub fn mint(&self, repo: &str) -> String {
        sign_jwt(
            &require("openssl", "openssl"),
            &self.dir.join("key.pem"),
            &{
                let der = Command::new("openssl")
                    .args(["x509", "-outform", "DER", "-in"])
                    .arg(self.cert_path())
                    .output()
                    .expect("openssl x509");
                base64::engine::general_purpose::STANDARD.encode(der.stdout)
            },
            &self.issuer,
            &self.service,
            "seeder",
            &[format!("repository:{repo}:pull,push")],
        )
    }

    /// Push a small image (config + layer) into a token-auth registry with
    /// a minted token; returns `(manifest digest, manifest bytes)`.
    pub fn push_image(
        &self,
        reg: &Registry,
        repo: &str,
        tag: &str,
        media_type: &str,
        salt: &str,
    ) -> (String, Vec<u8>) {
        reg.with_token(self.mint(repo))
            .push_image(repo, tag, media_type, salt)
    }
}

/// An RS256 JWT with an `x5c` header, signed by `openssl dgst -sha256 -sign`.
fn sign_jwt(
    openssl: &std::path::Path,
    key: &std::path::Path,
    x5c: &str,
    issuer: &str,
    service: &str,
    subject: &str,
    scopes: &[String],
) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .flat_map(|s| s.split(' ').map(str::to_string).collect::<Vec<_>>())
        .filter_map(|s| {
            // type:name:actions, where name may contain ':' (host:port/...).
            let (typ, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(json!({"type": typ, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
        })
        .collect();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5c": [x5c]});
    let claims = json!({
        "iss": issuer, "sub": subject, "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{:x}", rand::random::<u64>()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(&header).unwrap()),
        b64(&serde_json::to_vec(&claims).unwrap())
    );
    let mut child = Command::new(openssl)
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl dgst");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(signing_input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("openssl dgst");
    assert!(
        out.status.success(),
        "openssl dgst: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("{signing_input}.{}", b64(&out.stdout))
}
