//! Extraction of one namespace directory from a commit: only the subtree `<commit>:NS` is read (`git ls-tree`,
//! `git cat-file --batch`), every entry name is checked, symlinks and submodules are refused, sizes are capped,
//! and problems name repo-relative paths only.

use std::io::Write as _;
use std::path::Path;

use crate::error::Error;
use crate::git::Git;
use crate::manifests::MAX_FILE_BYTES;

/// Largest namespace directory accepted (sum of its files), in bytes.
pub const MAX_NAMESPACE_BYTES: u64 = 32 * 1024 * 1024;

/// Most files accepted in one namespace directory.
pub const MAX_FILES: usize = 10_000;

/// Why a namespace could not be extracted.
#[derive(Debug)]
pub enum ExtractError {
    /// The directory's content is refused (entries named here by repo-relative path).
    Invalid(Vec<String>),
    /// git failed.
    Git(Error),
}

struct Entry {
    oid: String,
    size: Option<u64>,
    path: String,
}

/// Whether one path component of a tree entry is safe to create on disk.
fn safe_component(c: &str) -> bool {
    !c.is_empty() && c != "." && c != ".." && !c.contains('\\')
}

/// Write `<commit>:<ns>` into `dest/<ns>/`. Nothing outside that subtree is read.
pub fn extract_namespace(
    git: &Git,
    commit: &str,
    ns: &str,
    dest: &Path,
) -> std::result::Result<(), ExtractError> {
    let listing = git
        .run_bytes(&[
            "ls-tree",
            "-r",
            "-z",
            "-l",
            "--full-tree",
            &format!("{commit}:{ns}"),
        ])
        .map_err(ExtractError::Git)?;
    let mut problems = Vec::new();
    let mut entries = Vec::new();
    let mut total = 0u64;
    for rec in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
        let rec = String::from_utf8_lossy(rec);
        let Some((meta, path)) = rec.split_once('\t') else {
            return Err(ExtractError::Git(Error::Git {
                args: "ls-tree".into(),
                message: format!("unexpected output {rec:?}"),
            }));
        };
        let rel = format!("{ns}/{path}");
        let mut f = meta.split_whitespace();
        let (Some(mode), Some(_kind), Some(oid), Some(size)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(ExtractError::Git(Error::Git {
                args: "ls-tree".into(),
                message: format!("unexpected output {rec:?}"),
            }));
        };
        if !path.split('/').all(safe_component) {
            problems.push(format!("{rel}: invalid path entry"));
            continue;
        }
        match mode {
            "120000" => problems.push(format!("{rel}: symlinks are not allowed")),
            "160000" => problems.push(format!("{rel}: submodules are not allowed")),
            "100644" | "100755" => {
                let size = size.parse::<u64>().ok();
                if let Some(sz) = size {
                    if sz > MAX_FILE_BYTES {
                        problems.push(format!(
                            "{rel}: {sz} bytes, more than the {MAX_FILE_BYTES} allowed per file"
                        ));
                        continue;
                    }
                    total += sz;
                }
                entries.push(Entry {
                    oid: oid.to_string(),
                    size,
                    path: path.to_string(),
                });
            }
            other => problems.push(format!("{rel}: unsupported entry mode {other}")),
        }
    }
    if total > MAX_NAMESPACE_BYTES {
        problems.push(format!(
            "{ns}/: {total} bytes, more than the {MAX_NAMESPACE_BYTES} allowed per namespace"
        ));
    }
    if entries.len() > MAX_FILES {
        problems.push(format!(
            "{ns}/: {} files, more than the {MAX_FILES} allowed",
            entries.len()
        ));
    }
    if !problems.is_empty() {
        return Err(ExtractError::Invalid(problems));
    }
    let root = dest.join(ns);
    std::fs::create_dir_all(&root).map_err(|e| ExtractError::Git(Error::io(ns, e)))?;
    if entries.is_empty() {
        return Ok(());
    }
    let mut input = String::new();
    for e in &entries {
        input.push_str(&e.oid);
        input.push('\n');
    }
    let (ok, out, err) = git
        .output(&["cat-file", "--batch"], Some(input.as_bytes()))
        .map_err(ExtractError::Git)?;
    if !ok {
        return Err(ExtractError::Git(Error::Git {
            args: "cat-file --batch".into(),
            message: String::from_utf8_lossy(&err).trim().to_string(),
        }));
    }
    let mut rest = out.as_slice();
    for e in &entries {
        let bad = || {
            ExtractError::Git(Error::Git {
                args: "cat-file --batch".into(),
                message: format!("unexpected output for {ns}/{}", e.path),
            })
        };
        let nl = rest.iter().position(|b| *b == b'\n').ok_or_else(bad)?;
        let header = String::from_utf8_lossy(&rest[..nl]).to_string();
        let mut h = header.split(' ');
        if h.next() != Some(e.oid.as_str()) || h.next() != Some("blob") {
            return Err(bad());
        }
        let size: usize = h.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
        if e.size.is_some_and(|s| s != size as u64) || rest.len() < nl + 1 + size + 1 {
            return Err(bad());
        }
        let bytes = &rest[nl + 1..nl + 1 + size];
        rest = &rest[nl + 1 + size + 1..];
        let p = root.join(&e.path);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d)
                .map_err(|err| ExtractError::Git(Error::io(format!("{ns}/{}", e.path), err)))?;
        }
        let mut f = std::fs::File::create(&p)
            .map_err(|err| ExtractError::Git(Error::io(format!("{ns}/{}", e.path), err)))?;
        f.write_all(bytes)
            .map_err(|err| ExtractError::Git(Error::io(format!("{ns}/{}", e.path), err)))?;
    }
    Ok(())
}
