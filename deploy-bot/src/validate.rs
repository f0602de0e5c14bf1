//! Validation of a namespace directory before anything is applied: documents parse, kinds allowed, objects in their directory's namespace, images pinned by digest and from allowed registries.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::manifests::{COMPOSE_FILES, is_compose, parse_documents};

/// The label that marks every object deploy-bot applies; its value is the namespace (the prune inventory).
pub const INVENTORY_LABEL: &str = "deploy-bot.microplatform.dev/inventory";

/// Kinds allowed by default, with the group/version used for pruning.
pub const DEFAULT_KINDS: &[(&str, &str)] = &[
    ("ConfigMap", "core/v1"),
    ("Secret", "core/v1"),
    ("Service", "core/v1"),
    ("ServiceAccount", "core/v1"),
    ("PersistentVolumeClaim", "core/v1"),
    ("LimitRange", "core/v1"),
    ("ResourceQuota", "core/v1"),
    ("Deployment", "apps/v1"),
    ("StatefulSet", "apps/v1"),
    ("DaemonSet", "apps/v1"),
    ("Job", "batch/v1"),
    ("CronJob", "batch/v1"),
    ("Ingress", "networking.k8s.io/v1"),
    ("NetworkPolicy", "networking.k8s.io/v1"),
    ("PodDisruptionBudget", "policy/v1"),
    ("HorizontalPodAutoscaler", "autoscaling/v2"),
    ("Role", "rbac.authorization.k8s.io/v1"),
    ("RoleBinding", "rbac.authorization.k8s.io/v1"),
];

/// Kinds that live outside namespaces.
pub const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "IngressClass",
    "RuntimeClass",
    "APIService",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "CertificateSigningRequest",
    "ClusterTrustBundle",
    "ComponentStatus",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "TokenReview",
    "SelfSubjectReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SubjectAccessReview",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "StorageVersion",
    "StorageVersionMigration",
    "VolumeAttributesClass",
    "DeviceClass",
    "IPAddress",
    "ServiceCIDR",
];

/// Whether a kind is cluster-scoped (a built-in one; see [`CLUSTER_SCOPED`]).
pub fn is_cluster_scoped(kind: &str) -> bool {
    CLUSTER_SCOPED.contains(&kind)
}

/// `--allow-kind` of a cluster-scoped kind needs `--allow-cluster-scoped` as well: the refused kinds.
pub fn cluster_scoped_without_permission(
    allow_kinds: &[String],
    allow_cluster_scoped: bool,
) -> Vec<&str> {
    if allow_cluster_scoped {
        return Vec::new();
    }
    allow_kinds
        .iter()
        .map(String::as_str)
        .filter(|k| is_cluster_scoped(k))
        .collect()
}

/// What validation enforces.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Kinds allowed (default [`DEFAULT_KINDS`] plus `--allow-kind`).
    pub kinds: BTreeSet<String>,
    /// Allow cluster-scoped kinds (they must still be on the kinds list).
    pub allow_cluster_scoped: bool,
    /// Every image must be pinned by digest.
    pub require_digest: bool,
    /// When non-empty, every image must come from one of these registries (host, or host/path prefix).
    pub allowed_registries: Vec<String>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            kinds: DEFAULT_KINDS
                .iter()
                .map(|(k, _)| (*k).to_string())
                .collect(),
            allow_cluster_scoped: false,
            require_digest: true,
            allowed_registries: Vec::new(),
        }
    }
}

impl Policy {
    /// The agent's policy from its flags: the default kinds plus `allow_kinds`, digests required
    /// unless `allow_unpinned`, images only from `allowed_registries` when any are named. A
    /// cluster-scoped kind in `allow_kinds` without `allow_cluster_scoped` is refused (usage).
    pub fn for_agent(
        allow_kinds: Vec<String>,
        allow_cluster_scoped: bool,
        allow_unpinned: bool,
        allowed_registries: Vec<String>,
    ) -> crate::error::Result<Self> {
        let refused = cluster_scoped_without_permission(&allow_kinds, allow_cluster_scoped);
        if !refused.is_empty() {
            return Err(crate::error::Error::Usage(format!(
                "--allow-kind {}: cluster-scoped; pass --allow-cluster-scoped as well",
                refused.join(", ")
            )));
        }
        let mut policy = Self {
            require_digest: !allow_unpinned,
            allow_cluster_scoped,
            allowed_registries,
            ..Self::default()
        };
        policy.kinds.extend(allow_kinds);
        Ok(policy)
    }
}

