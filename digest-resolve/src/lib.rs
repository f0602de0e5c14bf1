//! Pin every container image in Kubernetes, Argo and Compose manifests to its registry content digest.
//!
//! The pipeline: read inputs ([`input`]), parse them into span-aware trees
//! ([`doc`]), find image values ([`locate`]), resolve each unique reference
//! once ([`resolve`]), splice only the image bytes, and write the result, a
//! report and a lock ([`contract`]).

// Errors are cold and carry their full context (location + registry error).
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod contract;
pub mod doc;
pub mod error;
pub mod input;
pub mod locate;
pub mod resolve;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;

use microplatform_common::reference::Reference;
use microplatform_common::registry::Platform;

use crate::cli::Cli;
use crate::contract::{Lock, Report, ReportEntry, SCHEMA_VERSION, Source};
use crate::doc::Style;
use crate::error::{Error, Location};
use crate::locate::ImagePath;

/// What a successful run did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Whether any image value changed (or would, with `--check`).
    pub changed: bool,
}

/// How an occurrence is handled.
enum Plan {
    /// A template expression, not a reference: left alone.
    Skip,
    /// Already pinned.
    Pinned(Reference),
    /// To resolve.
    Resolve(Reference),
    /// Failed before resolution (the error is already recorded).
    Failed,
}

struct Occurrence {
    input: usize,
    at: Location,
    scalar: doc::Scalar,
    plan: Plan,
}

/// Whether a value is a template (Argo `{{...}}`, Compose/shell `${...}`/`$VAR`, Helm).
fn is_template(v: &str) -> bool {
    v.contains("{{") || v.contains('$')
}

/// The new text for a reference pinned to `digest`: the name as written,
/// the tag (explicit, or `latest`) unless `drop_tag`, and `@digest`.
pub fn pinned_text(written: &str, r: &Reference, digest: &str, drop_tag: bool) -> String {
    let name = match r.explicit_tag() {
        Some(t) => &written[..written.len() - t.len() - 1],
        None => written,
    };
    if drop_tag {
        format!("{name}@{digest}")
    } else {
        format!("{name}:{}@{digest}", r.tag().unwrap_or("latest"))
    }
}

