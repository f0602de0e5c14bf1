//! Documents as trees of nodes that remember where each scalar's bytes are, parsed from YAML (events of [`crate::yaml`]) or JSON (own scanner).

// Line numbers are counted only for error messages.
#![allow(clippy::naive_bytecount)]

use std::collections::HashMap;

use crate::yaml::parser::{Event, Parser};
use crate::yaml::scanner::TScalarStyle;

/// How a scalar is written in the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Plain (unquoted) on one line.
    Plain,
    /// `'single'` or `"double"` quoted (JSON strings too).
    Quoted,
    /// A `|` or `>` block scalar whose content is one line: the span is
    /// that line's text (without indentation and line break), so the style
    /// and the indicator stay.
    Block,
    /// Something we cannot splice safely (multi-line plain or quoted scalars,
    /// multi-line block scalars).
    Other,
}

/// A scalar and the byte range of its text (inside the quotes for quoted ones).
#[derive(Debug, Clone)]
pub struct Scalar {
    /// The parsed value.
    pub value: String,
    /// How it is written.
    pub style: Style,
    /// Byte range of the raw text to replace (only meaningful unless `Style::Other`).
    pub span: (usize, usize),
    /// 1-based line.
    pub line: usize,
    /// Whether this is a plain null (`~`, `null`, empty).
    pub null: bool,
}

/// A node of a document.
#[derive(Debug, Clone)]
pub enum Node {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order.
    Map(Vec<(Node, Node)>),
    /// A YAML alias to an anchored node (by anchor id).
    Alias(usize),
}

impl Node {
    /// The value of a mapping key (string keys only).
    pub fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Node::Scalar(s) if s.value == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The scalar string, if this is a non-null scalar.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) if !s.null => Some(&s.value),
            _ => None,
        }
    }
}

/// One document of a stream.
#[derive(Debug)]
pub struct Document {
    /// 0-based index in its file.
    pub index: usize,
    /// The root node.
    pub root: Node,
    /// Anchored nodes by anchor id (YAML only).
    pub anchors: HashMap<usize, Node>,
}

impl Document {
    /// The value of `key` in a mapping, following aliases and merge keys
    /// (`<<: *base`, `<<: [*a, *b]`): a key written in the mapping wins over
    /// a merged one, and earlier merged mappings win over later ones.
    pub fn get<'a>(&'a self, node: &'a Node, key: &str) -> Option<&'a Node> {
        self.get_depth(node, key, 0)
    }

    fn get_depth<'a>(&'a self, node: &'a Node, key: &str, depth: usize) -> Option<&'a Node> {
        let Node::Map(entries) = self.deref(node) else {
            return None;
        };
        if let Some(v) = entries.iter().find_map(|(k, v)| match k {
            Node::Scalar(s) if s.value == key && !is_merge_key(s) => Some(v),
            _ => None,
        }) {
            return Some(v);
        }
        // A merge needs an alias, hence an anchor in the document.
        if self.anchors.is_empty() || depth > 32 {
            return None;
        }
        self.merged(entries)
            .find_map(|m| self.get_depth(m, key, depth + 1))
    }

    /// The mappings merged into a mapping by its `<<` keys, in order.
    fn merged<'a>(&'a self, entries: &'a [(Node, Node)]) -> impl Iterator<Item = &'a Node> {
        entries
            .iter()
            .filter(|(k, _)| matches!(k, Node::Scalar(s) if is_merge_key(s)))
            .flat_map(move |(_, v)| match self.deref(v) {
                Node::Seq(items) => items.iter().collect::<Vec<_>>(),
                m => vec![m],
            })
    }

    /// Every `(key, value)` of a mapping, merged ones included (each key
    /// once, as [`Document::get`] finds it), in source order.
    pub fn entries<'a>(&'a self, node: &'a Node) -> Vec<(&'a str, &'a Node)> {
        let mut out: Vec<(&str, &Node)> = Vec::new();
        self.collect_entries(node, &mut out, 0);
        out
    }

    fn collect_entries<'a>(
        &'a self,
        node: &'a Node,
        out: &mut Vec<(&'a str, &'a Node)>,
        depth: usize,
    ) {
        let Node::Map(entries) = self.deref(node) else {
            return;
        };
        for (k, v) in entries {
            if let Node::Scalar(s) = k
                && is_merge_key(s)
            {
                continue;
            }
            if let Some(k) = self.deref(k).as_str()
                && !out.iter().any(|(x, _)| *x == k)
            {
                out.push((k, v));
            }
        }
        if depth > 32 {
            return;
        }
        for m in self.merged(entries) {
            self.collect_entries(m, out, depth + 1);
        }
    }

    /// Follow aliases.
    pub fn deref<'a>(&'a self, node: &'a Node) -> &'a Node {
        let mut n = node;
        for _ in 0..64 {
            match n {
                Node::Alias(id) => match self.anchors.get(id) {
                    Some(t) => n = t,
                    None => return n,
                },
                _ => return n,
            }
        }
        n
    }
}

