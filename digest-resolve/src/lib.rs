//! Pin every container image in Kubernetes, Argo and Compose manifests to its registry content digest.
//!
//! The pipeline: read inputs ([`input`]), parse them into span-aware trees
//! ([`doc`]), find image values ([`locate`]), resolve each unique reference
//! once ([`resolve`]), splice only the image bytes, and write the result, a
//! report and a lock ([`contract`]). With `--promote-to`, every image is first
//! copied by digest to a release-candidate registry and written as its
//! location there ([`promote`]).

// Errors are cold and carry their full context (location + registry error).
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod contract;
pub mod doc;
pub mod error;
pub mod input;
pub mod locate;
pub mod options;
pub mod promote;
pub mod resolve;
mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::rc::Rc;

use microplatform_common::reference::Reference;
use microplatform_common::registry::Platform;

use crate::contract::{Lock, Report, ReportEntry, SCHEMA_VERSION, Source};
use crate::doc::Style;
use crate::error::{Error, Location};
use crate::locate::ImagePath;
use crate::options::Options;

/// What a successful run did.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Whether any image value changed (or would, with `--check`).
    pub changed: bool,
}

/// A parsed reference and its fully qualified form (the lock key), shared
/// by every occurrence of the same value.
struct Parsed {
    r: Reference,
    key: String,
}

/// How an occurrence is handled.
enum Plan {
    /// A template expression, not a reference: left alone.
    Skip,
    /// Already pinned.
    Pinned(Rc<Parsed>),
    /// To resolve.
    Resolve(Rc<Parsed>),
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
///
/// The stages, each a function: [`Setup::new`] (flags, inputs, lock), [`read_inputs`],
/// [`plan`] (parse, find the images, decide per occurrence), [`resolve_unique`] (each
/// unique reference once, from the registry or the lock), promotion
/// ([`promote::run_step`]), [`splice_plan`] (the new text of every image value and the
/// report and lock entries) and [`write`] (report, lock, then the files or stdout,
/// all-or-nothing).
pub fn run(opts: &Options) -> Result<Outcome, Vec<Error>> {
    let setup = Setup::new(opts)?;
    let mut errors = Vec::new();
    let inputs = read_inputs(&setup.files, opts, &mut errors);
    let occurrences = plan(&inputs, &setup.rules, &mut errors);
    if opts.list {
        if !errors.is_empty() {
            return Err(errors);
        }
        return write_listing(&occurrences).map(|()| Outcome { changed: false });
    }
    let resolved = resolve_unique(
        opts,
        &occurrences,
        setup.lock.as_ref(),
        setup.platform.as_ref(),
    )?;
    // --promote-to: copy the images before anything is written (not at all when
    // errors were found).
    let promotion = promote::run_step(opts, &occurrences, &resolved, &errors)?;
    let edits = splice_plan(
        opts,
        &occurrences,
        &resolved,
        promotion.as_ref(),
        setup.lock.is_some(),
        inputs.len(),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(errors);
    }
    write(
        opts,
        &inputs,
        edits,
        promotion.as_ref(),
        setup.platform.as_ref(),
    )
}

/// What the flags name, checked before anything is read.
struct Setup {
    rules: Vec<ImagePath>,
    platform: Option<Platform>,
    files: Vec<Option<PathBuf>>,
    lock: Option<Lock>,
}

impl Setup {
    fn new(opts: &Options) -> Result<Self, Vec<Error>> {
        let rules = opts
            .image_path
            .iter()
            .map(|r| ImagePath::parse(r).map_err(Error::Usage))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| vec![e])?;
        let platform = opts
            .platform
            .as_deref()
            .map(Platform::parse)
            .transpose()
            .map_err(|e| vec![Error::Usage(e)])?;
        let files = input::expand(&opts.inputs).map_err(|e| vec![e])?;
        if opts.in_place && files.iter().any(Option::is_none) {
            return Err(vec![Error::Usage(
                "--in-place needs files or directories, not stdin".into(),
            )]);
        }
        let lock = match &opts.lock {
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

        Ok(Self {
            rules,
            platform,
            files,
            lock,
        })
    }
}

/// Read every input; unreadable ones become errors (the others are still checked).
fn read_inputs(
    files: &[Option<PathBuf>],
    opts: &Options,
    errors: &mut Vec<Error>,
) -> Vec<input::Input> {
    let mut inputs = Vec::new();
    for f in files {
        match input::read(f.as_deref(), opts.format) {
            Ok(i) => inputs.push(i),
            Err(e) => errors.push(e),
        }
    }
    inputs
}

/// Parse the inputs (a few workers; a big YAML stream is itself split into pieces parsed in parallel), find
/// every image value, and decide per occurrence: skip (a template), pinned, resolve, or failed (recorded).
fn plan(inputs: &[input::Input], rules: &[ImagePath], errors: &mut Vec<Error>) -> Vec<Occurrence> {
    let interest = locate::interest(rules);
    // Files are parsed by a few workers (a big YAML stream is itself split
    // into pieces parsed in parallel).
    let parse_one = |inp: &input::Input| {
        if inp.json {
            doc::parse_json(&inp.text).map(|docs| {
                docs.iter()
                    .map(|d| (d.index, locate::find_images(d, rules)))
                    .collect::<Vec<_>>()
            })
        } else {
            doc::scan_yaml(&inp.text, Some(&interest), |d| {
                locate::find_images(d, rules)
            })
        }
    };
    let slots: Vec<std::sync::Mutex<Option<_>>> =
        inputs.iter().map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(inputs.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(inp) = inputs.get(i) else { break };
                    *slots[i].lock().expect("slot") = Some(parse_one(inp));
                }
            });
        }
    });
    let parsed: Vec<_> = slots
        .into_iter()
        .map(|m| m.into_inner().expect("slot").expect("parsed"))
        .collect();
    let mut occurrences = Vec::new();
    let mut cache: HashMap<
        String,
        Result<Rc<Parsed>, microplatform_common::reference::ReferenceError>,
    > = HashMap::new();
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
                let value = &f.scalar.value;
                let plan = if is_template(value) {
                    tracing::warn!("{at}: image {value:?} is a template; left as is");
                    Plan::Skip
                } else {
                    let parsed = match cache.get(value.as_str()) {
                        Some(p) => p.clone(),
                        None => cache
                            .entry(value.clone())
                            .or_insert_with(|| {
                                Reference::parse(value).map(|r| {
                                    Rc::new(Parsed {
                                        key: r.to_string(),
                                        r,
                                    })
                                })
                            })
                            .clone(),
                    };
                    match parsed {
                        Err(source) => {
                            errors.push(Error::InvalidReference {
                                at: at.clone(),
                                image: value.clone(),
                                source,
                            });
                            Plan::Failed
                        }
                        Ok(r) if r.r.digest().is_some() => Plan::Pinned(r),
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

    occurrences
}

/// The resolved digest of each unique reference to resolve (and, with `--verify-pinned`, of the pinned ones):
/// from the lock when one is given, else from the registries.
fn resolve_unique(
    opts: &Options,
    occurrences: &[Occurrence],
    lock: Option<&Lock>,
    platform: Option<&Platform>,
) -> Result<HashMap<String, Result<String, resolve::Failure>>, Vec<Error>> {
    let mut to_resolve: BTreeMap<String, Reference> = BTreeMap::new();
    for o in occurrences {
        match &o.plan {
            Plan::Resolve(p) | Plan::Pinned(p)
                if (opts.verify_pinned || matches!(o.plan, Plan::Resolve(_)))
                    && !to_resolve.contains_key(&p.key) =>
            {
                to_resolve.insert(p.key.clone(), p.r.clone());
            }
            _ => {}
        }
    }
    let resolved: HashMap<String, Result<String, resolve::Failure>> = match lock {
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
                m.extend(resolve::resolve_all(opts, pinned, None).map_err(|e| vec![e])?);
            }
            m
        }
        None if to_resolve.is_empty() => HashMap::new(),
        None => resolve::resolve_all(opts, to_resolve.into_values().collect(), platform)
            .map_err(|e| vec![e])?,
    };

    Ok(resolved)
}

