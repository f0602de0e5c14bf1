//! Manifest input for `request`: split multi-document YAML from stdin into one file per object (by kind and name), or take a directory as is.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::names::check_relative_path;

/// File names of compose stacks the swarm applier accepts, in order of preference.
pub const COMPOSE_FILES: [&str; 3] = ["compose.yaml", "docker-compose.yml", "stack.yml"];

/// Files to put in the namespace directory: relative path → bytes.
pub type Files = BTreeMap<PathBuf, Vec<u8>>;

/// Deepest nesting of mappings and sequences accepted in a manifest (Kubernetes objects need about a dozen).
pub const MAX_DEPTH: usize = 64;

/// Largest manifest file accepted, in bytes.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Refuse YAML nested deeper than [`MAX_DEPTH`] before the real parser sees it; returns the line where each
/// document starts (for messages naming the document).
///
/// A streaming event parser stops at the first level too deep, so a hostile file costs a few microseconds
/// instead of the parser's quadratic time in the nesting depth. Syntax errors are left to the real parser.
pub fn check_depth(text: &str, origin: &str) -> Result<Vec<usize>> {
    let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut starts = Vec::new();
    let too_deep = |line: usize, col: usize| Error::Input {
        path: format!("{origin}:{line}:{col}"),
        message: format!("nested deeper than {MAX_DEPTH} levels (refused before parsing)"),
    };
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(x) => x,
            // The scanner has its own limit on flow nesting (`[[[[…`), reached while looking ahead.
            Err(e) if e.info().contains("recursion limit") => {
                return Err(too_deep(e.marker().line(), e.marker().col() + 1));
            }
            Err(_) => return Ok(starts),
        };
        match event {
            yaml_rust2::Event::StreamEnd => return Ok(starts),
            yaml_rust2::Event::DocumentStart => starts.push(mark.line()),
            yaml_rust2::Event::SequenceStart(..) | yaml_rust2::Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(mark.line(), mark.col() + 1));
                }
            }
            yaml_rust2::Event::SequenceEnd | yaml_rust2::Event::MappingEnd => {
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
    }
}

/// How manifests are read: like kubectl (YAML 1.1 booleans such as `yes`/`on`, merge keys `<<`, anchors),
/// duplicate keys refused, one-line errors without a source snippet.
///
/// The parser's budget caps documents, nodes and events at fixed counts (1,024 documents, 250,000 nodes); kubectl
/// has no such caps, so they grow with the input (each needs at least a byte of it). It also refuses more than ten
/// aliases per anchor, which kubectl reads (a compose file with one `<<: *defaults` in 100 services), so that
/// heuristic is off. Alias expansion keeps its limits (an alias bomb is small: its expanded nodes and replayed
/// events are still capped), and nesting is capped by [`check_depth`].
fn read_options(input_len: usize) -> serde_saphyr::Options {
    let default = serde_saphyr::Budget::default();
    serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_documents: default.max_documents.max(input_len),
            max_nodes: default.max_nodes.max(input_len),
            max_events: default.max_events.max(input_len.saturating_mul(2)),
            enforce_alias_anchor_ratio: false,
        },
    }
}

/// Parse every YAML document of `text` (empty documents skipped); errors name `origin`, line, column and the
/// document number. Nesting deeper than [`MAX_DEPTH`] is refused first ([`check_depth`]).
pub fn parse_documents(text: &str, origin: &str) -> Result<Vec<Value>> {
    let starts = check_depth(text, origin)?;
    serde_saphyr::from_multiple_with_options(text, read_options(text.len())).map_err(|source| {
        match source.location() {
            Some(l) => {
                let line = usize::try_from(l.line()).unwrap_or(usize::MAX);
                let document = starts.iter().filter(|&&s| s <= line).count().max(1);
                Error::Yaml {
                    path: format!("{origin}:{line}:{}", l.column()),
                    document: Some(document),
                    source: Box::new(source),
                }
            }
            None => Error::Yaml {
                path: origin.to_string(),
                document: None,
                source: Box::new(source),
            },
        }
    })
}

/// One document as YAML text (quoting what a YAML 1.1 reader such as kubectl would take for another type).
pub fn to_yaml(doc: &Value) -> std::result::Result<String, serde_saphyr::SerializeError> {
    serde_saphyr::to_string(doc)
}

/// Whether a parsed document is a compose file (top-level `services`, no `kind`).
pub fn is_compose(doc: &Value) -> bool {
    doc.get("services").is_some() && doc.get("kind").is_none()
}

fn str_at<'a>(doc: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = doc;
    for k in path {
        v = v.get(*k)?;
    }
    v.as_str()
}

