//! Where a promoted image goes: the rule mapping a source reference to its repository in a release-candidate registry (`REGISTRY[/PREFIX]`).
//!
//! The rule, in one place: the target of `SRC_REGISTRY/REPOSITORY[:TAG][@DIGEST]` is
//! `REGISTRY[/PREFIX]/REPOSITORY` — the repository path is kept whole (normalised, so a
//! Docker Hub image keeps `library/`), the registry host is replaced and the prefix, if
//! any, is put in front. A reference already under the destination (same registry, and
//! the repository under the prefix) maps to itself, so promoting promoted manifests again
//! changes nothing.

use crate::reference::{Reference, ReferenceError};

/// A destination that does not parse, or a reference it cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    /// Not `REGISTRY[/PREFIX]` (no registry host, or a tag or digest).
    #[error("invalid destination {value:?}: {reason}")]
    Form {
        /// The value given.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The registry and prefix do not make a valid repository name.
    #[error("invalid destination {value:?}: {source}")]
    Name {
        /// The value given.
        value: String,
        /// Why the name is invalid.
        #[source]
        source: ReferenceError,
    },
    /// The target of a reference is not a valid reference (too long, for one).
    #[error("{image} cannot be promoted to {target}: {source}")]
    Map {
        /// The source image (familiar form).
        image: String,
        /// The target repository.
        target: String,
        /// Why the target is invalid.
        #[source]
        source: ReferenceError,
    },
}

/// A release-candidate registry and an optional repository prefix, e.g.
/// `rc.example.com`, `127.0.0.1:5001/rc`, `registry.example.com/shop/rc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    registry: String,
    prefix: Option<String>,
}

impl Destination {
    /// Parse `REGISTRY[/PREFIX]`. The first component must be a registry as Docker
    /// tells them (it contains `.` or `:`, or is `localhost`); the prefix is one or
    /// more repository path components.
    pub fn parse(s: &str) -> Result<Self, DestinationError> {
        let s = s.trim_end_matches('/');
        let (host, prefix) = match s.split_once('/') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if host.is_empty() || !(host.contains('.') || host.contains(':') || host == "localhost") {
            return Err(DestinationError::Form {
                value: s.to_string(),
                reason: "expected REGISTRY[/PREFIX], where REGISTRY is a host with a `.` or a `:port`, or `localhost`",
            });
        }
        let probe =
            Reference::parse(&format!("{s}/x")).map_err(|source| DestinationError::Name {
                value: s.to_string(),
                source,
            })?;
        if probe.explicit_tag().is_some() || probe.digest().is_some() {
            return Err(DestinationError::Form {
                value: s.to_string(),
                reason: "a registry and prefix take no tag or digest",
            });
        }
        Ok(Self {
            registry: probe.registry().to_string(),
            prefix: prefix.map(str::to_string),
        })
    }

    /// The registry (`host[:port]`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository prefix, if any.
    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// Whether a reference is already under this destination.
    pub fn contains(&self, r: &Reference) -> bool {
        r.registry() == self.registry
            && self.prefix.as_deref().is_none_or(|p| {
                r.repository()
                    .strip_prefix(p)
                    .is_some_and(|rest| rest.starts_with('/'))
            })
    }

    /// The target of a source reference: the destination's registry and prefix, the
    /// source's repository path, tag and digest (see the module documentation). A
    /// reference already under the destination is returned as it is.
    pub fn map(&self, r: &Reference) -> Result<Reference, DestinationError> {
        if self.contains(r) {
            return Ok(r.clone());
        }
        let name = match &self.prefix {
            Some(p) => format!("{}/{p}/{}", self.registry, r.repository()),
            None => format!("{}/{}", self.registry, r.repository()),
        };
        let mut full = name.clone();
        if let Some(t) = r.explicit_tag() {
            full.push(':');
            full.push_str(t);
        }
        if let Some(d) = r.digest() {
            full.push('@');
            full.push_str(d);
        }
        Reference::parse(&full).map_err(|source| DestinationError::Map {
            image: r.familiar(),
            target: name,
            source,
        })
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.prefix {
            Some(p) => write!(f, "{}/{p}", self.registry),
            None => f.write_str(&self.registry),
        }
    }
}

impl std::str::FromStr for Destination {
    type Err = DestinationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(dest: &str, r: &str) -> String {
        Destination::parse(dest)
            .unwrap()
            .map(&Reference::parse(r).unwrap())
            .unwrap()
            .to_string()
    }

    #[test]
    fn keeps_the_repository_and_replaces_registry_and_prefix() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            map("rc.example.com", &format!("reg.io/shop/api:v1@{d}")),
            format!("rc.example.com/shop/api:v1@{d}")
        );
        assert_eq!(
            map("127.0.0.1:5001/rc", &format!("localhost:5000/shop/api@{d}")),
            format!("127.0.0.1:5001/rc/shop/api@{d}")
        );
        assert_eq!(
            map("rc.example.com/a/b", "nginx:1.25"),
            "rc.example.com/a/b/library/nginx:1.25"
        );
        assert_eq!(
            map("rc.example.com", "nginx"),
            "rc.example.com/library/nginx:latest"
        );
    }

    #[test]
    fn already_promoted_maps_to_itself() {
        let d = format!("sha256:{}", "b".repeat(64));
        let once = map("rc.io/rc", &format!("reg.io/shop/api:v1@{d}"));
        assert_eq!(map("rc.io/rc", &once), once);
        // Same registry, outside the prefix: promoted.
        assert_eq!(map("rc.io/rc", "rc.io/shop/api:v1"), "rc.io/rc/shop/api:v1");
        // A repository that merely starts with the prefix's letters is not under it.
        assert_eq!(map("rc.io/rc", "rc.io/rcx/api:v1"), "rc.io/rc/rcx/api:v1");
        // No prefix: everything on the registry is already there.
        assert_eq!(map("rc.io", "rc.io/shop/api:v1"), "rc.io/shop/api:v1");
    }

    #[test]
    fn rejects_what_is_not_a_registry() {
        assert!(Destination::parse("rc").is_err());
        assert!(Destination::parse("rc/prefix").is_err());
        assert!(Destination::parse("").is_err());
        let e = Destination::parse("rc.io/Upper").unwrap_err();
        assert!(matches!(e, DestinationError::Name { .. }), "{e}");
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(
            matches!(
                cause.downcast_ref::<ReferenceError>(),
                Some(ReferenceError::NameContainsUppercase(_))
            ),
            "{cause}"
        );
        assert!(e.to_string().ends_with(&cause.to_string()), "{e}");
        assert!(Destination::parse("rc.io/p:tag").is_err());
        assert_eq!(
            Destination::parse("localhost:5000/rc/")
                .unwrap()
                .to_string(),
            "localhost:5000/rc"
        );
        assert_eq!(
            Destination::parse("index.docker.io/me").unwrap().registry(),
            "docker.io"
        );
    }
}
