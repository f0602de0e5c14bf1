//! `.dockerignore` as Docker and `BuildKit` read it (moby's patternmatcher): comments, `!` exceptions, the last matching rule wins, a pattern excludes a path when it matches the path or one of its parent directories.

use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};

use crate::error::BuildError;

/// One rule of a `.dockerignore` file.
#[derive(Debug, Clone)]
struct Rule {
    /// `!pattern`: re-include.
    exception: bool,
    matcher: GlobMatcher,
}

/// The rules of one `.dockerignore` (none: nothing is excluded).
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<Rule>,
}

/// `filepath.Clean` for a slash-separated relative pattern, then a leading `/` dropped.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in pattern.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !pattern.starts_with('/') {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        ".".to_string()
    } else {
        parts.join("/")
    }
}

impl Ignore {
    /// Parse the text of a `.dockerignore` (`path` names it in errors).
    pub fn parse(path: &str, text: &str) -> Result<Self, BuildError> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let mut pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
            }
            let pattern = clean(pattern);
            let matcher = GlobBuilder::new(&pattern)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|source| BuildError::Pattern {
                    path: path.to_string(),
                    line: n + 1,
                    pattern: pattern.clone(),
                    source,
                })?
                .compile_matcher();
            rules.push(Rule { exception, matcher });
        }
        Ok(Self { rules })
    }

    /// Read the `.dockerignore` that applies to a build: `<Dockerfile>.dockerignore`
    /// next to the Dockerfile when it exists, else `<context>/.dockerignore`.
    pub fn for_build(context: &Path, dockerfile: &Path) -> Result<Self, BuildError> {
        let mut own = dockerfile.as_os_str().to_owned();
        own.push(".dockerignore");
        for candidate in [std::path::PathBuf::from(own), context.join(".dockerignore")] {
            match std::fs::read_to_string(&candidate) {
                Ok(text) => return Self::parse(&candidate.display().to_string(), &text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(BuildError::Io {
                        path: candidate.display().to_string(),
                        source: e,
                    });
                }
            }
        }
        Ok(Self::default())
    }

    /// Whether some rule re-includes paths (then excluded directories must still be walked).
    #[must_use]
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `rel` (slash-separated, relative to the context) is excluded.
    #[must_use]
    pub fn excluded(&self, rel: &str) -> bool {
        let mut matched = false;
        let parents: Vec<&str> = rel.split('/').collect();
        for rule in &self.rules {
            // An exclusion only matters while not excluded, an exception only while excluded.
            if rule.exception != matched {
                continue;
            }
            let hit = rule.matcher.is_match(rel)
                || (1..parents.len()).any(|i| rule.matcher.is_match(parents[..i].join("/")));
            if hit {
                matched = !rule.exception;
            }
        }
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_as_docker_reads_them() {
        let ig = Ignore::parse(
            ".dockerignore",
            "# comment\n*.md\n!README.md\n/target\nbuild/**/*.o\n  tmp/  \n**/*.log\n",
        )
        .unwrap();
        assert!(ig.excluded("notes.md"));
        assert!(!ig.excluded("README.md"));
        // Anchored at the context root, unlike .gitignore.
        assert!(!ig.excluded("docs/notes.md"));
        assert!(ig.excluded("target"));
        assert!(ig.excluded("target/debug/x"));
        assert!(ig.excluded("build/a/b/c.o"));
        assert!(ig.excluded("build/c.o"));
        assert!(!ig.excluded("build/c.c"));
        assert!(ig.excluded("tmp/x"));
        assert!(ig.excluded("a/b/x.log"));
        assert!(ig.excluded("x.log"));
        assert!(!ig.excluded("src/main.rs"));
        assert!(ig.has_exceptions());
        assert!(!Ignore::default().excluded("anything"));
        let e = Ignore::parse("ctx/.dockerignore", "ok\n[bad\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "ctx/.dockerignore:2: invalid pattern \"[bad\": unclosed character class; missing ']'"
        );
        let glob = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<globset::Error>())
            .expect("the globset::Error is the source");
        assert_eq!(glob.glob(), Some("[bad"));
        assert_eq!(microplatform_common::exit::ExitCode::exit_code(&e), 3);
        assert_eq!(clean("./a/../b/"), "b");
        assert_eq!(clean("/x/y"), "x/y");
    }
}
