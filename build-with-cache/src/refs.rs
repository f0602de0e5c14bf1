//! Names of things in the registry: the default cache repository, branch names made tags, stage cache refs, buildah layer repositories and `src-<HASH>` refs.

use sha2::{Digest, Sha256};

/// Split `name[:tag][@digest]` into (name, tag) the way docker does
/// (a `:` after the last `/` starts the tag).
#[must_use]
pub fn split_tag(reference: &str) -> (String, Option<String>) {
    let without_digest = reference.split_once('@').map_or(reference, |(n, _)| n);
    match without_digest.rfind(':') {
        Some(i) if !without_digest[i + 1..].contains('/') => (
            without_digest[..i].to_string(),
            Some(without_digest[i + 1..].to_string()),
        ),
        _ => (without_digest.to_string(), None),
    }
}

/// The repository of an image reference (tag and digest removed).
#[must_use]
pub fn repository_of(reference: &str) -> String {
    split_tag(reference).0
}

/// The default cache repository for an image: its own repository (cache tags
/// start with `cache-`), so a cached final image can be tagged registry-side.
#[must_use]
pub fn default_cache_repo(image: &str) -> String {
    repository_of(image)
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..4])
}

/// Make `name` a valid tag fragment: `[A-Za-z0-9_.-]`, other characters become
/// `-`, runs of `-` collapse, leading `.`/`-` are dropped; names longer than
/// `max` are cut and get a short hash of the original so they stay unique.
#[must_use]
pub fn sanitize_tag(name: &str, max: usize) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let out = out.trim_start_matches(['-', '.']).trim_end_matches('-');
    let out = if out.is_empty() { "x" } else { out };
    if out.len() <= max && out == name {
        return out.to_string();
    }
    if out.len() <= max {
        // Changed by sanitising: keep it readable but unique.
        if out.len() + 9 <= max && out != name {
            return format!("{out}-{}", short_hash(name));
        }
        return out.to_string();
    }
    let keep = max.saturating_sub(9);
    format!(
        "{}-{}",
        out[..keep].trim_end_matches(['-', '.']),
        short_hash(name)
    )
}

/// A branch name made a tag fragment (at most 60 characters).
#[must_use]
pub fn branch_tag(branch: &str) -> String {
    sanitize_tag(branch, 60)
}

/// A branch name made a repository path component (`[a-z0-9]+([._-][a-z0-9]+)*`).
#[must_use]
pub fn branch_component(branch: &str) -> String {
    let lower = branch.to_ascii_lowercase();
    let mut out = String::new();
    for c in lower.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_end_matches('-');
    let out = if out.is_empty() { "x" } else { out };
    if out == branch {
        out.to_string()
    } else {
        format!("{out}-{}", short_hash(branch))
    }
}

/// The cache ref of one stage for one branch: `<cache_repo>:cache-<branch>-<stage>`.
#[must_use]
pub fn stage_ref(cache_repo: &str, branch: &str, stage: &str) -> String {
    format!(
        "{cache_repo}:{}",
        sanitize_tag(&format!("cache-{}-{stage}", branch_tag(branch)), 128)
    )
}

/// The buildx registry cache ref of a branch: `<cache_repo>:cache-<branch>-buildx`.
#[must_use]
pub fn buildx_ref(cache_repo: &str, branch: &str) -> String {
    format!("{cache_repo}:cache-{}-buildx", branch_tag(branch))
}

/// The buildah layer-cache repository of a branch: `<cache_repo>/layers-<branch>`.
#[must_use]
pub fn buildah_layers_repo(cache_repo: &str, branch: &str) -> String {
    format!("{cache_repo}/layers-{}", branch_component(branch))
}

/// The content-addressed ref: `<image repository>:src-<HASH>`.
#[must_use]
pub fn source_ref(image: &str, hash: &str) -> String {
    format!(
        "{}:{}",
        repository_of(image),
        sanitize_tag(&format!("src-{hash}"), 128)
    )
}

/// Whether the registry host of a reference is loopback (plain HTTP, no TLS verify).
#[must_use]
pub fn is_loopback_registry(reference: &str) -> bool {
    let Some((host, _)) = reference.split_once('/') else {
        return false;
    };
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return false;
    }
    let h = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    h == "localhost" || h.starts_with("127.") || h == "[::1]"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b:v1"),
            ("127.0.0.1:5000/a/b".into(), Some("v1".into()))
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/a/b"),
            ("127.0.0.1:5000/a/b".into(), None)
        );
        assert_eq!(default_cache_repo("r:5000/team/app:v1"), "r:5000/team/app");
        assert_eq!(stage_ref("r/c", "main", "build"), "r/c:cache-main-build");
        let feat = stage_ref("r/c", "feature/JIRA-1 fix", "deps");
        assert!(feat.starts_with("r/c:cache-feature-JIRA-1-fix-"), "{feat}");
        let long = branch_tag(&"x".repeat(300));
        assert!(long.len() <= 60);
        assert_eq!(source_ref("r/app:v1", "abc"), "r/app:src-abc");
        assert_eq!(
            buildah_layers_repo("r/c", "Feat/X"),
            format!("r/c/layers-feat-x-{}", short_hash("Feat/X"))
        );
        assert!(is_loopback_registry("127.0.0.1:5000/a"));
        assert!(is_loopback_registry("localhost:5000/a"));
        assert!(!is_loopback_registry("docker.io/a"));
        assert!(!is_loopback_registry("library/a"));
    }
}
