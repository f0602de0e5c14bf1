//! The JSON contracts: the report (`--report`), the listing (`--list`) and the lock (`--lock-output` / `--lock`), all `schema_version` 1.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Version of both JSON formats.
pub const SCHEMA_VERSION: u32 = 1;

/// `--report`: every image occurrence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Always 1.
    pub schema_version: u32,
    /// The platform asked for (`--platform`), or null.
    pub platform: Option<String>,
    /// Occurrences in input order.
    pub images: Vec<ReportEntry>,
}

/// Where an image value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// Resolved by the registry.
    Registry,
    /// Resolved from `--lock`.
    Lock,
    /// Already pinned by digest (left as is).
    Pinned,
    /// Not a reference but a template (`{{...}}`, `${...}`): left as is.
    Skipped,
}

/// One image occurrence.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportEntry {
    /// Input file (`-` for stdin).
    pub file: String,
    /// 0-based document index within the file.
    pub document: usize,
    /// Path of the value, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    /// 1-based line of the value.
    pub line: usize,
    /// The value as written.
    pub original: String,
    /// The fully qualified reference it names (`docker.io/library/nginx:1.25`), or null when skipped.
    pub reference: Option<String>,
    /// The value written (equal to `original` when unchanged).
    pub resolved: String,
    /// `sha256:...`, or null when skipped.
    pub digest: Option<String>,
    /// Whether the value changed.
    pub changed: bool,
    /// Where the digest came from.
    pub source: Source,
}

/// `--list`: every image occurrence found, unresolved.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    /// Always 1.
    pub schema_version: u32,
    /// Occurrences in input order.
    pub images: Vec<ListEntry>,
}

/// One image occurrence of `--list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListEntry {
    /// Input file (`-` for stdin).
    pub file: String,
    /// 0-based document index within the file.
    pub document: usize,
    /// Path of the value, e.g. `spec.template.spec.containers[0].image`.
    pub path: String,
    /// 1-based line of the value.
    pub line: usize,
    /// The image as written (a block scalar's content without its line break).
    pub image: String,
    /// The fully qualified reference it names, or null for a template (`{{...}}`, `${...}`).
    pub reference: Option<String>,
    /// Whether it is already pinned by digest.
    pub pinned: bool,
}

/// `--lock-output` / `--lock`: normalised reference -> digest.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    /// Always 1.
    pub schema_version: u32,
    /// The platform the digests are for (`linux/arm64`), or null for what the tags name.
    pub platform: Option<String>,
    /// `docker.io/library/nginx:1.25` -> `sha256:...`, sorted.
    pub images: BTreeMap<String, String>,
}

impl Lock {
    /// Read and validate a lock file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::LockRead {
            path: path.to_path_buf(),
            source,
        })?;
        let lock: Lock = serde_json::from_str(&text).map_err(|source| Error::LockJson {
            path: path.to_path_buf(),
            source,
        })?;
        if lock.schema_version != SCHEMA_VERSION {
            return Err(Error::Lock {
                path: path.to_path_buf(),
                message: format!(
                    "unsupported schema_version {} (expected {SCHEMA_VERSION})",
                    lock.schema_version
                ),
            });
        }
        for (r, d) in &lock.images {
            let ok = microplatform_common::reference::Reference::parse(r)
                .ok()
                .and_then(|x| x.with_digest(d).ok())
                .is_some();
            if !ok {
                return Err(Error::Lock {
                    path: path.to_path_buf(),
                    message: format!("invalid entry {r:?}: {d:?}"),
                });
            }
        }
        Ok(lock)
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn a_lock_that_is_not_json_keeps_the_json_error_as_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock.json");
        std::fs::write(&path, "{\"schema_version\": 1,\n oops").unwrap();
        let e = Lock::read(&path).unwrap_err();
        assert!(matches!(e, Error::LockJson { .. }), "{e}");
        assert_eq!(e.exit_code(), microplatform_common::exit::INPUT);
        let json = e
            .source()
            .and_then(|c| c.downcast_ref::<serde_json::Error>())
            .expect("the serde_json::Error");
        assert_eq!(json.line(), 2);
        assert_eq!(
            e.to_string(),
            format!("lock {}: invalid lock JSON: {json}", path.display())
        );
    }

    #[test]
    fn a_missing_lock_keeps_the_io_error_as_its_cause() {
        let dir = tempfile::tempdir().unwrap();
        let e = Lock::read(&dir.path().join("absent.json")).unwrap_err();
        let io = e
            .source()
            .and_then(|c| c.downcast_ref::<std::io::Error>())
            .expect("the io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert_eq!(e.exit_code(), microplatform_common::exit::NOT_FOUND);
    }
}
