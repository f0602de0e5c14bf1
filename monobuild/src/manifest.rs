//! Parsing of `Dependencies` manifests (one dependency per line) and of full-manifest files (`component: dep, !strongdep`).

use crate::error::{Error, Result};

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dep {
    /// The component it names (a path relative to the monobuild root).
    pub name: String,
    /// `!` prefix: the dependency must build first.
    pub strong: bool,
    /// 1-based line number in the file that declared it.
    pub line: usize,
}

/// A component as read from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The component name (its directory relative to the root, `.` for the root itself).
    pub component: String,
    /// The file that declared it (relative path, for messages).
    pub path: String,
    /// Line of the declaration (1 for a `Dependencies` file, the line in a full manifest).
    pub line: usize,
    /// Its dependencies in file order.
    pub deps: Vec<Dep>,
}

/// Check and normalise a component path: strip `./` prefixes and trailing `/`,
/// reject empty, absolute, `.`/`..` segments and empty segments.
pub fn normalize_name(raw: &str) -> std::result::Result<String, String> {
    let mut s = raw.trim_end_matches('/');
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.trim_start_matches('/');
    }
    if s.is_empty() {
        return Err("empty component name".into());
    }
    if s == "." {
        return Ok(".".into());
    }
    if s.starts_with('/') {
        return Err(format!(
            "'{raw}' is an absolute path; components are paths relative to the root"
        ));
    }
    if s.contains('\0') {
        return Err("NUL byte in component name".into());
    }
    for seg in s.split('/') {
        match seg {
            "" => return Err(format!("'{raw}' has an empty path segment")),
            "." | ".." => {
                return Err(format!(
                    "'{raw}' has a '{seg}' segment; use the plain path from the root"
                ));
            }
            _ => {}
        }
    }
    Ok(s.to_string())
}

/// Parse one dependency entry (a line of a `Dependencies` file, or one item of a full manifest).
/// Returns `Ok(None)` for blank lines and `#` comments.
pub fn parse_dep(text: &str, line: usize) -> std::result::Result<Option<Dep>, String> {
    let t = text.trim();
    if t.is_empty() || t.starts_with('#') {
        return Ok(None);
    }
    let (strong, rest) = match t.strip_prefix('!') {
        Some(rest) => (true, rest.trim()),
        None => (false, t),
    };
    if rest.starts_with('!') {
        return Err(format!("'{t}': more than one '!'"));
    }
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return Err(format!("'{t}': no component name"));
    }
    let name = normalize_name(rest)?;
    Ok(Some(Dep { name, strong, line }))
}

/// Parse the contents of a `Dependencies` file of `component` (stored at `path`).
pub fn parse_dependencies(component: &str, path: &str, bytes: &[u8]) -> Result<Manifest> {
    let mut deps = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = i + 1;
        let text = std::str::from_utf8(raw).map_err(|_| Error::Malformed {
            path: path.to_string(),
            line,
            message: "not valid UTF-8".into(),
        })?;
        match parse_dep(text, line) {
            Ok(Some(d)) => deps.push(d),
            Ok(None) => {}
            Err(message) => {
                return Err(Error::Malformed {
                    path: path.to_string(),
                    line,
                    message,
                });
            }
        }
    }
    Ok(Manifest {
        component: component.to_string(),
        path: path.to_string(),
        line: 1,
        deps,
    })
}

/// Parse a full manifest (`component: dep, !strongdep` per line, as `print --full` writes it).
pub fn parse_full(path: &str, text: &str) -> Result<Vec<Manifest>> {
    let mut out: Vec<Manifest> = Vec::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let malformed = |message: String| Error::Malformed {
            path: path.to_string(),
            line,
            message,
        };
        let mut parts = t.split(':');
        let (Some(name), Some(deps), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed(format!(
                "expected 'component: dependency, !strong-dependency, ...', got '{t}'"
            )));
        };
        let component = normalize_name(name.trim()).map_err(&malformed)?;
        if let Some(first_line) = seen.insert(component.clone(), line) {
            return Err(Error::Duplicate {
                path: path.to_string(),
                line,
                first_line,
                component,
            });
        }
        let mut list = Vec::new();
        for item in deps.split(',') {
            if item.trim().is_empty() {
                continue;
            }
            if item.trim().starts_with('#') {
                return Err(malformed(format!(
                    "'{}': a comment is not a dependency",
                    item.trim()
                )));
            }
            if let Some(d) = parse_dep(item, line).map_err(&malformed)? {
                list.push(d);
            }
        }
        out.push(Manifest {
            component,
            path: path.to_string(),
            line,
            deps: list,
        });
    }
    Ok(out)
}

