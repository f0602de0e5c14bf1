//! Rendering: the original's text lines, DOT and Mermaid graphs with changed/affected highlighting, and the versioned JSON document.

use std::fmt::Write as _;

use serde::Serialize;

use crate::analysis::{Analysis, Base, Cause, Head};
use crate::git::Status;

/// JSON schema version of `--format json`.
pub const SCHEMA_VERSION: u32 = 1;

/// Which edges the text and graph formats show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edges {
    /// Strong edges only (the build schedule; default).
    Schedule,
    /// Every edge (`--dependencies`).
    Dependencies,
    /// Every edge, strong ones marked `!` (`--full`).
    Full,
}

fn deps_in_selection<'a>(
    a: &'a Analysis,
    c: usize,
    selected: &'a [bool],
    edges: Edges,
) -> impl Iterator<Item = (usize, bool)> + 'a {
    a.graph.deps[c]
        .iter()
        .filter(move |e| selected[e.to] && (edges != Edges::Schedule || e.strong))
        .map(|e| (e.to, e.strong))
}

/// `name: dep1, dep2` per selected component, sorted, exactly as the original monobuild prints.
pub fn text(a: &Analysis, selected: &[bool], edges: Edges) -> String {
    let mut out = String::new();
    for c in (0..a.graph.len()).filter(|&c| selected[c]) {
        out.push_str(&a.graph.names[c]);
        out.push_str(": ");
        let mut first = true;
        for (d, strong) in deps_in_selection(a, c, selected, edges) {
            if !first {
                out.push_str(", ");
            }
            first = false;
            if edges == Edges::Full && strong {
                out.push('!');
            }
            out.push_str(&a.graph.names[d]);
        }
        out.push('\n');
    }
    out
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn highlight(a: &Analysis, c: usize) -> Option<&'static str> {
    if a.mode == "print" {
        None
    } else if a.changed[c] {
        Some("changed")
    } else if a.affected[c] {
        Some("affected")
    } else {
        None
    }
}

