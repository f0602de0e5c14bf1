//! The local platform's ingress for Swarm stacks: an HTTP reverse proxy that routes by `Host` and path prefix to the services that carry stackgen's ingress labels, the way an Ingress controller does on Kubernetes.
//!
//! stackgen marks every service with an ingress in its compose output with
//! the labels [`LABEL_HOST`], [`LABEL_PATH`] and [`LABEL_PORT`], and publishes
//! that port in `host` mode with no fixed number, so Swarm gives each task a
//! free loopback port and two branches never clash. The proxy discovers the
//! routes from the engine (two Engine API calls, `GET /services` and `GET
//! /tasks`, over `DOCKER_HOST`'s socket; the `docker` CLI for other hosts such
//! as `ssh://`), caches them briefly, and forwards each request to a task's
//! published port: the longest matching path prefix of the request's host
//! wins (Kubernetes' `Prefix` path type: `/a` matches `/a` and `/a/b`, not
//! `/ab`). Names under `.localhost` resolve to loopback, so a URL such as
//! `http://feature-x.shop.dev.localhost:8088/` opens with no DNS set-up.
//! Curl and browsers try `::1` before `127.0.0.1` for such names, so the
//! proxy listens on both ([`Listen::Localhost`]): on `127.0.0.1` alone, the
//! engine may publish a task's port on `[::]` under the same number, and the
//! request would reach that task instead of the proxy.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::error::{Error, Result};

pub use microplatform_common::ingress::{LABEL_HOST, LABEL_PATH, LABEL_PORT, prefix_matches};

/// Where the proxy listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// `localhost:PORT`: every loopback address `localhost` names, `127.0.0.1`
    /// and `::1` (the latter skipped on a host without IPv6).
    Localhost(u16),
    /// One address (`127.0.0.1:8088`, `[::1]:8088`, `0.0.0.0:80`).
    Addr(SocketAddr),
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Some(port) = s.strip_prefix("localhost:") {
            return port
                .parse()
                .map(Listen::Localhost)
                .map_err(|_| format!("{s}: expected localhost:PORT with a port from 0 to 65535"));
        }
        s.parse().map(Listen::Addr).map_err(|_| {
            format!(
                "{s}: expected localhost:PORT or an address such as 127.0.0.1:8088 or [::1]:8088"
            )
        })
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Localhost(port) => write!(f, "localhost:{port}"),
            Listen::Addr(a) => write!(f, "{a}"),
        }
    }
}

impl Listen {
    /// Bind the listeners: for `localhost:PORT`, `127.0.0.1` must bind and
    /// `::1` must too unless the host has no IPv6 loopback.
    async fn bind(self) -> Result<Vec<tokio::net::TcpListener>> {
        let bind = |addr: SocketAddr| async move {
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| (addr, e))
        };
        let io = |(addr, source): (SocketAddr, std::io::Error)| Error::Io {
            path: format!("listen {addr}"),
            source,
        };
        match self {
            Listen::Addr(a) => Ok(vec![bind(a).await.map_err(io)?]),
            Listen::Localhost(port) => {
                let v4 = bind(SocketAddr::from(([127, 0, 0, 1], port)))
                    .await
                    .map_err(io)?;
                // The same port on ::1 (port 0: the one the kernel gave v4).
                let port = v4.local_addr().map_err(|e| Error::io("listen", e))?.port();
                match bind(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port))).await {
                    Ok(v6) => Ok(vec![v4, v6]),
                    Err((_, e))
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::Unsupported
                        ) || e.raw_os_error() == Some(97) =>
                    {
                        tracing::warn!(error = %e, "ingress: no IPv6 loopback; listening on 127.0.0.1 only");
                        Ok(vec![v4])
                    }
                    Err(e) => Err(io(e)),
                }
            }
        }
    }
}

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Where to listen.
    pub listen: Listen,
    /// The swarm manager's `DOCKER_HOST` (`unix:///var/run/docker.sock` when unset):
    /// `unix://` and `tcp://` are asked through the Engine API, anything else
    /// through the CLI below.
    pub docker_host: Option<String>,
    /// The `docker` CLI, for hosts the Engine API client does not reach.
    pub docker: PathBuf,
    /// How long discovered routes are reused before the engine is asked again.
    pub refresh: Duration,
    /// How long one upstream request may take.
    pub upstream_timeout: Duration,
}

