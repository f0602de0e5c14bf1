//! The stage graph: which stages the target needs (`--target` pruning) and the edges between stages.

use std::collections::BTreeSet;

use crate::dockerfile::{Dockerfile, Source};
use crate::error::BuildError;

/// An edge `from` -> `to`: stage `to` reads stage `from`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    /// The stage read.
    pub from: String,
    /// The stage reading it.
    pub to: String,
    /// `from` (FROM a stage) or `copy` (`COPY --from`, `RUN --mount=from=`).
    pub kind: &'static str,
}

/// Resolve `--target` (a stage name, case-insensitive, or an index) to a stage index;
/// without a target the last stage.
pub fn target_index(
    df: &Dockerfile,
    path: &str,
    target: Option<&str>,
) -> Result<usize, BuildError> {
    let Some(t) = target else {
        return Ok(df.stages.len() - 1);
    };
    let lower = t.to_ascii_lowercase();
    if let Some(s) = df.stages.iter().find(|s| s.name.as_deref() == Some(&lower)) {
        return Ok(s.index);
    }
    Err(BuildError::UnknownTarget {
        path: path.to_string(),
        target: t.to_string(),
        known: df
            .stages
            .iter()
            .filter_map(|s| s.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The stages `target` needs (itself included), sorted by index.
#[must_use]
pub fn needed(df: &Dockerfile, target: usize) -> Vec<usize> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !seen.insert(i) {
            continue;
        }
        let s = &df.stages[i];
        if let Source::Stage(b) = s.base {
            todo.push(b);
        }
        todo.extend(s.copies_from.iter().copied());
    }
    seen.into_iter().collect()
}

/// Direct dependencies of a stage (base stage and copy sources), sorted, unique.
#[must_use]
pub fn deps_of(df: &Dockerfile, i: usize) -> Vec<usize> {
    let s = &df.stages[i];
    let mut d: BTreeSet<usize> = s.copies_from.iter().copied().collect();
    if let Source::Stage(b) = s.base {
        d.insert(b);
    }
    d.into_iter().collect()
}

/// Edges among the given stages.
#[must_use]
pub fn edges(df: &Dockerfile, stages: &[usize]) -> Vec<Edge> {
    let mut out = Vec::new();
    for &i in stages {
        let s = &df.stages[i];
        if let Source::Stage(b) = s.base {
            out.push(Edge {
                from: df.stages[b].label(),
                to: s.label(),
                kind: "from",
            });
        }
        for &c in &s.copies_from {
            out.push(Edge {
                from: df.stages[c].label(),
                to: s.label(),
                kind: "copy",
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn target_prunes_unneeded_stages() {
        let df = crate::dockerfile::parse(
            "Dockerfile",
            "FROM a:1 AS deps\nFROM a:1 AS lint\nFROM deps AS build\nCOPY --from=deps /x /x\nFROM a:1 AS test\nCOPY --from=lint /l /l\nFROM b:1\nCOPY --from=build /o /o\n",
            &BTreeMap::new(),
        )
        .unwrap();
        let last = target_index(&df, "Dockerfile", None).unwrap();
        assert_eq!(needed(&df, last), vec![0, 2, 4]);
        let t = target_index(&df, "Dockerfile", Some("TEST")).unwrap();
        assert_eq!(needed(&df, t), vec![1, 3]);
        assert!(target_index(&df, "Dockerfile", Some("nope")).is_err());
        let e = edges(&df, &needed(&df, last));
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].from, "deps");
        assert_eq!(e[0].kind, "from");
    }
}