/// `GraphViz` DOT. The schedule points from a dependency to what waits for it (as the original);
/// `--dependencies`/`--full` point from a component to its dependencies, weak edges dashed.
/// In `diff`, changed components are filled red and affected ones yellow.
pub fn dot(a: &Analysis, selected: &[bool], edges: Edges) -> String {
    let g = &a.graph;
    let mut out = String::new();
    if edges == Edges::Schedule {
        out.push_str("digraph schedule {\n  rankdir=\"LR\"\n  node [shape=box]\n");
    } else {
        out.push_str("digraph dependencies {\n");
    }
    for c in (0..g.len()).filter(|&c| selected[c]) {
        let deps: Vec<(usize, bool)> = deps_in_selection(a, c, selected, edges).collect();
        if deps.is_empty() {
            let _ = writeln!(out, "  {}", dot_quote(&g.names[c]));
        }
        for (d, strong) in deps {
            if edges == Edges::Schedule {
                let _ = writeln!(
                    out,
                    "  {} -> {}",
                    dot_quote(&g.names[d]),
                    dot_quote(&g.names[c])
                );
            } else {
                let style = if strong { "" } else { " [style=dashed]" };
                let _ = writeln!(
                    out,
                    "  {} -> {}{style}",
                    dot_quote(&g.names[c]),
                    dot_quote(&g.names[d])
                );
            }
        }
    }
    for c in (0..g.len()).filter(|&c| selected[c]) {
        match highlight(a, c) {
            Some("changed") => {
                let _ = writeln!(
                    out,
                    "  {} [style=filled, fillcolor=\"#f8b4b4\"]",
                    dot_quote(&g.names[c])
                );
            }
            Some(_) => {
                let _ = writeln!(
                    out,
                    "  {} [style=filled, fillcolor=\"#fde68a\"]",
                    dot_quote(&g.names[c])
                );
            }
            None => {}
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid_label(s: &str) -> String {
    s.replace('"', "#quot;")
}

/// Mermaid flowchart, same edge directions as DOT; classes `changed` and `affected` highlight the diff.
pub fn mermaid(a: &Analysis, selected: &[bool], edges: Edges) -> String {
    let g = &a.graph;
    let mut out = String::from("graph LR\n");
    let ids: Vec<usize> = (0..g.len()).filter(|&c| selected[c]).collect();
    for &c in &ids {
        let _ = writeln!(out, "  n{c}[\"{}\"]", mermaid_label(&g.names[c]));
    }
    for &c in &ids {
        for (d, strong) in deps_in_selection(a, c, selected, edges) {
            if edges == Edges::Schedule {
                let _ = writeln!(out, "  n{d} --> n{c}");
            } else if strong {
                let _ = writeln!(out, "  n{c} --> n{d}");
            } else {
                let _ = writeln!(out, "  n{c} -.-> n{d}");
            }
        }
    }
    if a.mode != "print" {
        out.push_str("  classDef changed fill:#f8b4b4,stroke:#b91c1c\n  classDef affected fill:#fde68a,stroke:#b45309\n");
        for &c in &ids {
            if let Some(class) = highlight(a, c) {
                let _ = writeln!(out, "  class n{c} {class}");
            }
        }
    }
    out
}

/// The JSON document (`schema_version` 1), see docs/monobuild.md.
#[derive(Debug, Serialize)]
pub struct Document<'a> {
    /// Always 1 for this layout.
    pub schema_version: u32,
    /// `print`, `feature-branch`, `main-branch` or `stdin`.
    pub mode: &'a str,
    /// The diff base (null for print, stdin and a first commit).
    pub base: Option<&'a Base>,
    /// The diff head (null for print and stdin).
    pub head: Option<&'a Head>,
    /// Why everything is affected without a diff, or null.
    pub full_rebuild: Option<&'a str>,
    /// The changed files.
    pub changed_files: Vec<ChangedFile<'a>>,
    /// Components whose manifest was deleted or moved away.
    pub deleted_components: &'a [String],
    /// Every component, by name.
    pub components: Components<'a>,
    /// The build schedule of the selected components.
    pub schedule: Schedule<'a>,
}

/// One changed file.
#[derive(Debug, Serialize)]
pub struct ChangedFile<'a> {
    /// Path relative to the root.
    pub path: &'a str,
    /// What happened.
    pub status: Status,
    /// Rename/copy source.
    pub old_path: Option<&'a str>,
    /// Components containing the path (or its old path).
    pub components: Vec<&'a str>,
    /// Whether it is a global input.
    pub global: bool,
    /// Whether the config's `ignore` globs exclude it.
    pub ignored: bool,
}

/// Every component, serialized as a map by name (without building an intermediate value).
#[derive(Debug)]
pub struct Components<'a> {
    a: &'a Analysis,
    selected: Vec<bool>,
}

impl Components<'_> {
    /// Component `c` as serialized.
    fn component(&self, c: usize) -> Component<'_> {
        let (a, g) = (self.a, &self.a.graph);
        Component {
            changed: a.changed[c],
            affected: a.affected[c],
            selected: self.selected[c],
            hash: &a.hashes[c],
            manifest: &g.manifest[c],
            dependencies: g.deps[c]
                .iter()
                .map(|e| Dependency {
                    name: &g.names[e.to],
                    strong: e.strong,
                })
                .collect(),
            dependents: g.rdeps[c].iter().map(|&d| g.names[d].as_str()).collect(),
            reasons: &a.reasons[c],
        }
    }

    /// Every component name as a JSON string (quoted, escaped), written once: names recur in
    /// every dependency and dependent list.
    fn quoted_names(&self) -> serde_json::Result<Vec<Vec<u8>>> {
        self.a.graph.names.iter().map(serde_json::to_vec).collect()
    }

    /// The compact JSON of the map entries `range` (`"name":{...}`, comma-separated), byte for
    /// byte what serde derives for [`Component`], written with the names' JSON from `quoted`.
    fn entries_json(
        &self,
        range: std::ops::Range<usize>,
        quoted: &[Vec<u8>],
    ) -> serde_json::Result<Vec<u8>> {
        let (a, g) = (self.a, &self.a.graph);
        let flag = |b: bool| -> &[u8] { if b { b"true" } else { b"false" } };
        let mut out = Vec::with_capacity(range.len() * 600);
        for c in range {
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(&quoted[c]);
            out.extend_from_slice(b":{\"changed\":");
            out.extend_from_slice(flag(a.changed[c]));
            out.extend_from_slice(b",\"affected\":");
            out.extend_from_slice(flag(a.affected[c]));
            out.extend_from_slice(b",\"selected\":");
            out.extend_from_slice(flag(self.selected[c]));
            out.extend_from_slice(b",\"hash\":");
            serde_json::to_writer(&mut out, &a.hashes[c])?;
            out.extend_from_slice(b",\"manifest\":");
            serde_json::to_writer(&mut out, &g.manifest[c])?;
            out.extend_from_slice(b",\"dependencies\":[");
            for (i, e) in g.deps[c].iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"name\":");
                out.extend_from_slice(&quoted[e.to]);
                out.extend_from_slice(b",\"strong\":");
                out.extend_from_slice(flag(e.strong));
                out.push(b'}');
            }
            out.extend_from_slice(b"],\"dependents\":[");
            for (i, &d) in g.rdeps[c].iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(&quoted[d]);
            }
            out.extend_from_slice(b"],\"reasons\":");
            serde_json::to_writer(&mut out, &a.reasons[c])?;
            out.push(b'}');
        }
        Ok(out)
    }
}

