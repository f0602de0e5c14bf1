//! The stack file (`stack.yaml`): its model (with the JSON Schema derived from it), parsing with line numbers, and validation.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::positions::{self, Positions};
use crate::slug;

/// A stack: services built from a monorepo's components, and the environments they are deployed to.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "stackgen stack file (stack.yaml)")]
pub struct StackFile {
    /// The stack name (a DNS label): `{stack}` in templates, `app.kubernetes.io/part-of`.
    pub name: String,
    /// Registry host and path prefix, without scheme or trailing `/`; images are `{registry}/{image}:{tag}`.
    pub registry: String,
    /// The services, by name (DNS-1035 labels: lowercase letters, digits and `-`, starting
    /// with a letter, at most 63 characters); services reach each other by these names.
    #[serde(deserialize_with = "unique_map")]
    pub services: BTreeMap<String, Service>,
    /// The environments, by name (DNS labels).
    #[serde(deserialize_with = "unique_map")]
    pub environments: BTreeMap<String, Environment>,
    /// The order a release moves through the environments, e.g. `[dev, staging, prod]`:
    /// branches deploy to the first; a merge to the base branch promotes the images into the
    /// release-candidate registry and goes through the next ones, each behind its `gate`.
    /// Every later environment declares a `gate`; the first has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub promotion: Vec<String>,
}

/// What stands between an environment and the one before it in `promotion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// Deployed as soon as the previous environment's smoke tests pass (committed straight to the cluster repo).
    Auto,
    /// A cluster-repo pull request is opened; a person merges it.
    Manual,
}

impl Gate {
    /// `auto` or `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Gate::Auto => "auto",
            Gate::Manual => "manual",
        }
    }
}

/// One service: a container image with ports, environment, replicas, health check, resources and ingress.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The monobuild component (a path such as `services/api`) that builds the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The image repository under the registry, without tag or digest.
    pub image: String,
    /// Container ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    /// Environment variables.
    #[serde(
        default,
        deserialize_with = "unique_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Container arguments (Kubernetes `args`, compose `command`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Number of replicas (default 1).
    #[serde(default = "one")]
    pub replicas: u32,
    /// Health check: exactly one of `http` or `command`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// CPU and memory requests and limits (Kubernetes quantities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    /// Route `{host}{path}` of the environment to this service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Ingress>,
    /// What a healthy answer looks like, checked at the environment's URL after every
    /// deploy (`deploy-bot smoke`); needs an `ingress`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke: Option<Smoke>,
}

/// Deserialize a mapping, rejecting a key that appears twice.
fn unique_map<'de, D, V>(d: D) -> std::result::Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Visit<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut m = BTreeMap::new();
            while let Some(k) = a.next_key::<String>()? {
                if m.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("duplicate key `{k}`")));
                }
                let v = a.next_value()?;
                m.insert(k, v);
            }
            Ok(m)
        }
    }
    d.deserialize_map(Visit(std::marker::PhantomData))
}

fn one() -> u32 {
    1
}

/// A container port.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// The container port (1-65535); the Service listens on the same port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
    /// Port name (an IANA service name: lowercase, at most 15 characters); default `<protocol>-<port>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP` (default) or `UDP`.
    #[serde(default)]
    pub protocol: Protocol,
    /// Swarm only: publish on this host port in `mode: host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub published: Option<u32>,
}

/// A transport protocol.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Protocol {
    /// TCP.
    #[default]
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP.
    #[serde(rename = "UDP")]
    Udp,
}

impl Protocol {
    /// `TCP` or `UDP`.
    pub fn upper(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        }
    }
    /// `tcp` or `udp`.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

impl Port {
    /// The port's name: the declared one, else `<protocol>-<port>`.
    pub fn name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", self.protocol.lower(), self.port))
    }
}

/// A health check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// An HTTP GET that must answer 2xx or 3xx.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    /// A command run in the container that must exit 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    /// Seconds between checks (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<u32>,
    /// Seconds a check may take (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
    /// Failed checks before the container counts as unhealthy (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

