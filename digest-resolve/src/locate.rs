//! Where images are: built-in rules per kind (Kubernetes workloads, Argo templates, Compose services) and user `--image-path` rules.

use crate::doc::{Document, IStep, Interest, Node, Scalar};

/// One step of an image path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A mapping key.
    Key(String),
    /// Every item of a sequence (`[*]`).
    AllItems,
    /// One item of a sequence (`[3]`).
    Item(usize),
    /// Every value of a mapping (`*`).
    AllValues,
}

/// A rule: documents of a kind (or any), and a path to image strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePath {
    /// `None` = any kind; else the kind, optionally with the apiVersion
    /// (`example.com/v1/Foo`).
    pub kind: Option<String>,
    /// The steps.
    pub steps: Vec<Step>,
    /// The rule as written.
    pub text: String,
}

impl ImagePath {
    /// Parse `KIND:PATH` (KIND is `Kind`, `apiVersion/Kind` or `*`; PATH is
    /// dotted keys with `[*]`, `[N]` and `*`, e.g. `spec.jobs[*].image`).
    pub fn parse(s: &str) -> Result<Self, String> {
        let (kind, path) = s.split_once(':').ok_or_else(|| {
            format!(
                "invalid --image-path {s:?}: expected KIND:PATH (e.g. MyApp:spec.workers[*].image)"
            )
        })?;
        let kind = kind.trim();
        if kind.is_empty() {
            return Err(format!(
                "invalid --image-path {s:?}: empty KIND (use * for any kind)"
            ));
        }
        let steps = parse_steps(path).map_err(|e| format!("invalid --image-path {s:?}: {e}"))?;
        Ok(Self {
            kind: (kind != "*").then(|| kind.to_string()),
            steps,
            text: s.to_string(),
        })
    }

    fn applies(&self, api_version: Option<&str>, kind: Option<&str>) -> bool {
        let Some(want) = &self.kind else { return true };
        let Some(kind) = kind else { return false };
        match want.rsplit_once('/') {
            Some((api, k)) => k == kind && api_version == Some(api),
            None => want == kind,
        }
    }
}

fn parse_steps(path: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    if path.is_empty() {
        return Err("empty path".into());
    }
    for part in path.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        match name {
            "" if rest.is_empty() => return Err("empty path segment".into()),
            "" => {}
            "*" => steps.push(Step::AllValues),
            n => steps.push(Step::Key(n.to_string())),
        }
        while !rest.is_empty() {
            let close = rest.find(']').ok_or("unclosed '['")?;
            let inner = &rest[1..close];
            steps.push(if inner == "*" {
                Step::AllItems
            } else {
                Step::Item(inner.parse().map_err(|_| format!("bad index [{inner}]"))?)
            });
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return Err(format!("unexpected {rest:?}"));
            }
        }
    }
    Ok(steps)
}

/// An image string found in a document.
#[derive(Debug, Clone)]
pub struct Found {
    /// Path like `spec.template.spec.containers[0].image`.
    pub path: String,
    /// The scalar (for aliases, the anchored scalar).
    pub scalar: Scalar,
}

const POD_LISTS: [&str; 3] = ["containers", "initContainers", "ephemeralContainers"];

/// Where the pod spec of a Kubernetes kind is, and which API groups it may come from.
fn pod_spec_path(kind: &str) -> Option<(&'static [&'static str], &'static [&'static str])> {
    Some(match kind {
        "Pod" => (&["spec"], &["v1"]),
        "PodTemplate" => (&["template", "spec"], &["v1"]),
        "ReplicationController" => (&["spec", "template", "spec"], &["v1"]),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => {
            (&["spec", "template", "spec"], &["apps", "extensions"])
        }
        "Job" => (&["spec", "template", "spec"], &["batch"]),
        "CronJob" => (
            &["spec", "jobTemplate", "spec", "template", "spec"],
            &["batch"],
        ),
        _ => return None,
    })
}

fn api_group(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "v1",
    }
}

const POD_KINDS: [&str; 9] = [
    "Pod",
    "PodTemplate",
    "ReplicationController",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
];

/// Where images are in an Argo template.
const ARGO_IN_TEMPLATE: [&str; 5] = [
    "container.image",
    "script.image",
    "containerSet.containers[*].image",
    "initContainers[*].image",
    "sidecars[*].image",
];

/// Where templates are in an Argo workflow spec: its templates, the inline
/// templates of their DAG tasks and steps (and those of inline templates,
/// one level down), and the template defaults.
const ARGO_TEMPLATES: [&str; 7] = [
    "templates[*]",
    "templates[*].dag.tasks[*].inline",
    "templates[*].steps[*][*].inline",
    "templates[*].dag.tasks[*].inline.dag.tasks[*].inline",
    "templates[*].dag.tasks[*].inline.steps[*][*].inline",
    "templates[*].steps[*][*].inline.dag.tasks[*].inline",
    "templates[*].steps[*][*].inline.steps[*][*].inline",
];

