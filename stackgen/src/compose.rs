//! The Docker Swarm stack file (compose 3.8) of a resolved environment, for `docker stack deploy -c FILE <alias>`.

use serde_json::{Map, Value, json};

use crate::quantity;
use crate::resolve::{self, Resolved};
use crate::slug;
use crate::stack::{Port, Protocol, Service};
use microplatform_common::ingress::{LABEL_HOST, LABEL_PATH, LABEL_PORT};

fn healthcheck(s: &Service) -> Option<Value> {
    let h = s.health.as_ref()?;
    let test: Vec<String> = if let Some(http) = &h.http {
        // Compose has no HTTP probe: the image's wget does it (busybox, alpine and debian-slim have one).
        vec![
            "CMD".into(),
            "wget".into(),
            "-q".into(),
            "-O".into(),
            "/dev/null".into(),
            format!("http://127.0.0.1:{}{}", http.port, http.path),
        ]
    } else {
        let mut t = vec!["CMD".to_string()];
        t.extend(h.command.clone().unwrap_or_default());
        t
    };
    Some(json!({
        "test": test,
        "interval": format!("{}s", h.interval()),
        "timeout": format!("{}s", h.timeout()),
        "retries": h.retries(),
    }))
}

fn resources(s: &Service) -> Option<Value> {
    let r = s.resources.as_ref()?;
    let mut m = Map::new();
    for (k, list) in [("limits", &r.limits), ("reservations", &r.requests)] {
        if let Some(l) = list {
            let mut q = Map::new();
            if let Some(c) = l.cpu.as_deref().and_then(quantity::compose_cpus) {
                q.insert("cpus".into(), json!(c));
            }
            if let Some(mem) = l.memory.as_deref().and_then(quantity::compose_memory) {
                q.insert("memory".into(), json!(mem));
            }
            if !q.is_empty() {
                m.insert(k.into(), Value::Object(q));
            }
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

fn published(p: &Port) -> Option<Value> {
    let host = p.published?;
    Some(json!({
        "target": p.port,
        "published": host,
        "protocol": p.protocol.lower(),
        "mode": "host",
    }))
}

fn labels(r: &Resolved<'_>, name: &str, s: &Service) -> Value {
    let mut l = json!({
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": r.namespace,
        "app.kubernetes.io/part-of": r.stack,
        "app.kubernetes.io/managed-by": "stackgen",
        "stackgen.dev/environment": r.env,
    });
    if let Some((host, path, port)) = ingress_route(r, s) {
        l[LABEL_HOST] = json!(host);
        l[LABEL_PATH] = json!(path);
        l[LABEL_PORT] = json!(port.to_string());
    }
    l
}

/// The route of a service's ingress: the environment's host, the path prefix
/// and the container port. None without an ingress, or in an environment
/// without a host (nothing to route by).
fn ingress_route<'a>(r: &'a Resolved<'_>, s: &'a Service) -> Option<(&'a str, &'a str, u32)> {
    let host = r.host.as_deref()?;
    let ing = s.ingress.as_ref()?;
    Some((host, ing.path.as_str(), resolve::ingress_port(s)?))
}

/// The ports of a service: the declared `published` ones, and its ingress
/// port in host mode with no fixed number (Swarm picks a free port per task,
/// so two branches never clash; `deploy-bot ingress` finds it), unless that
/// port is already published.
fn ports(r: &Resolved<'_>, s: &Service) -> Vec<Value> {
    let mut ports: Vec<Value> = s.ports.iter().filter_map(published).collect();
    if let Some((_, _, port)) = ingress_route(r, s) {
        let already = s
            .ports
            .iter()
            .any(|p| p.port == port && p.protocol == Protocol::Tcp && p.published.is_some());
        if !already {
            ports.push(json!({"target": port, "protocol": "tcp", "mode": "host"}));
        }
    }
    ports
}

/// How Swarm exposes a service to the others on the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// The name resolves to the tasks' addresses (DNS round robin): works on
    /// every engine, including ones without iptables or IPVS.
    Dnsrr,
    /// The name resolves to a virtual IP load-balanced by IPVS (Docker's default).
    Vip,
}

impl EndpointMode {
    /// The compose value.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointMode::Dnsrr => "dnsrr",
            EndpointMode::Vip => "vip",
        }
    }
}