impl Health {
    /// Seconds between checks.
    pub fn interval(&self) -> u32 {
        self.interval_seconds.unwrap_or(10)
    }
    /// Seconds a check may take.
    pub fn timeout(&self) -> u32 {
        self.timeout_seconds.unwrap_or(3)
    }
    /// Failures before unhealthy.
    pub fn retries(&self) -> u32 {
        self.retries.unwrap_or(3)
    }
}

/// An HTTP health check.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpCheck {
    /// The path, starting with `/`.
    pub path: String,
    /// The container port.
    #[schemars(range(min = 1, max = 65535))]
    pub port: u32,
}

/// Resource requests and limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// What the scheduler reserves; each at most its limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
    /// The most the container may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
}

/// CPU and memory quantities.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceList {
    /// CPU, in cores (`1`, `0.5`) or millicores (`250m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory in bytes with an optional suffix (`64Mi`, `1G`, `512Ki`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// An ingress route.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ingress {
    /// The path prefix, starting with `/`; no `//`, `/./`, `/../`, `%2f`, and not ending in
    /// `/.` or `/..` (Kubernetes' rules for `pathType: Prefix`).
    pub path: String,
    /// The service port to route to (default: the first port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u32>,
}

/// A smoke check: one GET through the environment's URL and what its answer must be.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Smoke {
    /// The path requested, with an optional `?query`; it must be routed to this service (under
    /// its ingress path, and under no longer ingress path of another service). Default: the ingress path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The HTTP status the answer must have (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 100, max = 599))]
    pub status: Option<u16>,
    /// A regular expression (Rust `regex` syntax) the body must match somewhere, e.g. `status: ok`.
    pub body: String,
}

impl Smoke {
    /// The path requested: the declared one, else the ingress path.
    pub fn path<'a>(&'a self, ingress: &'a Ingress) -> &'a str {
        self.path.as_deref().unwrap_or(&ingress.path)
    }
    /// The expected status.
    pub fn status(&self) -> u16 {
        self.status.unwrap_or(200)
    }
}

/// The path of a request target, without its `?query`.
pub fn path_part(target: &str) -> &str {
    target.split_once('?').map_or(target, |(p, _)| p)
}

/// An environment: where and how the stack is deployed.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Template of the alias (Kubernetes namespace, Docker stack name), e.g. `{stack}-{branch}`;
    /// placeholders `{stack}`, `{branch}`, `{env}`. Must render to a DNS label of at most 52
    /// characters (Swarm's `<alias>_<service>` and `<alias>_default` must fit in 63).
    pub namespace: String,
    /// Template of the host name, e.g. `{branch}.dev.example.com`. Needed for `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `spec.ingressClassName` of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class: Option<String>,
    /// Per-service overrides (only of declared services).
    #[serde(
        default,
        deserialize_with = "unique_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub services: BTreeMap<String, Override>,
    /// Declared services left out of this environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit: Vec<String>,
    /// Services only in this environment (names as in `services`).
    #[serde(
        default,
        deserialize_with = "unique_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub add: BTreeMap<String, Service>,
    /// The gate before this environment (only for environments after the first of `promotion`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
}

/// Overrides of a service in one environment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Environment variables merged over the service's.
    #[serde(
        default,
        deserialize_with = "unique_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub env: BTreeMap<String, String>,
    /// Replicas in this environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// The JSON Schema of the stack file.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(StackFile)
}

/// A parsed and validated stack file with the positions of its keys.
#[derive(Debug)]
pub struct Stack {
    /// The file name, for messages.
    pub path: String,
    /// The content.
    pub file: StackFile,
}

/// The stack file read when `--stack` is not given: `stack.yaml` in the working directory.
pub const DEFAULT_PATH: &str = "stack.yaml";

impl Stack {
    /// Read, parse and validate `path`, or [`DEFAULT_PATH`] when there is none.
    pub fn load_or_default(path: Option<&Path>) -> Result<Stack> {
        Self::load(path.unwrap_or(Path::new(DEFAULT_PATH)))
    }