/// Every image path of an Argo workflow spec, relative to the spec.
fn argo_paths() -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    for t in ARGO_TEMPLATES {
        for tail in ARGO_IN_TEMPLATE {
            out.push(parse_steps(&format!("{t}.{tail}")).expect("built-in path"));
        }
    }
    for tail in ["container.image", "script.image"] {
        out.push(parse_steps(&format!("templateDefaults.{tail}")).expect("built-in path"));
    }
    out
}

/// The parser only needs to keep nodes on these paths (built-in and `rules`).
pub fn interest(rules: &[ImagePath]) -> Interest {
    let mut all: Vec<Vec<Step>> = Vec::new();
    for kind in POD_KINDS {
        let (path, _) = pod_spec_path(kind).expect("pod kind");
        for list in POD_LISTS {
            let mut s: Vec<Step> = path.iter().map(|p| Step::Key((*p).to_string())).collect();
            s.extend([
                Step::Key(list.into()),
                Step::AllItems,
                Step::Key("image".into()),
            ]);
            all.push(s);
        }
    }
    for base in [&["spec"][..], &["spec", "workflowSpec"][..]] {
        for tail in argo_paths() {
            let mut s: Vec<Step> = base.iter().map(|p| Step::Key((*p).to_string())).collect();
            s.extend(tail);
            all.push(s);
        }
    }
    all.push(parse_steps("services.*.image").expect("built-in path"));
    all.extend(rules.iter().map(|r| r.steps.clone()));
    let mut i = Interest::new();
    for steps in &all {
        let is: Vec<IStep<'_>> = steps
            .iter()
            .map(|s| match s {
                Step::Key(k) => IStep::Key(k),
                Step::AllValues => IStep::AnyValue,
                Step::AllItems | Step::Item(_) => IStep::Items,
            })
            .collect();
        i.add(&is);
    }
    i
}

/// Every image in a document: built-in locations plus `rules`.
pub fn find_images(doc: &Document, rules: &[ImagePath]) -> Vec<Found> {
    let mut out = Vec::new();
    visit(doc, &doc.root, "", rules, &mut out, 0);
    // An anchored image reached through several aliases is rewritten once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert((f.scalar.span, f.path.clone())));
    out
}

fn visit(
    doc: &Document,
    root: &Node,
    prefix: &str,
    rules: &[ImagePath],
    out: &mut Vec<Found>,
    depth: usize,
) {
    let root = doc.deref(root);
    let api_version = doc
        .get(root, "apiVersion")
        .map(|n| doc.deref(n))
        .and_then(Node::as_str);
    let kind = doc
        .get(root, "kind")
        .map(|n| doc.deref(n))
        .and_then(Node::as_str);
    let mut steps: Vec<Vec<Step>> = Vec::new();
    match kind {
        Some("List") if depth < 8 => {
            if let Some(Node::Seq(items)) = doc.get(root, "items").map(|n| doc.deref(n)) {
                for (i, item) in items.iter().enumerate() {
                    visit(
                        doc,
                        item,
                        &format!("{prefix}items[{i}]."),
                        rules,
                        out,
                        depth + 1,
                    );
                }
            }
        }
        Some(k) => {
            if let Some((path, groups)) = pod_spec_path(k)
                && api_version.is_none_or(|v| groups.contains(&api_group(v)))
            {
                for list in POD_LISTS {
                    let mut s: Vec<Step> =
                        path.iter().map(|p| Step::Key((*p).to_string())).collect();
                    s.extend([
                        Step::Key(list.into()),
                        Step::AllItems,
                        Step::Key("image".into()),
                    ]);
                    steps.push(s);
                }
            }
            let argo = api_version.is_none_or(|v| api_group(v) == "argoproj.io");
            let templates: Option<&[&str]> = match k {
                "Workflow" | "WorkflowTemplate" | "ClusterWorkflowTemplate" if argo => {
                    Some(&["spec"])
                }
                "CronWorkflow" if argo => Some(&["spec", "workflowSpec"]),
                _ => None,
            };
            if let Some(base) = templates {
                let base: Vec<Step> = base.iter().map(|p| Step::Key((*p).to_string())).collect();
                for tail in argo_paths() {
                    let mut s = base.clone();
                    s.extend(tail);
                    steps.push(s);
                }
            }
        }
        None => {
            // Docker Compose / Swarm stack file.
            if matches!(
                doc.get(root, "services").map(|n| doc.deref(n)),
                Some(Node::Map(_))
            ) {
                steps.push(parse_steps("services.*.image").expect("built-in path"));
            }
        }
    }
    for rule in rules {
        if rule.applies(api_version, kind) {
            steps.push(rule.steps.clone());
        }
    }
    for s in &steps {
        let mut path = String::with_capacity(96);
        path.push_str(prefix);
        walk(doc, root, s, &mut path, out);
    }
}