/// A validated Kubernetes namespace directory, ready for `kubectl apply`.
#[derive(Debug, Clone)]
pub struct KubeSet {
    /// The documents as one multi-document YAML stream, namespace set and inventory label added.
    pub yaml: String,
    /// `Kind/name` of every object, sorted.
    pub objects: Vec<String>,
    /// `group/version/Kind` of every kind present (for the prune allow-list).
    pub gvks: BTreeSet<String>,
}

/// A validated swarm stack.
#[derive(Debug, Clone)]
pub struct StackSet {
    /// The compose file.
    pub file: PathBuf,
    /// Service names, sorted.
    pub services: Vec<String>,
}

/// Is `image` pinned by a sha256 digest? (The rule every tool shares: `microplatform_common::reference`.)
pub fn is_pinned(image: &str) -> bool {
    microplatform_common::reference::is_pinned(image)
}

/// The registry host of an image reference as docker normalises it (`docker.io` when none is named); `None`
/// when `image` is not a valid reference.
pub fn registry_of(image: &str) -> Option<String> {
    microplatform_common::reference::Reference::parse(image)
        .ok()
        .map(|r| r.registry().to_string())
}

fn check_image(image: &str, policy: &Policy, what: &str, problems: &mut Vec<String>) {
    if policy.require_digest && !is_pinned(image) {
        problems.push(format!(
            "{what}: image {image:?} is not pinned by digest (@sha256:...)"
        ));
    }
    let Some(reg) = registry_of(image) else {
        let why = microplatform_common::reference::Reference::parse(image)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        problems.push(format!(
            "{what}: image {image:?} is not a valid image reference: {why}"
        ));
        return;
    };
    if !policy.allowed_registries.is_empty() {
        let ok = policy.allowed_registries.iter().any(|a| {
            let a = a.trim_end_matches('/');
            reg == a || image.starts_with(&format!("{a}/"))
        });
        if !ok {
            problems.push(format!(
                "{what}: image {image:?} is not from an allowed registry ({})",
                policy.allowed_registries.join(", ")
            ));
        }
    }
}

fn collect_images(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                if let Value::Array(items) = val
                    && matches!(
                        k.as_str(),
                        "containers" | "initContainers" | "ephemeralContainers"
                    )
                {
                    for c in items {
                        if let Some(img) = c.get("image").and_then(Value::as_str) {
                            out.push(img.to_string());
                        }
                    }
                }
                collect_images(val, out);
            }
        }
        Value::Array(s) => s.iter().for_each(|x| collect_images(x, out)),
        _ => {}
    }
}

/// `dir/x/y` as `NS/x/y` (the namespace directory's name and below): never the absolute extraction path.
fn repo_relative(dir: &Path, p: &Path) -> String {
    let ns = dir.file_name().unwrap_or_default().to_string_lossy();
    match p.strip_prefix(dir) {
        Ok(r) if r.as_os_str().is_empty() => format!("{ns}/"),
        Ok(r) => format!("{ns}/{}", r.display()),
        Err(_) => format!("{ns}/?"),
    }
}

fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, Vec<String>> {
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.map_err(|e| {
            let at = e
                .path()
                .map_or_else(|| repo_relative(dir, dir), |p| repo_relative(dir, p));
            let why = e
                .io_error()
                .map_or_else(|| "cannot be read".to_string(), ToString::to_string);
            vec![format!("{at}: {why}")]
        })?;
        if e.file_type().is_symlink() {
            return Err(vec![format!(
                "{}: symlinks are not allowed",
                repo_relative(dir, e.path())
            )]);
        }
        if e.file_type().is_file()
            && e.path()
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
        {
            files.push(e.path().to_path_buf());
        }
    }
    Ok(files)
}

