//! The component graph: validation (unknown names, strong cycles), impact propagation, selection filters, build stages and Merkle hashes, all linear in components + edges.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use petgraph::graph::{DiGraph, NodeIndex};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::manifest::Manifest;

/// A dependency edge from a component to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edge {
    /// Index of the dependency.
    pub to: usize,
    /// Strong (`!`) edge.
    pub strong: bool,
    /// Line in the declaring manifest.
    pub line: usize,
}

/// Components (sorted by name) and their dependency edges.
#[derive(Debug, Default)]
pub struct Graph {
    /// Component names, sorted (byte order).
    pub names: Vec<String>,
    /// Name to index.
    pub index: rustc_hash::FxHashMap<String, usize>,
    /// The manifest file that declared each component.
    pub manifest: Vec<String>,
    /// Dependencies of each component, sorted by name, one edge per target.
    pub deps: Vec<Vec<Edge>>,
    /// Dependents of each component (reverse edges).
    pub rdeps: Vec<Vec<usize>>,
}

impl Graph {
    /// Build the graph from manifests. Unknown dependencies are an error, or
    /// (with `allow_unknown`) dropped with a warning returned in the second value.
    pub fn build(mut manifests: Vec<Manifest>, allow_unknown: bool) -> Result<(Self, Vec<String>)> {
        if !manifests.is_sorted_by(|a, b| a.component <= b.component) {
            manifests.sort_by(|a, b| a.component.cmp(&b.component));
        }
        let names: Vec<String> = manifests
            .iter_mut()
            .map(|m| std::mem::take(&mut m.component))
            .collect();
        let mut index = rustc_hash::FxHashMap::default();
        index.reserve(names.len());
        for (i, n) in names.iter().enumerate() {
            index.insert(n.clone(), i);
        }
        let mut warnings = Vec::new();
        let mut deps = Vec::with_capacity(names.len());
        let mut manifest_paths = Vec::with_capacity(names.len());
        for (i, m) in manifests.iter_mut().enumerate() {
            let mut edges: Vec<Edge> = Vec::with_capacity(m.deps.len());
            for d in &m.deps {
                let Some(&to) = index.get(&d.name) else {
                    let err = Error::UnknownDependency {
                        path: m.path.clone(),
                        line: d.line,
                        component: names[i].clone(),
                        dependency: d.name.clone(),
                    };
                    if allow_unknown {
                        warnings.push(err.to_string());
                        continue;
                    }
                    return Err(err);
                };
                edges.push(Edge {
                    to,
                    strong: d.strong,
                    line: d.line,
                });
            }
            // Sort by target (names are sorted, so index order is name order) and merge duplicates: strong wins.
            edges.sort_by_key(|e| (e.to, !e.strong, e.line));
            edges.dedup_by_key(|e| e.to);
            deps.push(edges);
            manifest_paths.push(std::mem::take(&mut m.path));
        }
        let mut rdeps = vec![Vec::new(); names.len()];
        for (from, edges) in deps.iter().enumerate() {
            for e in edges {
                rdeps[e.to].push(from);
            }
        }
        Ok((
            Self {
                names,
                index,
                manifest: manifest_paths,
                deps,
                rdeps,
            },
            warnings,
        ))
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether there are no components.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.deps.iter().map(Vec::len).sum()
    }

    /// Look a component up by name.
    pub fn find(&self, name: &str) -> Result<usize> {
        let trimmed = crate::manifest::normalize_name(name).unwrap_or_else(|_| name.to_string());
        self.index
            .get(&trimmed)
            .copied()
            .ok_or_else(|| Error::UnknownComponent(name.to_string()))
    }

    fn petgraph(&self, strong_only: bool) -> DiGraph<(), ()> {
        let mut g = DiGraph::with_capacity(self.len(), self.edge_count());
        for _ in 0..self.len() {
            g.add_node(());
        }
        for (from, edges) in self.deps.iter().enumerate() {
            for e in edges.iter().filter(|e| e.strong || !strong_only) {
                g.add_edge(NodeIndex::new(from), NodeIndex::new(e.to), ());
            }
        }
        g
    }

