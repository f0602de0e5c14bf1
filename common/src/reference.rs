//! Container image references, parsed and normalised exactly like Docker's `distribution/reference` (`ParseNormalizedNamed`).
//!
//! Grammar (from distribution/reference):
//!
//! ```text
//! reference       := name [ ":" tag ] [ "@" digest ]
//! name            := [domain '/'] remote-name
//! domain          := host [':' port-number]
//! host            := domain-name | IPv4address | '[' IPv6address ']'
//! domain-name     := domain-component ['.' domain-component]*
//! domain-component:= /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! remote-name     := path-component ['/' path-component]*
//! path-component  := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric   := /[a-z0-9]+/
//! separator       := /[_.]|__|[-]+/
//! tag             := /[\w][\w.-]{0,127}/
//! digest          := algorithm ":" hex  (sha256: 64 lowercase hex)
//! ```
//!
//! Normalisation: a first component is a registry only if it contains `.` or
//! `:`, is `localhost`, or has upper-case letters; otherwise the registry is
//! `docker.io`, and single-component names on `docker.io` get `library/`.
//! `index.docker.io` is rewritten to `docker.io`. A name without tag and
//! digest means `:latest`. The whole name is at most 255 characters.

use std::fmt;

/// The default registry of familiar names.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The legacy name of the default registry, normalised to `docker.io`.
pub const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// The host that serves the registry API for `docker.io`.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The maximum length of a full name (registry + repository).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The implicit tag.
pub const DEFAULT_TAG: &str = "latest";

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The reference is empty.
    #[error("invalid reference format: repository name must have at least one component")]
    NameEmpty,
    /// The whole name is longer than 255 characters.
    #[error("invalid reference format: repository name must not be more than 255 characters")]
    NameTooLong,
    /// The repository part has upper-case letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NameContainsUppercase(String),
    /// A 64-hex-digit string used as a name (ambiguous with an image id).
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    IdentifierAsName(String),
    /// The tag does not match `[\w][\w.-]{0,127}`.
    #[error("invalid tag format ({0})")]
    TagInvalidFormat(String),
    /// The digest is malformed.
    #[error("invalid digest format ({0})")]
    DigestInvalidFormat(String),
    /// The digest algorithm is not one of sha256, sha384, sha512.
    #[error("unsupported digest algorithm ({0})")]
    DigestUnsupported(String),
    /// Anything else that does not match the grammar.
    #[error("invalid reference format ({0})")]
    InvalidFormat(String),
}

