//! Kubernetes manifests of a resolved environment: Namespace, then per service Deployment and Service, then Ingress; written as one YAML stream or into `DIR/<namespace>/`.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::resolve::{self, Resolved};
use crate::stack::Service;

/// The labels of every object of a service. Selectors use only the stable
/// `name` and `part-of` labels (never the tag or the branch).
fn labels(r: &Resolved<'_>, service: Option<&str>) -> Value {
    let mut m = Map::new();
    if let Some(s) = service {
        m.insert("app.kubernetes.io/name".into(), json!(s));
    }
    m.insert("app.kubernetes.io/instance".into(), json!(r.namespace));
    m.insert("app.kubernetes.io/part-of".into(), json!(r.stack));
    m.insert("app.kubernetes.io/managed-by".into(), json!("stackgen"));
    m.insert("stackgen.dev/environment".into(), json!(r.env));
    Value::Object(m)
}

fn selector(r: &Resolved<'_>, service: &str) -> Value {
    json!({
        "app.kubernetes.io/name": service,
        "app.kubernetes.io/part-of": r.stack,
    })
}

fn probe(s: &Service) -> Option<Value> {
    let h = s.health.as_ref()?;
    let mut p = Map::new();
    if let Some(http) = &h.http {
        p.insert(
            "httpGet".into(),
            json!({"path": http.path, "port": http.port}),
        );
    } else if let Some(cmd) = &h.command {
        p.insert("exec".into(), json!({"command": cmd}));
    }
    p.insert("periodSeconds".into(), json!(h.interval()));
    p.insert("timeoutSeconds".into(), json!(h.timeout()));
    p.insert("failureThreshold".into(), json!(h.retries()));
    Some(Value::Object(p))
}

fn resources(s: &Service) -> Option<Value> {
    let r = s.resources.as_ref()?;
    let mut m = Map::new();
    for (k, list) in [("limits", &r.limits), ("requests", &r.requests)] {
        if let Some(l) = list {
            let mut q = Map::new();
            if let Some(c) = &l.cpu {
                q.insert("cpu".into(), json!(c));
            }
            if let Some(mem) = &l.memory {
                q.insert("memory".into(), json!(mem));
            }
            if !q.is_empty() {
                m.insert(k.into(), Value::Object(q));
            }
        }
    }
    (!m.is_empty()).then_some(Value::Object(m))
}

/// Kubernetes expands `$(VAR)` in `args` and `env[].value`, and reads `$$` as
/// `$`: written with every `$` doubled, a value reaches the container as it
/// is written in the stack file (as in the compose output).
fn literal(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains('$') {
        std::borrow::Cow::Owned(s.replace('$', "$$"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn container(r: &Resolved<'_>, name: &str, s: &Service, tag: &str) -> Value {
    let mut c = Map::new();
    c.insert("name".into(), json!(name));
    c.insert("image".into(), json!(resolve::image(r.registry, s, tag)));
    if !s.args.is_empty() {
        let args: Vec<Value> = s.args.iter().map(|a| json!(literal(a))).collect();
        c.insert("args".into(), Value::Array(args));
    }
    if !s.env.is_empty() {
        let env: Vec<Value> = s
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": literal(v)}))
            .collect();
        c.insert("env".into(), Value::Array(env));
    }
    if !s.ports.is_empty() {
        let ports: Vec<Value> = s
            .ports
            .iter()
            .map(|p| json!({"name": p.name(), "containerPort": p.port, "protocol": p.protocol.upper()}))
            .collect();
        c.insert("ports".into(), Value::Array(ports));
    }
    if let Some(p) = probe(s) {
        c.insert("readinessProbe".into(), p.clone());
        c.insert("livenessProbe".into(), p);
    }
    if let Some(res) = resources(s) {
        c.insert("resources".into(), res);
    }
    Value::Object(c)
}

fn annotations(s: &Service) -> Option<Value> {
    s.component
        .as_ref()
        .map(|c| json!({"stackgen.dev/component": c}))
}

fn metadata(r: &Resolved<'_>, name: &str, service: Option<&str>, s: Option<&Service>) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(name));
    m.insert("namespace".into(), json!(r.namespace));
    m.insert("labels".into(), labels(r, service));
    if let Some(a) = s.and_then(annotations) {
        m.insert("annotations".into(), a);
    }
    Value::Object(m)
}

/// The documents of an environment, in order: Namespace, per service
/// Deployment and Service (a service without ports has no Service), Ingress.
pub fn documents(r: &Resolved<'_>, tag: &str) -> Vec<Value> {
    let mut docs = Vec::with_capacity(2 + 2 * r.services.len());
    namespace_doc(r, &mut docs);
    service_docs(r, &r.services, tag, &mut docs);
    ingress_doc(r, &mut docs);
    docs
}

fn namespace_doc(r: &Resolved<'_>, docs: &mut Vec<Value>) {
    docs.push(json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": r.namespace, "labels": labels(r, None)},
    }));
}

fn service_docs(
    r: &Resolved<'_>,
    services: &[(&str, std::borrow::Cow<'_, Service>)],
    tag: &str,
    docs: &mut Vec<Value>,
) {
    for (name, s) in services {
        docs.push(json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(r, name, Some(name), Some(s)),
            "spec": {
                "replicas": s.replicas,
                "selector": {"matchLabels": selector(r, name)},
                "template": {
                    "metadata": {"labels": labels(r, Some(name))},
                    "spec": {"containers": [container(r, name, s, tag)]},
                },
            },
        }));
        if !s.ports.is_empty() {
            let ports: Vec<Value> = s
                .ports
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name(),
                        "port": p.port,
                        "targetPort": p.port,
                        "protocol": p.protocol.upper(),
                    })
                })
                .collect();
            docs.push(json!({
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": metadata(r, name, Some(name), Some(s)),
                "spec": {"selector": selector(r, name), "ports": ports},
            }));
        }
    }
}