/// Whether a mapping key is the YAML merge key `<<` (plain, untagged).
fn is_merge_key(s: &Scalar) -> bool {
    s.value == "<<" && s.style == Style::Plain
}

/// A parse failure with its position.
#[derive(Debug, Clone)]
pub struct ParseError {
    /// 0-based document index where it happened.
    pub document: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Whether text looks like JSON (first non-blank byte is `{` or `[`).
pub fn looks_like_json(text: &str) -> bool {
    matches!(
        text.trim_start_matches(['\u{feff}', ' ', '\t', '\r', '\n'])
            .as_bytes()
            .first(),
        Some(b'{' | b'[')
    )
}

/// Converts the YAML parser's marker index (counted in chars) to byte offsets,
/// walking forward only (events arrive in source order).
struct CharToByte<'a> {
    text: &'a str,
    ascii: bool,
    char_pos: usize,
    byte_pos: usize,
}

impl<'a> CharToByte<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text,
            ascii: text.is_ascii(),
            char_pos: 0,
            byte_pos: 0,
        }
    }

    fn byte(&mut self, char_index: usize) -> usize {
        if self.ascii {
            return char_index;
        }
        if char_index < self.char_pos {
            // Rare (never for scalars in order); restart.
            self.char_pos = 0;
            self.byte_pos = 0;
        }
        let mut it = self.text[self.byte_pos..].chars();
        while self.char_pos < char_index {
            match it.next() {
                Some(c) => {
                    self.byte_pos += c.len_utf8();
                    self.char_pos += 1;
                }
                None => break,
            }
        }
        self.byte_pos
    }
}

enum Frame {
    Seq(Vec<Node>, usize, Option<Vec<u32>>),
    Map(Vec<(Node, Node)>, Option<Node>, usize, Option<Vec<u32>>),
}

/// The paths that can matter (a trie over keys, from every image path), so
/// that the parser keeps only those nodes. `items[*]` leads back to the root
/// (a `List`'s items are documents of their own).
#[derive(Debug, Clone, Default)]
pub struct Interest {
    nodes: Vec<INode>,
}

#[derive(Debug, Clone, Default)]
struct INode {
    /// A few keys per node: a vector beats hashing here.
    keys: Vec<(String, u32)>,
    any_value: Option<u32>,
    items: Option<u32>,
}

/// A step of a path, for [`Interest::add`].
#[derive(Debug, Clone, Copy)]
pub enum IStep<'a> {
    /// A mapping key.
    Key(&'a str),
    /// Any value of a mapping.
    AnyValue,
    /// Any item of a sequence.
    Items,
}

impl Interest {
    /// An interest in `kind`, `apiVersion` and `items[*]` (back to the root).
    pub fn new() -> Self {
        let mut i = Self {
            nodes: vec![INode::default()],
        };
        i.add(&[IStep::Key("kind")]);
        i.add(&[IStep::Key("apiVersion")]);
        let items = i.child(0, IStep::Key("items"));
        i.nodes[items as usize].items = Some(0);
        i
    }

    fn child(&mut self, at: u32, step: IStep<'_>) -> u32 {
        let next = u32::try_from(self.nodes.len()).expect("small trie");
        let node = &mut self.nodes[at as usize];
        let slot = match step {
            IStep::Key(k) => {
                if let Some(&(_, n)) = node.keys.iter().find(|(x, _)| x == k) {
                    return n;
                }
                node.keys.push((k.to_string(), next));
                self.nodes.push(INode::default());
                return next;
            }
            IStep::AnyValue => &mut node.any_value,
            IStep::Items => &mut node.items,
        };
        if let Some(n) = *slot {
            n
        } else {
            *slot = Some(next);
            self.nodes.push(INode::default());
            next
        }
    }