/// Validate the Kubernetes manifests of `dir` (the directory `NS/`) and render them for namespace `target`
/// (the same as `ns`, or a preview namespace). All problems are collected.
pub fn validate_kube(
    dir: &Path,
    ns: &str,
    target: &str,
    policy: &Policy,
) -> Result<KubeSet, Vec<String>> {
    let files = manifest_files(dir)?;
    let mut problems = Vec::new();
    let mut out = Vec::new();
    let mut objects = Vec::new();
    let mut gvks = BTreeSet::new();
    let mut seen = BTreeSet::new();
    if files.is_empty() {
        problems.push(format!("{ns}/: no manifests (.yaml, .yml, .json)"));
    }
    for f in &files {
        let rel = f
            .strip_prefix(dir.parent().unwrap_or(dir))
            .unwrap_or(f)
            .display()
            .to_string();
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{rel}: {e}"));
                continue;
            }
        };
        let docs = match parse_documents(&text, &rel) {
            Ok(d) => d,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        for (i, mut doc) in docs.into_iter().enumerate() {
            let at = format!("{rel}: document {}", i + 1);
            let Some(map) = doc.as_object() else {
                problems.push(format!("{at}: not a mapping"));
                continue;
            };
            let api = map
                .get("apiVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
            let kind = map.get("kind").and_then(Value::as_str).map(str::to_string);
            let name = doc
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string);
            let (Some(api), Some(kind), Some(name)) = (api, kind, name) else {
                problems.push(format!("{at}: needs apiVersion, kind and metadata.name"));
                continue;
            };
            let at = format!("{at} ({kind}/{name})");
            if !policy.kinds.contains(&kind) {
                problems.push(format!("{at}: kind {kind} is not on the allow-list"));
                continue;
            }
            let cluster = is_cluster_scoped(&kind);
            let obj_ns = doc
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .map(str::to_string);
            if cluster {
                if !policy.allow_cluster_scoped {
                    problems.push(format!("{at}: cluster-scoped kinds are not allowed"));
                    continue;
                }
            } else if let Some(o) = &obj_ns
                && o != ns
            {
                problems.push(format!(
                    "{at}: namespace {o:?} is not the directory's namespace {ns:?}"
                ));
                continue;
            }
            let mut images = Vec::new();
            collect_images(&doc, &mut images);
            for img in images {
                check_image(&img, policy, &at, &mut problems);
            }
            if !seen.insert(format!("{api}/{kind}/{name}")) {
                problems.push(format!("{at}: defined twice"));
                continue;
            }
            // Render: namespace and inventory label set.
            let meta = doc
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
                .expect("metadata checked above");
            if !cluster {
                meta.insert("namespace".into(), target.into());
            }
            let labels = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Map::new()));
            if !labels.is_object() {
                problems.push(format!("{at}: metadata.labels is not a mapping"));
                continue;
            }
            labels
                .as_object_mut()
                .expect("mapping")
                .insert(INVENTORY_LABEL.into(), target.into());
            let gv = if api.contains('/') {
                api.clone()
            } else {
                format!("core/{api}")
            };
            gvks.insert(format!("{gv}/{kind}"));
            objects.push(format!("{kind}/{name}"));
            out.push(doc);
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut yaml = String::new();
    for d in &out {
        yaml.push_str("---\n");
        // Validation reports every problem as a line of text (the agent shows them all).
        yaml.push_str(&crate::manifests::to_yaml(d).map_err(|e| vec![e.to_string()])?);
    }
    objects.sort();
    Ok(KubeSet {
        yaml,
        objects,
        gvks,
    })
}