/// The edits of a run: per input, the spans to replace and their new text; the report, the lock, and what
/// `--check` prints.
struct Edits {
    per_input: Vec<Vec<Edit>>,
    report: Vec<ReportEntry>,
    lock_out: BTreeMap<String, String>,
    changed_lines: Vec<String>,
    changed: bool,
}

/// Decide the new text of every image value: pinned in place, or its release candidate when promoted.
/// Failures are added to `errors`.
fn splice_plan(
    opts: &Options,
    occurrences: &[Occurrence],
    resolved: &HashMap<String, Result<String, resolve::Failure>>,
    promotion: Option<&promote::Outcome>,
    from_lock: bool,
    n_inputs: usize,
    errors: &mut Vec<Error>,
) -> Edits {
    // The text written for a reference: its release-candidate location when
    // promoted, else the reference pinned in place.
    let promoted = |key: &str| promotion.and_then(|(m, _)| m.get(key));
    let mut report = Vec::new();
    let mut lock_out: BTreeMap<String, String> = BTreeMap::new();
    let mut edits: Vec<Vec<Edit>> = vec![Vec::new(); n_inputs];
    let mut changed_lines = Vec::new();
    let mut changed = false;
    let want_report = opts.report.is_some();
    let mut new_texts: HashMap<&str, Rc<str>> = HashMap::new();
    for o in occurrences {
        let original = &o.scalar.value;
        let entry = |reference: Option<String>,
                     resolved: String,
                     digest: Option<String>,
                     source| ReportEntry {
            file: o.at.file.clone(),
            document: o.at.document,
            path: o.at.path.clone(),
            line: o.at.line,
            changed: resolved != *original,
            original: original.clone(),
            reference,
            resolved,
            digest,
            source,
        };
        match &o.plan {
            Plan::Skip if want_report => {
                report.push(entry(None, original.clone(), None, Source::Skipped));
            }
            Plan::Failed | Plan::Skip => {}
            Plan::Pinned(p) => {
                if opts.verify_pinned
                    && let Some(Err(f)) = resolved.get(&p.key)
                {
                    errors.push(f.to_error(o.at.clone(), original, &p.r, opts.lock.as_ref()));
                    continue;
                }
                let mut written = original.clone();
                match promoted(&p.key) {
                    Some(Err(e)) => {
                        errors.push(promote_error(o, original, e));
                        continue;
                    }
                    Some(Ok(pr)) => {
                        let new = new_texts.entry(original.as_str()).or_insert_with(|| {
                            promote::promoted_text(&pr.target, opts.drop_tag).into()
                        });
                        if **new != **original {
                            changed = true;
                            edits[o.input].push((o.scalar.span, new.clone()));
                        }
                        written = new.to_string();
                    }
                    None => {}
                }
                if !want_report {
                    continue;
                }
                report.push(entry(
                    Some(p.key.clone()),
                    written,
                    p.r.digest().map(str::to_string),
                    Source::Pinned,
                ));
            }
            Plan::Resolve(p) => match resolved.get(&p.key) {
                Some(Ok(digest)) => {
                    let target = match promoted(&p.key) {
                        Some(Err(e)) => {
                            errors.push(promote_error(o, original, e));
                            continue;
                        }
                        Some(Ok(pr)) => Some(&pr.target),
                        None => None,
                    };
                    let new = new_texts
                        .entry(original.as_str())
                        .or_insert_with(|| match target {
                            Some(t) => promote::promoted_text(t, opts.drop_tag).into(),
                            None => pinned_text(original, &p.r, digest, opts.drop_tag).into(),
                        });
                    if opts.lock_output.is_some() && !lock_out.contains_key(&p.key) {
                        lock_out.insert(p.key.clone(), digest.clone());
                    }
                    if **new != **original {
                        changed = true;
                        if opts.check {
                            changed_lines.push(format!("{}: {original} -> {new}", o.at));
                        }
                        edits[o.input].push((o.scalar.span, new.clone()));
                    }
                    if !want_report {
                        continue;
                    }
                    let source = if from_lock {
                        Source::Lock
                    } else {
                        Source::Registry
                    };
                    report.push(entry(
                        Some(p.key.clone()),
                        new.to_string(),
                        Some(digest.clone()),
                        source,
                    ));
                }
                Some(Err(f)) => {
                    errors.push(f.to_error(o.at.clone(), original, &p.r, opts.lock.as_ref()));
                }
                None => errors.push(Error::Usage(format!(
                    "internal: {} was not resolved",
                    p.key
                ))),
            },
        }
    }
    Edits {
        per_input: edits,
        report,
        lock_out,
        changed_lines,
        changed,
    }
}