    /// Add a path from the document root.
    pub fn add(&mut self, steps: &[IStep<'_>]) {
        let mut at = 0;
        for s in steps {
            at = self.child(at, *s);
        }
    }

    fn value_states(&self, states: &[u32], key: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for &s in states {
            let n = &self.nodes[s as usize];
            let by_key = n.keys.iter().find(|(k, _)| k == key).map(|(_, c)| *c);
            for c in [by_key, n.any_value].into_iter().flatten() {
                if !out.contains(&c) {
                    out.push(c);
                }
            }
        }
        out
    }

    fn item_states(&self, states: &[u32]) -> Vec<u32> {
        let mut out = Vec::new();
        for &s in states {
            if let Some(c) = self.nodes[s as usize].items
                && !out.contains(&c)
            {
                out.push(c);
            }
        }
        out
    }
}

/// Where the next node goes, and which interest states it has (`None` = keep all).
fn position_states(interest: Option<&Interest>, stack: &[Frame]) -> (bool, Option<Vec<u32>>) {
    let Some(interest) = interest else {
        return (false, None);
    };
    match stack.last() {
        None => (false, Some(vec![0])),
        Some(Frame::Seq(_, _, st)) => (false, st.as_ref().map(|st| interest.item_states(st))),
        Some(Frame::Map(_, None, _, _)) => (true, Some(Vec::new())),
        Some(Frame::Map(_, Some(k), _, st)) => (
            false,
            st.as_ref().map(|st| match k {
                Node::Scalar(k) => interest.value_states(st, &k.value),
                _ => Vec::new(),
            }),
        ),
    }
}

/// Parse a YAML stream into documents.
pub fn parse_yaml(text: &str) -> Result<Vec<Document>, ParseError> {
    parse_yaml_piece(text, 0, 0, None)
}

/// The first byte offset `>= from` (and `> 0`) where a line starting a new
/// document (`---` followed by a blank or the end) begins. Such a line can
/// never be scalar content (YAML's `c-forbidden`), so the stream may be cut
/// there.
fn next_document_start(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    // A line start at `i > 0` follows a newline at `i - 1`.
    let mut at = from.max(1) - 1;
    while at < b.len() && !text.is_char_boundary(at) {
        // A continuation byte is never a newline.
        at += 1;
    }
    while at < b.len() {
        let n = text[at..].find("\n---")?;
        let i = at + n + 1;
        if matches!(b.get(i + 3), None | Some(b' ' | b'\t' | b'\r' | b'\n')) {
            return Some(i);
        }
        at = i;
    }
    None
}

type Slot<T> = std::sync::Mutex<Option<Result<Vec<(usize, T)>, ParseError>>>;

/// Parse a YAML stream in parallel pieces (cut at document markers) and call
/// `each` on every document; returns the results in document order. Byte
/// spans, lines and document indices are those of the whole stream.
pub fn scan_yaml<T: Send>(
    text: &str,
    interest: Option<&Interest>,
    each: impl Fn(&Document) -> T + Sync,
) -> Result<Vec<(usize, T)>, ParseError> {
    let split = Split {
        threads: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        min_len: PARALLEL_MIN_LEN,
    };
    scan_yaml_split(text, interest, each, split)
}

/// Streams shorter than this are parsed by one thread.
const PARALLEL_MIN_LEN: usize = 1 << 20;

/// How [`scan_yaml_split`] cuts a stream: over how many threads, and from what length on.
#[derive(Debug, Clone, Copy)]
struct Split {
    threads: usize,
    min_len: usize,
}

fn scan_yaml_split<T: Send>(
    text: &str,
    interest: Option<&Interest>,
    each: impl Fn(&Document) -> T + Sync,
    Split { threads, min_len }: Split,
) -> Result<Vec<(usize, T)>, ParseError> {
    // Directives (`%YAML`) belong to the next document: do not cut then.
    let has_directives = text.starts_with('%') || text.contains("\n%");
    if threads == 1 || text.len() < min_len || has_directives {
        let docs = parse_yaml_piece(text, 0, 0, interest)?;
        return Ok(docs.iter().map(|d| (d.index, each(d))).collect());
    }
    let pieces_wanted = threads * 32;
    let target = text.len() / pieces_wanted + 1;
    let mut cuts = vec![0];
    while let Some(s) = next_document_start(text, cuts[cuts.len() - 1] + target) {
        cuts.push(s);
    }
    cuts.push(text.len());
    // (start, end, newlines before start), counted in one pass.
    let mut lines_before = 0;
    let pieces: Vec<(usize, usize, usize)> = cuts
        .windows(2)
        .map(|w| {
            let p = (w[0], w[1], lines_before);
            lines_before += text.as_bytes()[w[0]..w[1]]
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            p
        })
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Slot<T>> = pieces.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&(a, b, base_line)) = pieces.get(i) else {
                        break;
                    };
                    let r = parse_yaml_piece(&text[a..b], a, base_line, interest)
                        .map(|docs| docs.iter().map(|d| (d.index, each(d))).collect());
                    *results[i].lock().expect("result slot") = Some(r);
                }
            });
        }
    });
    let mut out = Vec::new();
    for slot in results {
        let r = slot
            .into_inner()
            .expect("result slot")
            .expect("piece parsed");
        let base = out.len();
        match r {
            Ok(docs) => out.extend(docs.into_iter().map(|(i, t)| (base + i, t))),
            Err(mut e) => {
                e.document += base;
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// Parse a piece of a stream that starts at byte `base` and after
/// `base_line` newlines. With an interest, nodes on no interesting path are
/// not kept (unless the piece may use anchors, which can point anywhere).
fn parse_yaml_piece(
    text: &str,
    base: usize,
    base_line: usize,
    interest: Option<&Interest>,
) -> Result<Vec<Document>, ParseError> {
    let interest = interest.filter(|_| !text.contains('&'));
    let mut skip = 0usize;
    let mut parser = Parser::new_from_str(text);
    let mut conv = CharToByte::new(text);
    let mut docs = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut doc_index = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| ParseError {
            document: doc_index,
            line: e.marker().line() + base_line,
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        if skip > 0 {
            match event {
                Event::SequenceStart(..) | Event::MappingStart(..) => skip += 1,
                Event::SequenceEnd | Event::MappingEnd => skip -= 1,
                _ => {}
            }
            continue;
        }
        let is_value = matches!(
            event,
            Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Scalar(..)
                | Event::Alias(..)
        );
        let (is_key, states) = if is_value {
            position_states(interest, &stack)
        } else {
            (false, None)
        };
        if !is_key && states.as_ref().is_some_and(Vec::is_empty) {
            // Nothing below this value can be an image: drop it and its key.
            if let Some(Frame::Map(_, key, _, _)) = stack.last_mut() {
                *key = None;
            }
            if matches!(event, Event::SequenceStart(..) | Event::MappingStart(..)) {
                skip = 1;
            }
            continue;
        }
        let node = match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                anchors = HashMap::new();
                root = None;
                continue;
            }
            Event::DocumentEnd => {
                docs.push(Document {
                    index: doc_index,
                    root: root.take().unwrap_or(Node::Seq(Vec::new())),
                    anchors: std::mem::take(&mut anchors),
                });
                doc_index += 1;
                continue;
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq(Vec::new(), anchor, states));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map(Vec::new(), None, anchor, states));
                continue;
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq(items, anchor, _)) => {
                    let n = Node::Seq(items);
                    if anchor > 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    n
                }
                _ => unreachable!("parser emits balanced events"),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map(entries, _, anchor, _)) => {
                    let n = Node::Map(entries);
                    if anchor > 0 {
                        anchors.insert(anchor, n.clone());
                    }
                    n
                }
                _ => unreachable!("parser emits balanced events"),
            },
            Event::Alias(id) => Node::Alias(id),
            Event::Scalar(value, style, anchor, tag) => {
                let start = conv.byte(mark.index());
                let mut s = scalar_from_yaml(
                    text,
                    value,
                    style,
                    start,
                    mark.line() + base_line,
                    tag.is_some(),
                );
                s.span = (s.span.0 + base, s.span.1 + base);
                let n = Node::Scalar(s);
                if anchor > 0 {
                    anchors.insert(anchor, n.clone());
                }
                n
            }
            Event::Nothing | Event::StreamStart => continue,
        };
        match stack.last_mut() {
            Some(Frame::Seq(items, _, _)) => items.push(node),
            Some(Frame::Map(entries, key, _, _)) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
            None => root = Some(node),
        }
    }
    Ok(docs)
}