/// One route: a host and path prefix served by the tasks of one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The `Host` it answers for (lower case, no port).
    pub host: String,
    /// The path prefix (starts with `/`).
    pub path: String,
    /// The Swarm service (`<stack>_<service>`).
    pub service: String,
    /// The container port.
    pub port: u16,
    /// The loopback ports the running tasks publish it on.
    pub upstreams: Vec<u16>,
}

/// The routes, by host, longest prefix first.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    by_host: BTreeMap<String, Vec<Route>>,
}

impl RouteTable {
    /// A table of these routes.
    pub fn new(routes: Vec<Route>) -> Self {
        let mut by_host: BTreeMap<String, Vec<Route>> = BTreeMap::new();
        for r in routes {
            by_host.entry(r.host.clone()).or_default().push(r);
        }
        for v in by_host.values_mut() {
            v.sort_by(|a, b| {
                b.path
                    .len()
                    .cmp(&a.path.len())
                    .then_with(|| a.service.cmp(&b.service))
            });
        }
        Self { by_host }
    }

    /// The route of a request: its host (any port stripped, any case) and path.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Route> {
        let host = strip_port(host).to_ascii_lowercase();
        self.by_host
            .get(host.trim_end_matches('.'))?
            .iter()
            .find(|r| prefix_matches(&r.path, path))
    }

    /// Every route, sorted by host then path.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.by_host.values().flat_map(|v| v.iter().rev())
    }

    /// Whether there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        // [::1]:8088
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// Routes from `docker service inspect` and `docker inspect` (tasks) output.
///
/// `services` is the JSON array `docker service inspect` prints, `tasks` the
/// array `docker inspect` prints for the running tasks of those services, and
/// `ipv4_ports` the IPv4 host bindings (target port, host port) of the tasks'
/// containers, by container id (see [`ipv4_bindings`]); a task whose container
/// is not in it (another node) falls back to its `PortStatus`.
pub fn routes_from_inspect<S: std::hash::BuildHasher>(
    services: &serde_json::Value,
    tasks: &serde_json::Value,
    ipv4_ports: &HashMap<String, Vec<(u16, u16)>, S>,
) -> Vec<Route> {
    let mut ports_of: BTreeMap<(String, u16), Vec<u16>> = BTreeMap::new();
    for t in tasks.as_array().into_iter().flatten() {
        let Some(service_id) = t["ServiceID"].as_str() else {
            continue;
        };
        if t["Status"]["State"].as_str() != Some("running") {
            continue;
        }
        // The container's own IPv4 bindings when known: a task's PortStatus lists the
        // IPv4 and the IPv6 binding without saying which is which, and the engine
        // numbers them from two pools, so the IPv6 number on 127.0.0.1 may be another
        // container's port.
        let mut add = |target: u16, published: u16| {
            let list = ports_of
                .entry((service_id.to_string(), target))
                .or_default();
            if !list.contains(&published) {
                list.push(published);
            }
        };
        if let Some(bound) = t["Status"]["ContainerStatus"]["ContainerID"]
            .as_str()
            .and_then(|c| ipv4_ports.get(c))
        {
            for &(target, published) in bound {
                add(target, published);
            }
            continue;
        }
        for p in t["Status"]["PortStatus"]["Ports"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let (Some(target), Some(published)) =
                (p["TargetPort"].as_u64(), p["PublishedPort"].as_u64())
            else {
                continue;
            };
            if p["PublishMode"].as_str() != Some("host") {
                continue;
            }
            let (Ok(target), Ok(published)) = (u16::try_from(target), u16::try_from(published))
            else {
                continue;
            };
            add(target, published);
        }
    }
    let mut routes = Vec::new();
    for s in services.as_array().into_iter().flatten() {
        let labels = &s["Spec"]["Labels"];
        let (Some(host), Some(port)) = (
            labels[LABEL_HOST].as_str(),
            labels[LABEL_PORT]
                .as_str()
                .and_then(|p| p.parse::<u16>().ok()),
        ) else {
            continue;
        };
        let path = labels[LABEL_PATH].as_str().unwrap_or("/");
        let id = s["ID"].as_str().unwrap_or_default().to_string();
        let mut upstreams = ports_of.remove(&(id, port)).unwrap_or_default();
        upstreams.sort_unstable();
        routes.push(Route {
            host: host.to_ascii_lowercase(),
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
            service: s["Spec"]["Name"].as_str().unwrap_or_default().to_string(),
            port,
            upstreams,
        });
    }
    routes
}

