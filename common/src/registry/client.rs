//! The registry HTTP client: per-registry auth state, token cache, retries, manifest and blob calls.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rand::Rng as _;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;

use super::auth::{Challenge, TokenResponse, parse_challenge};
use super::credentials::{self, Credential};
use super::{ClientOptions, MANIFEST_ACCEPT, ManifestInfo, Platform, RegistryError, is_index};
use crate::io::sha256_digest;
use crate::reference::Reference;

/// An async registry client. Cheap to clone (shared connection pool, auth
/// state and token cache).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

type StateCell = Arc<tokio::sync::OnceCell<Result<Arc<RegState>, RegistryError>>>;
type TokenSlot = Arc<tokio::sync::Mutex<Option<CachedToken>>>;

struct Inner {
    http: reqwest::Client,
    opts: ClientOptions,
    auth_files: Vec<PathBuf>,
    /// Per API host: base URL, challenge, credential (failures cached too).
    registries: Mutex<HashMap<String, StateCell>>,
    /// Per (base URL, scope): the current token.
    tokens: Mutex<HashMap<(String, String), TokenSlot>>,
}

struct RegState {
    /// `http://host:port` or `https://host`.
    base: String,
    challenge: RwLock<Challenge>,
    credential: Option<Credential>,
    registry: String,
}

struct CachedToken {
    token: String,
    expires: Instant,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Debug, Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Deserialize)]
struct IndexDoc {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<PlatformDoc>,
}