fn scalar_from_yaml(
    text: &str,
    value: String,
    style: TScalarStyle,
    start: usize,
    line: usize,
    tagged: bool,
) -> Scalar {
    let bytes = text.as_bytes();
    let (style, span) = match style {
        TScalarStyle::Plain => {
            let end = start + value.len();
            if text.get(start..end) == Some(value.as_str()) {
                (Style::Plain, (start, end))
            } else {
                (Style::Other, (start, start))
            }
        }
        TScalarStyle::SingleQuoted if bytes.get(start) == Some(&b'\'') => {
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') | None => break,
                    Some(_) => i += 1,
                }
            }
            (Style::Quoted, (start + 1, i))
        }
        TScalarStyle::DoubleQuoted if bytes.get(start) == Some(&b'"') => {
            let mut i = start + 1;
            loop {
                match bytes.get(i) {
                    Some(b'\\') => i += 2,
                    Some(b'"') | None => break,
                    Some(_) => i += 1,
                }
            }
            (Style::Quoted, (start + 1, i.min(text.len())))
        }
        TScalarStyle::Literal | TScalarStyle::Folded => {
            return block_scalar(text, &value, start, line);
        }
        _ => (Style::Other, (start, start)),
    };
    let null = style == Style::Plain
        && !tagged
        && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL");
    Scalar {
        value,
        style,
        span,
        line,
        null,
    }
}