impl Serialize for Components<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let g = &self.a.graph;
        let mut map = s.serialize_map(Some(g.len()))?;
        for c in 0..g.len() {
            map.serialize_entry(&g.names[c], &self.component(c))?;
        }
        map.end()
    }
}

/// The fields of a [`Document`] before `components`, in its order.
#[derive(Serialize)]
struct Preamble<'a> {
    schema_version: u32,
    mode: &'a str,
    base: Option<&'a Base>,
    head: Option<&'a Head>,
    full_rebuild: Option<&'a str>,
    changed_files: &'a [ChangedFile<'a>],
    deleted_components: &'a [String],
}

impl Document<'_> {
    /// The document as compact JSON, byte for byte what `serde_json::to_vec` writes, with the
    /// components (most of a large document: 5 of 7.7 MB for 10,000) serialized on two threads in
    /// chunks taken in turn (this thread first serializes the schedule) and written out in order.
    pub fn write_compact_json(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        const CHUNK: usize = 512;
        let n = self.components.a.graph.len();
        let chunks = n.div_ceil(CHUNK);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let quoted = self.components.quoted_names()?;
        let work = || -> serde_json::Result<Vec<(usize, Vec<u8>)>> {
            let mut done = Vec::new();
            loop {
                let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if c >= chunks {
                    return Ok(done);
                }
                let range = c * CHUNK..n.min((c + 1) * CHUNK);
                done.push((c, self.components.entries_json(range, &quoted)?));
            }
        };
        let (schedule, mine, theirs) = std::thread::scope(|scope| {
            let other = scope.spawn(work);
            let schedule = serde_json::to_vec(&self.schedule);
            let mine = work();
            (schedule, mine, other.join().expect("JSON writer panicked"))
        });
        let mut parts = mine?;
        parts.extend(theirs?);
        parts.sort_unstable_by_key(|(c, _)| *c);
        let preamble = Preamble {
            schema_version: self.schema_version,
            mode: self.mode,
            base: self.base,
            head: self.head,
            full_rebuild: self.full_rebuild,
            changed_files: &self.changed_files,
            deleted_components: self.deleted_components,
        };
        let mut head = serde_json::to_vec(&preamble)?;
        head.pop(); // its closing brace
        head.extend_from_slice(b",\"components\":{");
        out.write_all(&head)?;
        for (i, (_, part)) in parts.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(part)?;
        }
        out.write_all(b"},\"schedule\":")?;
        out.write_all(&schedule?)?;
        out.write_all(b"}")
    }
}

#[derive(Debug, Serialize)]
struct Dependency<'a> {
    name: &'a str,
    strong: bool,
}

/// One component as serialized. [`Components::entries_json`] writes the same bytes by hand for
/// piped output (the unit test `compact_json_is_what_serde_json_writes` holds them equal): a
/// field added here goes there too.
#[derive(Debug, Serialize)]
struct Component<'a> {
    changed: bool,
    affected: bool,
    selected: bool,
    hash: &'a str,
    manifest: &'a str,
    dependencies: Vec<Dependency<'a>>,
    dependents: Vec<&'a str>,
    reasons: &'a [String],
}