    fn edge(&self, from: usize, to: usize) -> Option<&Edge> {
        self.deps[from].iter().find(|e| e.to == to)
    }

    /// Fail when strong edges form a cycle, naming the cycle with `file:line` of each edge.
    /// Weak cycles are allowed.
    pub fn check_strong_cycles(&self) -> Result<()> {
        let g = self.petgraph(true);
        let sccs = petgraph::algo::tarjan_scc(&g);
        let mut worst: Option<usize> = None;
        for scc in &sccs {
            let cyclic = scc.len() > 1
                || self.deps[scc[0].index()]
                    .iter()
                    .any(|e| e.strong && e.to == scc[0].index());
            if cyclic {
                let min = scc.iter().map(|n| n.index()).min().expect("non-empty scc");
                worst = Some(worst.map_or(min, |w: usize| w.min(min)));
            }
        }
        let Some(start) = worst else { return Ok(()) };
        // Shortest cycle through `start` along strong edges (BFS back to start).
        let mut prev: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        let mut found = false;
        'bfs: while let Some(n) = queue.pop_front() {
            for e in self.deps[n].iter().filter(|e| e.strong) {
                if e.to == start {
                    prev.insert(start, n);
                    found = true;
                    break 'bfs;
                }
                if let std::collections::hash_map::Entry::Vacant(v) = prev.entry(e.to) {
                    v.insert(n);
                    queue.push_back(e.to);
                }
            }
        }
        debug_assert!(found);
        let mut back = Vec::new();
        let mut cur = prev[&start];
        while cur != start {
            back.push(cur);
            cur = prev[&cur];
        }
        back.reverse();
        // path = start, a, b, ..., start
        let mut path = vec![start];
        path.extend(back);
        path.push(start);
        let mut cycle = self.names[start].clone();
        for w in path.windows(2) {
            let line = self.edge(w[0], w[1]).map_or(0, |e| e.line);
            let _ = write!(
                cycle,
                " -> {} ({}:{})",
                self.names[w[1]], self.manifest[w[0]], line
            );
        }
        Err(Error::StrongCycle { cycle })
    }

    /// Components that own `path` (relative to the root): every component whose directory contains it.
    pub fn owners(&self, path: &str) -> Vec<usize> {
        let mut out = Vec::new();
        if let Some(&i) = self.index.get(".") {
            out.push(i);
        }
        let path = path.trim_end_matches('/');
        for (pos, b) in path.bytes().enumerate() {
            if b == b'/'
                && let Some(&i) = self.index.get(&path[..pos])
            {
                out.push(i);
            }
        }
        if let Some(&i) = self.index.get(path) {
            out.push(i);
        }
        out
    }

    /// Changed components plus everything that depends on them, through weak and strong edges.
    pub fn affected(&self, changed: &[bool]) -> Vec<bool> {
        let mut seen = changed.to_vec();
        let mut queue: VecDeque<usize> = (0..self.len()).filter(|&i| changed[i]).collect();
        while let Some(n) = queue.pop_front() {
            for &d in &self.rdeps[n] {
                if !seen[d] {
                    seen[d] = true;
                    queue.push_back(d);
                }
            }
        }
        seen
    }

    /// Everything reachable from `start` along dependency edges (all or strong only), excluding the starts unless reachable.
    pub fn descendants(&self, start: &[bool], strong_only: bool) -> Vec<bool> {
        let mut seen = vec![false; self.len()];
        let mut queue: VecDeque<usize> = (0..self.len()).filter(|&i| start[i]).collect();
        while let Some(n) = queue.pop_front() {
            for e in &self.deps[n] {
                if (e.strong || !strong_only) && !seen[e.to] {
                    seen[e.to] = true;
                    queue.push_back(e.to);
                }
            }
        }
        seen
    }

    /// Components nothing else depends on.
    pub fn top_level(&self) -> Vec<bool> {
        (0..self.len())
            .map(|i| self.rdeps[i].iter().all(|&d| d == i))
            .collect()
    }

    /// Build stages of the selected components: a stage holds the components whose selected strong
    /// dependencies are all in earlier stages. Each stage is sorted by name.
    pub fn stages(&self, selected: &[bool]) -> Vec<Vec<usize>> {
        // Kahn's algorithm on strong edges inside the selection (acyclic: checked before).
        let mut pending = vec![0usize; self.len()];
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); self.len()];
        for i in (0..self.len()).filter(|&i| selected[i]) {
            for e in self.deps[i]
                .iter()
                .filter(|e| e.strong && selected[e.to] && e.to != i)
            {
                pending[i] += 1;
                dependents[e.to].push(i);
            }
        }
        let mut stages = Vec::new();
        let mut current: Vec<usize> = (0..self.len())
            .filter(|&i| selected[i] && pending[i] == 0)
            .collect();
        while !current.is_empty() {
            let mut next = Vec::new();
            for &n in &current {
                for &d in &dependents[n] {
                    pending[d] -= 1;
                    if pending[d] == 0 {
                        next.push(d);
                    }
                }
            }
            next.sort_unstable();
            stages.push(std::mem::replace(&mut current, next));
        }
        stages
    }

    /// Merkle hash per component: sha256 over its name, the git tree id of its directory, the global
    /// inputs and the hashes of its dependencies (with edge strength). Weak cycles are hashed as one
    /// unit (strongly connected component), so every hash is well defined; each component is hashed once.
    pub fn hashes(&self, tree_ids: &[String], global: &str) -> Vec<String> {
        let g = self.petgraph(false);
        // Tarjan emits a component after everything it reaches: dependencies come first.
        let sccs = petgraph::algo::tarjan_scc(&g);
        let mut scc_of = vec![usize::MAX; self.len()];
        let mut out = vec![[0u8; 32]; self.len()];
        // Each unit's text is assembled in one buffer and hashed at once (a few hundred bytes in
        // a dozen pieces: one call instead of a dozen).
        let mut text = Vec::with_capacity(1024);
        for (si, scc) in sccs.iter().enumerate() {
            let mut members: Vec<usize> = scc.iter().map(|n| n.index()).collect();
            members.sort_unstable();
            for &m in &members {
                scc_of[m] = si;
            }
            text.clear();
            text.extend_from_slice(b"monobuild-hash-v2\n");
            text.extend_from_slice(b"global ");
            text.extend_from_slice(global.as_bytes());
            text.extend_from_slice(b"\n");
            for &m in &members {
                text.extend_from_slice(b"component ");
                text.extend_from_slice(self.names[m].as_bytes());
                text.extend_from_slice(b"\0");
                text.extend_from_slice(tree_ids[m].as_bytes());
                text.extend_from_slice(b"\n");
                for e in &self.deps[m] {
                    text.extend_from_slice(if e.strong { b"strong " } else { b"weak   " });
                    text.extend_from_slice(self.names[e.to].as_bytes());
                    text.extend_from_slice(b"\0");
                    if scc_of[e.to] == si {
                        text.extend_from_slice(b"cycle");
                    } else {
                        text.extend_from_slice(&out[e.to]);
                    }
                    text.extend_from_slice(b"\n");
                }
            }
            let unit: [u8; 32] = Sha256::digest(&text).into();
            if members.len() == 1 {
                out[members[0]] = unit;
            } else {
                for &m in &members {
                    let mut h = Sha256::new();
                    h.update(b"monobuild-hash-v2 member\n");
                    h.update(self.names[m].as_bytes());
                    h.update(b"\0");
                    h.update(unit);
                    out[m] = h.finalize().into();
                }
            }
        }
        out.iter().map(hex::encode).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::parse_full;

    fn graph(text: &str) -> Graph {
        Graph::build(parse_full("m", text).unwrap(), false)
            .unwrap()
            .0
    }

    fn set(g: &Graph, names: &[&str]) -> Vec<bool> {
        let mut v = vec![false; g.len()];
        for n in names {
            v[g.index[*n]] = true;
        }
        v
    }

    fn names(g: &Graph, v: &[bool]) -> Vec<String> {
        (0..g.len())
            .filter(|&i| v[i])
            .map(|i| g.names[i].clone())
            .collect()
    }

    const FIXTURE: &str = "app1: libs/lib1, libs/lib2\napp2: libs/lib2, libs/lib3\napp3: libs/lib3\napp4:\n\
        libs/lib1: libs/lib3\nlibs/lib2: libs/lib3\nlibs/lib3:\nstack1: !app1, !app2, !app3\n";

    #[test]
    fn affected_is_transitive_through_all_edges() {
        let g = graph(FIXTURE);
        let a = g.affected(&set(&g, &["libs/lib2", "app4"]));
        assert_eq!(
            names(&g, &a),
            ["app1", "app2", "app4", "libs/lib2", "stack1"]
        );
    }

    #[test]
    fn stages_layer_by_strong_edges() {
        let g = graph(FIXTURE);
        let all = vec![true; g.len()];
        let st: Vec<Vec<&str>> = g
            .stages(&all)
            .iter()
            .map(|s| s.iter().map(|&i| g.names[i].as_str()).collect())
            .collect();
        assert_eq!(st.len(), 2);
        assert_eq!(st[1], ["stack1"]);
        assert_eq!(st[0].len(), 7);
    }

    #[test]
    fn unknown_dependency_names_file_and_line() {
        let e = Graph::build(parse_full("m", "a: b\nb: c\n").unwrap(), false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "m:2: unknown dependency 'c' of 'b' (no manifest found for it)"
        );
        let (g, w) = Graph::build(parse_full("m", "a: b\nb: c\n").unwrap(), true).unwrap();
        assert_eq!(w.len(), 1);
        assert!(g.deps[1].is_empty());
    }

    #[test]
    fn strong_cycle_is_an_error_weak_cycle_is_not() {
        let g = graph("a: !b\nb: !c\nc: !a\nd: e\ne: d\n");
        let e = g.check_strong_cycles().unwrap_err();
        assert_eq!(
            e.to_string(),
            "strong dependency cycle: a -> b (m:1) -> c (m:2) -> a (m:3)"
        );
        let g = graph("a: b\nb: !a\n");
        g.check_strong_cycles().unwrap();
        let g = graph("a: !a\n");
        assert!(g.check_strong_cycles().is_err());
    }

    #[test]
    fn owners_include_nested_components_and_not_prefix_siblings() {
        let g = graph("a:\na/b:\nab:\n");
        let o: Vec<&str> = g
            .owners("a/b/c.txt")
            .iter()
            .map(|&i| g.names[i].as_str())
            .collect();
        assert_eq!(o, ["a", "a/b"]);
        assert!(g.owners("abc/x").is_empty());
        assert_eq!(g.owners("ab/x").len(), 1);
    }

    #[test]
    fn hashes_are_merkle_and_handle_weak_cycles() {
        let g = graph("a: b\nb: a\nc: !a\nd:\n");
        let trees: Vec<String> = (0..g.len()).map(|i| format!("t{i}")).collect();
        let h1 = g.hashes(&trees, "");
        assert!(h1.iter().all(|h| h.len() == 64));
        let mut t2 = trees.clone();
        t2[g.index["b"]] = "changed".into();
        let h2 = g.hashes(&t2, "");
        assert_ne!(h1[g.index["a"]], h2[g.index["a"]]);
        assert_ne!(h1[g.index["c"]], h2[g.index["c"]]);
        assert_eq!(h1[g.index["d"]], h2[g.index["d"]]);
        assert_ne!(h1[g.index["a"]], h1[g.index["b"]]);
    }

    #[test]
    fn diamond_is_linear() {
        // 200 layers of 20 nodes, each depending on all 20 nodes of the next layer: 20^199 paths
        // would explode a path-enumerating walk; BFS and memoised hashing finish instantly.
        let mut text = String::new();
        for l in 0..200 {
            for n in 0..20 {
                let deps: Vec<String> = if l < 199 {
                    (0..20).map(|m| format!("l{}n{m}", l + 1)).collect()
                } else {
                    vec![]
                };
                let _ = writeln!(text, "l{l}n{n}: {}", deps.join(", "));
            }
        }
        let g = graph(&text);
        let a = g.affected(&set(&g, &["l199n0"]));
        assert_eq!(a.iter().filter(|x| **x).count(), 199 * 20 + 1);
        let trees = vec![String::new(); g.len()];
        assert_eq!(g.hashes(&trees, "").len(), 4_000);
    }
}