/// The key of a service in the stack file of alias `alias`: Swarm names the
/// service `<alias>_<key>` and refuses names over 63 characters, so a service
/// name that does not fit is shortened by the rule of [`slug::shortened`]
/// (its prefix, `-` and the short hash of `<alias>_<name>`). The service keeps
/// its declared name as a network alias, so the others still reach it by it.
pub fn service_key(alias: &str, name: &str) -> String {
    let room = slug::MAX_LABEL.saturating_sub(alias.len() + 1);
    slug::shortened(name, room, &format!("{alias}_{name}"))
}

/// The name Swarm gives the service `name` of the stack deployed as `alias`:
/// `<alias>_<key>`, at most 63 characters when the alias is at most
/// [`slug::MAX_ALIAS`].
pub fn swarm_service_name(alias: &str, name: &str) -> String {
    format!("{alias}_{}", service_key(alias, name))
}

/// The name of the stack's network: `<alias>_default`.
pub fn network_name(alias: &str) -> String {
    format!("{alias}_default")
}

/// Compose interpolates `$VAR`, `${VAR}` and `$(…)` in every value; `$$` is a
/// literal `$`. Escape every string (keys carry no `$`) so values reach the
/// container as written.
fn escape_dollars(v: &mut Value) {
    match v {
        Value::String(s) if s.contains('$') => *s = s.replace('$', "$$"),
        Value::Array(a) => a.iter_mut().for_each(escape_dollars),
        Value::Object(m) => m.values_mut().for_each(escape_dollars),
        _ => {}
    }
}

/// The stack file as a JSON value (compose 3.8). Services reach each other by
/// name on the stack's default network, an attachable overlay named
/// `<alias>_default`; only ports with `published` are published, in host mode
/// (so `dnsrr` endpoints are allowed), plus, in an environment with a host,
/// each ingress port in host mode with no fixed number, the service labelled
/// with its route for `deploy-bot ingress`. Rolling updates are `start-first`
/// unless a fixed host port is published. Every `$` in a value is written `$$`.
pub fn document(r: &Resolved<'_>, tag: &str, endpoint_mode: EndpointMode) -> Value {
    let mut doc = unescaped(r, tag, endpoint_mode);
    escape_dollars(&mut doc);
    doc
}

fn unescaped(r: &Resolved<'_>, tag: &str, endpoint_mode: EndpointMode) -> Value {
    let mut services = Map::new();
    for (name, s) in &r.services {
        let key = service_key(&r.namespace, name);
        let mut svc = Map::new();
        svc.insert("image".into(), json!(resolve::image(r.registry, s, tag)));
        if !s.args.is_empty() {
            svc.insert("command".into(), json!(s.args));
        }
        if !s.env.is_empty() {
            svc.insert("environment".into(), json!(s.env));
        }
        let ports = ports(r, s);
        if !ports.is_empty() {
            svc.insert("ports".into(), Value::Array(ports));
        }
        if let Some(h) = healthcheck(s) {
            svc.insert("healthcheck".into(), h);
        }
        let mut deploy = Map::new();
        deploy.insert("replicas".into(), json!(s.replicas));
        deploy.insert("endpoint_mode".into(), json!(endpoint_mode.as_str()));
        // A rolling update starts the new task before it stops the old one (no
        // gap in service, as Kubernetes' surge does), unless a fixed host port is
        // published: two tasks on one node cannot both hold it.
        let fixed_port = s.ports.iter().any(|p| p.published.is_some());
        let order = if fixed_port {
            "stop-first"
        } else {
            "start-first"
        };
        deploy.insert("update_config".into(), json!({ "order": order }));
        deploy.insert("labels".into(), labels(r, name, s));
        if let Some(res) = resources(s) {
            deploy.insert("resources".into(), res);
        }
        svc.insert("deploy".into(), Value::Object(deploy));
        if key != *name {
            svc.insert("networks".into(), json!({"default": {"aliases": [name]}}));
        }
        services.insert(key, Value::Object(svc));
    }
    json!({
        "version": "3.8",
        "services": services,
        "networks": {"default": {"driver": "overlay", "attachable": true}},
    })
}

/// The stack file as YAML.
pub fn render(r: &Resolved<'_>, tag: &str, endpoint_mode: EndpointMode) -> String {
    crate::manifests::to_yaml(&document(r, tag, endpoint_mode))
}
