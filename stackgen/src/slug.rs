//! Branch slugs (DNS-1123 labels, checked by `microplatform_common::names`) and the `{stack}`/`{branch}`/`{env}` templates.

use sha2::Digest as _;

use crate::error::{Error, Result};

pub use microplatform_common::names::{MAX_LABEL, dns_label_problem, is_dns_label, is_dns_name};

/// Characters of the hash suffix of a shortened slug (plus one `-`).
pub const HASH_LEN: usize = 8;
/// The shortest room a template may leave for `{branch}`: a one-character
/// prefix, `-` and the hash suffix.
pub const MIN_BRANCH_ROOM: usize = HASH_LEN + 2;
/// The longest alias (Kubernetes namespace, Docker stack name). Swarm names a
/// stack's service `<alias>_<service>` and its network `<alias>_default`, and
/// refuses names over 63 characters: a 52-character alias leaves room for
/// `_default` and for a service name of [`MIN_BRANCH_ROOM`] (a longer service
/// name is shortened in the stack file, see `compose`).
pub const MAX_ALIAS: usize = MAX_LABEL - 1 - MIN_BRANCH_ROOM;

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

/// The first `HASH_LEN` hex digits of the SHA-256 of `text`.
pub fn short_hash(text: &str) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    hex::encode(digest)[..HASH_LEN].to_string()
}

/// Whether `s` ends in `-` and [`HASH_LEN`] lowercase hex digits: the shape of
/// a hash suffix.
fn ends_like_a_hash(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() > HASH_LEN
        && b[b.len() - HASH_LEN - 1] == b'-'
        && b[b.len() - HASH_LEN..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// `name` itself when it has at most `max` characters, else its prefix, `-`
/// and the short hash of `hashed` (the full name it stands for), `max`
/// characters at most. The rule every shortened name follows (`max` is at
/// least [`MIN_BRANCH_ROOM`]).
pub fn shortened(name: &str, max: usize, hashed: &str) -> String {
    if name.len() <= max {
        return name.to_string();
    }
    let max = max.max(MIN_BRANCH_ROOM);
    let mut keep = max - HASH_LEN - 1;
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    let prefix = name[..keep].trim_end_matches(['-', '_', '.']);
    format!("{prefix}-{}", short_hash(hashed))
}

/// The branch as a DNS-1123 label of at most `max` characters (`max` is at
/// least [`MIN_BRANCH_ROOM`], at most 63).
///
/// A branch that is already a DNS label (`feature-x`, `main`) is its own slug
/// when it fits. Any other branch (a character replaced or case-folded, as in
/// `feature/a` or `Fix-1`), a slug that would end like a hash suffix, and a
/// slug too long to fit get the plain slug's prefix, `-` and the short hash
/// of the branch name: two different branches never share a slug (up to a
/// 32-bit hash collision).
pub fn slug_max(branch: &str, max: usize) -> Result<String> {
    let max = max.clamp(MIN_BRANCH_ROOM, MAX_LABEL);
    let plain = plain_slug(branch);
    if plain.is_empty() {
        return Err(Error::EmptyBranch {
            branch: branch.to_string(),
        });
    }
    let exact = plain == branch && !ends_like_a_hash(&plain);
    if exact && plain.len() <= max {
        return Ok(plain);
    }
    let keep = plain.len().min(max - HASH_LEN - 1);
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
    render_max(template, stack, env, branch, MAX_LABEL)
}

/// [`render`] with labels of at most `max_label` characters ([`MAX_ALIAS`]
/// for an alias).
pub fn render_max(
    template: &str,
    stack: &str,
    env: &str,
    branch: &str,
    max_label: usize,
) -> Result<String, String> {
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
        let branch_slug = if let Some(room) = max_label.saturating_sub(fixed).checked_div(branches)
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
        assert_eq!(slug("feature-x").unwrap(), "feature-x");
        assert_eq!(
            slug("feature/Add-Cart").unwrap(),
            format!("feature-add-cart-{}", short_hash("feature/Add-Cart"))
        );
        assert_eq!(
            slug("fix__JIRA-12__ünïcode").unwrap(),
            format!("fix-jira-12-n-code-{}", short_hash("fix__JIRA-12__ünïcode"))
        );
        assert_eq!(
            slug("--a--b--").unwrap(),
            format!("a-b-{}", short_hash("--a--b--"))
        );
        assert!(matches!(slug("///"), Err(Error::EmptyBranch { .. })));
        assert!(matches!(slug("ü"), Err(Error::EmptyBranch { .. })));
    }

    #[test]
    fn branches_that_slug_alike_get_different_slugs() {
        for (a, b) in [
            ("feature/a", "feature-a"),
            ("fix/JIRA-123", "fix/jira-123"),
            ("Main", "main"),
            ("a_b", "a.b"),
        ] {
            let (sa, sb) = (slug(a).unwrap(), slug(b).unwrap());
            assert_ne!(sa, sb, "{a} and {b}");
            assert!(is_dns_label(&sa) && is_dns_label(&sb), "{sa} {sb}");
        }
        // A branch cannot take another's hashed slug by naming itself after it.
        let hashed = slug("feature/a").unwrap();
        assert_ne!(slug(&hashed).unwrap(), hashed);
        assert!(slug(&hashed).unwrap().starts_with(&hashed));
        // Names that are already labels and do not end like a hash stay as they are.
        assert_eq!(slug("release-2026").unwrap(), "release-2026");
        assert_eq!(slug("a").unwrap(), "a");
        // Short rooms keep the hash.
        let s = slug_max("feature/a", MIN_BRANCH_ROOM).unwrap();
        assert_eq!(s, format!("f-{}", short_hash("feature/a")));
    }

    #[test]
    fn shortened_names_keep_their_limit() {
        assert_eq!(shortened("web", 10, "x_web"), "web");
        let long = "s".repeat(63);
        let short = shortened(&long, 20, &format!("shop-main_{long}"));
        assert_eq!(short.len(), 20);
        assert!(short.ends_with(&short_hash(&format!("shop-main_{long}"))));
        assert!(is_dns_label(&short));
        // A cut before `-` does not leave `--`.
        let dashed = format!("{}-{}", "a".repeat(10), "b".repeat(30));
        let cut = shortened(&dashed, 20, &dashed);
        assert!(!cut.contains("--"), "{cut}");
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
            render("{branch}.dev.example.com", "s", "dev", "feature-x").unwrap(),
            "feature-x.dev.example.com"
        );
        assert_eq!(
            render("{branch}.dev.example.com", "s", "dev", "Feature/X").unwrap(),
            format!("feature-x-{}.dev.example.com", short_hash("Feature/X"))
        );
        let alias = render_max("{stack}-{branch}", "shop", "dev", &long, MAX_ALIAS).unwrap();
        assert_eq!(alias.len(), MAX_ALIAS);
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