    /// The stack file where one is optional (`workflow`): `path` when given (it must exist),
    /// else [`DEFAULT_PATH`] when that file exists, else none.
    pub fn discover(path: Option<&Path>) -> Result<Option<Stack>> {
        match path {
            Some(p) => Self::load(p).map(Some),
            None if Path::new(DEFAULT_PATH).is_file() => {
                Self::load(Path::new(DEFAULT_PATH)).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Read, parse and validate a stack file.
    pub fn load(path: &Path) -> Result<Stack> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&shown, &text)
    }

    /// Parse and validate stack file text; `path` names it in messages.
    pub fn parse(path: &str, text: &str) -> Result<Stack> {
        let syntax = |line: usize, column: usize, message: String, source| Error::StackSyntax {
            path: path.to_string(),
            line,
            column,
            message,
            source: Box::new(source),
        };
        // Read like kubectl and docker compose: YAML 1.1 booleans, anchors and merge keys; duplicate keys refused.
        let options = serde_saphyr::options! { with_snippet: false };
        let file: StackFile = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| {
                (
                    usize::try_from(l.line()).unwrap_or(usize::MAX),
                    usize::try_from(l.column()).unwrap_or(usize::MAX),
                )
            });
            let mut message = e.to_string();
            if let Some(i) = message.find(" at line ") {
                message.truncate(i);
            }
            let Ok((positions, duplicate)) = positions::index(text) else {
                return syntax(line, column, message, e);
            };
            // Point at the second occurrence of a duplicate key.
            if message.contains("duplicate ")
                && let Some(d) = duplicate
            {
                return syntax(
                    d.pos.line,
                    d.pos.column,
                    format!("{}: duplicate key", d.path),
                    e,
                );
            }
            // Start with the key the parser stopped at.
            match positions.path_at(positions::Pos { line, column }) {
                "" => syntax(line, column, message, e),
                key => syntax(line, column, format!("{key}: {message}"), e),
            }
        })?;
        let v = Validator {
            path,
            text,
            positions: std::cell::OnceCell::new(),
        };
        v.stack(&file)?;
        Ok(Stack {
            path: path.to_string(),
            file,
        })
    }

    /// The environment after `env` in `promotion`, with its gate.
    pub fn next_environment(&self, env: &str) -> Option<(&str, Gate)> {
        let i = self.file.promotion.iter().position(|e| e == env)?;
        let next = self.file.promotion.get(i + 1)?;
        Some((next.as_str(), self.file.environments[next].gate?))
    }

    /// Whether `env` deploys release candidates: it comes after the first environment of
    /// `promotion`, so its images are the release-candidate registry's, pinned by digest.
    pub fn is_release_candidate(&self, env: &str) -> bool {
        self.file.promotion.iter().skip(1).any(|e| e == env)
    }

    /// The main flow: the environments a merge to the base branch goes through, in order:
    /// after the first of `promotion`, up to and including the first with a manual gate
    /// (its pull request is opened, and the flow stops there).
    pub fn main_flow(&self) -> Vec<(&str, Gate)> {
        let mut out = Vec::new();
        for env in self.file.promotion.iter().skip(1) {
            let gate = self.file.environments[env].gate.unwrap_or(Gate::Manual);
            out.push((env.as_str(), gate));
            if gate == Gate::Manual {
                break;
            }
        }
        out
    }

    /// The environment names, comma-separated.
    pub fn environment_names(&self) -> String {
        self.file
            .environments
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Validator<'a> {
    path: &'a str,
    text: &'a str,
    /// Positions of keys, computed only when there is an error to report.
    positions: std::cell::OnceCell<Positions>,
}