#[derive(Debug, Deserialize)]
struct PlatformDoc {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ManifestDoc {
    #[serde(default)]
    config: Option<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    digest: String,
}

/// Whether a registry host (`host[:port]`) is a loopback address or `localhost`.
pub(crate) fn is_loopback(host_port: &str) -> bool {
    let host = if let Some(rest) = host_port.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn host_without_port(host_port: &str) -> &str {
    if host_port.starts_with('[') {
        host_port.find(']').map_or(host_port, |i| &host_port[..=i])
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    }
}

/// The registry's error message from a body, or a short text excerpt.
pub(super) fn error_message(status: StatusCode, body: &[u8]) -> (String, Option<String>) {
    if let Ok(b) = serde_json::from_slice::<ErrorBody>(body)
        && let Some(e) = b.errors.first()
    {
        let code = (!e.code.is_empty()).then(|| e.code.clone());
        return (
            format!("{status}: {} {}", e.code, e.message)
                .trim()
                .to_string(),
            code,
        );
    }
    let text = String::from_utf8_lossy(body);
    let text: String = text.trim().chars().take(200).collect();
    if text.is_empty() {
        (status.to_string(), None)
    } else {
        (format!("{status}: {text}"), None)
    }
}

pub(super) fn header_str(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(super) fn is_valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_retryable_status(s: StatusCode) -> bool {
    s == StatusCode::TOO_MANY_REQUESTS || matches!(s.as_u16(), 500 | 502 | 503 | 504)
}

impl RegistryClient {
    /// A client with the given options.
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let http = crate::http::client_builder()
            .user_agent(opts.user_agent.clone())
            .timeout(opts.timeout)
            .connect_timeout(opts.connect_timeout)
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| RegistryError::Client {
                source: Arc::new(e),
            })?;
        let auth_files = opts
            .auth_files
            .clone()
            .unwrap_or_else(credentials::default_auth_files);
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                opts,
                auth_files,
                registries: Mutex::new(HashMap::new()),
                tokens: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The client's options.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// `http` or `https` for a registry host.
    pub fn scheme_for(&self, api_host: &str) -> &'static str {
        let insecure = is_loopback(api_host)
            || self.inner.opts.insecure_registries.iter().any(|h| {
                let h = h
                    .trim_start_matches("http://")
                    .trim_start_matches("https://")
                    .trim_end_matches('/');
                h == api_host || h == host_without_port(api_host)
            });
        if insecure { "http" } else { "https" }
    }

    /// The base URL of a reference's registry API, e.g. `http://127.0.0.1:5000`.
    pub fn base_url(&self, r: &Reference) -> String {
        format!("{}://{}", self.scheme_for(r.api_host()), r.api_host())
    }

    pub(super) fn manifest_url(&self, r: &Reference, reference: &str) -> String {
        format!(
            "{}/v2/{}/manifests/{reference}",
            self.base_url(r),
            r.repository()
        )
    }

    async fn backoff(&self, attempt: u32, retry_after: Option<Duration>) {
        let max = self.inner.opts.max_retry_delay;
        let delay = if let Some(d) = retry_after {
            d.min(max)
        } else {
            let base = self
                .inner
                .opts
                .retry_base_delay
                .saturating_mul(1u32 << attempt.min(16))
                .min(max);
            let half = base / 2;
            let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
            half + Duration::from_millis(rand::rng().random_range(0..=jitter_ms))
        };
        tokio::time::sleep(delay).await;
    }

    /// Send a request with retries on network errors, 429 and 5xx, and no auth.
    async fn send_retrying(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Response, RegistryError> {
        let max = self.inner.opts.max_retries;
        let mut attempt = 0;
        loop {
            match build().send().await {
                Err(e) => {
                    if attempt < max && (e.is_timeout() || e.is_connect() || e.is_request()) {
                        tracing::debug!(url, attempt, "retrying after error: {e}");
                        self.backoff(attempt, None).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(RegistryError::transport(url, e));
                }
                Ok(resp) if is_retryable_status(resp.status()) && attempt < max => {
                    let retry_after = header_str(&resp, "retry-after")
                        .and_then(|v| parse_retry_after(&v, std::time::SystemTime::now()));
                    tracing::debug!(url, attempt, status = %resp.status(), "retrying");
                    self.backoff(attempt, retry_after).await;
                    attempt += 1;
                }
                Ok(resp) if is_retryable_status(resp.status()) => {
                    let status = resp.status();
                    let body = resp.bytes().await.unwrap_or_default();
                    return Err(RegistryError::Network {
                        url: url.to_string(),
                        message: format!(
                            "{} (after {max} retries)",
                            error_message(status, &body).0
                        ),
                    });
                }
                Ok(resp) => return Ok(resp),
            }
        }
    }

    /// The auth state of a registry: base URL, challenge (from `GET /v2/`),
    /// credential. Computed once per registry, failures included.
    async fn state(&self, r: &Reference) -> Result<Arc<RegState>, RegistryError> {
        let host = r.api_host().to_string();
        let cell = {
            let mut map = self.inner.registries.lock().expect("registries lock");
            map.entry(host.clone()).or_default().clone()
        };
        cell.get_or_init(|| async {
            let registry = r.registry().to_string();
            let files = self.inner.auth_files.clone();
            let reg2 = registry.clone();
            let credential =
                tokio::task::spawn_blocking(move || credentials::lookup(&files, &reg2))
                    .await
                    .map_err(|e| RegistryError::CredentialsTask {
                        registry: registry.clone(),
                        source: Arc::new(e),
                    })?
                    .map_err(|e| e.for_registry(&registry))?;
            let base = self.base_url(r);
            let url = format!("{base}/v2/");
            let http = self.inner.http.clone();
            let resp = self.send_retrying(|| http.get(&url), &url).await?;
            let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                header_str(&resp, WWW_AUTHENTICATE.as_str())
                    .and_then(|h| parse_challenge(&h))
                    .unwrap_or(Challenge::None)
            } else {
                Challenge::None
            };
            tracing::debug!(%base, ?challenge, has_credential = credential.is_some(), "registry");
            Ok(Arc::new(RegState {
                base,
                challenge: RwLock::new(challenge),
                credential,
                registry,
            }))
        })
        .await
        .clone()
    }

    /// A token for `scope` at the registry, cached per registry and scope.
    async fn token(
        &self,
        state: &RegState,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        refresh: bool,
    ) -> Result<String, RegistryError> {
        let slot = {
            let mut map = self.inner.tokens.lock().expect("tokens lock");
            map.entry((state.base.clone(), scope.to_string()))
                .or_default()
                .clone()
        };
        let mut guard = slot.lock().await;
        if !refresh
            && let Some(t) = guard.as_ref()
            && t.expires > Instant::now()
        {
            return Ok(t.token.clone());
        }
        let mut url = url::Url::parse(realm).map_err(|source| RegistryError::Url {
            url: realm.to_string(),
            what: "invalid token realm".into(),
            source,
        })?;
        let http = self.inner.http.clone();
        let resp = match &state.credential {
            Some(Credential::IdentityToken(refresh_token)) => {
                // The serializer is not `Send`: finish it before any await.
                let body = {
                    let mut form = url::form_urlencoded::Serializer::new(String::new());
                    form.append_pair("grant_type", "refresh_token");
                    form.append_pair("refresh_token", refresh_token);
                    if let Some(s) = service {
                        form.append_pair("service", s);
                    }
                    form.append_pair("scope", scope);
                    form.append_pair("client_id", "microplatform-tools");
                    form.finish()
                };
                let u = url.to_string();
                self.send_retrying(
                    || {
                        http.post(u.as_str())
                            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                            .body(body.clone())
                    },
                    realm,
                )
                .await?
            }
            cred => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    // Several scopes (a cross-repository mount) are several
                    // `scope` parameters, as docker sends them.
                    for one in scope.split(' ').filter(|s| !s.is_empty()) {
                        q.append_pair("scope", one);
                    }
                }
                let u = url.to_string();
                self.send_retrying(
                    || {
                        let rb = http.get(u.as_str());
                        match cred {
                            Some(Credential::Basic { username, password }) => {
                                rb.basic_auth(username, Some(password))
                            }
                            _ => rb,
                        }
                    },
                    realm,
                )
                .await?
            }
        };
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::transport(realm, e))?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let who = if state.credential.is_some() {
                "credentials rejected"
            } else {
                "no credentials configured"
            };
            return Err(RegistryError::Auth {
                url: realm.to_string(),
                message: format!(
                    "{who} for {}: {}",
                    state.registry,
                    error_message(status, &body).0
                ),
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Protocol {
                url: realm.to_string(),
                message: format!("token request failed: {}", error_message(status, &body).0),
            });
        }
        let (token, expires_in) = serde_json::from_slice::<TokenResponse>(&body)
            .ok()
            .and_then(TokenResponse::into_token)
            .ok_or_else(|| RegistryError::Protocol {
                url: realm.to_string(),
                message: "token response has neither `token` nor `access_token`".into(),
            })?;
        // Renew a little early; the spec's default lifetime is 60 s.
        let life = Duration::from_secs(expires_in.unwrap_or(60).max(10));
        *guard = Some(CachedToken {
            token: token.clone(),
            expires: Instant::now() + life.mul_f64(0.9),
        });
        Ok(token)
    }

    async fn authorization(
        &self,
        state: &RegState,
        scope: &str,
        refresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        let challenge = state.challenge.read().expect("challenge lock").clone();
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(match &state.credential {
                Some(Credential::Basic { username, password }) => Some(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                )),
                _ => None,
            }),
            Challenge::Bearer { realm, service, .. } => {
                let t = self
                    .token(state, &realm, service.as_deref(), scope, refresh)
                    .await?;
                Ok(Some(format!("Bearer {t}")))
            }
        }
    }

    /// An authenticated request with retries. `actions` is the scope's
    /// action list (`pull` or `pull,push`).
    async fn send(
        &self,
        r: &Reference,
        method: &Method,
        url: &str,
        actions: &str,
        headers: &HeaderMap,
        body: Option<&[u8]>,
    ) -> Result<Response, RegistryError> {
        let scope = format!("repository:{}:{actions}", r.repository());
        self.send_scoped(r, method, url, &scope, headers, body, None)
            .await
    }

    /// Like `send`, with an explicit token scope: one or several
    /// space-separated `repository:<name>:<actions>` (a cross-repository
    /// mount needs push on the target and pull on the source). `timeout`
    /// replaces the client's per-request timeout (a blob's body takes longer).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send_scoped(
        &self,
        r: &Reference,
        method: &Method,
        url: &str,
        scope: &str,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        timeout: Option<Duration>,
    ) -> Result<Response, RegistryError> {
        let state = self.state(r).await?;
        let scope = scope.to_string();
        let body = body.map(bytes_of);
        let mut reauthed = false;
        loop {
            let auth = self.authorization(&state, &scope, reauthed).await?;
            let http = &self.inner.http;
            let resp = self
                .send_retrying(
                    || {
                        let mut rb = http.request(method.clone(), url).headers(headers.clone());
                        if let Some(a) = &auth {
                            rb = rb.header(AUTHORIZATION, a);
                        }
                        if let Some(b) = &body {
                            rb = rb.body(b.clone());
                        }
                        if let Some(t) = timeout {
                            rb = rb.timeout(t);
                        }
                        rb
                    },
                    url,
                )
                .await?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED {
                let fresh =
                    header_str(&resp, WWW_AUTHENTICATE.as_str()).and_then(|h| parse_challenge(&h));
                let had_auth = auth.is_some();
                if let Some(ch) = fresh.clone() {
                    let mut cur = state.challenge.write().expect("challenge lock");
                    let same_kind = matches!(
                        (&*cur, &ch),
                        (Challenge::Basic, Challenge::Basic)
                            | (Challenge::Bearer { .. }, Challenge::Bearer { .. })
                    );
                    if !same_kind {
                        *cur = ch;
                    }
                }
                let can_retry = !reauthed
                    && (fresh.is_some_and(|c| matches!(c, Challenge::Bearer { .. }))
                        || (!had_auth && state.credential.is_some()));
                if can_retry {
                    reauthed = true;
                    continue;
                }
                let body = resp.bytes().await.unwrap_or_default();
                let why = if had_auth {
                    "credentials rejected"
                } else {
                    "no credentials configured"
                };
                return Err(RegistryError::Auth {
                    url: url.to_string(),
                    message: format!(
                        "{why} for {}: {}",
                        state.registry,
                        error_message(status, &body).0
                    ),
                });
            }
            if status == StatusCode::FORBIDDEN {
                let body = resp.bytes().await.unwrap_or_default();
                return Err(RegistryError::Auth {
                    url: url.to_string(),
                    message: format!("access denied: {}", error_message(status, &body).0),
                });
            }
            return Ok(resp);
        }
    }

    /// One authenticated request with a body that cannot be replayed (a
    /// stream): no retries and no re-authentication here; the caller starts
    /// the whole transfer again. The token is the one cached for `scope`
    /// (the caller has just used it for the request before).
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn send_once(
        &self,
        r: &Reference,
        method: &Method,
        url: &str,
        scope: &str,
        headers: &HeaderMap,
        body: reqwest::Body,
        timeout: Duration,
    ) -> Result<Response, RegistryError> {
        let state = self.state(r).await?;
        let auth = self.authorization(&state, scope, false).await?;
        let mut rb = self
            .inner
            .http
            .request(method.clone(), url)
            .headers(headers.clone())
            .body(body)
            .timeout(timeout);
        if let Some(a) = &auth {
            rb = rb.header(AUTHORIZATION, a);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| RegistryError::transport(url, e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(RegistryError::Auth {
                url: url.to_string(),
                message: format!(
                    "{} rejected the upload: {}",
                    state.registry,
                    error_message(status, &body).0
                ),
            });
        }
        Ok(resp)
    }

    /// The number of retries configured.
    pub(super) fn max_retries(&self) -> u32 {
        self.inner.opts.max_retries
    }

    /// Wait before retry `attempt` (exponential backoff with jitter).
    pub(super) async fn wait_before_retry(&self, attempt: u32) {
        self.backoff(attempt, None).await;
    }

    pub(super) fn accept_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT, HeaderValue::from_static(MANIFEST_ACCEPT));
        h
    }

    /// `HEAD` a manifest by the reference's digest (when pinned) or tag.
    /// `Ok(None)` when the registry answers 404. Falls back to `GET` when
    /// `HEAD` is not allowed or `Docker-Content-Digest` is missing.
    pub async fn head_manifest(
        &self,
        r: &Reference,
    ) -> Result<Option<ManifestInfo>, RegistryError> {
        let url = self.manifest_url(r, r.manifest_reference());
        let resp = self
            .send(
                r,
                &Method::HEAD,
                &url,
                "pull",
                &Self::accept_headers(),
                None,
            )
            .await?;
        let status = resp.status();
        match status.as_u16() {
            200 => {
                if let Some(digest) =
                    header_str(&resp, "docker-content-digest").filter(|d| is_valid_digest(d))
                {
                    let media_type = header_str(&resp, CONTENT_TYPE.as_str()).unwrap_or_default();
                    let size = resp
                        .headers()
                        .get(reqwest::header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok());
                    return Ok(Some(ManifestInfo {
                        digest,
                        media_type,
                        size,
                    }));
                }
                tracing::debug!(url, "no Docker-Content-Digest on HEAD; falling back to GET");
            }
            404 => return Ok(None),
            400 | 405 | 501 => {
                tracing::debug!(url, %status, "HEAD not allowed; falling back to GET");
            }
            _ => {
                return Err(RegistryError::Protocol {
                    url,
                    message: format!("unexpected status {status} for HEAD"),
                });
            }
        }
        match self.get_manifest(r).await {
            Ok((body, media_type, digest)) => Ok(Some(ManifestInfo {
                digest,
                media_type,
                size: Some(body.len() as u64),
            })),
            Err(RegistryError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET` a manifest: `(bytes, media type, digest)`. The digest is the
    /// sha256 of the bytes served; a pinned reference is verified against it.
    pub async fn get_manifest(
        &self,
        r: &Reference,
    ) -> Result<(Vec<u8>, String, String), RegistryError> {
        self.get_manifest_by(r, r.manifest_reference()).await
    }

    async fn get_manifest_by(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String), RegistryError> {
        let url = self.manifest_url(r, reference);
        let resp = self
            .send(r, &Method::GET, &url, "pull", &Self::accept_headers(), None)
            .await?;
        let status = resp.status();
        let media_type = header_str(&resp, CONTENT_TYPE.as_str()).unwrap_or_default();
        let header_digest = header_str(&resp, "docker-content-digest");
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::transport(&url, e))?;
        if status == StatusCode::NOT_FOUND {
            let (_, mut code) = error_message(status, &body);
            // distribution says MANIFEST_UNKNOWN for a missing repository
            // too; the tag list tells them apart.
            if code.as_deref() != Some("NAME_UNKNOWN") && !self.repository_exists(r).await? {
                code = Some("NAME_UNKNOWN".into());
            }
            let what = if code.as_deref() == Some("NAME_UNKNOWN") {
                format!("repository {}", r.name())
            } else {
                format!("manifest {}:{reference}", r.name()).replace(":sha256:", "@sha256:")
            };
            return Err(RegistryError::NotFound { url, what, code });
        }
        if !status.is_success() {
            return Err(RegistryError::Protocol {
                message: format!("GET manifest: {}", error_message(status, &body).0),
                url,
            });
        }
        let digest = sha256_digest(&body);
        if let Some(h) = header_digest
            && h != digest
        {
            tracing::warn!(
                url,
                header = h,
                computed = digest,
                "Docker-Content-Digest differs from the sha256 of the body"
            );
        }
        if reference.starts_with("sha256:") && reference != digest {
            return Err(RegistryError::Protocol {
                url,
                message: format!(
                    "manifest content has digest {digest}, not the requested {reference}"
                ),
            });
        }
        Ok((body.to_vec(), media_type, digest))
    }

    /// Whether the repository exists (`GET /v2/<name>/tags/list` is not 404).
    pub async fn repository_exists(&self, r: &Reference) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{}/tags/list?n=1", self.base_url(r), r.repository());
        let resp = self
            .send(r, &Method::GET, &url, "pull", &HeaderMap::new(), None)
            .await?;
        Ok(resp.status() != StatusCode::NOT_FOUND)
    }

    /// `PUT` a manifest under the reference's tag (or digest); returns its digest.
    pub async fn put_manifest(
        &self,
        r: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let url = self.manifest_url(r, r.manifest_reference());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::Protocol {
                url: url.clone(),
                message: format!("invalid media type {media_type:?}"),
            })?,
        );
        let resp = self
            .send(r, &Method::PUT, &url, "pull,push", &headers, Some(bytes))
            .await?;
        let status = resp.status();
        let header_digest = header_str(&resp, "docker-content-digest");
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(RegistryError::Protocol {
                message: format!("PUT manifest: {}", error_message(status, &body).0),
                url,
            });
        }
        let digest = sha256_digest(bytes);
        if let Some(h) = header_digest
            && h != digest
        {
            tracing::warn!(
                url,
                header = h,
                computed = digest,
                "registry reports another digest"
            );
        }
        Ok(digest)
    }

    /// Whether a blob exists in the reference's repository.
    pub async fn blob_exists(&self, r: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base_url(r), r.repository());
        let resp = self
            .send(r, &Method::HEAD, &url, "pull", &HeaderMap::new(), None)
            .await?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            s => Err(RegistryError::Protocol {
                url,
                message: format!("unexpected status {s} for HEAD blob"),
            }),
        }
    }

    /// Download a blob and verify its sha256.
    pub async fn get_blob(&self, r: &Reference, digest: &str) -> Result<Vec<u8>, RegistryError> {
        let url = format!("{}/v2/{}/blobs/{digest}", self.base_url(r), r.repository());
        let resp = self
            .send(r, &Method::GET, &url, "pull", &HeaderMap::new(), None)
            .await?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| RegistryError::transport(&url, e))?;
        if status == StatusCode::NOT_FOUND {
            let (_, code) = error_message(status, &body);
            return Err(RegistryError::NotFound {
                url,
                what: format!("blob {digest}"),
                code,
            });
        }
        if !status.is_success() {
            return Err(RegistryError::Protocol {
                message: format!("GET blob: {}", error_message(status, &body).0),
                url,
            });
        }
        if digest.starts_with("sha256:") && sha256_digest(&body) != digest {
            return Err(RegistryError::Protocol {
                url,
                message: "blob content does not match its digest".into(),
            });
        }
        Ok(body.to_vec())
    }

    /// The digest a reference names. Without a platform: the digest of what
    /// the tag names (the index for multi-platform images); a pinned
    /// reference is checked to exist and its digest returned. With a
    /// platform: the digest of that platform's manifest (an index is
    /// searched; a single manifest must have that platform in its config).
    pub async fn resolve(
        &self,
        r: &Reference,
        platform: Option<&Platform>,
    ) -> Result<String, RegistryError> {
        let Some(platform) = platform else {
            if let Some(info) = self.head_manifest(r).await? {
                return Ok(r.digest().map_or(info.digest, str::to_string));
            }
            // HEAD says 404 without a reason; GET tells tag from repository.
            let (_, _, digest) = self.get_manifest(r).await?;
            return Ok(digest);
        };
        let (body, media_type, digest) = self.get_manifest(r).await?;
        let url = self.manifest_url(r, r.manifest_reference());
        let not_found = |url: String| RegistryError::NotFound {
            url,
            what: format!("platform {platform} in {}", r.familiar()),
            code: None,
        };
        let doc_kind = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            });
        let index = is_index(&media_type) || doc_kind.as_deref().is_some_and(is_index);
        if index {
            let idx: IndexDoc = serde_json::from_slice(&body)
                .map_err(|e| RegistryError::json(&url, "invalid index", e))?;
            return idx
                .manifests
                .iter()
                .find(|m| {
                    m.platform.as_ref().is_some_and(|p| {
                        platform.matches(&p.os, &p.architecture, p.variant.as_deref())
                    })
                })
                .map(|m| m.digest.clone())
                .ok_or_else(|| not_found(url));
        }
        let manifest: ManifestDoc = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::json(&url, "invalid manifest", e))?;
        let Some(config) = manifest.config else {
            return Err(RegistryError::Protocol {
                url,
                message: "manifest has no config".into(),
            });
        };
        let cfg = self.get_blob(r, &config.digest).await?;
        let p: PlatformDoc = serde_json::from_slice(&cfg)
            .map_err(|e| RegistryError::json(&url, "invalid image config", e))?;
        if platform.matches(&p.os, &p.architecture, p.variant.as_deref()) {
            Ok(digest)
        } else {
            Err(not_found(url))
        }
    }
}

fn bytes_of(b: &[u8]) -> bytes_compat::Bytes {
    bytes_compat::Bytes::copy_from_slice(b)
}

/// `reqwest::Body` accepts `Vec<u8>`; cloning a `Vec` per retry is fine for
/// manifests (kilobytes).
mod bytes_compat {
    #[derive(Clone)]
    pub struct Bytes(Vec<u8>);
    impl Bytes {
        pub fn copy_from_slice(b: &[u8]) -> Self {
            Self(b.to_vec())
        }
    }
    impl From<Bytes> for reqwest::Body {
        fn from(b: Bytes) -> Self {
            reqwest::Body::from(b.0)
        }
    }
}

/// A `Retry-After` value (RFC 9110): delay seconds, or an HTTP date (a date in the past means
/// now). `None` when it is neither.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 22:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 22:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 21:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[tokio::test]
    async fn an_unreachable_registry_is_a_transport_error_caused_by_the_http_error() {
        // A port nobody listens on: the connection is refused at once.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let client = RegistryClient::new(ClientOptions {
            max_retries: 0,
            auth_files: Some(Vec::new()),
            ..ClientOptions::default()
        })
        .unwrap();
        let r = Reference::parse(&format!("127.0.0.1:{port}/shop/api:1")).unwrap();
        let e = client.head_manifest(&r).await.unwrap_err();
        assert!(matches!(e, RegistryError::Transport { .. }), "{e}");
        assert_eq!(e.exit_code(), crate::exit::NETWORK);
        let cause = std::error::Error::source(&e).expect("a source");
        let http = cause
            .downcast_ref::<Arc<reqwest::Error>>()
            .expect("the reqwest::Error");
        assert!(http.is_connect(), "{http}");
        assert!(
            http.url().is_none(),
            "the URL is said once, by the outer error"
        );
        // The message holds the whole chain, so a report printing the chain adds nothing.
        let line = e.to_string();
        let mut c = Some(cause);
        while let Some(x) = c {
            assert!(line.contains(&x.to_string()), "{line} lacks {x}");
            c = x.source();
        }
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com"));
        assert!(!is_loopback("10.0.0.1:5000"));
    }

    #[test]
    fn scheme_honours_insecure_list() {
        let c = RegistryClient::new(ClientOptions {
            insecure_registries: vec!["reg.internal:5000".into(), "other.lan".into()],
            ..ClientOptions::default()
        })
        .unwrap();
        assert_eq!(c.scheme_for("127.0.0.1:5000"), "http");
        assert_eq!(c.scheme_for("reg.internal:5000"), "http");
        assert_eq!(c.scheme_for("other.lan:443"), "http");
        assert_eq!(c.scheme_for("quay.io"), "https");
    }
}
