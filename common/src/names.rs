//! DNS names as Kubernetes and Swarm want them (RFC 1123 labels and subdomains): the one check behind namespaces, stack aliases, hosts and Argo names in every tool.

/// The longest DNS-1123 label.
pub const MAX_LABEL: usize = 63;
/// The longest DNS-1123 subdomain.
pub const MAX_NAME: usize = 253;

/// Whether `s` is a DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    dns_label_problem(s).is_none()
}

/// Why `s` is not a DNS-1123 label, or `None` when it is one.
pub fn dns_label_problem(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Some("is empty; a DNS-1123 label is needed".into());
    }
    if b.len() > MAX_LABEL {
        return Some(format!(
            "is {} characters long; a DNS-1123 label has at most {MAX_LABEL}",
            b.len()
        ));
    }
    let chars_ok = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-');
    if !chars_ok || b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Some(
            "is not a DNS-1123 label (lowercase letters, digits and `-`, starting and ending with a letter or digit; no `/`, `.` or `..`)"
                .into(),
        );
    }
    None
}

/// A DNS-1123 label given on the command line (clap's `value_parser`): a bad value is a usage
/// error (exit 2) naming the flag, like any other bad flag value.
pub fn dns_label_arg(s: &str) -> Result<String, String> {
    match dns_label_problem(s) {
        None => Ok(s.to_string()),
        Some(problem) => Err(format!("{s:?} {problem}")),
    }
}

/// Whether `s` is a DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_NAME && s.split('.').all(is_dns_label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names() {
        for ok in ["a", "shop-feature-x", "0", &"a".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "..",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(!is_dns_label(bad), "{bad}");
            assert!(dns_label_problem(bad).is_some());
        }
        assert!(
            dns_label_problem(&"a".repeat(64))
                .unwrap()
                .contains("64 characters")
        );
        assert!(is_dns_name("feature-x.shop.dev.localhost"));
        assert!(!is_dns_name("a..b") && !is_dns_name(""));
    }
}