impl Validator<'_> {
    /// Where `key` is in the file.
    fn position(&self, key: &str) -> positions::Pos {
        let positions = self.positions.get_or_init(|| {
            positions::index(self.text).map_or_else(|_| Positions::default(), |(p, _)| p)
        });
        positions.of(key)
    }

    fn err(&self, key: &str, message: impl Into<String>) -> Error {
        let pos = self.position(key);
        Error::StackInvalid {
            path: self.path.to_string(),
            line: pos.line,
            column: pos.column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn label(&self, key: &str, value: &str) -> Result<()> {
        match slug::dns_label_problem(value) {
            None => Ok(()),
            Some(p) => Err(self.err(key, format!("`{value}` {p}"))),
        }
    }

    fn stack(&self, f: &StackFile) -> Result<()> {
        self.label("name", &f.name)?;
        self.registry(&f.registry)?;
        if f.services.is_empty() {
            return Err(self.err("services", "declare at least one service"));
        }
        for (name, s) in &f.services {
            self.service(&format!("services.{name}"), name, s)?;
        }
        if f.environments.is_empty() {
            return Err(self.err("environments", "declare at least one environment"));
        }
        for (name, e) in &f.environments {
            self.environment(f, name, e)?;
        }
        self.promotion(f)
    }

    fn promotion(&self, f: &StackFile) -> Result<()> {
        let mut seen = BTreeSet::new();
        for (i, env) in f.promotion.iter().enumerate() {
            if !f.environments.contains_key(env) {
                return Err(self.err(
                    "promotion",
                    format!(
                        "names `{env}`, which is not a declared environment (declared: {})",
                        names(&f.environments)
                    ),
                ));
            }
            if !seen.insert(env.as_str()) {
                return Err(self.err("promotion", format!("names `{env}` twice")));
            }
            let gate = f.environments[env].gate;
            if i == 0 && gate.is_some() {
                return Err(self.err(
                    &format!("environments.{env}.gate"),
                    format!("`{env}` is the first environment of `promotion` (where branches deploy): it has no gate"),
                ));
            }
            if i > 0 && gate.is_none() {
                return Err(self.err(
                    &format!("environments.{env}"),
                    format!(
                        "`{env}` comes after `{}` in `promotion`: declare its `gate: auto` or `gate: manual`",
                        f.promotion[i - 1]
                    ),
                ));
            }
        }
        for (name, e) in &f.environments {
            if e.gate.is_some() && !seen.contains(name.as_str()) {
                return Err(self.err(
                    &format!("environments.{name}.gate"),
                    format!("`{name}` has a gate but is not in `promotion`"),
                ));
            }
        }
        Ok(())
    }

    fn registry(&self, r: &str) -> Result<()> {
        // The image prefix rule every tool shares (`microplatform_common::reference::check_prefix`).
        microplatform_common::reference::check_prefix(r).map_err(|why| {
            self.err(
                "registry",
                format!("`{r}` is not a registry host with an optional path: {why}"),
            )
        })
    }

    fn port_number(&self, key: &str, p: u32) -> Result<()> {
        if (1..=65535).contains(&p) {
            Ok(())
        } else {
            Err(self.err(key, format!("{p} is not a port (1-65535)")))
        }
    }

    fn replicas(&self, key: &str, n: Option<u32>) -> Result<()> {
        match n {
            Some(n) if i32::try_from(n).is_err() => Err(self.err(
                key,
                format!("{n} is more than Kubernetes' 2147483647 replicas"),
            )),
            _ => Ok(()),
        }
    }

    fn service(&self, key: &str, name: &str, s: &Service) -> Result<()> {
        self.label(key, name)?;
        self.replicas(&format!("{key}.replicas"), Some(s.replicas))?;
        if !name.as_bytes()[0].is_ascii_lowercase() {
            return Err(self.err(
                key,
                format!("`{name}` is not a DNS-1035 label: a Kubernetes Service name starts with a letter"),
            ));
        }
        if let Some(c) = &s.component
            && (c.is_empty()
                || c.starts_with('/')
                || c.split('/').any(|p| p == ".." || p.is_empty()))
        {
            return Err(self.err(
                &format!("{key}.component"),
                format!("`{c}` is not a relative component path"),
            ));
        }
        let image_ok = !s.image.is_empty()
            && s.image.split('/').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|c| {
                        c.is_ascii_lowercase()
                            || c.is_ascii_digit()
                            || matches!(c, b'.' | b'_' | b'-')
                    })
                    && part.as_bytes()[0].is_ascii_alphanumeric()
                    && part.as_bytes()[part.len() - 1].is_ascii_alphanumeric()
            });
        if !image_ok {
            return Err(self.err(
                &format!("{key}.image"),
                format!(
                    "`{}` is not an image repository (lowercase `a-z0-9._-` separated by `/`, no tag or digest)",
                    s.image
                ),
            ));
        }
        let mut seen_ports = BTreeSet::new();
        let mut seen_names = BTreeSet::new();
        for (i, p) in s.ports.iter().enumerate() {
            let pk = format!("{key}.ports[{i}]");
            self.port_number(&format!("{pk}.port"), p.port)?;
            if !seen_ports.insert((p.port, p.protocol)) {
                return Err(self.err(
                    &format!("{pk}.port"),
                    format!("duplicate port {}/{}", p.port, p.protocol.upper()),
                ));
            }
            let pname = p.name();
            if let Some(n) = &p.name
                && !is_port_name(n)
            {
                return Err(self.err(
                    &format!("{pk}.name"),
                    format!("`{n}` is not a port name (lowercase letters, digits and `-`, at most 15 characters, with a letter)"),
                ));
            }
            if !seen_names.insert(pname.clone()) {
                return Err(self.err(
                    &format!("{pk}.name"),
                    format!("duplicate port name `{pname}`"),
                ));
            }
            if let Some(pp) = p.published {
                self.port_number(&format!("{pk}.published"), pp)?;
            }
        }
        for var in s.env.keys() {
            self.env_name(&format!("{key}.env.{var}"), var)?;
        }
        if let Some(h) = &s.health {
            let hk = format!("{key}.health");
            match (&h.http, &h.command) {
                (Some(http), None) => {
                    if !http.path.starts_with('/') {
                        return Err(self.err(
                            &format!("{hk}.http.path"),
                            format!("`{}` must start with `/`", http.path),
                        ));
                    }
                    self.port_number(&format!("{hk}.http.port"), http.port)?;
                }
                (None, Some(cmd)) => {
                    if cmd.is_empty() {
                        return Err(self.err(&format!("{hk}.command"), "the command is empty"));
                    }
                }
                _ => return Err(self.err(&hk, "give exactly one of `http` or `command`")),
            }
            for (k, v) in [
                ("interval_seconds", h.interval_seconds),
                ("timeout_seconds", h.timeout_seconds),
                ("retries", h.retries),
            ] {
                if v == Some(0) {
                    return Err(self.err(&format!("{hk}.{k}"), "must be at least 1"));
                }
            }
        }
        if let Some(r) = &s.resources {
            for (which, list) in [("requests", &r.requests), ("limits", &r.limits)] {
                if let Some(l) = list {
                    if let Some(c) = &l.cpu
                        && crate::quantity::cpu_millis(c).is_none()
                    {
                        return Err(self.err(
                            &format!("{key}.resources.{which}.cpu"),
                            format!("`{c}` is not a CPU quantity (`1`, `0.5`, `250m`)"),
                        ));
                    }
                    if let Some(m) = &l.memory
                        && crate::quantity::memory_bytes(m).is_none()
                    {
                        return Err(self.err(
                            &format!("{key}.resources.{which}.memory"),
                            format!("`{m}` is not a memory quantity (`64Mi`, `1G`, `1048576`)"),
                        ));
                    }
                }
            }
        }
        if let Some(r) = &s.resources {
            self.requests_within_limits(&format!("{key}.resources"), r)?;
        }
        if let Some(ing) = &s.ingress {
            let ik = format!("{key}.ingress");
            if let Some(problem) = ingress_path_problem(&ing.path) {
                return Err(self.err(
                    &format!("{ik}.path"),
                    format!("`{}` {problem}", ing.path.escape_debug()),
                ));
            }
            if !s.ports.iter().any(|p| p.protocol == Protocol::Tcp) {
                return Err(self.err(&ik, "a service with an ingress needs a TCP port"));
            }
            if let Some(p) = ing.port
                && !s
                    .ports
                    .iter()
                    .any(|sp| sp.port == p && sp.protocol == Protocol::Tcp)
            {
                return Err(self.err(
                    &format!("{ik}.port"),
                    format!("{p} is not a TCP port of this service"),
                ));
            }
        }
        if let Some(sm) = &s.smoke {
            self.smoke(&format!("{key}.smoke"), s, sm)?;
        }
        Ok(())
    }

    fn smoke(&self, key: &str, s: &Service, sm: &Smoke) -> Result<()> {
        let Some(ing) = &s.ingress else {
            return Err(self.err(
                key,
                "smoke checks go through the environment's URL: the service needs an `ingress`",
            ));
        };
        if let Some(p) = &sm.path {
            if !p.starts_with('/') || p.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(self.err(
                    &format!("{key}.path"),
                    format!(
                        "`{}` must start with `/` and contain no spaces or control characters",
                        p.escape_debug()
                    ),
                ));
            }
            if !microplatform_common::ingress::prefix_matches(&ing.path, path_part(p)) {
                return Err(self.err(
                    &format!("{key}.path"),
                    format!(
                        "`{p}` is not under the service's ingress path `{}`",
                        ing.path
                    ),
                ));
            }
        }
        if let Some(st) = sm.status
            && !(100..=599).contains(&st)
        {
            return Err(self.err(
                &format!("{key}.status"),
                format!("{st} is not an HTTP status (100-599)"),
            ));
        }
        if let Err(source) = regex::RegexBuilder::new(&sm.body)
            .size_limit(1 << 20)
            .build()
        {
            let key = format!("{key}.body");
            let pos = self.position(&key);
            return Err(Error::StackRegex {
                path: self.path.to_string(),
                line: pos.line,
                column: pos.column,
                key,
                pattern: sm.body.clone(),
                source,
            });
        }
        Ok(())
    }

    /// Kubernetes refuses a request above its limit.
    fn requests_within_limits(&self, key: &str, r: &Resources) -> Result<()> {
        let (Some(req), Some(lim)) = (&r.requests, &r.limits) else {
            return Ok(());
        };
        let cpu = |l: &ResourceList| l.cpu.as_deref().and_then(crate::quantity::cpu_millis);
        let mem = |l: &ResourceList| l.memory.as_deref().and_then(crate::quantity::memory_bytes);
        if let (Some(q), Some(l)) = (cpu(req), cpu(lim))
            && q > l
        {
            return Err(self.err(
                &format!("{key}.requests.cpu"),
                format!(
                    "`{}` is more than the limit `{}`; a request must not exceed its limit",
                    req.cpu.as_deref().unwrap_or_default(),
                    lim.cpu.as_deref().unwrap_or_default()
                ),
            ));
        }
        if let (Some(q), Some(l)) = (mem(req), mem(lim))
            && q > l
        {
            return Err(self.err(
                &format!("{key}.requests.memory"),
                format!(
                    "`{}` is more than the limit `{}`; a request must not exceed its limit",
                    req.memory.as_deref().unwrap_or_default(),
                    lim.memory.as_deref().unwrap_or_default()
                ),
            ));
        }
        Ok(())
    }

    fn env_name(&self, key: &str, var: &str) -> Result<()> {
        let b = var.as_bytes();
        let ok = !b.is_empty()
            && (b[0].is_ascii_alphabetic() || b[0] == b'_')
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if ok {
            Ok(())
        } else {
            Err(self.err(key, format!("`{var}` is not an environment variable name")))
        }
    }

    fn template(&self, key: &str, f: &StackFile, env: &str, t: &str, host: bool) -> Result<()> {
        // Render with a short and a very long branch: both must be valid.
        let max = if host {
            slug::MAX_LABEL
        } else {
            slug::MAX_ALIAS
        };
        for branch in ["main", &"b".repeat(100)] {
            let rendered =
                slug::render_max(t, &f.name, env, branch, max).map_err(|m| self.err(key, m))?;
            if host {
                if !slug::is_dns_name(&rendered) {
                    return Err(self.err(
                        key,
                        format!("renders to `{rendered}`, which is not a DNS name"),
                    ));
                }
                if rendered.parse::<std::net::Ipv4Addr>().is_ok() {
                    return Err(self.err(
                        key,
                        format!("renders to `{rendered}`, an IP address; an Ingress host must be a DNS name"),
                    ));
                }
            } else if let Some(p) = slug::dns_label_problem(&rendered) {
                return Err(self.err(key, format!("renders to `{rendered}`, which {p}")));
            } else if rendered.len() > slug::MAX_ALIAS {
                return Err(self.err(
                    key,
                    format!(
                        "renders to `{rendered}`, {} characters; an alias has at most {} (Swarm names `<alias>_<service>` and `<alias>_default` must fit in 63)",
                        rendered.len(),
                        slug::MAX_ALIAS
                    ),
                ));
            }
        }
        Ok(())
    }

    fn environment(&self, f: &StackFile, name: &str, e: &Environment) -> Result<()> {
        let key = format!("environments.{name}");
        self.label(&key, name)?;
        self.template(&format!("{key}.namespace"), f, name, &e.namespace, false)?;
        if let Some(h) = &e.host {
            self.template(&format!("{key}.host"), f, name, h, true)?;
        }
        if let Some(c) = &e.ingress_class
            && slug::dns_label_problem(c).is_some()
            && !slug::is_dns_name(c)
        {
            return Err(self.err(
                &format!("{key}.ingress_class"),
                format!("`{c}` is not a DNS name"),
            ));
        }
        for (svc, o) in &e.services {
            let ok = format!("{key}.services.{svc}");
            if !f.services.contains_key(svc) {
                return Err(self.err(
                    &ok,
                    format!(
                        "overrides `{svc}`, which is not a declared service (declared: {})",
                        names(&f.services)
                    ),
                ));
            }
            if e.omit.contains(svc) {
                return Err(self.err(
                    &ok,
                    format!("overrides `{svc}`, which this environment omits"),
                ));
            }
            for var in o.env.keys() {
                self.env_name(&format!("{ok}.env.{var}"), var)?;
            }
            self.replicas(&format!("{ok}.replicas"), o.replicas)?;
        }
        let mut omitted = BTreeSet::new();
        for (i, svc) in e.omit.iter().enumerate() {
            let ok = format!("{key}.omit[{i}]");
            if !f.services.contains_key(svc) {
                return Err(self.err(
                    &ok,
                    format!(
                        "omits `{svc}`, which is not a declared service (declared: {})",
                        names(&f.services)
                    ),
                ));
            }
            if !omitted.insert(svc) {
                return Err(self.err(&ok, format!("duplicate `{svc}`")));
            }
        }
        for (svc, s) in &e.add {
            let ak = format!("{key}.add.{svc}");
            if f.services.contains_key(svc) {
                return Err(self.err(
                    &ak,
                    format!("duplicate service `{svc}`: it is declared in `services`"),
                ));
            }
            self.service(&ak, svc, s)?;
        }
        // Across the services of this environment: published ports and ingress paths are unique.
        let mut published = BTreeMap::new();
        let mut paths = BTreeMap::new();
        let all = f
            .services
            .iter()
            .filter(|(n, _)| !omitted.contains(n))
            .map(|(n, s)| (format!("services.{n}"), s))
            .chain(e.add.iter().map(|(n, s)| (format!("{key}.add.{n}"), s)));
        let all: Vec<(String, &Service)> = all.collect();
        for (skey, s) in &all {
            let (Some(sm), Some(ing)) = (&s.smoke, &s.ingress) else {
                continue;
            };
            let target = path_part(sm.path(ing));
            let captured = all.iter().find(|(other, o)| {
                other != skey
                    && o.ingress.as_ref().is_some_and(|oi| {
                        oi.path.trim_end_matches('/').len() > ing.path.trim_end_matches('/').len()
                            && microplatform_common::ingress::prefix_matches(&oi.path, target)
                    })
            });
            if let Some((other, _)) = captured {
                return Err(self.err(
                    &format!("{skey}.smoke.path"),
                    format!("`{target}` is routed to {other} (a longer ingress path) in environment `{name}`, not to this service"),
                ));
            }
        }
        for (skey, s) in all {
            for (i, p) in s.ports.iter().enumerate() {
                if let Some(pp) = p.published {
                    let here = format!("{skey}.ports[{i}].published");
                    if let Some(prev) = published.insert((pp, p.protocol), here.clone()) {
                        return Err(self.err(&here, format!("duplicate published port {pp} (also {prev}) in environment `{name}`")));
                    }
                }
            }
            if let Some(ing) = &s.ingress {
                let here = format!("{skey}.ingress.path");
                if let Some(prev) = paths.insert(ing.path.clone(), here.clone()) {
                    return Err(self.err(
                        &here,
                        format!(
                            "duplicate ingress path `{}` (also {prev}) in environment `{name}`",
                            ing.path
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn names<V>(m: &BTreeMap<String, V>) -> String {
    m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
}

/// Why Kubernetes would refuse `path` as an Ingress path of `pathType: Prefix`
/// (its `invalidPathSequences` and `invalidPathSuffixes`), or `None`.
pub fn ingress_path_problem(path: &str) -> Option<String> {
    if !path.starts_with('/') {
        return Some("must start with `/` (an absolute path)".into());
    }
    if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain spaces or control characters".into());
    }
    for seq in ["//", "/./", "/../", "%2f", "%2F"] {
        if path.contains(seq) {
            return Some(format!("must not contain `{seq}` (Kubernetes refuses it)"));
        }
    }
    for suffix in ["/..", "/."] {
        if path.ends_with(suffix) {
            return Some(format!(
                "must not end with `{suffix}` (Kubernetes refuses it)"
            ));
        }
    }
    None
}

/// Whether `n` is an IANA service name as Kubernetes port names must be.
pub fn is_port_name(n: &str) -> bool {
    n.len() <= 15
        && slug::is_dns_label(n)
        && !n.contains("--")
        && n.bytes().any(|c| c.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    const HEAD: &str = "name: shop\nregistry: r.io\nservices:\n  api:\n    image: api\n    ports: [{port: 80}]\n    ingress: {path: /api}\n";
    const TAIL: &str = "environments:\n  dev: {namespace: \"{stack}\"}\n";

    #[test]
    fn a_syntax_error_keeps_the_parsers_error_as_its_cause() {
        let text = format!("{HEAD}    replicas: [1\n{TAIL}");
        let e = Stack::parse("stack.yaml", &text).unwrap_err();
        assert!(matches!(e, Error::StackSyntax { .. }), "{e}");
        let yaml = e
            .source()
            .and_then(|c| c.downcast_ref::<Box<serde_saphyr::Error>>())
            .expect("the serde_saphyr::Error is the source");
        assert!(yaml.location().is_some(), "{yaml}");
        assert!(!e.to_string().contains(" at line "), "{e}");
    }

    #[test]
    fn a_smoke_body_that_is_not_a_regex_keeps_the_regex_error_as_its_cause() {
        let text = format!("{HEAD}    smoke: {{body: \"status: (ok\"}}\n{TAIL}");
        let e = Stack::parse("stack.yaml", &text).unwrap_err();
        assert!(
            matches!(&e, Error::StackRegex { key, line: 8, .. } if key == "services.api.smoke.body"),
            "{e}"
        );
        assert_eq!(e.exit_code(), microplatform_common::exit::VALIDATION);
        let re = e
            .source()
            .and_then(|c| c.downcast_ref::<regex::Error>())
            .expect("the regex::Error is the source");
        assert!(re.to_string().contains("unclosed group"), "{re}");
        assert!(
            e.to_string()
                .starts_with("stack.yaml:8:13: services.api.smoke.body: `status: (ok` is not a regular expression: "),
            "{e}"
        );
        assert_eq!(e.to_string().lines().count(), 1);
    }
}
