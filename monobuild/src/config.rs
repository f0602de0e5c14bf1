//! The optional root config file `.monobuild.toml`: global inputs that affect every component, ignored paths, defaults.

use std::path::Path;

use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Default name of the root config file, looked up in the working directory.
pub const CONFIG_FILE: &str = ".monobuild.toml";

/// The root config file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Globs (relative to the root) of files outside components that affect every component
    /// (lockfiles, toolchain files, CI config). Their contents are part of every hash.
    #[serde(default)]
    pub global_inputs: Vec<String>,
    /// Globs of changed files that never mark a component (docs, editor files).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Default for `--base-branch`.
    #[serde(default)]
    pub base_branch: Option<String>,
    /// Default for `--dependency-files`.
    #[serde(default)]
    pub dependency_files: Option<String>,
}

/// The loaded config with compiled globs.
#[derive(Debug)]
pub struct Config {
    /// The file it came from (None when there is none).
    pub path: Option<String>,
    /// As written.
    pub file: ConfigFile,
    /// Compiled `global_inputs`.
    pub global: GlobSet,
    /// Compiled `ignore`.
    pub ignore: GlobSet,
}

/// Compile globs (`**` crosses directories, `*` does not).
pub fn globset(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = globset::GlobBuilder::new(p)
            .literal_separator(true)
            .build()
            .map_err(|source| Error::Glob {
                pattern: p.clone(),
                source,
            })?;
        b.add(g);
    }
    b.build().map_err(|source| Error::Glob {
        pattern: patterns.join(", "),
        source,
    })
}

/// Compile one glob.
pub fn glob(pattern: &str) -> Result<globset::GlobMatcher> {
    Ok(globset::GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|source| Error::Glob {
            pattern: pattern.to_string(),
            source,
        })?
        .compile_matcher())
}

impl Config {
    /// Load `explicit` or, when `None`, `.monobuild.toml` in `root` if it exists.
    pub fn load(root: &Path, explicit: Option<&Path>) -> Result<Self> {
        let path = if let Some(p) = explicit {
            Some(p.to_path_buf())
        } else {
            let p = root.join(CONFIG_FILE);
            p.exists().then_some(p)
        };
        let Some(path) = path else {
            return Ok(Self {
                path: None,
                file: ConfigFile::default(),
                global: GlobSet::empty(),
                ignore: GlobSet::empty(),
            });
        };
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: shown.clone(),
            source,
        })?;
        let file: ConfigFile = toml::from_str(&text).map_err(|source| {
            let line = source.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            Error::Config {
                path: shown.clone(),
                line,
                source,
            }
        })?;
        for g in file.global_inputs.iter().chain(&file.ignore) {
            let _ = glob(g)?;
        }
        Ok(Self {
            global: globset(&file.global_inputs)?,
            ignore: globset(&file.ignore)?,
            path: Some(shown),
            file,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_reports_line_of_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "global_inputs = [\"Cargo.lock\", \"tools/**\"]\n",
        )
        .unwrap();
        let c = Config::load(dir.path(), None).unwrap();
        assert!(c.global.is_match("Cargo.lock"));
        assert!(c.global.is_match("tools/a/b"));
        assert!(!c.global.is_match("x/Cargo.lock"));
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            "ignore = []\n\nglobal_input = []\n",
        )
        .unwrap();
        let e = Config::load(dir.path(), None).unwrap_err();
        assert!(matches!(e, Error::Config { line: 3, .. }), "{e}");
        let toml = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<toml::de::Error>())
            .expect("the TOML error is the source");
        assert!(e.to_string().ends_with(toml.message().trim()), "{e}");
        let none = Config::load(&dir.path().join("nope"), None).unwrap();
        assert!(none.path.is_none());
    }

    #[test]
    fn a_missing_explicit_config_keeps_the_io_error_as_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let e = Config::load(dir.path(), Some(&dir.path().join("absent.toml"))).unwrap_err();
        assert!(matches!(e, Error::Read { .. }), "{e}");
        assert_eq!(e.exit_code(), microplatform_common::exit::NOT_FOUND);
        let io = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<std::io::Error>())
            .expect("the io::Error is the source");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn a_bad_glob_keeps_the_glob_error_as_its_cause() {
        let e = glob("a/{b").unwrap_err();
        let g = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<globset::Error>())
            .expect("the globset::Error is the source");
        assert_eq!(
            e.to_string(),
            format!("invalid glob \"a/{{b\": {}", g.kind())
        );
        assert_eq!(e.exit_code(), microplatform_common::exit::INPUT);
    }
}