fn ingress_doc(r: &Resolved<'_>, docs: &mut Vec<Value>) {
    let mut paths: Vec<(String, &str, u32)> = r
        .services
        .iter()
        .filter_map(|(n, s)| {
            let ing = s.ingress.as_ref()?;
            Some((ing.path.clone(), *n, resolve::ingress_port(s)?))
        })
        .collect();
    if !paths.is_empty() {
        // Longest paths first, then by path: deterministic, and specific before general.
        paths.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let http_paths: Vec<Value> = paths
            .iter()
            .map(|(path, svc, port)| {
                json!({
                    "path": path,
                    "pathType": "Prefix",
                    "backend": {"service": {"name": svc, "port": {"number": port}}},
                })
            })
            .collect();
        let mut rule = Map::new();
        if let Some(h) = &r.host {
            rule.insert("host".into(), json!(h));
        }
        rule.insert("http".into(), json!({"paths": http_paths}));
        let mut spec = Map::new();
        if let Some(c) = r.ingress_class {
            spec.insert("ingressClassName".into(), json!(c));
        }
        spec.insert("rules".into(), json!([Value::Object(rule)]));
        docs.push(json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": metadata(r, r.stack, None, None),
            "spec": Value::Object(spec),
        }));
    }
}

/// The manifests as one YAML stream, as [`stream`] of [`documents`] gives it,
/// built by two threads (each half of the services) for large stacks.
pub fn render(r: &Resolved<'_>, tag: &str) -> String {
    let n = r.services.len();
    if n < 200 {
        return stream(&documents(r, tag));
    }
    let (first, second) = r.services.split_at(n / 2);
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| {
            let mut docs = Vec::with_capacity(1 + 2 * first.len());
            namespace_doc(r, &mut docs);
            service_docs(r, first, tag, &mut docs);
            stream(&docs)
        });
        let mut docs = Vec::with_capacity(1 + 2 * second.len());
        service_docs(r, second, tag, &mut docs);
        ingress_doc(r, &mut docs);
        let b = stream(&docs);
        (a.join().expect("render thread"), b)
    });
    let mut out = a;
    out.reserve(b.len() + 4);
    out.push_str("---\n");
    out.push_str(&b);
    out
}

/// One YAML document.
pub fn to_yaml(doc: &Value) -> String {
    crate::yaml::to_string(doc)
}

/// The documents as one YAML stream (`---` between documents).
pub fn stream(docs: &[Value]) -> String {
    let mut out = String::with_capacity(docs.len() * 1024);
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        crate::yaml::write_doc(&mut out, d);
    }
    out
}

/// The file name of a document in `--out-dir`: `NN-<kind>-<name>.yaml`, numbered in stream order.
fn file_name(i: usize, doc: &Value) -> String {
    let kind = doc["kind"]
        .as_str()
        .unwrap_or("object")
        .to_ascii_lowercase();
    let name = doc["metadata"]["name"].as_str().unwrap_or("object");
    format!("{i:04}-{kind}-{name}.yaml")
}

/// Write the documents into `dir/<namespace>/`, one file per document. The
/// directory is built beside the target and renamed over it, so readers never
/// see a half-written directory and files of removed services disappear.
pub fn write_dir(dir: &Path, namespace: &str, docs: &[Value]) -> Result<std::path::PathBuf> {
    let werr = |p: &Path| {
        let p = p.display().to_string();
        move |source| Error::Write { path: p, source }
    };
    std::fs::create_dir_all(dir).map_err(werr(dir))?;
    let target = dir.join(namespace);
    let tmp = dir.join(format!(".{namespace}.tmp.{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(werr(&tmp))?;
    }
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(werr(&tmp))?;
        for (i, d) in docs.iter().enumerate() {
            let p = tmp.join(file_name(i, d));
            microplatform_common::io::atomic_write(&p, to_yaml(d).as_bytes()).map_err(werr(&p))?;
        }
        let old = dir.join(format!(".{namespace}.old.{}", std::process::id()));
        if target.exists() {
            std::fs::rename(&target, &old).map_err(werr(&target))?;
        }
        std::fs::rename(&tmp, &target).map_err(werr(&target))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(werr(&old))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threaded_render_equals_the_plain_stream() {
        use std::fmt::Write as _;
        let mut text = String::from("name: big\nregistry: r.io/big\nservices:\n");
        for i in 0..450 {
            let _ = write!(
                text,
                "  s{i:03}:\n    image: s{i:03}\n    ports: [{{port: 80}}]\n    ingress: {{path: /s{i:03}}}\n"
            );
        }
        text.push_str("environments:\n  dev: {namespace: \"{stack}-{branch}\", host: \"{branch}.example.com\"}\n");
        let stack = crate::stack::Stack::parse("big.yaml", &text).unwrap();
        let r = crate::resolve::resolve(&stack, "dev", "feature/x").unwrap();
        let plain = stream(&documents(&r, "v1"));
        assert_eq!(render(&r, "v1"), plain);
        assert_eq!(plain.matches("\n---\n").count(), 1 + 2 * 450);
    }
}
