//! Inputs: stdin, files, and directories searched for `*.yaml`, `*.yml` and `*.json`.

// Line numbers are counted only for error messages.
#![allow(clippy::naive_bytecount)]

use std::io::Read as _;
use std::path::{Path, PathBuf};

use crate::cli::Format;
use crate::doc::looks_like_json;
use crate::error::Error;

/// One input text.
#[derive(Debug)]
pub struct Input {
    /// Display name (`-` for stdin).
    pub name: String,
    /// The file, if not stdin.
    pub path: Option<PathBuf>,
    /// The text.
    pub text: String,
    /// Whether to parse as JSON.
    pub json: bool,
}

fn is_manifest_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn decide_json(format: Format, path: Option<&Path>, text: &str) -> bool {
    match format {
        Format::Json => true,
        Format::Yaml => false,
        Format::Auto => match path.and_then(|p| p.extension()).and_then(|e| e.to_str()) {
            Some("json") => true,
            Some("yaml" | "yml") => false,
            _ => looks_like_json(text),
        },
    }
}

/// Expand arguments into files (directories walked, sorted, hidden entries skipped).
pub fn expand(args: &[PathBuf]) -> Result<Vec<Option<PathBuf>>, Error> {
    if args.is_empty() {
        return Ok(vec![None]);
    }
    let mut out = Vec::new();
    for a in args {
        if a.as_os_str() == "-" {
            out.push(None);
            continue;
        }
        let meta = std::fs::metadata(a).map_err(|e| Error::Read {
            path: a.clone(),
            source: e,
        })?;
        if meta.is_dir() {
            let mut files = Vec::new();
            let walker = walkdir::WalkDir::new(a)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.')
                });
            for entry in walker {
                let entry = entry.map_err(|e| Error::Read {
                    path: a.clone(),
                    source: e.into(),
                })?;
                if entry.file_type().is_file() && is_manifest_file(entry.path()) {
                    files.push(entry.into_path());
                }
            }
            out.extend(files.into_iter().map(Some));
        } else {
            out.push(Some(a.clone()));
        }
    }
    // A file named twice (directly and through a directory) is read once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| match p {
        Some(p) => seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
        None => true,
    });
    Ok(out)
}

/// Read one input.
pub fn read(path: Option<&Path>, format: Format) -> Result<Input, Error> {
    let (name, bytes) = match path {
        None => {
            let mut b = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut b)
                .map_err(|e| Error::Read {
                    path: PathBuf::from("-"),
                    source: e,
                })?;
            ("-".to_string(), b)
        }
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).map_err(|e| Error::Read {
                path: p.to_path_buf(),
                source: e,
            })?,
        ),
    };
    let text = String::from_utf8(bytes).map_err(|e| Error::Utf8 {
        file: name.clone(),
        line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
        // The bytes stay here: the cause is only where they stop being UTF-8.
        source: e.utf8_error(),
    })?;
    let json = decide_json(format, path, &text);
    Ok(Input {
        name,
        path: path.map(Path::to_path_buf),
        text,
        json,
    })
}
