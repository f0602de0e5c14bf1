//! Branch slugs (DNS-1123 labels), DNS name checks, and the `{stack}`/`{branch}`/`{env}` templates.

use sha2::Digest as _;

use crate::error::{Error, Result};

/// The longest DNS-1123 label.
pub const MAX_LABEL: usize = 63;
/// Characters of the hash suffix of a shortened slug (plus one `-`).
pub const HASH_LEN: usize = 8;
/// The shortest room a template may leave for `{branch}`: a one-character
/// prefix, `-` and the hash suffix.
pub const MIN_BRANCH_ROOM: usize = HASH_LEN + 2;

/// Whether `s` is a DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// Why `s` is not a DNS-1123 label, or `None` when it is one.
pub fn dns_label_problem(s: &str) -> Option<String> {
    if is_dns_label(s) {
        return None;
    }
    Some(if s.is_empty() {
        "is empty; a DNS-1123 label is needed".into()
    } else if s.len() > MAX_LABEL {
        format!(
            "is {} characters long; a DNS-1123 label has at most 63",
            s.len()
        )
    } else {
        "is not a DNS-1123 label (lowercase letters, digits and `-`, starting and ending with a letter or digit)".into()
    })
}

/// Whether `s` is a DNS-1123 subdomain (dot-separated labels, at most 253 characters).
pub fn is_dns_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// The plain slug of a branch: lowercase, each run of characters other than
/// `a-z0-9` one `-`, no leading or trailing `-`. May be empty or long.
pub fn plain_slug(branch: &str) -> String {
    let mut out = String::with_capacity(branch.len());
    let mut dash = false;
    for c in branch.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

/// The first `HASH_LEN` hex digits of the SHA-256 of the branch name.
fn short_hash(branch: &str) -> String {
    let digest = sha2::Sha256::digest(branch.as_bytes());
    hex::encode(digest)[..HASH_LEN].to_string()
}

/// The branch as a DNS-1123 label of at most `max` characters (`max` is at
/// least [`MIN_BRANCH_ROOM`], at most 63): the plain slug when it fits, else
/// its prefix, `-` and a hash of the full branch name.
pub fn slug_max(branch: &str, max: usize) -> Result<String> {
    let max = max.clamp(MIN_BRANCH_ROOM, MAX_LABEL);
    let plain = plain_slug(branch);
    if plain.is_empty() {
        return Err(Error::EmptyBranch {
            branch: branch.to_string(),
        });
    }
    if plain.len() <= max {
        return Ok(plain);
    }
    let keep = max - HASH_LEN - 1;
    let prefix = plain[..keep].trim_end_matches('-');
    Ok(format!("{prefix}-{}", short_hash(branch)))
}

/// The branch as a DNS-1123 label of at most 63 characters.
pub fn slug(branch: &str) -> Result<String> {
    slug_max(branch, MAX_LABEL)
}

/// The placeholders a template may use.
pub const PLACEHOLDERS: [&str; 3] = ["stack", "branch", "env"];

/// Split a template into literal text and placeholders; an unknown or
/// unclosed placeholder is an error message.
pub fn parse_template(t: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            pieces.push(Piece::Text(&rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{t}`"))?;
        let name = &after[..close];
        let piece = match name {
            "stack" => Piece::Stack,
            "branch" => Piece::Branch,
            "env" => Piece::Env,
            _ => {
                return Err(format!(
                    "unknown placeholder `{{{name}}}` (use {{stack}}, {{branch}}, {{env}})"
                ));
            }
        };
        pieces.push(piece);
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("stray `}}` in `{t}`"));
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// A part of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{stack}`.
    Stack,
    /// `{branch}`.
    Branch,
    /// `{env}`.
    Env,
}

/// Render a template that is one DNS label (a namespace) or a dotted DNS name
/// (a host). In each label, `{branch}` gets the room the rest of the label
/// leaves, so the result is valid for every branch.
pub fn render(template: &str, stack: &str, env: &str, branch: &str) -> Result<String, String> {
    let pieces = parse_template(template)?;
    // Split the pieces into labels at dots in the literal text.
    let mut labels: Vec<Vec<Piece<'_>>> = vec![Vec::new()];
    for p in pieces {
        if let Piece::Text(t) = p {
            let mut parts = t.split('.');
            if let Some(first) = parts.next()
                && !first.is_empty()
            {
                labels
                    .last_mut()
                    .expect("one label")
                    .push(Piece::Text(first));
            }
            for part in parts {
                labels.push(Vec::new());
                if !part.is_empty() {
                    labels
                        .last_mut()
                        .expect("one label")
                        .push(Piece::Text(part));
                }
            }
        } else {
            labels.last_mut().expect("one label").push(p);
        }
    }
    let mut out = String::new();
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        let fixed: usize = label
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Stack => stack.len(),
                Piece::Env => env.len(),
                Piece::Branch => 0,
            })
            .sum();
        let branches = label.iter().filter(|p| **p == Piece::Branch).count();
        let branch_slug = if let Some(room) = MAX_LABEL.saturating_sub(fixed).checked_div(branches)
        {
            if room < MIN_BRANCH_ROOM {
                return Err(format!(
                    "leaves {room} characters for {{branch}} in a label; at least {MIN_BRANCH_ROOM} are needed"
                ));
            }
            slug_max(branch, room).map_err(|e| e.to_string())?
        } else {
            String::new()
        };
        for p in label {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Stack => out.push_str(stack),
                Piece::Env => out.push_str(env),
                Piece::Branch => out.push_str(&branch_slug),
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("main").unwrap(), "main");
        assert_eq!(slug("feature/Add-Cart").unwrap(), "feature-add-cart");
        assert_eq!(slug("fix__JIRA-12__ünïcode").unwrap(), "fix-jira-12-n-code");
        assert_eq!(slug("--a--b--").unwrap(), "a-b");
        assert!(matches!(slug("///"), Err(Error::EmptyBranch { .. })));
        assert!(matches!(slug("ü"), Err(Error::EmptyBranch { .. })));
    }

    #[test]
    fn long_slugs_are_cut_with_a_hash_and_never_collide() {
        let a = format!("feature/{}-one", "x".repeat(80));
        let b = format!("feature/{}-two", "x".repeat(80));
        let sa = slug(&a).unwrap();
        let sb = slug(&b).unwrap();
        assert_eq!(sa.len(), 63);
        assert!(is_dns_label(&sa) && is_dns_label(&sb));
        assert_ne!(sa, sb);
        // A cut at a dash does not leave `--`.
        let c = format!("{}-{}", "a".repeat(53), "b".repeat(20));
        let sc = slug(&c).unwrap();
        assert!(is_dns_label(&sc), "{sc}");
        assert!(!sc.contains("--"), "{sc}");
    }

    #[test]
    fn templates_make_room_for_the_branch() {
        let long = "b".repeat(100);
        let ns = render("{stack}-{branch}", "shop", "dev", &long).unwrap();
        assert_eq!(ns.len(), 63);
        assert!(is_dns_label(&ns));
        let host = render("{branch}.{env}.example.com", "shop", "dev", &long).unwrap();
        assert!(is_dns_name(&host), "{host}");
        assert_eq!(
            render("{branch}.dev.example.com", "s", "dev", "Feature/X").unwrap(),
            "feature-x.dev.example.com"
        );
        assert!(render("{stack}-{nope}", "s", "d", "b").is_err());
        assert!(render(&format!("{}-{{branch}}", "x".repeat(60)), "s", "d", "b").is_err());
    }

    #[test]
    fn labels() {
        assert!(is_dns_label("a"));
        assert!(is_dns_label("a-1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("A"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_name("x.dev.example.com"));
        assert!(!is_dns_name("x..com"));
    }
}