/// The component a manifest at `path` declares: its directory (`.` at the root).
pub fn component_of_manifest(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => path[..i].to_string(),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(text: &str) -> Vec<(String, bool, usize)> {
        parse_dependencies("c", "c/Dependencies", text.as_bytes())
            .unwrap()
            .deps
            .into_iter()
            .map(|d| (d.name, d.strong, d.line))
            .collect()
    }

    #[test]
    fn weak_strong_comments_blank_lines() {
        let got = deps(
            "# Content\n!data/content\n\n!shared/images\n# Libs\ncommon-lib\nlibs/date-time\n",
        );
        assert_eq!(
            got,
            vec![
                ("data/content".into(), true, 2),
                ("shared/images".into(), true, 4),
                ("common-lib".into(), false, 6),
                ("libs/date-time".into(), false, 7),
            ]
        );
    }

    #[test]
    fn trailing_slash_and_whitespace_after_bang() {
        assert_eq!(
            deps("  !  libs/a/  \nlibs/b//\r\n./libs/c\n"),
            vec![
                ("libs/a".into(), true, 1),
                ("libs/b".into(), false, 2),
                ("libs/c".into(), false, 3)
            ]
        );
    }

    #[test]
    fn spaces_and_non_ascii_names() {
        assert_eq!(
            deps("my lib\n!ünï/cødé\n"),
            vec![("my lib".into(), false, 1), ("ünï/cødé".into(), true, 2)]
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        for (text, line) in [
            ("a\n!\n", 2),
            ("/abs\n", 1),
            ("a/../b\n", 1),
            ("!!x\n", 1),
            ("ok\nx//y\n", 2),
        ] {
            let err = parse_dependencies("c", "c/Dependencies", text.as_bytes()).unwrap_err();
            match err {
                Error::Malformed { path, line: l, .. } => {
                    assert_eq!(path, "c/Dependencies");
                    assert_eq!(l, line, "{text:?}");
                }
                other => panic!("{other:?}"),
            }
        }
        let err = parse_dependencies("c", "c/Dependencies", b"ok\n\xff\n").unwrap_err();
        assert_eq!(err.to_string(), "c/Dependencies:2: not valid UTF-8");
    }

    #[test]
    fn full_manifest_round_trip_syntax() {
        let m = parse_full(
            "deps.txt",
            "# map\napp1: libs/lib1, libs/lib2\napp4: \n\nstack1: !app1, !app2\n",
        )
        .unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].component, "app1");
        assert_eq!(m[1].deps, vec![]);
        assert_eq!(m[2].line, 5);
        assert!(m[2].deps.iter().all(|d| d.strong));
        assert_eq!(m[2].deps[1].name, "app2");
    }

    #[test]
    fn full_manifest_errors() {
        let e = parse_full("m", "a: b\nno colon here\n").unwrap_err();
        assert!(matches!(e, Error::Malformed { line: 2, .. }), "{e}");
        let e = parse_full("m", "a: b\na: c\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m:2: component 'a' is defined twice (first on line 1)"
        );
        let e = parse_full("m", "a: b: c\n").unwrap_err();
        assert!(matches!(e, Error::Malformed { line: 1, .. }));
    }

    #[test]
    fn component_names_from_manifest_paths() {
        assert_eq!(component_of_manifest("libs/a/Dependencies"), "libs/a");
        assert_eq!(component_of_manifest("Dependencies"), ".");
    }
}
