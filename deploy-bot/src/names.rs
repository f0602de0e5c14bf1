//! Name checks: namespaces are DNS-1123 labels, paths stay inside their directory, shas and labels are safe to put in refs and commit messages.

use std::path::{Component, Path};

use crate::error::{Error, Result};

/// Check a namespace: a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters), by the rule
/// every tool shares (`microplatform_common::names`).
pub fn check_namespace(ns: &str) -> Result<()> {
    match microplatform_common::names::dns_label_problem(ns) {
        None => Ok(()),
        Some(reason) => Err(Error::Name {
            what: "namespace",
            value: ns.to_string(),
            reason,
        }),
    }
}

/// Whether a string is a namespace name (see [`check_namespace`]).
pub fn is_namespace(ns: &str) -> bool {
    check_namespace(ns).is_ok()
}

/// Check a relative path inside a namespace directory: relative, no `..`, no root or prefix.
pub fn check_relative_path(path: &Path) -> Result<()> {
    let bad = |reason: &str| Error::Name {
        what: "path",
        value: path.display().to_string(),
        reason: reason.to_string(),
    };
    if path.as_os_str().is_empty() {
        return Err(bad("empty"));
    }
    for c in path.components() {
        match c {
            Component::Normal(_) => {}
            Component::ParentDir => return Err(bad("contains '..'")),
            Component::RootDir | Component::Prefix(_) => return Err(bad("is absolute")),
            Component::CurDir => return Err(bad("contains '.'")),
        }
    }
    Ok(())
}

/// Check a source sha (or version) used in a branch name: `[A-Za-z0-9._-]`, 1..=64 characters, not starting with `.` or `-`.
pub fn check_sha(sha: &str) -> Result<()> {
    let ok = !sha.is_empty()
        && sha.len() <= 64
        && !sha.starts_with(['.', '-'])
        && !sha.contains("..")
        && !sha.to_ascii_lowercase().ends_with(".lock")
        && sha
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::Name {
            what: "sha",
            value: sha.to_string(),
            reason: "must be 1-64 characters of [A-Za-z0-9._-], not starting with '.' or '-'"
                .into(),
        })
    }
}

/// Check a branch name the way `git check-ref-format --branch` would refuse the usual mistakes: empty, spaces or
/// control characters, `..`, `~^:?*[\\`, a leading `-` or `/`, a trailing `/`, `.` or `.lock`.
pub fn check_branch(b: &str) -> Result<()> {
    let bad = b.is_empty()
        || b.starts_with(['-', '/'])
        || b.ends_with(['/', '.'])
        || b.contains("..")
        || b.contains("//")
        || b.contains("@{")
        || b.to_ascii_lowercase().ends_with(".lock")
        || b.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(Error::Name {
            what: "branch",
            value: b.to_string(),
            reason: "not a valid git branch name".into(),
        });
    }
    Ok(())
}

/// Parse a `key=value` label for the commit message.
pub fn parse_label(s: &str) -> Result<(String, String)> {
    let bad = |reason: &str| Error::Name {
        what: "label",
        value: s.to_string(),
        reason: reason.to_string(),
    };
    let (k, v) = s.split_once('=').ok_or_else(|| bad("expected key=value"))?;
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
    {
        return Err(bad("key must be non-empty [A-Za-z0-9._/-]"));
    }
    if v.chars().any(char::is_control) {
        return Err(bad("value must not contain control characters"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        for ok in ["a", "team-a", "x1", &"a".repeat(63)] {
            assert!(is_namespace(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../x",
            "/etc",
            "A",
            "a_b",
            "-a",
            "a-",
            "a/b",
            "a.b",
            &"a".repeat(64),
        ] {
            assert!(!is_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn paths() {
        assert!(check_relative_path(Path::new("a/b.yaml")).is_ok());
        assert!(check_relative_path(Path::new("../b.yaml")).is_err());
        assert!(check_relative_path(Path::new("/b.yaml")).is_err());
        assert!(check_relative_path(Path::new("a/../../b")).is_err());
    }

    #[test]
    fn shas_and_labels() {
        assert!(check_sha("0123abc").is_ok());
        assert!(check_sha("v1.2.3").is_ok());
        assert!(check_sha("a/b").is_err());
        assert!(check_sha("..").is_err());
        assert!(check_sha("-x").is_err());
        assert_eq!(
            parse_label("team=core").unwrap(),
            ("team".into(), "core".into())
        );
        assert!(parse_label("novalue").is_err());
        assert!(parse_label("k=a\nb").is_err());
    }
}