/// How routes are asked from the engine.
enum Engine {
    /// The Engine API over HTTP (a unix socket or `tcp://`): two requests.
    Api {
        client: reqwest::Client,
        base: String,
    },
    /// The `docker` CLI (`ssh://` and other hosts): one call per service.
    Cli(PathBuf),
}

impl Engine {
    fn new(docker_host: Option<&str>, docker: &Path) -> Result<Self> {
        let host = docker_host
            .filter(|h| !h.is_empty())
            .unwrap_or("unix:///var/run/docker.sock");
        let builder = microplatform_common::http::client_builder()
            .timeout(Duration::from_secs(10))
            .no_proxy();
        let (builder, base) = if let Some(path) = host.strip_prefix("unix://") {
            (builder.unix_socket(path), "http://docker".to_string())
        } else if let Some(addr) = host.strip_prefix("tcp://") {
            (builder, format!("http://{}", addr.trim_end_matches('/')))
        } else {
            return Ok(Self::Cli(docker.to_path_buf()));
        };
        let client = builder
            .build()
            .map_err(|e| Error::setup("engine API client", e))?;
        Ok(Self::Api { client, base })
    }

    /// The current routes.
    async fn discover(&self) -> Result<Vec<Route>> {
        match self {
            Self::Api { client, base } => {
                let filter = |f: serde_json::Value| {
                    url::form_urlencoded::byte_serialize(f.to_string().as_bytes())
                        .collect::<String>()
                };
                let services = api_get(
                    client,
                    &format!(
                        "{base}/services?filters={}",
                        filter(serde_json::json!({ "label": [LABEL_HOST] }))
                    ),
                )
                .await?;
                if services.as_array().is_none_or(Vec::is_empty) {
                    return Ok(Vec::new());
                }
                let tasks = api_get(
                    client,
                    &format!(
                        "{base}/tasks?filters={}",
                        filter(serde_json::json!({ "desired-state": ["running"] }))
                    ),
                )
                .await?;
                // The containers of the running tasks of those services, on this node.
                let wanted: std::collections::HashSet<&str> = services
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s["ID"].as_str())
                    .collect();
                let ids: Vec<String> = tasks
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|t| {
                        t["Status"]["State"].as_str() == Some("running")
                            && t["ServiceID"]
                                .as_str()
                                .is_some_and(|id| wanted.contains(id))
                    })
                    .filter_map(|t| t["Status"]["ContainerStatus"]["ContainerID"].as_str())
                    .map(str::to_string)
                    .collect();
                let inspected = futures::future::join_all(ids.iter().map(|id| {
                    let url = format!("{base}/containers/{id}/json");
                    async move { (id.clone(), api_get(client, &url).await) }
                }))
                .await;
                let ipv4: HashMap<String, Vec<(u16, u16)>> = inspected
                    .into_iter()
                    .filter_map(|(id, c)| c.ok().map(|c| (id, ipv4_bindings(&c))))
                    .collect();
                Ok(routes_from_inspect(&services, &tasks, &ipv4))
            }
            Self::Cli(docker) => discover_cli(docker).await,
        }
    }
}

async fn api_get(client: &reqwest::Client, url: &str) -> Result<serde_json::Value> {
    let api = |e: reqwest::Error, hint| Error::EngineApi {
        url: url.to_string(),
        source: e.without_url(),
        hint,
    };
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| api(e, " (is DOCKER_HOST the swarm manager?)"))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| api(e, ""))?;
    if !status.is_success() {
        return Err(Error::External {
            program: format!("docker engine API GET {url}"),
            message: format!("HTTP {status}: {}", body.trim()),
        });
    }
    parse_json(&body)
}

/// The IPv4 host bindings of a container (`docker inspect`'s `NetworkSettings.Ports`):
/// (container port, host port) for each TCP port bound on `0.0.0.0` or `127.0.0.1`.
pub fn ipv4_bindings(container: &serde_json::Value) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for (key, bindings) in container["NetworkSettings"]["Ports"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let Some(target) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        for b in bindings.as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or_default();
            if !matches!(ip, "0.0.0.0" | "127.0.0.1" | "") {
                continue;
            }
            if let Some(port) = b["HostPort"].as_str().and_then(|p| p.parse::<u16>().ok()) {
                out.push((target, port));
            }
        }
    }
    out
}

