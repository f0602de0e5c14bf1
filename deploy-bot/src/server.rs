//! The agent's HTTP/1.1 server: a connection limit that sheds the connection idle (or stuck before its request head)
//! the longest, a request-head timeout that also closes idle keep-alive connections, and graceful shutdown.
//! Slow clients therefore never starve `/healthz` or webhook deliveries.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot, watch};
use tower::ServiceExt as _;

/// Connection limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection with no request in flight for this long (a slow or missing request head, or an idle
    /// keep-alive connection) is closed.
    pub header_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

/// The default connection limit: 1024, or what the open-files limit leaves after 64 descriptors for git, the
/// journal and the appliers (at least 16).
pub fn default_max_connections() -> usize {
    let soft = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse::<usize>().ok());
    match soft {
        Some(n) => n.saturating_sub(64).clamp(16, 1024),
        None => 1024,
    }
}

/// Counters the server keeps (rendered by the agent's `/metrics`).
#[derive(Debug, Default)]
pub struct ServerStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Connections closed for a slow or missing request head, or idleness.
    pub timed_out: AtomicU64,
    /// Connections closed to make room at the connection limit.
    pub shed: AtomicU64,
}

/// What the server knows of one connection; updated by its requests without the registry's lock.
struct ConnState {
    in_flight: AtomicU64,
    /// Milliseconds since the server's epoch when the connection last became idle.
    idle_since_ms: AtomicU64,
}

struct Conn {
    state: Arc<ConnState>,
    kill: Option<oneshot::Sender<()>>,
}

struct Registry {
    conns: Mutex<BTreeMap<u64, Conn>>,
    freed: Notify,
    epoch: Instant,
}

impl Default for Registry {
    fn default() -> Self {
        Self {
            conns: Mutex::default(),
            freed: Notify::new(),
            epoch: Instant::now(),
        }
    }
}

impl Registry {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn remove(&self, id: u64) {
        self.conns.lock().expect("conns").remove(&id);
        self.freed.notify_waiters();
    }

    /// Close the connection without a request in flight that has been idle longest; false when every
    /// connection is busy.
    fn shed_one(&self) -> bool {
        let mut conns = self.conns.lock().expect("conns");
        let victim = conns
            .iter()
            .filter(|(_, c)| c.state.in_flight.load(Ordering::Relaxed) == 0)
            .min_by_key(|(_, c)| c.state.idle_since_ms.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(mut c) => {
                if let Some(k) = c.kill.take() {
                    let _ = k.send(());
                }
                true
            }
            None => false,
        }
    }

    /// Close connections idle longer than `timeout`; returns how many.
    fn reap(&self, timeout: Duration) -> u64 {
        let mut n = 0;
        let now = self.now_ms();
        let timeout = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut conns = self.conns.lock().expect("conns");
        conns.retain(|_, c| {
            if c.state.in_flight.load(Ordering::Relaxed) == 0
                && now.saturating_sub(c.state.idle_since_ms.load(Ordering::Relaxed)) > timeout
            {
                if let Some(k) = c.kill.take() {
                    let _ = k.send(());
                }
                n += 1;
                false
            } else {
                true
            }
        });
        n
    }

    fn len(&self) -> usize {
        self.conns.lock().expect("conns").len()
    }
}

/// The per-connection service: the router, with the connection marked busy while a request is in flight.
#[derive(Clone)]
struct Tracked {
    router: Router,
    registry: Arc<Registry>,
    state: Arc<ConnState>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for Tracked {
    type Response = axum::response::Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.state.in_flight.fetch_add(1, Ordering::Relaxed);
        let (router, registry, state) = (
            self.router.clone(),
            self.registry.clone(),
            self.state.clone(),
        );
        Box::pin(async move {
            let res = router.oneshot(req.map(Body::new)).await;
            state
                .idle_since_ms
                .store(registry.now_ms(), Ordering::Relaxed);
            state.in_flight.fetch_sub(1, Ordering::Relaxed);
            res
        })
    }
}

/// Serve `app` on `listener` until `shutdown` resolves; then stop accepting and let requests in flight finish
/// (at most 10 s).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ServerStats>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let reaper = {
        let (registry, stats) = (registry.clone(), stats.clone());
        let tick =
            (limits.header_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(tick).await;
                let n = registry.reap(limits.header_timeout);
                if n > 0 {
                    stats.timed_out.fetch_add(n, Ordering::Relaxed);
                    tracing::debug!(
                        "closed {n} connections idle or slow for {:?}",
                        limits.header_timeout
                    );
                }
            }
        })
    };
    let mut next_id = 0u64;
    tokio::pin!(shutdown);
    loop {
        // At the limit: shed the longest-idle connection; when all are busy, wait for one to finish.
        while registry.len() >= limits.max_connections {
            if registry.shed_one() {
                stats.shed.fetch_add(1, Ordering::Relaxed);
            } else {
                let freed = registry.freed.notified();
                tokio::select! {
                    () = freed => {}
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = &mut shutdown => { return finish(reaper, &stop_tx, &registry).await; }
                }
            }
        }
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE/ENFILE and friends: make room and back off briefly instead of spinning.
                    tracing::warn!("accept: {e}");
                    if registry.shed_one() {
                        stats.shed.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
            () = &mut shutdown => { return finish(reaper, &stop_tx, &registry).await; }
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let id = next_id;
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let conn_state = Arc::new(ConnState {
            in_flight: AtomicU64::new(0),
            idle_since_ms: AtomicU64::new(registry.now_ms()),
        });
        registry.conns.lock().expect("conns").insert(
            id,
            Conn {
                state: conn_state.clone(),
                kill: Some(kill_tx),
            },
        );
        stats.open.fetch_add(1, Ordering::Relaxed);
        let svc = Tracked {
            router: app.clone(),
            registry: registry.clone(),
            state: conn_state,
        };
        let (registry, stats) = (registry.clone(), stats.clone());
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if r.is_err_and(|e| e.is_timeout()) {
                        stats.timed_out.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ = kill_rx => {}
                () = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(10), conn.as_mut()).await;
                }
            }
            registry.remove(id);
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

async fn finish(
    reaper: tokio::task::JoinHandle<()>,
    stop: &watch::Sender<bool>,
    registry: &Registry,
) -> std::io::Result<()> {
    reaper.abort();
    let _ = stop.send(true);
    let deadline = Instant::now() + Duration::from_secs(10);
    while registry.len() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