/// A block scalar (`|`, `>`, with any chomping or indentation indicator)
/// from where its content starts: when its value is one line of text, that
/// line is the span and the value is the line without its line break.
fn block_scalar(text: &str, value: &str, start: usize, line: usize) -> Scalar {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let trimmed = value.trim_matches(ws);
    let other = || Scalar {
        value: value.to_string(),
        style: Style::Other,
        span: (start, start),
        line,
        null: false,
    };
    if trimmed.is_empty() || trimmed.contains(['\n', '\r']) {
        return other();
    }
    let Some(rest) = text.get(start..) else {
        return other();
    };
    // Only blank lines and indentation before the text, only blanks after it
    // on its line.
    let lead = rest.len() - rest.trim_start_matches(ws).len();
    let at = start + lead;
    let end = at + trimmed.len();
    let tail_ok = text.as_bytes()[end.min(text.len())..]
        .iter()
        .take_while(|&&c| c != b'\n')
        .all(|&c| matches!(c, b' ' | b'\t' | b'\r'));
    if text.get(at..end) != Some(trimmed) || !tail_ok {
        return other();
    }
    let skipped_lines = text.as_bytes()[start..at]
        .iter()
        .filter(|&&c| c == b'\n')
        .count();
    Scalar {
        value: trimmed.to_string(),
        style: Style::Block,
        span: (at, end),
        line: line + skipped_lines,
        null: false,
    }
}

/// Parse a JSON stream (one or more values separated by whitespace).
pub fn parse_json(text: &str) -> Result<Vec<Document>, ParseError> {
    let mut p = JsonParser {
        b: text.as_bytes(),
        text,
        i: 0,
        doc: 0,
    };
    let mut docs = Vec::new();
    loop {
        p.ws();
        if p.i >= p.b.len() {
            break;
        }
        let root = p.value(0)?;
        docs.push(Document {
            index: p.doc,
            root,
            anchors: HashMap::new(),
        });
        p.doc += 1;
    }
    Ok(docs)
}

struct JsonParser<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    doc: usize,
}