/// The schedule of selected components.
#[derive(Debug, Serialize)]
pub struct Schedule<'a> {
    /// Layers by strong edges, each sorted.
    pub stages: Vec<Vec<&'a str>>,
    /// One job per selected component with its strong dependencies inside the selection.
    pub jobs: Vec<Job<'a>>,
}

/// One job of the schedule.
#[derive(Debug, Serialize)]
pub struct Job<'a> {
    /// Component name.
    pub name: &'a str,
    /// Strong dependencies inside the selection.
    pub needs: Vec<&'a str>,
    /// The component's hash.
    pub hash: &'a str,
    /// Stage index (0-based).
    pub stage: usize,
}

/// Build the JSON document.
pub fn json<'a>(a: &'a Analysis, selected: &[bool]) -> Document<'a> {
    let g = &a.graph;
    let components = Components {
        a,
        selected: selected.to_vec(),
    };
    let stages = g.stages(selected);
    let mut stage_of = vec![0usize; g.len()];
    for (si, s) in stages.iter().enumerate() {
        for &c in s {
            stage_of[c] = si;
        }
    }
    let jobs = (0..g.len())
        .filter(|&c| selected[c])
        .map(|c| Job {
            name: &g.names[c],
            needs: deps_in_selection(a, c, selected, Edges::Schedule)
                .filter(|&(d, _)| d != c)
                .map(|(d, _)| g.names[d].as_str())
                .collect(),
            hash: &a.hashes[c],
            stage: stage_of[c],
        })
        .collect();
    Document {
        schema_version: SCHEMA_VERSION,
        mode: a.mode,
        base: a.base.as_ref(),
        head: a.head.as_ref(),
        full_rebuild: a.full_rebuild.as_deref(),
        changed_files: a
            .changes
            .iter()
            .map(|f| ChangedFile {
                path: &f.change.path,
                status: f.change.status,
                old_path: f.change.old_path.as_deref(),
                components: f.components.iter().map(|&c| g.names[c].as_str()).collect(),
                global: f.global,
                ignored: f.ignored,
            })
            .collect(),
        deleted_components: &a.deleted_components,
        components,
        schedule: Schedule {
            stages: stages
                .iter()
                .map(|s| s.iter().map(|&c| g.names[c].as_str()).collect())
                .collect(),
            jobs,
        },
    }
}

/// One step of a `why` explanation.
#[derive(Debug, Serialize)]
pub struct WhyStep {
    /// The component.
    pub component: String,
    /// The dependency it is affected through (next step), null for the changed one.
    pub depends_on: Option<String>,
    /// Whether that edge is strong.
    pub strong: Option<bool>,
    /// Where the edge is declared (`file:line`).
    pub declared_at: Option<String>,
}

/// `why` as JSON.
#[derive(Debug, Serialize)]
pub struct Why {
    /// Always 1.
    pub schema_version: u32,
    /// The component asked about.
    pub component: String,
    /// Whether it is affected.
    pub affected: bool,
    /// Whether it is changed itself.
    pub changed: bool,
    /// The root cause: a changed file, a global input, or why everything is affected.
    pub cause: Option<String>,
    /// From the component to the changed one it depends on (shortest path).
    pub path: Vec<WhyStep>,
}

