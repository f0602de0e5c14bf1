//! Names of things in the registry: the default cache repository, branch names made tags, stage cache refs, buildah layer repositories and `content-<KEY>` refs.

use sha2::{Digest, Sha256};

/// Split `name[:tag][@digest]` into (name, tag) the way docker does (a `:` after the last `/` starts the tag):
/// [`microplatform_common::reference::split_tag`], owned.
#[must_use]
pub fn split_tag(reference: &str) -> (String, Option<String>) {
    let (name, tag) = microplatform_common::reference::split_tag(reference);
    (name.to_string(), tag.map(str::to_string))
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

/// The cache ref of one stage for one branch: `<cache_repo>:cache-<branch>--<stage>`.
///
/// `stage` is a stage's `AS` name (it starts with a letter) or, for an
/// unnamed stage, its index (digits only), so the two never collide. The
/// branch part never contains `--` (runs of `-` collapse) nor ends in `-`,
/// so the first `--` separates branch and stage: no two (branch, stage)
/// pairs share a ref. A tag longer than 128 characters keeps a cut stage
/// part followed by a short hash of the whole stage name.
#[must_use]
pub fn stage_ref(cache_repo: &str, branch: &str, stage: &str) -> String {
    let head = format!("cache-{}--", branch_tag(branch));
    let room = 128 - head.len();
    let tail = if stage.len() <= room {
        stage.to_string()
    } else {
        let keep = room.saturating_sub(9);
        format!("{}-{}", &stage[..keep], short_hash(stage))
    };
    format!("{cache_repo}:{head}{tail}")
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

/// The content-addressed ref of a content key (`sha256:<hex>`):
/// `<image repository>:content-<hex>`.
#[must_use]
pub fn content_ref(image: &str, key: &str) -> String {
    format!(
        "{}:content-{}",
        repository_of(image),
        key.strip_prefix("sha256:").unwrap_or(key)
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
        assert_eq!(stage_ref("r/c", "main", "build"), "r/c:cache-main--build");
        let feat = stage_ref("r/c", "feature/JIRA-1 fix", "deps");
        assert!(feat.starts_with("r/c:cache-feature-JIRA-1-fix-"), "{feat}");
        assert!(feat.ends_with("--deps"), "{feat}");
        let long = branch_tag(&"x".repeat(300));
        assert!(long.len() <= 60);
        assert_eq!(content_ref("r/app:v1", "sha256:abc"), "r/app:content-abc");
        assert_eq!(
            buildah_layers_repo("r/c", "Feat/X"),
            format!("r/c/layers-feat-x-{}", short_hash("Feat/X"))
        );
        assert!(is_loopback_registry("127.0.0.1:5000/a"));
        assert!(is_loopback_registry("localhost:5000/a"));
        assert!(!is_loopback_registry("docker.io/a"));
        assert!(!is_loopback_registry("library/a"));
    }

    #[test]
    fn stage_refs_never_collide() {
        // A stage named `stage-1` and the unnamed stage 1.
        assert_ne!(
            stage_ref("r", "main", "stage-1"),
            stage_ref("r", "main", "1")
        );
        // Branch `main` + stage `foo-bar` and branch `main-foo` + stage `bar`.
        assert_ne!(
            stage_ref("r", "main", "foo-bar"),
            stage_ref("r", "main-foo", "bar")
        );
        assert_ne!(
            stage_ref("r", "main--x", "y"),
            stage_ref("r", "main", "x--y")
        );
        let long = stage_ref("r", &"b".repeat(80), &"s".repeat(200));
        let tag = long.rsplit_once(':').unwrap().1;
        assert!(tag.len() <= 128, "{tag}");
        assert_ne!(
            long,
            stage_ref("r", &"b".repeat(80), &format!("{}t", "s".repeat(199)))
        );
    }
}
