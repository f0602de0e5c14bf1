//! Where each key and item of a YAML document is: a map from dotted paths (`services.api.ports[0]`) to line and column, read with yaml-rust2's marked events; also finds duplicate keys.

use std::collections::{BTreeMap, HashMap, HashSet};

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Positions of the keys (for map entries) and items (for sequence entries) of a document.
#[derive(Debug, Default)]
pub struct Positions {
    map: HashMap<String, Pos>,
    /// The other way round: which key or value starts at a line and column (the outermost when several do).
    nodes: BTreeMap<(usize, usize), String>,
}

/// A duplicate key: its path and the position of the second occurrence.
#[derive(Debug)]
pub struct Duplicate {
    /// Dotted path of the key.
    pub path: String,
    /// Where it appears again.
    pub pos: Pos,
}

impl Positions {
    /// The position of `path`, else of its nearest ancestor that has one, else 1:1.
    pub fn of(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some(pos) = self.map.get(p) {
                return *pos;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, column: 1 },
            }
        }
    }

    /// The path of the key or value that starts at `pos`, else of the last one before it (`""` for the root).
    pub fn path_at(&self, pos: Pos) -> &str {
        self.nodes
            .range(..=(pos.line, pos.column))
            .next_back()
            .map_or("", |(_, p)| p.as_str())
    }

    fn record(&mut self, path: &str, pos: Pos) {
        self.nodes
            .entry((pos.line, pos.column))
            .or_insert_with(|| path.to_string());
    }
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        seen: HashSet<String>,
    },
    Seq {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Collector {
    positions: Positions,
    stack: Vec<Frame>,
    duplicate: Option<Duplicate>,
    depth_doc: usize,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl Collector {
    fn pos(mark: Marker) -> Pos {
        Pos {
            line: mark.line(),
            column: mark.col() + 1,
        }
    }

    /// A node starts here: returns its path (and records it), when it is a value.
    /// Returns `None` when the node is a map key (recorded by the caller).
    fn node_path(&mut self, mark: Marker, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, index }) => {
                let p = format!("{path}[{index}]");
                *index += 1;
                self.positions.map.insert(p.clone(), Self::pos(mark));
                self.positions.record(&p, Self::pos(mark));
                Some(p)
            }
            Some(Frame::Map { path, key, seen }) => {
                if let Some(k) = key.take() {
                    let p = join(path, &k);
                    self.positions.record(&p, Self::pos(mark));
                    Some(p)
                } else {
                    // This node is a key.
                    let k = scalar.unwrap_or("?").to_string();
                    let p = join(path, &k);
                    if !seen.insert(k.clone()) && self.duplicate.is_none() {
                        self.duplicate = Some(Duplicate {
                            path: p.clone(),
                            pos: Self::pos(mark),
                        });
                    }
                    self.positions.record(&p, Self::pos(mark));
                    self.positions.map.entry(p).or_insert(Self::pos(mark));
                    *key = Some(k);
                    None
                }
            }
        }
    }
}

impl MarkedEventReceiver for Collector {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::DocumentStart => self.depth_doc += 1,
            Event::Scalar(value, ..) => {
                let _ = self.node_path(mark, Some(&value));
            }
            Event::Alias(_) => {
                let _ = self.node_path(mark, None);
            }
            Event::MappingStart(..) => {
                let path = self.node_path(mark, None).unwrap_or_default();
                self.stack.push(Frame::Map {
                    path,
                    key: None,
                    seen: HashSet::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.node_path(mark, None).unwrap_or_default();
                self.stack.push(Frame::Seq { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

/// Index the first document of `text`. A syntax error is returned as
/// `(position, message)`; the first duplicate key, if any, too.
pub fn index(text: &str) -> Result<(Positions, Option<Duplicate>), (Pos, String)> {
    let mut collector = Collector::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut collector, false).map_err(|e| {
        let m = e.marker();
        (
            Pos {
                line: m.line(),
                column: m.col() + 1,
            },
            e.info().to_string(),
        )
    })?;
    Ok((collector.positions, collector.duplicate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_items_and_duplicates() {
        let text = "name: a\nservices:\n  api:\n    ports:\n      - port: 1\n      - port: 2\n  api:\n    x: 1\n";
        let (pos, dup) = index(text).unwrap();
        assert_eq!(pos.of("name"), Pos { line: 1, column: 1 });
        assert_eq!(pos.of("services.api"), Pos { line: 3, column: 3 });
        assert_eq!(
            pos.of("services.api.ports[1].port"),
            Pos { line: 6, column: 9 }
        );
        assert_eq!(pos.of("services.api.ports[1]").line, 6);
        assert_eq!(pos.of("services.api.nothing"), Pos { line: 3, column: 3 });
        let dup = dup.unwrap();
        assert_eq!(dup.path, "services.api");
        assert_eq!(dup.pos.line, 7);
    }

    #[test]
    fn finds_the_path_at_a_position() {
        let text = "name: a\nservices:\n  api:\n    image: x\n    ports: [{port: http}]\n";
        let (pos, _) = index(text).unwrap();
        let at = |line, column| pos.path_at(Pos { line, column });
        assert_eq!(at(1, 1), "name");
        assert_eq!(at(1, 7), "name");
        assert_eq!(at(4, 5), "services.api.image");
        assert_eq!(at(4, 12), "services.api.image");
        assert_eq!(at(5, 5), "services.api.ports");
        assert_eq!(at(5, 19), "services.api.ports[0].port");
        assert_eq!(at(5, 25), "services.api.ports[0].port");
    }
}