/// A parsed, normalised image reference.
///
/// `Display` prints the fully qualified form, e.g.
/// `docker.io/library/nginx:latest` or `registry:5000/a/b:v1@sha256:...`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parse and normalise a reference the way `docker pull` does.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if is_identifier(s) {
            return Err(ReferenceError::IdentifierAsName(s.to_string()));
        }
        // Split off the digest, then the tag (a ':' after the last '/').
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if name.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(if t.is_empty() {
                ReferenceError::InvalidFormat(s.to_string())
            } else {
                ReferenceError::TagInvalidFormat(t.to_string())
            });
        }
        if let Some(d) = digest {
            validate_digest(d)?;
        }
        let (registry, remainder) = split_docker_domain(name);
        if remainder.to_ascii_lowercase() != remainder {
            return Err(ReferenceError::NameContainsUppercase(remainder));
        }
        if !valid_domain(&registry) {
            return Err(ReferenceError::InvalidFormat(s.to_string()));
        }
        if !remainder.split('/').all(valid_path_component) {
            return Err(ReferenceError::InvalidFormat(s.to_string()));
        }
        // distribution checks the length of the normalised name.
        if registry.len() + 1 + remainder.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(Self {
            registry,
            repository: remainder,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// The registry (domain and optional port), `docker.io` for familiar names.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host and port to send registry API requests to
    /// (`registry-1.docker.io` for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path within the registry, e.g. `library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// `registry/repository`, e.g. `docker.io/library/nginx`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The tag: the explicit one, or `latest` when neither tag nor digest was given.
    pub fn tag(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// The tag only if it was written explicitly.
    pub fn explicit_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, e.g. `sha256:...`, when pinned.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to put after `/manifests/` in the API: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or_else(|| self.tag())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The same name with this tag (the digest, if any, is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::TagInvalidFormat(tag.to_string()));
        }
        Ok(Self {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same name and tag with this digest (an implicit `latest` becomes explicit).
    pub fn with_digest(&self, digest: &str) -> Result<Self, ReferenceError> {
        validate_digest(digest)?;
        Ok(Self {
            tag: self.tag().map(str::to_string),
            digest: Some(digest.to_string()),
            ..self.clone()
        })
    }

    /// The same reference without its digest.
    #[must_use]
    pub fn without_digest(&self) -> Self {
        Self {
            digest: None,
            ..self.clone()
        }
    }

    /// The same reference without its explicit tag.
    #[must_use]
    pub fn without_tag(&self) -> Self {
        Self {
            tag: None,
            ..self.clone()
        }
    }

    /// The short form Docker shows (`nginx:latest`, `user/app:v1`,
    /// `quay.io/x/y:v1`): `docker.io/` and `library/` removed.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = self.tag() {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The familiar name without tag or digest (`nginx`, `user/app`, `quay.io/x/y`).
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = self.tag() {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Split `name[:tag][@digest]` into name and tag the way docker does (a `:` after the last `/` starts the tag;
/// the digest is dropped). Nothing is normalised: the name is as written.
pub fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let without_digest = reference.split_once('@').map_or(reference, |(n, _)| n);
    match without_digest.rfind(':') {
        Some(i) if !without_digest[i + 1..].contains('/') => {
            (&without_digest[..i], Some(&without_digest[i + 1..]))
        }
        _ => (without_digest, None),
    }
}

/// Whether a reference is pinned by a sha256 digest (`…@sha256:` and 64 lowercase hex digits).
pub fn is_pinned(reference: &str) -> bool {
    reference.rsplit_once("@sha256:").is_some_and(|(_, h)| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Check an image prefix, `HOST[:PORT][/PATH]` (a stack file's `registry`, a `--registry` flag): the host as
/// references allow it (a domain, an IP address, `localhost`, with an optional port), then lowercase path
/// components; no scheme, no empty component, no trailing `/`.
///
/// # Errors
///
/// What is wrong, naming the part.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("is empty".into());
    }
    if prefix.contains("://") {
        return Err("has a scheme; write the host without `http://` or `https://`".into());
    }
    let mut parts = prefix.split('/');
    let host = parts.next().unwrap_or_default();
    if !valid_domain(host) {
        return Err(format!(
            "`{host}` is not a registry host (a domain or IP address with an optional port)"
        ));
    }
    for c in parts {
        if c.is_empty() {
            return Err("has an empty path component (`//` or a trailing `/`)".into());
        }
        if !valid_path_component(c) {
            return Err(format!(
                "path component `{c}` is not valid in a repository name (lowercase letters, digits, and `.`, `_`, `__` or `-` between them)"
            ));
        }
    }
    if prefix.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!("is longer than {NAME_TOTAL_LENGTH_MAX} characters"));
    }
    Ok(())
}

/// distribution's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i)
            if {
                let first = &name[..i];
                first.contains(['.', ':'])
                    || first == "localhost"
                    || first.to_ascii_lowercase() != first
            } =>
        {
            (name[..i].to_string(), name[i + 1..].to_string())
        }
        _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_REGISTRY {
        domain = DEFAULT_REGISTRY.to_string();
    }
    if domain == DEFAULT_REGISTRY && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn validate_digest(d: &str) -> Result<(), ReferenceError> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(ReferenceError::DigestInvalidFormat(d.to_string()));
    };
    // algorithm := component [separator component]*; component := [a-z0-9]+ ; separator := [+._-]
    let alg_ok = !alg.is_empty()
        && alg.split(['+', '.', '_', '-']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    if !alg_ok || !hex_ok {
        return Err(ReferenceError::DigestInvalidFormat(d.to_string()));
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestUnsupported(alg.to_string())),
    };
    if hex.len() != want || hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::DigestInvalidFormat(d.to_string()));
    }
    Ok(())
}