/// Asks the engine for the current routes through the `docker` CLI.
async fn discover_cli(docker: &PathBuf) -> Result<Vec<Route>> {
    let ids = docker_out(
        docker,
        &[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label={LABEL_HOST}"),
        ],
    )
    .await?;
    let ids: Vec<&str> = ids.split_whitespace().collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["service", "inspect"];
    args.extend(&ids);
    let services: serde_json::Value = parse_json(&docker_out(docker, &args).await?)?;
    let mut task_ids = Vec::new();
    for id in &ids {
        let out = docker_out(
            docker,
            &[
                "service",
                "ps",
                "-q",
                "--no-trunc",
                "--filter",
                "desired-state=running",
                id,
            ],
        )
        .await?;
        task_ids.extend(out.split_whitespace().map(str::to_string));
    }
    let tasks = if task_ids.is_empty() {
        serde_json::Value::Array(Vec::new())
    } else {
        let mut args = vec!["inspect", "--type", "task"];
        args.extend(task_ids.iter().map(String::as_str));
        parse_json(&docker_out(docker, &args).await?)?
    };
    Ok(routes_from_inspect(&services, &tasks, &HashMap::new()))
}

fn parse_json(text: &str) -> Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|source| Error::ExternalJson {
        program: "docker".into(),
        what: "unexpected inspect output",
        source,
    })
}

async fn docker_out(docker: &PathBuf, args: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(docker)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|source| Error::Spawn {
            program: docker.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::External {
            program: format!("docker {}", args.join(" ")),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

struct Proxy {
    config: IngressConfig,
    engine: Engine,
    client: reqwest::Client,
    table: Mutex<(Option<Instant>, Arc<RouteTable>)>,
    next: AtomicUsize,
}

impl Proxy {
    /// The route table, asked anew from the engine when older than `refresh` (or when `force`).
    async fn table(&self, force: bool) -> Result<Arc<RouteTable>> {
        let mut guard = self.table.lock().await;
        let fresh = guard.0.is_some_and(|at| at.elapsed() < self.config.refresh);
        if fresh && !force {
            return Ok(guard.1.clone());
        }
        let table = Arc::new(RouteTable::new(self.engine.discover().await?));
        *guard = (Some(Instant::now()), table.clone());
        Ok(table)
    }
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1), never forwarded.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn forwardable(name: &HeaderName) -> bool {
    !HOP_BY_HOP.contains(&name.as_str())
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    State(proxy): State<Arc<Proxy>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request<Body>,
) -> Response<Body> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or_default()
        .to_string();
    let path = req.uri().path().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), ToString::to_string);
    let method = req.method().clone();
    let headers = req.headers().clone();
    // Requests with a body are forwarded once; bodiless ones may be retried
    // after the routes are refreshed (a task replaced by an update).
    let body = match axum::body::to_bytes(req.into_body(), 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}\n"),
            );
        }
    };
    for attempt in 0..2 {
        let table = match proxy.table(attempt > 0).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "ingress: route discovery failed");
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("ingress: cannot list the routes from the engine: {e}\n"),
                );
            }
        };
        let Some(route) = table.lookup(&host, &path) else {
            if attempt == 0 {
                continue; // a stack deployed a moment ago: ask the engine once more
            }
            let known: Vec<String> = table
                .routes()
                .map(|r| {
                    let ports: Vec<String> = r.upstreams.iter().map(u16::to_string).collect();
                    format!(
                        "  http://{}{}  -> {} (port {} on tasks at {})",
                        r.host,
                        r.path,
                        r.service,
                        r.port,
                        if ports.is_empty() {
                            "none running".to_string()
                        } else {
                            ports.join(", ")
                        }
                    )
                })
                .collect();
            return text(
                StatusCode::NOT_FOUND,
                format!(
                    "ingress: no route for host {host:?} and path {path:?}\nroutes:\n{}\n",
                    if known.is_empty() {
                        "  (none: no running service carries the label dev.microplatform.ingress.host)".to_string()
                    } else {
                        known.join("\n")
                    }
                ),
            );
        };
        if route.upstreams.is_empty() {
            if attempt == 0 {
                continue;
            }
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "ingress: {} has no running task publishing port {} (docker service ps {})\n",
                    route.service, route.port, route.service
                ),
            );
        }
        let i = proxy.next.fetch_add(1, Ordering::Relaxed) % route.upstreams.len();
        let url = format!("http://127.0.0.1:{}{path_and_query}", route.upstreams[i]);
        let mut out = proxy.client.request(method.clone(), &url);
        for (name, value) in &headers {
            if forwardable(name) {
                out = out.header(name, value);
            }
        }
        out = out
            .header("x-forwarded-for", peer.ip().to_string())
            .header("x-forwarded-host", host.clone())
            .header("x-forwarded-proto", "http")
            .body(body.clone());
        match out.send().await {
            Ok(resp) => {
                tracing::debug!(%host, %path, service = %route.service, status = resp.status().as_u16(), "ingress");
                let mut r = Response::builder().status(resp.status());
                if let Some(h) = r.headers_mut() {
                    copy_headers(resp.headers(), h);
                }
                return r
                    .body(Body::from_stream(resp.bytes_stream()))
                    .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, format!("{e}\n")));
            }
            Err(e) if attempt == 0 && e.is_connect() => {
                tracing::info!(service = %route.service, error = %e, "ingress: upstream gone, refreshing routes");
            }
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    format!("ingress: {} did not answer at {url}: {e}\n", route.service),
                );
            }
        }
    }
    text(
        StatusCode::BAD_GATEWAY,
        "ingress: no upstream answered\n".into(),
    )
}