/// The files a request carries: none to delete the namespace, else the directory `dir` when
/// given ([`read_dir`]), else the manifests piped on stdin ([`split_stdin`]); a terminal on stdin
/// is a usage error (nothing was piped).
pub fn read_input(dir: Option<&Path>, delete: bool, namespace: &str) -> Result<Files> {
    use std::io::IsTerminal as _;
    if delete {
        return Ok(Files::new());
    }
    if let Some(d) = dir {
        return read_dir(d, namespace);
    }
    if std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "no manifests: pipe them on stdin or pass --dir".into(),
        ));
    }
    let text = microplatform_common::io::read_stdin().map_err(|e| Error::io("<stdin>", e))?;
    split_stdin(&text, namespace)
}

/// Split manifests read from stdin into files named `<kind>-<name>.yaml` (lowercase), deterministically.
/// A single compose document becomes `compose.yaml`. Objects naming another namespace are refused.
pub fn split_stdin(text: &str, namespace: &str) -> Result<Files> {
    let docs = parse_documents(text, "<stdin>")?;
    if docs.is_empty() {
        return Err(Error::Input {
            path: "<stdin>".into(),
            message: "no manifests (empty input)".into(),
        });
    }
    let mut files = Files::new();
    if docs.len() == 1 && is_compose(&docs[0]) {
        files.insert(PathBuf::from("compose.yaml"), text.as_bytes().to_vec());
        return Ok(files);
    }
    for (i, doc) in docs.iter().enumerate() {
        let at = |message: String| Error::Input {
            path: "<stdin>".into(),
            message: format!("document {}: {message}", i + 1),
        };
        if !doc.is_object() {
            return Err(at("not a mapping".into()));
        }
        let kind = str_at(doc, &["kind"]).ok_or_else(|| at("missing `kind`".into()))?;
        let name = str_at(doc, &["metadata", "name"])
            .ok_or_else(|| at("missing `metadata.name`".into()))?;
        if let Some(ns) = str_at(doc, &["metadata", "namespace"])
            && ns != namespace
        {
            return Err(Error::Validation(format!(
                "<stdin>: document {} ({kind}/{name}) is in namespace {ns:?}, not {namespace:?}",
                i + 1
            )));
        }
        let safe = |s: &str| {
            s.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        };
        let file = PathBuf::from(format!("{}-{}.yaml", safe(kind), safe(name)));
        let body = to_yaml(doc).map_err(|source| Error::YamlOut {
            path: "<stdin>".into(),
            document: i + 1,
            source: Box::new(source),
        })?;
        if files.insert(file.clone(), body.into_bytes()).is_some() {
            return Err(at(format!(
                "duplicate object {kind}/{name} (file {})",
                file.display()
            )));
        }
    }
    Ok(files)
}