/// Run the tool. On failure, every error found (all failing images).
pub fn run(cli: &Cli) -> Result<Outcome, Vec<Error>> {
    let rules = cli
        .image_path
        .iter()
        .map(|r| ImagePath::parse(r).map_err(Error::Usage))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| vec![e])?;
    let platform = cli
        .platform
        .as_deref()
        .map(Platform::parse)
        .transpose()
        .map_err(|e| vec![Error::Usage(e)])?;
    let files = input::expand(&cli.inputs).map_err(|e| vec![e])?;
    if cli.in_place && files.iter().any(Option::is_none) {
        return Err(vec![Error::Usage(
            "--in-place needs files or directories, not stdin".into(),
        )]);
    }
    let lock = match &cli.lock {
        Some(p) => {
            let l = Lock::read(p).map_err(|e| vec![e])?;
            let want = platform.as_ref().map(ToString::to_string);
            if l.platform != want {
                return Err(vec![Error::Usage(format!(
                    "lock {} is for platform {}, not {}",
                    p.display(),
                    l.platform.as_deref().unwrap_or("(tag default)"),
                    want.as_deref().unwrap_or("(tag default)")
                ))]);
            }
            Some(l)
        }
        None => None,
    };

    let mut errors = Vec::new();
    let mut inputs = Vec::new();
    for f in &files {
        match input::read(f.as_deref(), cli.format) {
            Ok(i) => inputs.push(i),
            Err(e) => errors.push(e),
        }
    }

    // Parse and locate.
    let parsed: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|inp| {
                s.spawn(|| {
                    let docs = if inp.json {
                        doc::parse_json(&inp.text)
                    } else {
                        doc::parse_yaml(&inp.text)
                    };
                    docs.map(|docs| {
                        docs.iter()
                            .map(|d| (d.index, locate::find_images(d, &rules)))
                            .collect::<Vec<_>>()
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parser thread"))
            .collect()
    });
    let mut occurrences = Vec::new();
    for (i, result) in parsed.into_iter().enumerate() {
        let inp = &inputs[i];
        let found = match result {
            Ok(f) => f,
            Err(e) => {
                errors.push(Error::Parse {
                    file: inp.name.clone(),
                    document: e.document,
                    line: e.line,
                    column: e.column,
                    format: if inp.json { "JSON" } else { "YAML" },
                    message: e.message,
                });
                continue;
            }
        };
        for (document, images) in found {
            for f in images {
                let at = Location {
                    file: inp.name.clone(),
                    document,
                    path: f.path,
                    line: f.scalar.line,
                };
                let value = f.scalar.value.clone();
                let plan = if is_template(&value) {
                    tracing::warn!("{at}: image {value:?} is a template; left as is");
                    Plan::Skip
                } else {
                    match Reference::parse(&value) {
                        Err(source) => {
                            errors.push(Error::InvalidReference {
                                at: at.clone(),
                                image: value.clone(),
                                source,
                            });
                            Plan::Failed
                        }
                        Ok(r) if r.digest().is_some() => Plan::Pinned(r),
                        Ok(r) if f.scalar.style == Style::Other => {
                            errors.push(Error::Unsupported {
                                at: at.clone(),
                                image: value.clone(),
                                message: "written as a block or multi-line scalar; write it on one line to pin it".into(),
                            });
                            let _ = r;
                            Plan::Failed
                        }
                        Ok(r) => Plan::Resolve(r),
                    }
                };
                occurrences.push(Occurrence {
                    input: i,
                    at,
                    scalar: f.scalar,
                    plan,
                });
            }
        }
    }

    // Resolve each unique reference once.
    let mut to_resolve: BTreeMap<String, Reference> = BTreeMap::new();
    for o in &occurrences {
        match &o.plan {
            Plan::Resolve(r) => {
                to_resolve.entry(r.to_string()).or_insert_with(|| r.clone());
            }
            Plan::Pinned(r) if cli.verify_pinned => {
                to_resolve.entry(r.to_string()).or_insert_with(|| r.clone());
            }
            _ => {}
        }
    }
    let resolved: HashMap<String, Result<String, resolve::Failure>> = match &lock {
        Some(l) => {
            let (pinned, tagged): (Vec<_>, Vec<_>) =
                to_resolve.into_values().partition(|r| r.digest().is_some());
            let mut m: HashMap<_, _> = tagged
                .into_iter()
                .map(|r| {
                    let key = r.to_string();
                    let v = l
                        .images
                        .get(&key)
                        .cloned()
                        .ok_or(resolve::Failure::NotInLock);
                    (key, v)
                })
                .collect();
            if !pinned.is_empty() {
                m.extend(resolve::resolve_all(cli, pinned, None).map_err(|e| vec![e])?);
            }
            m
        }
        None if to_resolve.is_empty() => HashMap::new(),
        None => resolve::resolve_all(cli, to_resolve.into_values().collect(), platform.as_ref())
            .map_err(|e| vec![e])?,
    };

    // Plan the edits.
    let mut report = Vec::new();
    let mut lock_out: BTreeMap<String, String> = BTreeMap::new();
    let mut edits: Vec<Vec<((usize, usize), String)>> = vec![Vec::new(); inputs.len()];
    let mut changed_lines = Vec::new();
    for o in &occurrences {
        let original = o.scalar.value.clone();
        let entry = |reference: Option<String>,
                     resolved: String,
                     digest: Option<String>,
                     source| ReportEntry {
            file: o.at.file.clone(),
            document: o.at.document,
            path: o.at.path.clone(),
            line: o.at.line,
            changed: resolved != original,
            original: original.clone(),
            reference,
            resolved,
            digest,
            source,
        };
        match &o.plan {
            Plan::Failed => {}
            Plan::Skip => report.push(entry(None, original.clone(), None, Source::Skipped)),
            Plan::Pinned(r) => {
                if cli.verify_pinned
                    && let Some(Err(f)) = resolved.get(&r.to_string())
                {
                    errors.push(f.to_error(o.at.clone(), &original, r, cli.lock.as_ref()));
                    continue;
                }
                report.push(entry(
                    Some(r.to_string()),
                    original.clone(),
                    r.digest().map(str::to_string),
                    Source::Pinned,
                ));
            }
            Plan::Resolve(r) => match resolved.get(&r.to_string()) {
                Some(Ok(digest)) => {
                    let new = pinned_text(&original, r, digest, cli.drop_tag);
                    lock_out.insert(r.to_string(), digest.clone());
                    if new != original {
                        changed_lines.push(format!("{}: {original} -> {new}", o.at));
                        edits[o.input].push((o.scalar.span, new.clone()));
                    }
                    let source = if lock.is_some() {
                        Source::Lock
                    } else {
                        Source::Registry
                    };
                    report.push(entry(
                        Some(r.to_string()),
                        new,
                        Some(digest.clone()),
                        source,
                    ));
                }
                Some(Err(f)) => {
                    errors.push(f.to_error(o.at.clone(), &original, r, cli.lock.as_ref()));
                }
                None => errors.push(Error::Usage(format!("internal: {r} was not resolved"))),
            },
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // Produce outputs.
    let outputs: Vec<String> = inputs
        .iter()
        .zip(edits.iter_mut())
        .map(|(inp, e)| splice(&inp.text, e))
        .collect();
    let changed = !changed_lines.is_empty();
    if let Some(path) = &cli.report {
        let r = Report {
            schema_version: SCHEMA_VERSION,
            platform: platform.as_ref().map(ToString::to_string),
            images: report,
        };
        let mut bytes = serde_json::to_vec_pretty(&r).expect("report serialises");
        bytes.push(b'\n');
        write_side_output(path, &bytes).map_err(|e| vec![e])?;
    }
    if let Some(path) = &cli.lock_output {
        let l = Lock {
            schema_version: SCHEMA_VERSION,
            platform: platform.as_ref().map(ToString::to_string),
            images: lock_out,
        };
        let mut bytes = serde_json::to_vec_pretty(&l).expect("lock serialises");
        bytes.push(b'\n');
        write_side_output(path, &bytes).map_err(|e| vec![e])?;
    }
    if cli.check {
        let mut err = std::io::stderr().lock();
        for l in &changed_lines {
            let _ = writeln!(err, "would pin {l}");
        }
        return Ok(Outcome { changed });
    }
    if cli.in_place {
        let targets: Vec<(PathBuf, &str)> = inputs
            .iter()
            .zip(&outputs)
            .filter(|(inp, out)| inp.text != **out)
            .filter_map(|(inp, out)| inp.path.clone().map(|p| (p, out.as_str())))
            .collect();
        write_all_or_nothing(&targets).map_err(|e| vec![e])?;
        return Ok(Outcome { changed });
    }
    let mut stdout = Vec::with_capacity(outputs.iter().map(String::len).sum::<usize>() + 16);
    for (i, (inp, out)) in inputs.iter().zip(&outputs).enumerate() {
        if i > 0 && !inp.json {
            if !stdout.is_empty() && !stdout.ends_with(b"\n") {
                stdout.push(b'\n');
            }
            if !out.starts_with("---") {
                stdout.extend_from_slice(b"---\n");
            }
        } else if i > 0 && !stdout.ends_with(b"\n") {
            stdout.push(b'\n');
        }
        stdout.extend_from_slice(out.as_bytes());
    }
    microplatform_common::io::write_stdout(&stdout).map_err(|e| {
        vec![Error::Write {
            path: PathBuf::from("-"),
            source: e,
        }]
    })?;
    Ok(Outcome { changed })
}

/// Replace the given byte ranges (each at most once) and keep every other byte.
fn splice(text: &str, edits: &mut Vec<((usize, usize), String)>) -> String {
    if edits.is_empty() {
        return text.to_string();
    }
    edits.sort_by_key(|(span, _)| *span);
    edits.dedup_by_key(|(span, _)| *span);
    let mut out = String::with_capacity(text.len() + edits.len() * 80);
    let mut pos = 0;
    for ((start, end), new) in edits.iter() {
        out.push_str(&text[pos..*start]);
        out.push_str(new);
        pos = *end;
    }
    out.push_str(&text[pos..]);
    out
}

/// `-` is stderr; anything else is written atomically.
fn write_side_output(path: &std::path::Path, bytes: &[u8]) -> Result<(), Error> {
    let res = if path.as_os_str() == "-" {
        let mut e = std::io::stderr().lock();
        e.write_all(bytes).and_then(|()| e.flush())
    } else {
        microplatform_common::io::atomic_write(path, bytes)
    };
    res.map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Write every file to a temp file first; only when all are written, rename
/// them over the originals. On a failure the temp files are removed and no
/// original changes.
fn write_all_or_nothing(targets: &[(PathBuf, &str)]) -> Result<(), Error> {
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let cleanup = |temps: &[(PathBuf, PathBuf)]| {
        for (t, _) in temps {
            let _ = std::fs::remove_file(t);
        }
    };
    for (path, text) in targets {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.digest-resolve.{}.tmp", std::process::id()));
        let res = (|| -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            if let Ok(meta) = std::fs::metadata(path) {
                std::fs::set_permissions(&tmp, meta.permissions())?;
            }
            Ok(())
        })();
        if let Err(source) = res {
            let _ = std::fs::remove_file(&tmp);
            cleanup(&temps);
            return Err(Error::Write {
                path: path.clone(),
                source,
            });
        }
        temps.push((tmp, path.clone()));
    }
    for (i, (tmp, path)) in temps.iter().enumerate() {
        if let Err(source) = std::fs::rename(tmp, path) {
            cleanup(&temps[i..]);
            return Err(Error::Write {
                path: path.clone(),
                source,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_text_keeps_the_name_as_written() {
        let d = format!("sha256:{}", "b".repeat(64));
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(
            pinned_text("nginx", &r, &d, false),
            format!("nginx:latest@{d}")
        );
        assert_eq!(pinned_text("nginx", &r, &d, true), format!("nginx@{d}"));
        let r = Reference::parse("localhost:5000/a/b:v1").unwrap();
        assert_eq!(
            pinned_text("localhost:5000/a/b:v1", &r, &d, false),
            format!("localhost:5000/a/b:v1@{d}")
        );
        assert_eq!(
            pinned_text("localhost:5000/a/b:v1", &r, &d, true),
            format!("localhost:5000/a/b@{d}")
        );
    }

    #[test]
    fn splice_keeps_other_bytes() {
        let text = "a: x # c\nb: 'y'\n";
        let mut e = vec![((13, 14), "Y".to_string()), ((3, 4), "X".to_string())];
        assert_eq!(splice(text, &mut e), "a: X # c\nb: 'Y'\n");
    }
}