/// Explain why component `c` is affected: the shortest dependency path to a changed component,
/// and the file that changed it.
pub fn why(a: &Analysis, c: usize) -> Why {
    let g = &a.graph;
    let mut out = Why {
        schema_version: SCHEMA_VERSION,
        component: g.names[c].clone(),
        affected: a.affected[c],
        changed: a.changed[c],
        cause: None,
        path: Vec::new(),
    };
    if !a.affected[c] {
        return out;
    }
    // BFS along dependency edges to the nearest changed component.
    let mut prev = vec![usize::MAX; g.len()];
    prev[c] = c;
    let mut queue = std::collections::VecDeque::from([c]);
    let mut target = None;
    while let Some(node) = queue.pop_front() {
        if a.changed[node] {
            target = Some(node);
            break;
        }
        for edge in &g.deps[node] {
            if a.affected[edge.to] && prev[edge.to] == usize::MAX {
                prev[edge.to] = node;
                queue.push_back(edge.to);
            }
        }
    }
    let Some(found) = target else { return out };
    let mut chain = vec![found];
    let mut cur = found;
    while cur != c {
        cur = prev[cur];
        chain.push(cur);
    }
    chain.reverse();
    for pair in chain.windows(2) {
        let edge = g.deps[pair[0]]
            .iter()
            .find(|edge| edge.to == pair[1])
            .expect("edge on path");
        out.path.push(WhyStep {
            component: g.names[pair[0]].clone(),
            depends_on: Some(g.names[pair[1]].clone()),
            strong: Some(edge.strong),
            declared_at: Some(format!("{}:{}", g.manifest[pair[0]], edge.line)),
        });
    }
    out.path.push(WhyStep {
        component: g.names[found].clone(),
        depends_on: None,
        strong: None,
        declared_at: None,
    });
    out.cause = match &a.causes[found] {
        Some(Cause::File(i)) => {
            let file = &a.changes[*i].change;
            Some(match &file.old_path {
                Some(old) => format!("{} was {} from {old}", file.path, status_word(file.status)),
                None => format!("{} was {}", file.path, status_word(file.status)),
            })
        }
        Some(Cause::Global(i)) => Some(format!(
            "global input {} was {}",
            a.changes[*i].change.path,
            status_word(a.changes[*i].change.status)
        )),
        Some(Cause::Everything) => a.full_rebuild.clone(),
        Some(Cause::Graph) => a.reasons[found]
            .iter()
            .find(|r| r.starts_with("dependencies changed in"))
            .cloned(),
        None => None,
    };
    out
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Added => "added",
        Status::Modified => "modified",
        Status::Deleted => "deleted",
        Status::Renamed => "renamed",
        Status::Copied => "copied",
        Status::TypeChanged => "changed in type",
    }
}

/// `why` as text.
pub fn why_text(w: &Why) -> String {
    let mut out = String::new();
    if !w.affected {
        let _ = writeln!(out, "{} is not affected", w.component);
        return out;
    }
    let cause = w.cause.as_deref().unwrap_or("changed");
    if w.changed {
        let _ = writeln!(out, "{} is changed: {cause}", w.component);
        return out;
    }
    let _ = writeln!(out, "{} is affected:", w.component);
    for step in &w.path {
        match &step.depends_on {
            Some(d) => {
                let kind = if step.strong == Some(true) {
                    "strong"
                } else {
                    "weak"
                };
                let _ = writeln!(
                    out,
                    "  {} depends on {d} ({kind}, {})",
                    step.component,
                    step.declared_at.as_deref().unwrap_or("?")
                );
            }
            None => {
                let _ = writeln!(out, "  {} is changed: {cause}", step.component);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{Inputs, Selection, Source, analyze};

    /// The two-thread compact JSON is byte for byte what `serde_json` writes, whatever the number of
    /// components (none, one, several) and with changes (stdin mode) giving reasons.
    #[test]
    fn compact_json_is_what_serde_json_writes() {
        let layouts: [&[(&str, &str)]; 3] = [
            &[],
            &[("solo/Dependencies", "")],
            &[
                ("a/Dependencies", "b\n!c\n"),
                ("b/Dependencies", ""),
                ("c/Dependencies", "b\n"),
                ("d \"e\"/Dependencies", "a\n"),
                ("é/Dependencies", "!b\n"),
            ],
        ];
        for files in layouts {
            let dir = tempfile::tempdir().unwrap();
            for (path, text) in files {
                let p = dir.path().join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
            let inputs = Inputs {
                root: dir.path().to_path_buf(),
                ..Inputs::default()
            };
            for source in [Source::Nothing, Source::Paths(vec!["b/x.rs".into()])] {
                let mut a = analyze(&inputs, &source).unwrap();
                let selected = a.select(&Selection::default()).unwrap();
                let doc = json(&a, &selected);
                let expected = serde_json::to_vec(&doc).unwrap();
                let mut written = Vec::new();
                doc.write_compact_json(&mut written).unwrap();
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }
}
