//! One environment of a stack for one branch: the alias (namespace), the host, and the services with overrides, omissions and additions applied.

use std::borrow::Cow;

use crate::error::{Error, Result};
use crate::slug;
use crate::stack::{Protocol, Service, Stack};

/// A stack rendered for an environment and a branch.
#[derive(Debug)]
pub struct Resolved<'a> {
    /// The stack name.
    pub stack: &'a str,
    /// The registry.
    pub registry: &'a str,
    /// The environment name.
    pub env: &'a str,
    /// The alias: Kubernetes namespace or Docker stack name.
    pub namespace: String,
    /// The host, when the environment has one.
    pub host: Option<String>,
    /// The Ingress class.
    pub ingress_class: Option<&'a str>,
    /// Services sorted by name, with this environment's changes applied
    /// (borrowed when the environment changes nothing).
    pub services: Vec<(&'a str, Cow<'a, Service>)>,
}

impl Resolved<'_> {
    /// The URL of the environment: its root, see [`Resolved::url_of`].
    pub fn url(&self, ingress_port: Option<u16>) -> Option<String> {
        self.url_of("/", ingress_port)
    }

    /// The URL of a path of the environment, the one rule for every URL
    /// stackgen prints: `https://{host}{path}` behind a cluster's ingress
    /// (port 443), or `http://{host}:{port}{path}` when the platform's ingress
    /// answers plain HTTP on `ingress_port` (the local platform's `deploy-bot
    /// ingress`). None when the environment has no host.
    pub fn url_of(&self, path: &str, ingress_port: Option<u16>) -> Option<String> {
        let h = self.host.as_ref()?;
        Some(match ingress_port {
            Some(port) => format!("http://{h}:{port}{path}"),
            None => format!("https://{h}{path}"),
        })
    }
}

/// Render the alias (namespace) of an environment for a branch.
pub fn namespace(stack: &Stack, env: &str, branch: &str) -> Result<String> {
    let e = environment(stack, env)?;
    render(stack, env, "namespace", &e.namespace, branch)
}

fn environment<'a>(stack: &'a Stack, env: &str) -> Result<&'a crate::stack::Environment> {
    stack
        .file
        .environments
        .get(env)
        .ok_or_else(|| Error::UnknownEnvironment {
            name: env.to_string(),
            valid: stack.environment_names(),
        })
}

fn render(stack: &Stack, env: &str, what: &'static str, t: &str, branch: &str) -> Result<String> {
    // The branch must slug to something on its own, whatever the template.
    slug::slug(branch)?;
    let max = if what == "host" {
        slug::MAX_LABEL
    } else {
        slug::MAX_ALIAS
    };
    let value = slug::render_max(t, &stack.file.name, env, branch, max).map_err(|message| {
        Error::Render {
            env: env.to_string(),
            what,
            value: t.to_string(),
            message,
        }
    })?;
    let valid = if what == "host" {
        slug::is_dns_name(&value)
    } else {
        slug::is_dns_label(&value) && value.len() <= slug::MAX_ALIAS
    };
    if valid {
        Ok(value)
    } else {
        Err(Error::Render {
            env: env.to_string(),
            what,
            value,
            message: "is not a valid DNS name".into(),
        })
    }
}

/// Resolve an environment of the stack for a branch.
pub fn resolve<'a>(stack: &'a Stack, env: &'a str, branch: &str) -> Result<Resolved<'a>> {
    let e = environment(stack, env)?;
    let namespace = render(stack, env, "namespace", &e.namespace, branch)?;
    let host = e
        .host
        .as_ref()
        .map(|h| render(stack, env, "host", h, branch))
        .transpose()?;
    let mut services: Vec<(&str, Cow<'a, Service>)> = stack
        .file
        .services
        .iter()
        .filter(|(n, _)| !e.omit.iter().any(|o| o == *n))
        .map(|(n, s)| {
            let Some(o) = e.services.get(n) else {
                return (n.as_str(), Cow::Borrowed(s));
            };
            let mut s = s.clone();
            for (k, v) in &o.env {
                s.env.insert(k.clone(), v.clone());
            }
            if let Some(r) = o.replicas {
                s.replicas = r;
            }
            (n.as_str(), Cow::Owned(s))
        })
        .chain(e.add.iter().map(|(n, s)| (n.as_str(), Cow::Borrowed(s))))
        .collect();
    services.sort_by(|a, b| a.0.cmp(b.0));
    Ok(Resolved {
        stack: &stack.file.name,
        registry: &stack.file.registry,
        env,
        namespace,
        host,
        ingress_class: e.ingress_class.as_deref(),
        services,
    })
}

/// The port an ingress of a service routes to: the declared one, else the first TCP port.
pub fn ingress_port(s: &Service) -> Option<u32> {
    let ing = s.ingress.as_ref()?;
    ing.port.or_else(|| {
        s.ports
            .iter()
            .find(|p| p.protocol == Protocol::Tcp)
            .map(|p| p.port)
    })
}

/// The image reference of a service for a tag.
pub fn image(registry: &str, s: &Service, tag: &str) -> String {
    format!("{registry}/{}:{tag}", s.image)
}

/// Check a tag given on the command line (the Docker tag grammar).
pub fn check_tag(tag: &str) -> Result<()> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::Usage {
            option: "--tag",
            message: format!("`{tag}` is not an image tag ([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})"),
        })
    }
}
