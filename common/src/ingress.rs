//! The contract between stackgen's Swarm output and `deploy-bot ingress`: the service labels that route an
//! environment's host and path prefix to a service's port.
//!
//! stackgen writes them on every service with an ingress (environments with a host) and publishes that port in
//! `host` mode with no fixed number; `deploy-bot ingress` reads them from the engine. Both take the names from here.

/// The host name a service answers for (the environment's host).
pub const LABEL_HOST: &str = "dev.microplatform.ingress.host";
/// The path prefix routed to the service (`/` for everything).
pub const LABEL_PATH: &str = "dev.microplatform.ingress.path";
/// The container port the service's ingress traffic goes to.
pub const LABEL_PORT: &str = "dev.microplatform.ingress.port";

/// Kubernetes' `Prefix` path match, element-wise on `/`-separated segments: `/a` matches `/a` and `/a/b`, not `/ab`;
/// `/` matches everything. The ingress routes by it, and stackgen checks smoke paths with it.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        return true;
    }
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}