/// Read a manifest directory as is (regular files, recursively; `.git` skipped; symlinks refused).
/// When `dir/<namespace>/` exists, that subdirectory is taken (stackgen writes `DIR/<ns>/`).
pub fn read_dir(dir: &Path, namespace: &str) -> Result<Files> {
    let root = if dir.join(namespace).is_dir() {
        dir.join(namespace)
    } else {
        dir.to_path_buf()
    };
    if !root.is_dir() {
        return Err(Error::NotFound(format!(
            "{}: not a directory",
            root.display()
        )));
    }
    let mut files = Files::new();
    for entry in walkdir::WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.file_name() != ".git")
    {
        let entry = entry.map_err(|source| Error::Walk {
            path: root.display().to_string(),
            source,
        })?;
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(&root)
            .map_err(|e| Error::setup("a walked path outside its root", e))?
            .to_path_buf();
        if !ft.is_file() {
            return Err(Error::Name {
                what: "path",
                value: entry.path().display().to_string(),
                reason: "not a regular file (symlinks are refused)".into(),
            });
        }
        check_relative_path(&rel)?;
        let bytes = std::fs::read(entry.path()).map_err(|e| Error::io(entry.path(), e))?;
        files.insert(rel, bytes);
    }
    if files.is_empty() {
        return Err(Error::Input {
            path: root.display().to_string(),
            message: "no files".into(),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write;

    use super::*;

    #[test]
    fn splits_by_kind_and_name() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: team}\n";
        let files = split_stdin(text, "team").unwrap();
        let names: Vec<_> = files.keys().map(|p| p.display().to_string()).collect();
        assert_eq!(names, ["deployment-web.yaml", "service-web.yaml"]);
    }

    #[test]
    fn refuses_other_namespace_and_duplicates() {
        let text = "kind: Service\nmetadata: {name: web, namespace: other}\n";
        assert!(split_stdin(text, "team").is_err());
        let dup = "kind: Service\nmetadata: {name: a}\n---\nkind: Service\nmetadata: {name: a}\n";
        assert!(split_stdin(dup, "team").is_err());
    }

    #[test]
    fn compose_document() {
        let files = split_stdin("services:\n  web: {image: x}\n", "team").unwrap();
        assert!(files.contains_key(Path::new("compose.yaml")));
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let flow = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let mut block = String::new();
        for i in 0..200 {
            block.push_str(&" ".repeat(i));
            block.push_str("k:\n");
        }
        let seq = format!("{}x\n", "- ".repeat(50_000));
        for text in [&flow, &block, &seq] {
            let err = parse_documents(text, "f.yaml").unwrap_err().to_string();
            assert!(err.contains("nested deeper than 64"), "{err}");
        }
        let ok = format!("a: {}1{}\n", "[".repeat(60), "]".repeat(60));
        assert_eq!(parse_documents(&ok, "f.yaml").unwrap().len(), 1);
    }

    #[test]
    fn reads_yaml_as_kubectl_does() {
        let text = "base: &b {image: x, replicas: 2}\nweb:\n  <<: *b\n  replicas: 3\nflags: [yes, on, No, \"yes\", 1:20]\n";
        let docs = parse_documents(text, "f.yaml").unwrap();
        assert_eq!(
            docs[0]["web"],
            serde_json::json!({"replicas": 3, "image": "x"}),
            "merge key"
        );
        assert_eq!(
            docs[0]["flags"],
            serde_json::json!([true, true, false, "yes", "1:20"]),
            "YAML 1.1 booleans"
        );
        // JSON (what kubectl sends) has no infinite numbers; a string is fine.
        let err = parse_documents("a: 1\nb: .inf\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f.yaml:2:4: document 1: non-finite float"),
            "{err}"
        );
        assert_eq!(
            parse_documents("b: \".inf\"\n", "f.yaml").unwrap()[0]["b"],
            ".inf"
        );
        // Written back, the strings a YAML 1.1 reader would take for something else are quoted.
        let text =
            to_yaml(&serde_json::json!({"a": "yes", "b": "on", "c": "1:20", "d": true})).unwrap();
        assert_eq!(text, "a: \"yes\"\nb: \"on\"\nc: \"1:20\"\nd: true\n");
    }

    #[test]
    fn duplicate_keys_name_file_line_and_document() {
        let text = "kind: A\n---\nkind: B\nmetadata: {name: x}\nkind: C\n";
        let err = parse_documents(text, "f.yaml").unwrap_err().to_string();
        assert!(err.starts_with("f.yaml:5:1:"), "{err}");
        assert!(
            err.contains("document 2: duplicate mapping key: kind"),
            "{err}"
        );
        assert!(!err.contains("DuplicateKeyPolicy"), "{err}");
    }

    #[test]
    fn a_yaml_error_keeps_the_parsers_error_as_its_cause() {
        let e = parse_documents("a: [1,\n", "f.yaml").unwrap_err();
        assert!(matches!(e, Error::Yaml { .. }), "{e}");
        assert_eq!(
            microplatform_common::exit::ExitCode::exit_code(&e),
            microplatform_common::exit::INPUT
        );
        let yaml = std::error::Error::source(&e)
            .and_then(|c| c.downcast_ref::<Box<serde_saphyr::Error>>())
            .expect("the serde_saphyr::Error is the source");
        assert!(yaml.location().is_some(), "{yaml}");
        // The message says the place once, in front: the parser's own " at line …" is left out.
        assert!(e.to_string().starts_with("f.yaml:"), "{e}");
        assert!(!e.to_string().contains(" at line "), "{e}");
    }

    #[test]
    fn long_streams_are_read_and_alias_bombs_refused() {
        let stream = "kind: ConfigMap\n---\n".repeat(3_000);
        assert_eq!(parse_documents(&stream, "f.yaml").unwrap().len(), 3_000);
        let mut compose = String::from("x-defaults: &defaults {image: x}\nservices:\n");
        for i in 0..150 {
            writeln!(compose, "  s{i}: {{<<: *defaults, user: u{i}}}").unwrap();
        }
        let doc = &parse_documents(&compose, "f.yaml").unwrap()[0];
        assert_eq!(doc["services"]["s149"]["image"], "x");
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
        // Alias expansion stays limited.
        let err = parse_documents(bomb, "f.yaml").unwrap_err().to_string();
        assert!(
            err.starts_with("f.yaml:6:12: document 1: budget breached"),
            "{err}"
        );
        assert!(!err.contains(" at line "), "location once, in front: {err}");
    }

    #[test]
    fn parse_error_has_location() {
        let err = parse_documents("a: 1\n---\na: [\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.yaml:3:4: document 2: "), "{err}");
    }
}