/// Write the outputs: the promote report, the report, the lock, then (unless `--check`) the files in place
/// (all or nothing) or the stream on stdout.
fn write(
    opts: &Options,
    inputs: &[input::Input],
    planned: Edits,
    promotion: Option<&promote::Outcome>,
    platform: Option<&Platform>,
) -> Result<Outcome, Vec<Error>> {
    let Edits {
        per_input: mut edits,
        report,
        lock_out,
        changed_lines,
        changed,
    } = planned;
    for e in &mut edits {
        sort_edits(e);
    }
    if let (Some(path), Some((_, r))) = (&opts.promote_report, promotion) {
        let mut bytes = serde_json::to_vec_pretty(r).expect("promote report serialises");
        bytes.push(b'\n');
        write_side_output(path, &bytes).map_err(|e| vec![e])?;
    }
    if let Some(path) = &opts.report {
        let r = Report {
            schema_version: SCHEMA_VERSION,
            platform: platform.map(ToString::to_string),
            images: report,
        };
        let mut bytes = serde_json::to_vec_pretty(&r).expect("report serialises");
        bytes.push(b'\n');
        write_side_output(path, &bytes).map_err(|e| vec![e])?;
    }
    if let Some(path) = &opts.lock_output {
        let l = Lock {
            schema_version: SCHEMA_VERSION,
            platform: platform.map(ToString::to_string),
            images: lock_out,
        };
        let mut bytes = serde_json::to_vec_pretty(&l).expect("lock serialises");
        bytes.push(b'\n');
        write_side_output(path, &bytes).map_err(|e| vec![e])?;
    }
    if opts.check {
        let mut err = std::io::stderr().lock();
        for l in &changed_lines {
            let _ = writeln!(err, "would pin {l}");
        }
        return Ok(Outcome { changed });
    }
    if opts.in_place {
        let outputs: Vec<String> = inputs
            .iter()
            .zip(&edits)
            .map(|(inp, e)| splice_sorted(&inp.text, e))
            .collect();
        let targets: Vec<(PathBuf, &str)> = inputs
            .iter()
            .zip(&outputs)
            .filter(|(inp, out)| inp.text != **out)
            .filter_map(|(inp, out)| inp.path.clone().map(|p| (p, out.as_str())))
            .collect();
        write_all_or_nothing(&targets).map_err(|e| vec![e])?;
        return Ok(Outcome { changed });
    }
    let write = || -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
        let mut last_nl = true;
        for (i, (inp, e)) in inputs.iter().zip(&edits).enumerate() {
            let parts = splice_parts(&inp.text, e);
            if i > 0 && !last_nl {
                out.write_all(b"\n")?;
            }
            if i > 0 && !inp.json && !parts_start_with(&parts, b"---") {
                out.write_all(b"---\n")?;
            }
            for p in &parts {
                out.write_all(p.as_bytes())?;
            }
            if let Some(last) = parts.iter().rev().find(|p| !p.is_empty()) {
                last_nl = last.ends_with('\n');
            }
        }
        out.flush()
    };
    write().map_err(|e| {
        vec![Error::Write {
            path: PathBuf::from("-"),
            source: e,
        }]
    })?;
    Ok(Outcome { changed })
}