impl JsonParser<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        let upto = &self.b[..self.i.min(self.b.len())];
        let line = upto.iter().filter(|&&c| c == b'\n').count() + 1;
        let col = upto.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
        ParseError {
            document: self.doc,
            line,
            column: col,
            message: message.into(),
        }
    }

    fn line(&self) -> usize {
        self.b[..self.i].iter().filter(|&&c| c == b'\n').count() + 1
    }

    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
        if self.i == 0 && self.text.starts_with('\u{feff}') {
            self.i = 3;
            self.ws();
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > 512 {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Node::Map(entries));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.err("expected a string key"));
                    }
                    let k = self.string(0)?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.err("expected ':'"));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    entries.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Node::Map(entries));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Node::Seq(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Node::Seq(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => self.string(0),
            Some(_) => {
                let start = self.i;
                while self.i < self.b.len()
                    && (self.b[self.i].is_ascii_alphanumeric()
                        || matches!(self.b[self.i], b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let tok = &self.text[start..self.i];
                let ok = matches!(tok, "true" | "false" | "null")
                    || (!tok.is_empty() && tok.parse::<f64>().is_ok() && !tok.starts_with('+'));
                if !ok {
                    self.i = start;
                    return Err(self.err(format!(
                        "unexpected {:?}",
                        self.text[start..].chars().next().unwrap_or(' ')
                    )));
                }
                Ok(Node::Scalar(Scalar {
                    value: tok.to_string(),
                    style: Style::Other,
                    span: (start, self.i),
                    line: self.line(),
                    null: tok == "null",
                }))
            }
        }
    }

    fn string(&mut self, _depth: usize) -> Result<Node, ParseError> {
        let line = self.line();
        self.i += 1;
        let start = self.i;
        let mut value = String::new();
        let mut seg = self.i;
        loop {
            match self.b.get(self.i) {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    value.push_str(&self.text[seg..self.i]);
                    let end = self.i;
                    self.i += 1;
                    return Ok(Node::Scalar(Scalar {
                        value,
                        style: Style::Quoted,
                        span: (start, end),
                        line,
                        null: false,
                    }));
                }
                Some(b'\\') => {
                    value.push_str(&self.text[seg..self.i]);
                    let esc = self.b.get(self.i + 1).copied();
                    self.i += 2;
                    match esc {
                        Some(b'"') => value.push('"'),
                        Some(b'\\') => value.push('\\'),
                        Some(b'/') => value.push('/'),
                        Some(b'b') => value.push('\u{8}'),
                        Some(b'f') => value.push('\u{c}'),
                        Some(b'n') => value.push('\n'),
                        Some(b'r') => value.push('\r'),
                        Some(b't') => value.push('\t'),
                        Some(b'u') => {
                            let hex = |p: &Self, at: usize| {
                                p.text
                                    .get(at..at + 4)
                                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                            };
                            let Some(mut cp) = hex(self, self.i) else {
                                return Err(self.err("invalid \\u escape"));
                            };
                            self.i += 4;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.text.get(self.i..self.i + 2) == Some("\\u")
                                && let Some(lo) = hex(self, self.i + 2)
                                && (0xDC00..0xE000).contains(&lo)
                            {
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                self.i += 6;
                            }
                            value.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                    seg = self.i;
                }
                Some(c) if *c < 0x20 => return Err(self.err("control character in string")),
                Some(_) => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_span(text: &str, doc: &Document) -> String {
        let c = doc.root.get("image").unwrap();
        match doc.deref(c) {
            Node::Scalar(s) => text[s.span.0..s.span.1].to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn yaml_spans_for_every_style() {
        for (src, raw) in [
            ("image: nginx:1.25\n", "nginx:1.25"),
            ("image: 'nginx:1.25' # c\n", "nginx:1.25"),
            ("image: \"nginx:1.25\"\n", "nginx:1.25"),
            ("# é ü\nname: ünï\nimage: &a nginx\n", "nginx"),
            ("{image: nginx}\n", "nginx"),
            ("x: &i nginx:2\nimage: *i\n", "nginx:2"),
        ] {
            let docs = parse_yaml(src).unwrap();
            assert_eq!(image_span(src, &docs[0]), raw, "{src}");
        }
    }

    /// Every plain, quoted and block scalar's span holds its text, whatever
    /// non-ASCII text comes before it (in block scalars, comments, flows).
    #[test]
    fn spans_stay_exact_after_non_ascii_text() {
        fn check(text: &str, n: &Node, seen: &mut usize) {
            match n {
                Node::Scalar(s) => {
                    let raw = &text[s.span.0..s.span.1];
                    match s.style {
                        Style::Plain | Style::Block => assert_eq!(raw, s.value),
                        Style::Quoted => assert!(!raw.contains(['"', '\'']), "{raw:?}"),
                        Style::Other => panic!("{s:?}"),
                    }
                    *seen += 1;
                }
                Node::Seq(items) => items.iter().for_each(|i| check(text, i, seen)),
                Node::Map(entries) => entries.iter().for_each(|(k, v)| {
                    check(text, k, seen);
                    check(text, v, seen);
                }),
                Node::Alias(_) => {}
            }
        }
        let text = "\u{feff}# ∑ comment\na: |\n  x é ü ✓\n  🎉 z\nb: >-\n  Größe\nc: [\"ö\", 'ß', ü]\nd: {é: à}\ne: plain-ä\nf: |\n  ok\ng: \"multi\n  ✓ line\"\nh: last\n";
        let docs = parse_yaml(text).unwrap();
        assert!(docs[0].root.get("a").is_some());
        let mut seen = 0;
        let Node::Map(entries) = &docs[0].root else {
            panic!()
        };
        for (k, v) in entries {
            check(text, k, &mut seen);
            if !matches!(v, Node::Scalar(s) if s.value.contains('\n')) {
                check(text, v, &mut seen);
            }
        }
        assert_eq!(seen, 18);
    }

    #[test]
    fn yaml_documents_and_errors() {
        let docs = parse_yaml("a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(docs.len(), 3);
        let e = parse_yaml("a: 1\n---\nb: [1, 2\n").unwrap_err();
        assert_eq!(e.document, 1);
        assert!(e.line >= 3, "{e:?}");
    }

    /// A comment, then `docs` pods each with one image `img<i>` and a block scalar holding a fake `---` marker.
    fn many_pods(docs: usize) -> String {
        use std::fmt::Write as _;
        let mut text = String::from("# head\n");
        for i in 0..docs {
            let _ = write!(
                text,
                "---\nkind: Pod # ü\nspec: {{containers: [{{image: 'img{i}'}}]}}\nx: |\n  --- not a marker\n"
            );
        }
        text
    }

    /// Each document's index and its first container image's line, span and value, by the serial parser.
    fn serial_images(text: &str) -> Vec<(usize, usize, (usize, usize), String)> {
        parse_yaml(text)
            .unwrap()
            .iter()
            .map(|d| {
                let Node::Scalar(s) = d
                    .root
                    .get("spec")
                    .unwrap()
                    .get("containers")
                    .map(|c| match c {
                        Node::Seq(v) => v[0].get("image").unwrap().clone(),
                        _ => panic!(),
                    })
                    .unwrap()
                else {
                    panic!()
                };
                (d.index, s.line, s.span, s.value)
            })
            .collect()
    }

    /// The same as [`serial_images`], by the parallel scan cut as `split` says.
    fn parallel_images(text: &str, split: Split) -> Vec<(usize, usize, (usize, usize), String)> {
        scan_yaml_split(
            text,
            None,
            |d| {
                let Node::Seq(v) = d.root.get("spec").unwrap().get("containers").unwrap() else {
                    panic!()
                };
                let Node::Scalar(s) = v[0].get("image").unwrap() else {
                    panic!()
                };
                (s.line, s.span, s.value.clone())
            },
            split,
        )
        .unwrap()
        .into_iter()
        .map(|(i, (l, sp, v))| (i, l, sp, v))
        .collect()
    }

    #[test]
    fn parallel_scan_matches_serial_parse() {
        // Small enough for a debug build, cut in many pieces over 3 threads all the same.
        const DOCS: usize = 2_000;
        let split = Split {
            threads: 3,
            min_len: 0,
        };
        let text = many_pods(DOCS);
        let serial = serial_images(&text);
        assert_eq!(serial.len(), DOCS);
        assert_eq!(serial, parallel_images(&text, split));
        let (_, _, (a, b), v) = &serial[DOCS - 1];
        assert_eq!(&text[*a..*b], v);
        let mut bad = text.clone();
        bad.push_str("---\na: [\n");
        let e = scan_yaml_split(&bad, None, |_| (), split).unwrap_err();
        assert_eq!(e.document, DOCS);
        assert!(e.line > DOCS * 5, "{e:?}");
    }

    #[test]
    fn json_spans_and_errors() {
        let src = "{\"a\": [1, true, null, -2.5e3], \"image\": \"ng\\u0069nx\"}\n{\"image\":\"x\"}";
        let docs = parse_json(src).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].root.get("image").unwrap().as_str(), Some("nginx"));
        assert_eq!(image_span(src, &docs[0]), "ng\\u0069nx");
        let e = parse_json("{\n\"a\": tru }").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(parse_json("{\"a\": 1,}").is_err());
    }
}