fn copy_headers(from: &reqwest::header::HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if forwardable(name) {
            to.append(name, value.clone());
        }
    }
}

/// Runs the proxy until SIGINT or SIGTERM.
pub async fn run(config: IngressConfig) -> Result<()> {
    let client = microplatform_common::http::client_builder()
        .timeout(config.upstream_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| Error::setup("http client", e))?;
    let listeners = config.listen.bind().await?;
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    tracing::info!(listen = %addrs.join(" "), "ingress: serving");
    let engine = Engine::new(config.docker_host.as_deref(), &config.docker)?;
    let proxy = Arc::new(Proxy {
        config,
        engine,
        client,
        table: Mutex::new((None, Arc::new(RouteTable::default()))),
        next: AtomicUsize::new(0),
    });
    let app = axum::Router::new().fallback(handle).with_state(proxy);
    let servers = listeners.into_iter().map(|listener| {
        let app = app.clone();
        async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown())
            .await
            .map_err(|e| Error::setup("ingress server", e))
        }
    });
    futures::future::try_join_all(servers).await?;
    Ok(())
}

async fn shutdown() {
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(host: &str, path: &str, service: &str) -> Route {
        Route {
            host: host.into(),
            path: path.into(),
            service: service.into(),
            port: 8080,
            upstreams: vec![1],
        }
    }

    #[test]
    fn longest_prefix_of_the_host_wins_on_segment_boundaries() {
        let t = RouteTable::new(vec![
            route("a.localhost", "/", "s_web"),
            route("a.localhost", "/cgi-bin/greet", "s_api"),
            route("b.localhost", "/", "t_web"),
        ]);
        assert_eq!(t.lookup("a.localhost:8088", "/").unwrap().service, "s_web");
        assert_eq!(t.lookup("A.LOCALHOST", "/").unwrap().service, "s_web");
        assert_eq!(
            t.lookup("a.localhost", "/cgi-bin/greet").unwrap().service,
            "s_api"
        );
        assert_eq!(
            t.lookup("a.localhost", "/cgi-bin/greet/x").unwrap().service,
            "s_api"
        );
        assert_eq!(
            t.lookup("a.localhost", "/cgi-bin/greeting")
                .unwrap()
                .service,
            "s_web"
        );
        assert_eq!(t.lookup("b.localhost.", "/x").unwrap().service, "t_web");
        assert!(t.lookup("c.localhost", "/").is_none());
    }

    #[test]
    fn unix_and_tcp_hosts_use_the_engine_api_others_the_cli() {
        let docker = Path::new("/usr/bin/docker");
        for (host, api_base) in [
            (None, Some("http://docker")),
            (Some(""), Some("http://docker")),
            (Some("unix:///tmp/x/sock"), Some("http://docker")),
            (Some("tcp://127.0.0.1:2375"), Some("http://127.0.0.1:2375")),
            (Some("ssh://me@host"), None),
        ] {
            match Engine::new(host, docker).expect("engine") {
                Engine::Api { base, .. } => assert_eq!(Some(base.as_str()), api_base, "{host:?}"),
                Engine::Cli(path) => {
                    assert_eq!(api_base, None, "{host:?}");
                    assert_eq!(path, docker);
                }
            }
        }
    }

    #[test]
    fn prefix_rules_follow_kubernetes() {
        assert!(prefix_matches("/", "/anything"));
        assert!(prefix_matches("/a/", "/a"));
        assert!(prefix_matches("/a", "/a/b"));
        assert!(!prefix_matches("/a", "/ab"));
        assert!(strip_port("[::1]:80") == "::1");
        assert_eq!(strip_port("x.localhost:8088"), "x.localhost");
        assert_eq!(strip_port("x.localhost"), "x.localhost");
    }

    #[test]
    fn a_tasks_ipv4_binding_wins_over_its_port_status() {
        // The engine numbered the IPv6 binding from its own pool (32781); on 127.0.0.1 that number
        // may be another container's. Only the container's IPv4 binding (32780) is an upstream.
        let services = serde_json::json!([
            {"ID": "s1", "Spec": {"Name": "shop-b_web", "Labels": {
                LABEL_HOST: "b.shop.dev.localhost", LABEL_PATH: "/", LABEL_PORT: "8080"}}}
        ]);
        let tasks = serde_json::json!([
            {"ServiceID": "s1", "Status": {"State": "running", "ContainerStatus": {"ContainerID": "c1"},
             "PortStatus": {"Ports": [
                {"TargetPort": 8080, "PublishedPort": 32781, "PublishMode": "host"},
                {"TargetPort": 8080, "PublishedPort": 32780, "PublishMode": "host"}]}}}
        ]);
        let container = serde_json::json!({"NetworkSettings": {"Ports": {
            "8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32780"}, {"HostIp": "::", "HostPort": "32781"}],
            "9090/udp": [{"HostIp": "0.0.0.0", "HostPort": "40000"}]}}});
        assert_eq!(ipv4_bindings(&container), vec![(8080, 32780)]);
        let ipv4 = HashMap::from([("c1".to_string(), ipv4_bindings(&container))]);
        let routes = routes_from_inspect(&services, &tasks, &ipv4);
        assert_eq!(routes[0].upstreams, vec![32780]);
        // Without the container (a task on another node): its PortStatus.
        let routes = routes_from_inspect(&services, &tasks, &HashMap::new());
        assert_eq!(routes[0].upstreams, vec![32780, 32781]);
    }

    #[test]
    fn routes_come_from_labels_and_running_tasks_host_ports() {
        let services = serde_json::json!([
            {"ID": "s1", "Spec": {"Name": "shop-x_web", "Labels": {
                LABEL_HOST: "X.shop.dev.localhost", LABEL_PATH: "/", LABEL_PORT: "8080"}}},
            {"ID": "s2", "Spec": {"Name": "shop-x_api", "Labels": {
                LABEL_HOST: "x.shop.dev.localhost", LABEL_PATH: "cgi-bin/greet", LABEL_PORT: "8080"}}},
            {"ID": "s3", "Spec": {"Name": "other", "Labels": {}}}
        ]);
        let tasks = serde_json::json!([
            {"ServiceID": "s1", "Status": {"State": "running", "PortStatus": {"Ports": [
                {"TargetPort": 8080, "PublishedPort": 32770, "PublishMode": "host"},
                {"TargetPort": 8080, "PublishedPort": 32770, "PublishMode": "host"}]}}},
            {"ServiceID": "s1", "Status": {"State": "shutdown", "PortStatus": {"Ports": [
                {"TargetPort": 8080, "PublishedPort": 32771, "PublishMode": "host"}]}}},
            {"ServiceID": "s2", "Status": {"State": "running", "PortStatus": {"Ports": [
                {"TargetPort": 9999, "PublishedPort": 32772, "PublishMode": "host"}]}}}
        ]);
        let routes = routes_from_inspect(&services, &tasks, &HashMap::new());
        assert_eq!(
            routes,
            vec![
                Route {
                    host: "x.shop.dev.localhost".into(),
                    path: "/".into(),
                    service: "shop-x_web".into(),
                    port: 8080,
                    upstreams: vec![32770],
                },
                Route {
                    host: "x.shop.dev.localhost".into(),
                    path: "/cgi-bin/greet".into(),
                    service: "shop-x_api".into(),
                    port: 8080,
                    upstreams: vec![],
                },
            ]
        );
    }
}