/// Find the compose file of a swarm namespace directory.
pub fn compose_file(dir: &Path) -> Option<PathBuf> {
    COMPOSE_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Validate the swarm stack of `dir` (`compose.yaml`, `docker-compose.yml` or `stack.yml`).
pub fn validate_stack(dir: &Path, ns: &str, policy: &Policy) -> Result<StackSet, Vec<String>> {
    let Some(file) = compose_file(dir) else {
        return Err(vec![format!(
            "{ns}/: no stack file ({})",
            COMPOSE_FILES.join(", ")
        )]);
    };
    let rel = format!(
        "{ns}/{}",
        file.file_name().unwrap_or_default().to_string_lossy()
    );
    let text = std::fs::read_to_string(&file).map_err(|e| vec![format!("{rel}: {e}")])?;
    let docs = parse_documents(&text, &rel).map_err(|e| vec![e.to_string()])?;
    let [doc] = docs.as_slice() else {
        return Err(vec![format!("{rel}: expected exactly one YAML document")]);
    };
    if !is_compose(doc) {
        return Err(vec![format!(
            "{rel}: not a compose file (no top-level `services`)"
        )]);
    }
    let Some(services) = doc.get("services").and_then(Value::as_object) else {
        return Err(vec![format!("{rel}: `services` is not a mapping")]);
    };
    let mut problems = Vec::new();
    let mut names = Vec::new();
    for (k, svc) in services {
        let name = k.clone();
        let at = format!("{rel}: service {name}");
        if svc.get("build").is_some() {
            problems.push(format!("{at}: `build` is not allowed; use a pushed image"));
        }
        match svc.get("image").and_then(Value::as_str) {
            Some(img) => check_image(img, policy, &at, &mut problems),
            None => problems.push(format!("{at}: no image")),
        }
        names.push(name);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    names.sort();
    Ok(StackSet {
        file,
        services: names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("team")).unwrap();
        for (n, c) in files {
            std::fs::write(t.path().join("team").join(n), c).unwrap();
        }
        t
    }

    #[test]
    fn pinned_and_registry() {
        assert!(is_pinned(&format!("r.io/a@{D}")));
        assert!(!is_pinned("r.io/a:1"));
        assert_eq!(
            registry_of("127.0.0.1:5000/x/y").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(registry_of("busybox").as_deref(), Some("docker.io"));
        assert_eq!(registry_of("Not A Reference"), None);
    }

    #[test]
    fn renders_namespace_and_label() {
        let t = dir_with(&[(
            "d.yaml",
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  template:\n    spec:\n      containers: [{{name: a, image: \"r.io/a@{D}\"}}]\n"
            ),
        )]);
        let set =
            validate_kube(&t.path().join("team"), "team", "team", &Policy::default()).unwrap();
        assert!(set.yaml.contains("namespace: team"));
        assert!(set.yaml.contains(INVENTORY_LABEL));
        assert_eq!(set.objects, ["Deployment/web"]);
        assert!(set.gvks.contains("apps/v1/Deployment"));
    }

    #[test]
    fn allowed_cluster_scoped_kind_still_needs_the_cluster_scope_gate() {
        let t = dir_with(&[(
            "csr.yaml",
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: x}\nspec: {request: eA==, signerName: a/b, usages: [client auth]}\n",
        )]);
        let mut policy = Policy::default();
        policy.kinds.insert("CertificateSigningRequest".into());
        let p = validate_kube(&t.path().join("team"), "team", "team", &policy).unwrap_err();
        assert!(
            p[0].contains("cluster-scoped kinds are not allowed"),
            "{p:?}"
        );
        policy.allow_cluster_scoped = true;
        let set = validate_kube(&t.path().join("team"), "team", "team", &policy).unwrap();
        assert!(!set.yaml.contains("namespace: team"), "{}", set.yaml);
        let kinds = vec![
            "CertificateSigningRequest".to_string(),
            "Widget".to_string(),
        ];
        assert_eq!(
            cluster_scoped_without_permission(&kinds, false),
            ["CertificateSigningRequest"]
        );
        assert!(cluster_scoped_without_permission(&kinds, true).is_empty());
    }

    #[test]
    fn symlink_problems_name_repo_relative_paths() {
        let t = dir_with(&[(
            "a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        )]);
        std::os::unix::fs::symlink("/etc/passwd", t.path().join("team/link.yaml")).unwrap();
        let p =
            validate_kube(&t.path().join("team"), "team", "team", &Policy::default()).unwrap_err();
        assert_eq!(p, ["team/link.yaml: symlinks are not allowed"]);
    }

    #[test]
    fn rejects_everything_wrong() {
        let t = dir_with(&[
            (
                "a.yaml",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
            ),
            (
                "b.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, namespace: other}\n",
            ),
            ("c.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"),
            (
                "d.yaml",
                "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: [{name: a, image: 'busybox:1'}]}}}\n",
            ),
            ("e.yaml", "a: [\n"),
        ]);
        let p =
            validate_kube(&t.path().join("team"), "team", "team", &Policy::default()).unwrap_err();
        assert_eq!(p.len(), 5, "{p:#?}");
    }
}