fn valid_domain(domain: &str) -> bool {
    // host [':' port]; host is a domain name, an IPv4 address, or [IPv6].
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => ("", Some(p)),
            None if after.is_empty() => ("", None),
            None => return false,
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    if host.is_empty() {
        return domain.starts_with('[');
    }
    host.split('.').all(|c| {
        let b = c.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
    })
}

/// `alpha-numeric [separator alpha-numeric]*`, separator `[_.]|__|[-]+`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run.
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "_" || sep == "." || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        Reference::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn familiar_names_normalise_to_docker_hub() {
        let r = p("nginx");
        assert_eq!(r.registry(), "docker.io");
        assert_eq!(r.repository(), "library/nginx");
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.explicit_tag(), None);
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.familiar(), "nginx:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        assert_eq!(p("user/app:v1").to_string(), "docker.io/user/app:v1");
        assert_eq!(p("user/app:v1").familiar(), "user/app:v1");
        assert_eq!(
            p("index.docker.io/nginx").to_string(),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(p("docker.io/library/nginx:1.25").familiar(), "nginx:1.25");
    }

    #[test]
    fn registry_detection() {
        assert_eq!(p("localhost/app").registry(), "localhost");
        assert_eq!(p("localhost:5000/app").registry(), "localhost:5000");
        assert_eq!(p("quay.io/a/b:c").registry(), "quay.io");
        assert_eq!(p("127.0.0.1:5000/a").registry(), "127.0.0.1:5000");
        assert_eq!(p("[::1]:5000/a").registry(), "[::1]:5000");
        assert_eq!(p("foo/bar").registry(), "docker.io");
        assert_eq!(p("Foo/bar").registry(), "Foo");
        assert_eq!(p("myhost:5000/ns/app").repository(), "ns/app");
    }

    #[test]
    fn tag_and_digest() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("nginx:1.25@{d}"));
        assert_eq!(r.tag(), Some("1.25"));
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.manifest_reference(), d);
        let r = p(&format!("nginx@{d}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.to_string(), format!("docker.io/library/nginx@{d}"));
        assert_eq!(p("localhost:5000/a:v2").tag(), Some("v2"));
        assert_eq!(
            p("nginx").with_digest(&d).unwrap().to_string(),
            format!("docker.io/library/nginx:latest@{d}")
        );
        assert_eq!(p("nginx:1").with_tag("2").unwrap().familiar(), "nginx:2");
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "Nginx",
            "nginx:",
            ":tag",
            "nginx:-bad",
            "a//b",
            "a/b/",
            "-a",
            "a-",
            "a___b",
            "nginx@sha256:abc",
            "nginx@md5:d41d8cd98f00b204e9800998ecf8427e",
            "localhost:port/a",
            "quay.io/A/b",
            &"a".repeat(64),
            &format!("nginx:{}", "t".repeat(129)),
            &format!("quay.io/{}", "a".repeat(250)),
            "nginx@sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should be invalid");
        }
        assert!(matches!(
            Reference::parse("quay.io/A/b"),
            Err(ReferenceError::NameContainsUppercase(_))
        ));
        assert!(matches!(
            Reference::parse("nginx@md5:d41d8cd98f00b204e9800998ecf8427e"),
            Err(ReferenceError::DigestUnsupported(_))
        ));
    }

    #[test]
    fn accepts_separators_and_long_tags() {
        p("a__b/c.d/e-f/g--h");
        p(&format!("nginx:{}", "t".repeat(128)));
        p("a_b:_x.y-z");
    }

    #[test]
    fn tags_pins_and_prefixes() {
        assert_eq!(
            split_tag("reg:5000/a/b:v1@sha256:x"),
            ("reg:5000/a/b", Some("v1"))
        );
        assert_eq!(split_tag("reg:5000/a/b"), ("reg:5000/a/b", None));
        let pinned = format!("r/a@sha256:{}", "0".repeat(64));
        assert!(is_pinned(&pinned) && !is_pinned("r/a:v1") && !is_pinned("r/a@sha256:XYZ"));
        for ok in [
            "registry.example.com/shop",
            "127.0.0.1:5000",
            "localhost:5000/team/x",
            "shop",
        ] {
            assert_eq!(check_prefix(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "https://r.example/x",
            "r.example/",
            "r.example//x",
            "r.example/Shop",
            "/x",
            "r.example:port",
        ] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