/// The error of an occurrence whose image could not be promoted.
fn promote_error(o: &Occurrence, original: &str, f: &promote::Failure) -> Error {
    Error::Promote {
        at: o.at.clone(),
        image: original.to_string(),
        target: f.target.to_string(),
        source: f.error.clone(),
    }
}

/// `--list`: the occurrences as JSON on stdout.
fn write_listing(occurrences: &[Occurrence]) -> Result<(), Vec<Error>> {
    let images = occurrences
        .iter()
        .map(|o| {
            let (reference, pinned) = match &o.plan {
                Plan::Pinned(p) => (Some(p.key.clone()), true),
                Plan::Resolve(p) => (Some(p.key.clone()), false),
                Plan::Skip | Plan::Failed => (None, false),
            };
            contract::ListEntry {
                file: o.at.file.clone(),
                document: o.at.document,
                path: o.at.path.clone(),
                line: o.at.line,
                image: o.scalar.value.clone(),
                reference,
                pinned,
            }
        })
        .collect();
    let listing = contract::Listing {
        schema_version: SCHEMA_VERSION,
        images,
    };
    microplatform_common::io::write_json_stdout(&listing).map_err(|e| {
        vec![Error::Write {
            path: PathBuf::from("-"),
            source: e,
        }]
    })
}

/// A byte range of an input and its replacement.
type Edit = ((usize, usize), Rc<str>);

/// Sort the edits by span and keep each span once.
fn sort_edits<S>(edits: &mut Vec<((usize, usize), S)>) {
    edits.sort_by_key(|(span, _)| *span);
    edits.dedup_by_key(|(span, _)| *span);
}

/// The pieces of the spliced text, in order: kept bytes and replacements
/// alternately (edits sorted and deduplicated by [`sort_edits`]).
fn splice_parts<'a, S: AsRef<str>>(
    text: &'a str,
    edits: &'a [((usize, usize), S)],
) -> Vec<&'a str> {
    let mut parts = Vec::with_capacity(edits.len() * 2 + 1);
    let mut pos = 0;
    for ((start, end), new) in edits {
        parts.push(&text[pos..*start]);
        parts.push(new.as_ref());
        pos = *end;
    }
    parts.push(&text[pos..]);
    parts
}

/// Whether the concatenation of `parts` starts with `prefix`.
fn parts_start_with(parts: &[&str], prefix: &[u8]) -> bool {
    let mut want = prefix;
    for p in parts {
        let b = p.as_bytes();
        let n = b.len().min(want.len());
        if b[..n] != want[..n] {
            return false;
        }
        want = &want[n..];
        if want.is_empty() {
            return true;
        }
    }
    want.is_empty()
}

/// Splice sorted edits into a new string.
fn splice_sorted<S: AsRef<str>>(text: &str, edits: &[((usize, usize), S)]) -> String {
    if edits.is_empty() {
        return text.to_string();
    }
    let parts = splice_parts(text, edits);
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// Replace the given byte ranges (each at most once) and keep every other byte.
#[cfg(test)]
fn splice<S: AsRef<str>>(text: &str, edits: &mut Vec<((usize, usize), S)>) -> String {
    sort_edits(edits);
    splice_sorted(text, edits)
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