fn walk(doc: &Document, node: &Node, steps: &[Step], path: &mut String, out: &mut Vec<Found>) {
    use std::fmt::Write as _;
    let node = doc.deref(node);
    let Some((step, rest)) = steps.split_first() else {
        if let Node::Scalar(s) = node
            && !s.null
        {
            out.push(Found {
                path: path.trim_end_matches('.').to_string(),
                scalar: s.clone(),
            });
        }
        return;
    };
    let len = path.len();
    match (step, node) {
        (Step::Key(k), Node::Map(_)) => {
            if let Some(v) = doc.get(node, k) {
                path.push_str(k);
                path.push('.');
                walk(doc, v, rest, path, out);
            }
        }
        (Step::AllValues, Node::Map(_)) => {
            for (k, v) in doc.entries(node) {
                path.truncate(len);
                path.push_str(k);
                path.push('.');
                walk(doc, v, rest, path, out);
            }
        }
        (Step::AllItems, Node::Seq(items)) => {
            let base = path.trim_end_matches('.').len();
            for (i, item) in items.iter().enumerate() {
                path.truncate(base);
                let _ = write!(path, "[{i}].");
                walk(doc, item, rest, path, out);
            }
        }
        (Step::Item(i), Node::Seq(items)) => {
            if let Some(item) = items.get(*i) {
                path.truncate(path.trim_end_matches('.').len());
                let _ = write!(path, "[{i}].");
                walk(doc, item, rest, path, out);
            }
        }
        _ => {}
    }
    path.truncate(len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::parse_yaml;

    fn paths(src: &str, rules: &[ImagePath]) -> Vec<(String, String)> {
        let docs = parse_yaml(src).unwrap();
        let full: Vec<(String, String)> = docs
            .iter()
            .flat_map(|d| find_images(d, rules))
            .map(|f| (f.path, f.scalar.value))
            .collect();
        // The pruned parse finds exactly the same images.
        let i = interest(rules);
        let pruned: Vec<(String, String)> =
            crate::doc::scan_yaml(src, Some(&i), |d| find_images(d, rules))
                .unwrap()
                .into_iter()
                .flat_map(|(_, f)| f)
                .map(|f| (f.path, f.scalar.value))
                .collect();
        assert_eq!(full, pruned);
        full
    }

    #[test]
    fn kubernetes_workloads() {
        let src = "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      initContainers: [{name: i, image: busybox}]\n      containers:\n      - name: a\n        image: nginx\n      - name: b\n        image: redis:7\n---\napiVersion: batch/v1\nkind: CronJob\nspec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{image: alpine}]\n---\napiVersion: v1\nkind: ConfigMap\ndata:\n  image: not-me\n";
        assert_eq!(
            paths(src, &[]),
            vec![
                (
                    "spec.template.spec.containers[0].image".into(),
                    "nginx".into()
                ),
                (
                    "spec.template.spec.containers[1].image".into(),
                    "redis:7".into()
                ),
                (
                    "spec.template.spec.initContainers[0].image".into(),
                    "busybox".into()
                ),
                (
                    "spec.jobTemplate.spec.template.spec.containers[0].image".into(),
                    "alpine".into()
                ),
            ]
        );
    }

    #[test]
    fn argo_compose_lists_and_rules() {
        let src = "apiVersion: argoproj.io/v1alpha1\nkind: CronWorkflow\nspec:\n  workflowSpec:\n    templates:\n    - name: a\n      container: {image: a}\n      sidecars: [{image: s}]\n    - name: b\n      script: {image: b}\n    - name: c\n      containerSet: {containers: [{image: c}]}\n---\nservices:\n  web: {image: web}\n  db: {build: .}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  spec: {containers: [{image: p}]}\n---\napiVersion: x.io/v1\nkind: App\nspec: {workers: [{img: w}]}\n";
        let rules = [ImagePath::parse("x.io/v1/App:spec.workers[*].img").unwrap()];
        let got: Vec<String> = paths(src, &rules)
            .into_iter()
            .map(|(p, v)| format!("{p}={v}"))
            .collect();
        assert_eq!(
            got,
            [
                "spec.workflowSpec.templates[0].container.image=a",
                "spec.workflowSpec.templates[1].script.image=b",
                "spec.workflowSpec.templates[2].containerSet.containers[0].image=c",
                "spec.workflowSpec.templates[0].sidecars[0].image=s",
                "services.web.image=web",
                "items[0].spec.containers[0].image=p",
                "spec.workers[0].img=w",
            ]
        );
        assert!(ImagePath::parse("nokind").is_err());
        assert!(ImagePath::parse("A:spec.[x]").is_err());
    }
}
