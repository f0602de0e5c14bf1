//! Dockerfile parsing as `BuildKit` reads it: parser directives, BOM, line continuations, heredocs, the AST (dumpable in `BuildKit`'s format), instruction checks, global `ARG`s and the stage list with every cross-stage reference.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::error::BuildError;
use crate::words::{Env, Lex, NoEnv, WordError};

/// A heredoc attached to an instruction (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, quotes removed.
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 if none.
    pub fd: u32,
    /// Whether the body is expanded (the delimiter was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// The body as read, line endings included.
    pub content: String,
}

/// One node of the AST, shaped like `BuildKit`'s: a value, the following words
/// (`next`), sub-instructions (`children`, for `ONBUILD`), flags and heredocs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Node {
    /// The instruction as written (`from`, `RUN`) or a word.
    pub value: String,
    /// The words after the instruction.
    pub next: Vec<Node>,
    /// Sub-instructions (`ONBUILD RUN …`).
    pub children: Vec<Node>,
    /// `--flag=value` words before the arguments.
    pub flags: Vec<String>,
    /// The arguments were a JSON array (exec form).
    pub json: bool,
    /// The logical line (continuations joined).
    pub original: String,
    /// Heredoc bodies, in order of their `<<` markers.
    pub heredocs: Vec<Heredoc>,
    /// First line (1-based).
    pub start_line: usize,
    /// Last line, heredoc bodies included.
    pub end_line: usize,
}

/// A parsed Dockerfile AST.
#[derive(Debug, Clone)]
pub struct Ast {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// The instructions.
    pub nodes: Vec<Node>,
}

/// One logical instruction (continuations joined, heredoc bodies attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-case keyword (`FROM`, `RUN`, ...).
    pub keyword: String,
    /// Everything after the keyword, continuations joined.
    pub rest: String,
    /// 1-based line of the keyword.
    pub line: usize,
    /// Heredoc bodies, in order of their `<<` markers.
    pub heredocs: Vec<String>,
}

/// A reference from a stage to something it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An earlier stage, by index.
    Stage(usize),
    /// An external image reference.
    Image(String),
    /// `FROM scratch`.
    Scratch,
}

/// One `FROM` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position in the Dockerfile (0-based).
    pub index: usize,
    /// Lower-cased `AS` name, if any.
    pub name: Option<String>,
    /// The `AS` name as written (buildah matches `--target` case-sensitively).
    pub name_as_written: Option<String>,
    /// The base, after `ARG` substitution.
    pub base: Source,
    /// `--platform=` of the `FROM`, after substitution.
    pub platform: Option<String>,
    /// Line of the `FROM`.
    pub line: usize,
    /// Stages read with `COPY --from`, `RUN --mount=…,from=` or an inherited `ONBUILD` trigger (sorted, unique).
    pub copies_from: Vec<usize>,
    /// External images read with `--from` (sorted, unique).
    pub images_from: Vec<String>,
    /// Number of instructions in the stage after `FROM`.
    pub instructions: usize,
}

impl Stage {
    /// The stage's name, or `stage-N` for an unnamed stage.
    #[must_use]
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }

    /// The value to pass to `--target` (name, or index for unnamed stages).
    #[must_use]
    pub fn target_arg(&self) -> Option<String> {
        self.name_as_written.clone()
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Global `ARG`s (before the first `FROM`) with their effective values.
    pub global_args: BTreeMap<String, Option<String>>,
    /// The stages in order.
    pub stages: Vec<Stage>,
}

/// Parse the Dockerfile `text` (named `path` in errors) with `--build-arg` overrides.
pub fn parse(
    path: &str,
    text: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<Dockerfile, BuildError> {
    let ast = parse_ast(path, text)?;
    build(path, &ast, build_args)
}

fn syntax(path: &str, line: usize, message: impl Into<String>) -> BuildError {
    BuildError::Syntax {
        path: path.to_string(),
        line,
        message: message.into(),
    }
}

fn word(path: &str, line: usize, context: &'static str, source: WordError) -> BuildError {
    BuildError::Word {
        path: path.to_string(),
        line,
        context,
        source,
    }
}

/// Split the text into logical instructions (compatibility view of [`parse_ast`]).
pub fn lex(path: &str, text: &str) -> Result<(char, Vec<Instruction>), BuildError> {
    let ast = parse_ast(path, text)?;
    let out = ast
        .nodes
        .iter()
        .map(|n| {
            let t = n.original.trim();
            let rest = t
                .find(is_split_space)
                .map_or("", |p| t[p..].trim_start_matches(is_split_space));
            Instruction {
                keyword: n.value.to_ascii_uppercase(),
                rest: rest.to_string(),
                line: n.start_line,
                heredocs: n.heredocs.iter().map(|h| h.content.clone()).collect(),
            }
        })
        .collect();
    Ok((ast.escape, out))
}

// ---------------------------------------------------------------------------
// Lines, directives, continuations

/// The whitespace of `BuildKit`'s instruction splitting (`[\t\v\f\r ]`).
fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Parser directive state: the escape character and which directives were seen.
struct Directives {
    escape: char,
    done: bool,
    seen: Vec<String>,
}

impl Directives {
    /// Look at one line for a `# key=value` directive; the block ends at the first line that is not one.
    fn look(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some(body) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(());
        };
        let body = body.trim_start();
        let re_space = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
        let name_len = body
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
            .map_or(body.len(), |(i, _)| i);
        let (name, rest) = body.split_at(name_len);
        let value = rest
            .trim_start_matches(re_space)
            .strip_prefix('=')
            .map(|v| v.trim_matches(re_space));
        let Some(value) = value.filter(|v| !name.is_empty() && !v.is_empty()) else {
            self.done = true;
            return Ok(());
        };
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        if key == "escape" {
            self.escape = match value {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(format!(
                        "invalid escape token '{other}' does not match ` or \\"
                    ));
                }
            };
        }
        Ok(())
    }
}

/// Strip a line-continuation escape (the last character but blanks, not itself escaped).
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape)
        && (before.is_empty() || !before.ends_with(escape))
    {
        return (before, false);
    }
    (line, true)
}

/// Parse the text into `BuildKit`'s AST. Unknown instructions are kept (as `BuildKit`'s parser does);
/// [`parse`] refuses them.
#[allow(clippy::many_single_char_names)]
pub fn parse_ast(path: &str, text: &str) -> Result<Ast, BuildError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut d = Directives {
        escape: '\\',
        done: false,
        seen: Vec::new(),
    };
    let mut nodes = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = i + 1;
        let tok = trim_newline(lines[i]).trim_start();
        i += 1;
        d.look(tok).map_err(|m| syntax(path, start, m))?;
        let tok = if is_comment(tok) { "" } else { tok };
        let (first, mut end_of_line) = trim_continuation(tok, d.escape);
        if end_of_line && first.is_empty() {
            continue;
        }
        let mut buf = first.to_string();
        while !end_of_line && i < lines.len() {
            let raw = lines[i];
            let t = trim_newline(raw);
            i += 1;
            d.look(t).map_err(|m| syntax(path, i, m))?;
            if is_comment(raw) || t.trim_start().is_empty() {
                continue;
            }
            let (c, e) = trim_continuation(t, d.escape);
            end_of_line = e;
            buf.push_str(c);
        }
        let mut node = node_from_line(&buf, d.escape).map_err(|m| syntax(path, start, m))?;
        if node.can_contain_heredoc() && buf.contains("<<") {
            let docs = heredocs_from_line(&buf).map_err(|m| syntax(path, start, m))?;
            for mut h in docs {
                let mut content = String::new();
                let mut terminated = false;
                while i < lines.len() {
                    let raw = lines[i];
                    i += 1;
                    let mut t = trim_newline(raw);
                    if h.chomp {
                        t = t.trim_start_matches('\t');
                    }
                    if t == h.name {
                        terminated = true;
                        break;
                    }
                    content.push_str(raw);
                }
                if !terminated {
                    return Err(syntax(
                        path,
                        start,
                        format!("unterminated heredoc `{}`", h.name),
                    ));
                }
                h.content = content;
                node.heredocs.push(h);
            }
        }
        node.start_line = start;
        node.end_line = i;
        nodes.push(node);
    }
    if nodes.is_empty() {
        return Err(syntax(
            path,
            lines.len().max(1),
            "file with no instructions",
        ));
    }
    Ok(Ast {
        escape: d.escape,
        nodes,
    })
}

// ---------------------------------------------------------------------------
// One logical line into a node

fn node_from_line(line: &str, escape: char) -> Result<Node, String> {
    let t = line.trim();
    let (cmd, rest) = match t.find(is_split_space) {
        Some(p) => (&t[..p], Some(t[p..].trim_start_matches(is_split_space))),
        None => (t, None),
    };
    let (args, flags) = match rest {
        Some(r) => {
            let (a, f) = extract_flags(r, escape);
            (a.trim().to_string(), f)
        }
        None => (String::new(), Vec::new()),
    };
    let (next, json) = match cmd.to_ascii_lowercase().as_str() {
        "add" | "copy" | "volume" => maybe_json_to_list(&args)?,
        "arg" => (word_nodes(parse_words(&args, escape)), false),
        "cmd" | "entrypoint" | "run" | "shell" => maybe_json(&args)?,
        "env" => (name_val(&args, "ENV", escape)?, false),
        "label" => (name_val(&args, "LABEL", escape)?, false),
        "expose" | "from" => (whitespace_list(&args), false),
        "healthcheck" => health(&args)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => (
            if args.is_empty() {
                Vec::new()
            } else {
                vec![leaf(&args)]
            },
            false,
        ),
        "onbuild" => {
            if args.is_empty() {
                (Vec::new(), false)
            } else {
                let child = node_from_line(&args, escape)?;
                (
                    vec![Node {
                        children: vec![child],
                        ..Node::default()
                    }],
                    false,
                )
            }
        }
        _ => (vec![Node::default()], false),
    };
    Ok(Node {
        value: cmd.to_string(),
        next,
        flags,
        json,
        original: line.to_string(),
        ..Node::default()
    })
}

fn leaf(v: &str) -> Node {
    Node {
        value: v.to_string(),
        ..Node::default()
    }
}

fn word_nodes(words: Vec<String>) -> Vec<Node> {
    words
        .into_iter()
        .map(|value| Node {
            value,
            ..Node::default()
        })
        .collect()
}

/// `--flag` words before the arguments (quotes and escapes removed), and the rest of the line.
fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let cs: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut pos = 0;
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let rest = |p: usize| cs[p..].iter().collect::<String>();
    loop {
        let ch = cs.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if c.is_whitespace() {
                pos += 1;
                continue;
            }
            if c != '-' || cs.get(pos + 1) != Some(&'-') {
                return (rest(pos), words);
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        };
        if phase == Phase::Word {
            if c.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (rest(pos), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if c == escape {
                if pos + 1 == cs.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = cs[pos];
            }
            word.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if c == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if c == escape {
            if pos + 1 == cs.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = cs[pos];
        }
        word.push(c);
        pos += 1;
    }
    (String::new(), words)
}

/// `BuildKit`'s word splitting for `ARG`, `ENV` and `LABEL`: quotes and escapes are kept.
fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let cs: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut b = String::new();
    let mut pos = 0;
    loop {
        let ch = cs.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if c.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if blank_ok || !b.is_empty() {
                words.push(b);
            }
            break;
        };
        if phase == Phase::Word {
            if c.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !b.is_empty() {
                    words.push(std::mem::take(&mut b));
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if c == escape {
                if pos + 1 == cs.len() {
                    pos += 1;
                    continue;
                }
                b.push(c);
                pos += 1;
                c = cs[pos];
            }
            b.push(c);
            pos += 1;
            continue;
        }
        if c == quote {
            phase = Phase::Word;
        }
        if c == escape && quote != '\'' {
            if pos + 1 == cs.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            b.push(c);
            c = cs[pos];
        }
        b.push(c);
        pos += 1;
    }
    words
}

fn name_val(rest: &str, key: &str, escape: char) -> Result<Vec<Node>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Ok(Vec::new());
    }
    if !words[0].contains('=') {
        let Some(p) = rest.find(is_split_space) else {
            return Err(format!("{key} must have two arguments"));
        };
        let (k, v) = (&rest[..p], rest[p..].trim_start_matches(is_split_space));
        return Ok(vec![leaf(k), leaf(v), leaf("")]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            ));
        };
        out.extend([leaf(k), leaf(v), leaf("=")]);
    }
    Ok(out)
}

fn whitespace_list(rest: &str) -> Vec<Node> {
    if rest.is_empty() {
        return Vec::new();
    }
    rest.split(is_split_space)
        .filter(|s| !s.is_empty())
        .map(leaf)
        .collect()
}

enum Json {
    Array(Vec<String>),
    NotJson,
}

fn parse_json(rest: &str) -> Result<Json, String> {
    let r = rest.trim_start();
    if !r.starts_with('[') {
        return Ok(Json::NotJson);
    }
    let Ok(v) = serde_json::from_str::<Vec<serde_json::Value>>(r) else {
        return Ok(Json::NotJson);
    };
    v.into_iter()
        .map(|x| match x {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(
                "when using JSON array syntax, arrays must be comprised of strings only"
                    .to_string(),
            ),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Json::Array)
}

fn maybe_json(rest: &str) -> Result<(Vec<Node>, bool), String> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    Ok(match parse_json(rest)? {
        Json::Array(a) => (word_nodes(a), true),
        Json::NotJson => (vec![leaf(rest)], false),
    })
}

fn maybe_json_to_list(rest: &str) -> Result<(Vec<Node>, bool), String> {
    Ok(match parse_json(rest)? {
        Json::Array(a) => (word_nodes(a), true),
        Json::NotJson => (whitespace_list(rest), false),
    })
}

fn health(rest: &str) -> Result<(Vec<Node>, bool), String> {
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let typ = &rest[..sep];
    let (cmd, json) = maybe_json(rest[sep..].trim_start())?;
    let mut out = vec![leaf(typ)];
    out.extend(cmd);
    Ok((out, json))
}

impl Node {
    fn can_contain_heredoc(&self) -> bool {
        let mut n = self;
        if n.value.eq_ignore_ascii_case("onbuild")
            && let Some(c) = n.next.first().and_then(|x| x.children.first())
        {
            n = c;
        }
        matches!(
            n.value.to_ascii_lowercase().as_str(),
            "add" | "copy" | "run"
        ) && !n.json
    }

    /// The node in `BuildKit`'s AST dump format (`(from "busybox")`, without the parentheses).
    #[must_use]
    pub fn dump(&self) -> String {
        let mut s = self.value.to_lowercase();
        if !self.flags.is_empty() {
            s.push_str(" [");
            s.push_str(
                &self
                    .flags
                    .iter()
                    .map(|f| go_quote(f))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            s.push(']');
        }
        for c in &self.children {
            s.push('(');
            s.push_str(&c.dump());
            s.push_str(")\n");
        }
        for n in &self.next {
            s.push(' ');
            if n.children.is_empty() {
                s.push_str(&go_quote(&n.value));
            } else {
                s.push_str(&n.dump());
            }
        }
        s.trim().to_string()
    }

    /// The words after the instruction, sub-instructions flattened (`BuildKit`'s `nodeArgs`).
    #[must_use]
    pub fn args(&self) -> Vec<String> {
        let mut out = Vec::new();
        for n in &self.next {
            match n.children.as_slice() {
                [] => out.push(n.value.clone()),
                [c] => {
                    out.push(c.value.clone());
                    out.extend(c.args());
                }
                _ => {}
            }
        }
        out
    }
}

/// The whole AST in `BuildKit`'s result-file format (one `(…)` per instruction, newline-terminated).
#[must_use]
pub fn dump_ast(ast: &Ast) -> String {
    let mut s = String::new();
    for n in &ast.nodes {
        s.push('(');
        s.push_str(&n.dump());
        s.push_str(")\n");
    }
    s
}

/// Go's `strconv.Quote`.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if go_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0xe000..=0xf8ff | 0xd800..=0xdfff)
}

// ---------------------------------------------------------------------------
// Heredocs

fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let raw = Lex {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset_env: true,
        ..Lex::new('\\')
    };
    let words = raw.process_words(line, &NoEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(h) = parse_heredoc(&w)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// A word that is a heredoc marker (`<<EOF`, `<<-"EOF"`, `3<<EOF`), as `BuildKit` reads it.
///
/// The error is text: it joins the instruction checks' own messages (our rules, as `BuildKit`
/// words them), which become one [`BuildError::Syntax`] at the instruction's line.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits = word.chars().take_while(char::is_ascii_digit).count();
    let Some(after) = word[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    let fd = word[..digits].parse::<u32>().unwrap_or(0);
    let mut lex = Lex {
        skip_unset_env: true,
        ..Lex::new('\\')
    };
    let words = lex.process_words(rest, &NoEnv).map_err(|e| e.to_string())?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &NoEnv).map_err(|e| e.to_string())?;
    if raw.len() != words.len() {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    }
    let quotes = |s: &str| s.matches(['\'', '"']).count();
    Ok(Some(Heredoc {
        name: words[0].clone(),
        fd,
        expand: quotes(&words[0]) == quotes(&raw[0]),
        chomp,
        content: String::new(),
    }))
}

// ---------------------------------------------------------------------------
// Instruction checks (what BuildKit's instruction parser refuses)

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bool,
    Str,
    Strs,
}

fn parse_flags(
    flags: &[String],
    allowed: &[(&str, Kind)],
) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in flags {
        if a == "--" {
            break;
        }
        let Some(body) = a.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {a}"));
        };
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(&(_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
            return Err(format!("unknown flag: --{name}"));
        };
        if used.contains_key(name) && kind != Kind::Strs {
            return Err(format!("duplicate flag specified: --{name}"));
        }
        let v = match kind {
            Kind::Bool => match value.map(str::to_ascii_lowercase).as_deref() {
                Some("") => return Err(format!("missing a value on flag: --{name}")),
                None | Some("true") => "true".to_string(),
                Some("false") => "false".to_string(),
                Some(other) => {
                    return Err(format!(
                        "expecting boolean value for flag --{name}, not: {other}"
                    ));
                }
            },
            Kind::Str | Kind::Strs => match value {
                Some(v) => v.to_string(),
                None => return Err(format!("missing a value on flag: --{name}")),
            },
        };
        used.entry(name.to_string()).or_default().push(v);
    }
    Ok(used)
}

const ADD_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::Str),
    ("chmod", Kind::Str),
    ("link", Kind::Bool),
    ("keep-git-dir", Kind::Bool),
    ("checksum", Kind::Str),
    ("unpack", Kind::Bool),
    ("exclude", Kind::Strs),
];
const COPY_FLAGS: &[(&str, Kind)] = &[
    ("chown", Kind::Str),
    ("from", Kind::Str),
    ("chmod", Kind::Str),
    ("link", Kind::Bool),
    ("exclude", Kind::Strs),
    ("parents", Kind::Bool),
];
const RUN_FLAGS: &[(&str, Kind)] = &[
    ("mount", Kind::Strs),
    ("network", Kind::Str),
    ("security", Kind::Str),
    ("device", Kind::Strs),
];
const HEALTH_FLAGS: &[(&str, Kind)] = &[
    ("interval", Kind::Str),
    ("timeout", Kind::Str),
    ("start-period", Kind::Str),
    ("start-interval", Kind::Str),
    ("retries", Kind::Str),
];

/// What an instruction means for the stage graph.
enum Checked {
    From {
        base: String,
        name: Option<String>,
        platform: Option<String>,
    },
    Arg(Vec<(String, Option<String>)>),
    /// References read by the instruction: (`--from` of COPY, `from=` of RUN mounts).
    Reads {
        copy_from: Option<String>,
        mount_from: Vec<String>,
    },
    /// `ONBUILD` with the references its trigger reads.
    OnBuild {
        copy_from: Option<String>,
        mount_from: Vec<String>,
    },
    Other,
}

fn exactly_one(kw: &str, args: &[String]) -> Result<(), String> {
    if args.len() == 1 {
        Ok(())
    } else {
        Err(format!("{kw} requires exactly one argument"))
    }
}

fn at_least_one(kw: &str, args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        Err(format!("{kw} requires at least one argument"))
    } else {
        Ok(())
    }
}

/// `RUN --mount=…` values: the `from=` of each (refusing variables, as `BuildKit` does).
fn mount_froms(mounts: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in mounts {
        for field in csv_fields(m)? {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            if k.eq_ignore_ascii_case("from") {
                if let Some(i) = v.find('$')
                    && i != v.len() - 1
                {
                    return Err(
                        "'from' doesn't support variable expansion, define alias stage instead"
                            .into(),
                    );
                }
                out.push(v.to_string());
            }
        }
    }
    Ok(out)
}

/// One CSV record (`encoding/csv` rules: fields may be double-quoted, `""` is a quote).
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    loop {
        let mut f = String::new();
        if cs.get(i) == Some(&'"') {
            i += 1;
            loop {
                match cs.get(i) {
                    None => {
                        return Err(format!(
                            "failed to parse csv mounts: unterminated quote in {s:?}"
                        ));
                    }
                    Some('"') if cs.get(i + 1) == Some(&'"') => {
                        f.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(&c) => {
                        f.push(c);
                        i += 1;
                    }
                }
            }
            while let Some(&c) = cs.get(i).filter(|c| **c != ',') {
                f.push(c);
                i += 1;
            }
        } else {
            while let Some(&c) = cs.get(i).filter(|c| **c != ',') {
                f.push(c);
                i += 1;
            }
        }
        out.push(f);
        if cs.get(i) == Some(&',') {
            i += 1;
        } else {
            break;
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_lines)]
fn check(node: &Node) -> Result<Checked, String> {
    let kw = node.value.to_ascii_uppercase();
    let args = node.args();
    let flags = |allowed: &[(&str, Kind)]| parse_flags(&node.flags, allowed);
    match kw.as_str() {
        "ENV" | "LABEL" => {
            flags(&[])?;
            at_least_one(&kw, &args)?;
            if !args.len().is_multiple_of(3) {
                return Err(format!("Bad input to {kw}, too many arguments"));
            }
            if args.chunks(3).any(|c| c[0].is_empty()) {
                return Err(format!("{kw} names can not be blank"));
            }
            Ok(Checked::Other)
        }
        "MAINTAINER" | "WORKDIR" | "USER" => {
            exactly_one(&kw, &args)?;
            flags(&[])?;
            Ok(Checked::Other)
        }
        // BuildKit reads no flags on STOPSIGNAL (nor on ARG): they are ignored.
        "STOPSIGNAL" => {
            exactly_one(&kw, &args)?;
            Ok(Checked::Other)
        }
        "ADD" | "COPY" => {
            if args.len() < 2 {
                return Err(format!(
                    "{kw} requires at least two arguments, but only one was provided. Destination could not be determined"
                ));
            }
            let f = flags(if kw == "ADD" { ADD_FLAGS } else { COPY_FLAGS })?;
            if parse_heredoc(&args[args.len() - 1])?.is_some() {
                return Err(format!("{kw} cannot accept a heredoc as a destination"));
            }
            Ok(Checked::Reads {
                copy_from: f.get("from").and_then(|v| v.last().cloned()),
                mount_from: Vec::new(),
            })
        }
        "FROM" => {
            let name = match args.as_slice() {
                [_, a, n] if a.eq_ignore_ascii_case("as") => {
                    let lower = n.to_lowercase();
                    if !valid_stage_name(&lower) {
                        return Err(format!(
                            "invalid name for build stage: {n:?}, name can't start with a number or contain symbols"
                        ));
                    }
                    Some(n.clone())
                }
                [_] => None,
                _ => return Err("FROM requires either one or three arguments".into()),
            };
            let f = flags(&[("platform", Kind::Str)])?;
            Ok(Checked::From {
                base: args[0].clone(),
                name,
                platform: f.get("platform").and_then(|v| v.last().cloned()),
            })
        }
        "ONBUILD" => {
            at_least_one(&kw, &args)?;
            flags(&[])?;
            let trigger = args[0].trim().to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into());
                }
                "MAINTAINER" | "FROM" => {
                    return Err(format!("{trigger} isn't allowed as an ONBUILD trigger"));
                }
                _ => {}
            }
            let Some(child) = node.next.first().and_then(|n| n.children.first()) else {
                return Ok(Checked::Other);
            };
            match check(child) {
                Ok(Checked::Reads {
                    copy_from,
                    mount_from,
                }) => Ok(Checked::OnBuild {
                    copy_from,
                    mount_from,
                }),
                _ => Ok(Checked::Other),
            }
        }
        "RUN" => {
            let f = flags(RUN_FLAGS)?;
            if let Some(n) = f.get("network").and_then(|v| v.last())
                && !matches!(n.as_str(), "default" | "none" | "host")
            {
                return Err(format!("invalid network mode {n:?}"));
            }
            if let Some(v) = f.get("security").and_then(|v| v.last())
                && !matches!(v.as_str(), "sandbox" | "insecure")
            {
                return Err(format!("security {v:?} is not valid"));
            }
            let mounts = f.get("mount").cloned().unwrap_or_default();
            Ok(Checked::Reads {
                copy_from: None,
                mount_from: mount_froms(&mounts)?,
            })
        }
        "CMD" | "ENTRYPOINT" => {
            flags(&[])?;
            Ok(Checked::Other)
        }
        "HEALTHCHECK" => {
            at_least_one(&kw, &args)?;
            let typ = args[0].to_ascii_uppercase();
            if typ == "NONE" {
                if args.len() != 1 {
                    return Err("HEALTHCHECK NONE takes no arguments".into());
                }
                return Ok(Checked::Other);
            }
            flags(HEALTH_FLAGS)?;
            if typ != "CMD" {
                return Err(format!(
                    "Unknown type \"{}\" in HEALTHCHECK (try CMD)",
                    args[0].to_ascii_uppercase()
                ));
            }
            if args.len() < 2 {
                return Err("Missing command after HEALTHCHECK CMD".into());
            }
            Ok(Checked::Other)
        }
        "EXPOSE" => {
            at_least_one(&kw, &args)?;
            flags(&[])?;
            Ok(Checked::Other)
        }
        "VOLUME" => {
            at_least_one(&kw, &args)?;
            flags(&[])?;
            if args.iter().any(|a| a.trim().is_empty()) {
                return Err("VOLUME specified can not be an empty string".into());
            }
            Ok(Checked::Other)
        }
        "ARG" => {
            at_least_one(&kw, &args)?;
            let mut pairs = Vec::new();
            for a in &args {
                match a.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
                    None => pairs.push((a.clone(), None)),
                }
            }
            Ok(Checked::Arg(pairs))
        }
        "SHELL" => {
            flags(&[])?;
            if args.is_empty() {
                return Err("SHELL requires at least one argument".into());
            }
            if !node.json {
                return Err("SHELL requires the arguments to be in JSON form".into());
            }
            Ok(Checked::Other)
        }
        _ => Err(format!("unknown instruction `{}`", node.value)),
    }
}

fn valid_stage_name(name: &str) -> bool {
    let mut cs = name.chars();
    cs.next().is_some_and(|c| c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

// ---------------------------------------------------------------------------
// Global ARGs, platform args, stages

fn split_platform(p: &str) -> (String, String, String) {
    let mut parts = p.split('/');
    let first = parts.next().unwrap_or_default().to_string();
    match (parts.next(), parts.next()) {
        (Some(a), v) => (first, a.to_string(), v.unwrap_or_default().to_string()),
        (None, _) => ("linux".to_string(), first, String::new()),
    }
}

/// The arguments `BuildKit` predefines before any `ARG` (platform args, `TARGETSTAGE`).
fn default_args(
    build_args: &BTreeMap<String, String>,
    target: &str,
) -> BTreeMap<String, Option<String>> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    let build = format!("linux/{arch}");
    let target_platform = build_args
        .get("TARGETPLATFORM")
        .filter(|p| !p.is_empty())
        .cloned()
        .unwrap_or_else(|| build.clone());
    let (tos, tarch, tvariant) = split_platform(&target_platform);
    let tformat = if tvariant.is_empty() {
        format!("{tos}/{tarch}")
    } else {
        format!("{tos}/{tarch}/{tvariant}")
    };
    let mut env = BTreeMap::new();
    for (k, v) in [
        ("BUILDPLATFORM", build),
        ("BUILDOS", "linux".to_string()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", arch.to_string()),
        ("BUILDVARIANT", String::new()),
        ("TARGETPLATFORM", tformat),
        ("TARGETOS", tos),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", tarch),
        ("TARGETVARIANT", tvariant),
        ("TARGETSTAGE", target.to_string()),
    ] {
        let v = match build_args.get(k) {
            Some(o) if k != "TARGETPLATFORM" => o.clone(),
            _ => v,
        };
        env.insert(k.to_string(), Some(v));
    }
    env
}

/// A `--from` value to a source: a stage (by index or name, case-insensitive), else an image.
fn resolve_from(
    path: &str,
    line: usize,
    value: &str,
    current: usize,
    names: &[Option<String>],
    by_index: bool,
) -> Result<Source, BuildError> {
    if value.is_empty() {
        return Err(syntax(path, line, "empty --from"));
    }
    let found = if by_index && let Ok(i) = value.parse::<i64>() {
        match usize::try_from(i).ok().filter(|i| *i < names.len()) {
            Some(i) => Some(i),
            None => {
                return Err(BuildError::UnknownStage {
                    path: path.to_string(),
                    line,
                    stage: value.to_string(),
                });
            }
        }
    } else {
        let lower = value.to_lowercase();
        names
            .iter()
            .rposition(|n| n.as_deref() == Some(lower.as_str()))
    };
    match found {
        Some(i) if i < current => Ok(Source::Stage(i)),
        Some(_) => Err(syntax(
            path,
            line,
            format!(
                "--from={value} refers to this stage or a later one; stages can only read earlier stages (BuildKit refuses it too when the stage is built)"
            ),
        )),
        None => Ok(Source::Image(value.to_string())),
    }
}

fn add_source(st: &mut Stage, src: Source) {
    match src {
        Source::Stage(i) => {
            if !st.copies_from.contains(&i) {
                st.copies_from.push(i);
                st.copies_from.sort_unstable();
            }
        }
        Source::Image(img) => {
            if !st.images_from.contains(&img) {
                st.images_from.push(img);
                st.images_from.sort();
            }
        }
        Source::Scratch => {}
    }
}

#[allow(clippy::too_many_lines)]
fn build(
    path: &str,
    ast: &Ast,
    build_args: &BTreeMap<String, String>,
) -> Result<Dockerfile, BuildError> {
    let escape = ast.escape;
    let lex = Lex::new(escape);
    let mut checked = Vec::with_capacity(ast.nodes.len());
    for n in &ast.nodes {
        let c = check(n).map_err(|m| syntax(path, n.start_line, m))?;
        checked.push(c);
    }
    // All stage names first: `--from` may name any stage (a later one is refused below).
    let names: Vec<Option<String>> = checked
        .iter()
        .filter_map(|c| match c {
            Checked::From { name, .. } => Some(name.as_ref().map(|n| n.to_lowercase())),
            _ => None,
        })
        .collect();
    let last_name = names
        .last()
        .cloned()
        .flatten()
        .unwrap_or_else(|| "default".to_string());
    let mut global_args = default_args(build_args, &last_name);
    let mut declared: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    let mut onbuild_reads: Vec<Vec<(usize, bool, String)>> = Vec::new();
    for (n, c) in ast.nodes.iter().zip(checked) {
        let line = n.start_line;
        match c {
            Checked::Arg(pairs) if stages.is_empty() => {
                for (k, v) in pairs {
                    let value = match build_args.get(&k) {
                        Some(b) => Some(b.clone()),
                        None => match v {
                            Some(v) => Some(
                                lex.process_word(&v, &global_args)
                                    .map_err(|source| word(path, line, "", source))?,
                            ),
                            None => None,
                        },
                    };
                    if let Some(v) = &value {
                        global_args.insert(k.clone(), Some(v.clone()));
                    }
                    let kept = global_args.get(&k).cloned().flatten();
                    declared.insert(k, kept);
                }
            }
            Checked::From {
                base,
                name,
                platform,
            } => {
                let image = lex
                    .process_word(&base, &global_args)
                    .map_err(|source| word(path, line, "", source))?;
                if image.is_empty() {
                    return Err(syntax(
                        path,
                        line,
                        format!("base name ({base}) should not be blank"),
                    ));
                }
                let lower = name.as_ref().map(|n| n.to_lowercase());
                if let Some(l) = &lower
                    && stages.iter().any(|s| s.name.as_ref() == Some(l))
                {
                    return Err(syntax(
                        path,
                        line,
                        format!(
                            "duplicate stage name {l:?} (BuildKit only warns; build-with-cache needs one cache per stage name)"
                        ),
                    ));
                }
                let base = if let Some(s) = stages
                    .iter()
                    .rev()
                    .find(|s| s.name.as_deref() == Some(image.as_str()))
                {
                    Source::Stage(s.index)
                } else if image == "scratch" {
                    Source::Scratch
                } else {
                    Source::Image(image)
                };
                let platform = match platform {
                    Some(p) => {
                        let v = lex.process_word(&p, &global_args).map_err(|source| {
                            word(
                                path,
                                line,
                                "failed to process arguments for platform: ",
                                source,
                            )
                        })?;
                        if v.is_empty() {
                            return Err(syntax(
                                path,
                                line,
                                format!("empty platform value from expression {p}"),
                            ));
                        }
                        Some(v)
                    }
                    None => None,
                };
                let index = stages.len();
                let mut st = Stage {
                    index,
                    name: lower,
                    name_as_written: name,
                    base,
                    platform,
                    line,
                    copies_from: Vec::new(),
                    images_from: Vec::new(),
                    instructions: 0,
                };
                // ONBUILD triggers of a base stage run here.
                if let Source::Stage(b) = st.base {
                    for (l, by_index, v) in onbuild_reads[b].clone() {
                        let src = resolve_from(path, l, &v, index, &names, by_index)?;
                        add_source(&mut st, src);
                    }
                }
                stages.push(st);
                onbuild_reads.push(Vec::new());
            }
            other => {
                let Some(current) = stages.len().checked_sub(1) else {
                    return Err(syntax(
                        path,
                        line,
                        format!(
                            "{} before the first FROM (only ARG may come first)",
                            n.value.to_ascii_uppercase()
                        ),
                    ));
                };
                match other {
                    Checked::Reads {
                        copy_from,
                        mount_from,
                    } => {
                        if let Some(f) = copy_from {
                            check_no_expansion(path, line, lex, &f)?;
                            let src = resolve_from(path, line, &f, current, &names, true)?;
                            add_source(&mut stages[current], src);
                        }
                        for f in mount_from {
                            let src = resolve_from(path, line, &f, current, &names, false)?;
                            add_source(&mut stages[current], src);
                        }
                    }
                    Checked::OnBuild {
                        copy_from,
                        mount_from,
                    } => {
                        if let Some(f) = copy_from {
                            check_no_expansion(path, line, lex, &f)?;
                            onbuild_reads[current].push((line, true, f));
                        }
                        for f in mount_from {
                            onbuild_reads[current].push((line, false, f));
                        }
                    }
                    _ => {}
                }
                stages[current].instructions += 1;
            }
        }
    }
    if stages.is_empty() {
        return Err(syntax(
            path,
            ast.nodes.last().map_or(1, |n| n.start_line),
            "no FROM instruction (dockerfile contains no stages to build)",
        ));
    }
    Ok(Dockerfile {
        escape,
        global_args: declared,
        stages,
    })
}

fn check_no_expansion(path: &str, line: usize, lex: Lex, from: &str) -> Result<(), BuildError> {
    let expanded = lex
        .process_word(from, &NoEnv)
        .map_err(|source| word(path, line, "", source))?;
    if expanded != from {
        return Err(syntax(
            path,
            line,
            format!(
                "--from={from}: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround"
            ),
        ));
    }
    Ok(())
}

/// Substitute variables in `s` as `BuildKit` does (all `${…}` forms, quotes removed).
pub fn substitute(
    path: &str,
    line: usize,
    s: &str,
    escape: char,
    vars: &BTreeMap<String, Option<String>>,
) -> Result<String, BuildError> {
    let env: &dyn Env = vars;
    Lex::new(escape)
        .process_word(s, env)
        .map_err(|source| word(path, line, "", source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Dockerfile, BuildError> {
        parse("Dockerfile", text, &BTreeMap::new())
    }

    fn with_args(text: &str, args: &[(&str, &str)]) -> Result<Dockerfile, BuildError> {
        let a = args
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        parse("Dockerfile", text, &a)
    }

    fn dump(text: &str) -> String {
        dump_ast(&parse_ast("Dockerfile", text).unwrap())
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    fn image(s: &str) -> Source {
        Source::Image(s.to_string())
    }

    #[test]
    fn stages_names_and_refs() {
        let d = p("ARG BASE=alpine:3\nfrom ${BASE} as Deps\nRUN echo\nFROM deps AS build\nCOPY --from=DEPS /a /a\nRUN --mount=type=cache,target=/c,from=deps true\nFROM busybox:1\nCOPY --from=1 /x /x\nCOPY --from=other/img:1 /y /y\nCOPY --from=busybox /z /z\n").unwrap();
        assert_eq!(d.stages.len(), 3);
        assert_eq!(d.stages[0].name.as_deref(), Some("deps"));
        assert_eq!(d.stages[0].name_as_written.as_deref(), Some("Deps"));
        assert_eq!(d.stages[0].base, image("alpine:3"));
        assert_eq!(d.stages[1].base, Source::Stage(0));
        assert_eq!(d.stages[1].copies_from, vec![0]);
        assert_eq!(d.stages[2].copies_from, vec![1]);
        // A --from that names no stage is an image, as in BuildKit.
        assert_eq!(d.stages[2].images_from, vec!["busybox", "other/img:1"]);
    }

    #[test]
    fn build_arg_overrides_global_default() {
        let d = with_args(
            "ARG TAG=1\nARG REG\nFROM ${REG:-docker.io}/lib/x:$TAG\n",
            &[("TAG", "2")],
        )
        .unwrap();
        assert_eq!(d.stages[0].base, image("docker.io/lib/x:2"));
    }

    #[test]
    fn words_are_shell_words() {
        // Quoted ARG values, quoted FROM words, every substitution form, nesting.
        let d = p("ARG X=\"a b\" V=\"supported\" E=''\nARG BASE=\"golang:1.22\"\nFROM \"${BASE}\" AS delve-supported\nFROM alpine AS delve-unsupported\nFROM delve-${V}\nFROM ${NOPE:-${BASE%:*}}:${V/sup/SUP}\nFROM ${E-x}y${E:-z}${V:+w}${NOPE+no}${V#sup}${V##*p}${V%ed}${V%%o*}\n").unwrap();
        assert_eq!(d.global_args["X"].as_deref(), Some("a b"));
        assert_eq!(d.stages[0].base, image("golang:1.22"));
        assert_eq!(d.stages[2].base, Source::Stage(0));
        assert_eq!(d.stages[3].base, image("golang:SUPported"));
        assert_eq!(d.stages[4].base, image("yzwportedortedsupportsupp"));
        let e = err("ARG V\nFROM ${V:?needs-a-base}\n");
        assert!(
            e.contains("Dockerfile:2:") && e.contains("V: needs-a-base"),
            "{e}"
        );
        let e = err("FROM ${V\n");
        assert!(
            e.contains("Dockerfile:1:") && e.contains("missing '}'"),
            "{e}"
        );
    }

    #[test]
    fn redeclared_global_arg_keeps_its_value() {
        let d = p("ARG VERSION=3.19\nARG VERSION\nARG TARGETARCH\nARG TARGETOS BUILDPLATFORM\nFROM alpine:${VERSION}-${TARGETOS}-${TARGETARCH}\nFROM --platform=$BUILDPLATFORM alpine\n").unwrap();
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        assert_eq!(
            d.stages[0].base,
            image(&format!("alpine:3.19-linux-{arch}"))
        );
        assert_eq!(d.stages[1].platform, Some(format!("linux/{arch}")));
        assert_eq!(d.global_args["VERSION"].as_deref(), Some("3.19"));
        let d = with_args(
            "ARG TARGETARCH\nARG TARGETVARIANT\nFROM x:$TARGETARCH$TARGETVARIANT\n",
            &[("TARGETPLATFORM", "linux/arm/v7")],
        )
        .unwrap();
        assert_eq!(d.stages[0].base, image("x:armv7"));
        // An undeclared ARG stays unset in FROM, as in BuildKit.
        let d = with_args("FROM x:${TAG:-none}\n", &[("TAG", "1")]).unwrap();
        assert_eq!(d.stages[0].base, image("x:none"));
    }

    #[test]
    fn heredocs_follow_buildkit_rules() {
        let text = "FROM a:1\nRUN <<file.txt cat\nFROM nothing\nfile.txt\nCOPY <<END-OF-SCRIPT /x\nbody\nEND-OF-SCRIPT\nRUN echo $((1<<4)) \"<<NOHEREDOC\"\nRUN [\"sh\", \"-c\", \"cat <<EOF\"]\nUSER nobody\nONBUILD RUN <<-'Q' 3<<\"Z\"\n\tx $y\n\tQ\nz\nZ\nFROM a:1 AS two\n";
        let ast = parse_ast("Dockerfile", text).unwrap();
        let n = &ast.nodes;
        assert_eq!(n[1].heredocs[0].name, "file.txt");
        assert_eq!(n[1].heredocs[0].content, "FROM nothing\n");
        assert_eq!(n[2].heredocs[0].name, "END-OF-SCRIPT");
        assert!(n[3].heredocs.is_empty());
        assert!(n[4].heredocs.is_empty() && n[4].json);
        assert_eq!(n[5].value, "USER");
        let h = &n[6].heredocs;
        assert_eq!(h.len(), 2);
        assert!(h[0].chomp && !h[0].expand && h[0].name == "Q");
        assert_eq!(h[0].content, "\tx $y\n");
        assert!(!h[1].chomp && !h[1].expand && h[1].fd == 3 && h[1].name == "Z");
        assert_eq!((n[6].start_line, n[6].end_line), (11, 15));
        let d = p(text).unwrap();
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[1].line, 16);
        // Not on other instructions: the body is read as instructions.
        let e = err("FROM a:1\nUSER <<X\nX\n");
        assert!(e.contains("Dockerfile:3: unknown instruction `X`"), "{e}");
        let e = err("FROM a:1\nRUN <<EOF\nx\n");
        assert!(
            e.contains("Dockerfile:2:") && e.contains("unterminated heredoc"),
            "{e}"
        );
    }

    #[test]
    fn directives_bom_and_continuations() {
        // The directive block ends at the first unknown directive.
        let ast = parse_ast(
            "Dockerfile",
            "\u{feff}# syntax=x\n# foo=bar\n# escape=`\nFROM a \\\n  b\n",
        )
        .unwrap();
        assert_eq!(ast.escape, '\\');
        assert_eq!(dump_ast(&ast), "(from \"a\" \"b\")\n");
        let ast = parse_ast("Dockerfile", "\u{feff}#escape = `\n\nFROM a `\n  AS b\n").unwrap();
        assert_eq!(ast.escape, '`');
        // Joined without an added space; comments and empty lines inside are skipped.
        assert_eq!(
            dump("FROM a\nRUN echo a\\\n# comment\n\n  b \\\n   c\n"),
            "(from \"a\")\n(run \"echo a  b    c\")\n"
        );
        assert_eq!(dump("FROM a\nRUN x\\\ny\n"), "(from \"a\")\n(run \"xy\")\n");
        // An escaped escape at the end of a line is not a continuation.
        assert_eq!(
            dump("FROM a\nRUN echo \\\\\nRUN b\n"),
            "(from \"a\")\n(run \"echo \\\\\\\\\")\n(run \"b\")\n"
        );
        let e = err("# escape=x\nFROM a\n");
        assert!(
            e.contains("Dockerfile:1:") && e.contains("invalid escape"),
            "{e}"
        );
        let e = err("# escape=`\n# escape=`\nFROM a\n");
        assert!(
            e.contains("Dockerfile:2:") && e.contains("only one escape"),
            "{e}"
        );
        // A directive after an instruction is a comment.
        assert_eq!(parse_ast("D", "FROM a\n# escape=`\n").unwrap().escape, '\\');
    }

    #[test]
    fn ast_dump_is_buildkit_format() {
        let text = "FROM --platform=$P a AS b\nENV A=1 B=\"x y\"\nENV C d e\nLABEL k=v\nCOPY --from=b --chown=1 [\"x\", \"/z\"]\nADD a b\nONBUILD RUN echo hi\nHEALTHCHECK --interval=5s CMD curl x\nEXPOSE 80 443\nCMD [\"a\",\"\\u00e9\\t\"]\nSHELL [\"sh\"]\nARG X=\"a b\" Y\nBOGUS x y\n";
        assert_eq!(
            dump(text),
            "(from [\"--platform=$P\"] \"a\" \"AS\" \"b\")\n\
             (env \"A\" \"1\" \"=\" \"B\" \"\\\"x y\\\"\" \"=\")\n\
             (env \"C\" \"d e\" \"\")\n\
             (label \"k\" \"v\" \"=\")\n\
             (copy [\"--from=b\" \"--chown=1\"] \"x\" \"/z\")\n\
             (add \"a\" \"b\")\n\
             (onbuild (run \"echo hi\"))\n\
             (healthcheck [\"--interval=5s\"] \"CMD\" \"curl x\")\n\
             (expose \"80\" \"443\")\n\
             (cmd \"a\" \"é\\t\")\n\
             (shell \"sh\")\n\
             (arg \"X=\\\"a b\\\"\" \"Y\")\n\
             (bogus \"\")\n"
        );
        let e = err("FROM a\nBOGUS x\n");
        assert!(
            e.contains("Dockerfile:2: unknown instruction `BOGUS`"),
            "{e}"
        );
    }

    /// Each `(text, line, what)`, which `BuildKit` refuses, fails to parse naming `Dockerfile:<line>`
    /// and holding `what`.
    #[track_caller]
    fn assert_refused(cases: &[(&str, usize, &str)]) {
        for (text, line, what) in cases {
            let e = err(text);
            assert!(e.contains(&format!("Dockerfile:{line}: ")), "{text:?}: {e}");
            assert!(e.contains(what), "{text:?}: {e}");
        }
    }

    #[test]
    fn refuses_instructions_with_the_wrong_arguments() {
        assert_refused(&[
            ("FROM a\nENV PATH\n", 2, "ENV must have two arguments"),
            ("FROM a\nCOPY x\n", 2, "requires at least two arguments"),
            (
                "FROM a\nCMD [\"a\", [\"b\"]]\n",
                2,
                "arrays must be comprised of strings",
            ),
            ("FROM a\nSHELL sh -c\n", 2, "JSON form"),
            ("FROM a\nWORKDIR\n", 2, "exactly one argument"),
            ("FROM a b c d\n", 1, "one or three arguments"),
        ]);
    }

    #[test]
    fn refuses_unknown_flags_and_flag_values() {
        assert_refused(&[
            ("FROM a\nADD --from=a x y\n", 2, "unknown flag: --from"),
            ("FROM --plat=x a\n", 1, "unknown flag: --plat"),
            (
                "FROM a\nRUN --network=bridge x\n",
                2,
                "invalid network mode",
            ),
        ]);
    }

    #[test]
    fn refuses_blank_invalid_and_duplicate_stage_names() {
        assert_refused(&[
            ("FROM \"\" AS foo\n", 1, "should not be blank"),
            ("FROM ${BLANK} AS foo\n", 1, "should not be blank"),
            ("FROM a AS 1bad\n", 1, "invalid name for build stage"),
            ("FROM a AS x\nFROM b AS X\n", 2, "duplicate stage name"),
        ]);
    }

    #[test]
    fn refuses_variable_expansion_in_stage_references() {
        assert_refused(&[
            (
                "FROM a\nCOPY --from=$FOO . .\n",
                2,
                "variable expansion is not supported for --from",
            ),
            (
                "FROM a\nRUN --mount=from=$x,target=/t true\n",
                2,
                "doesn't support variable expansion",
            ),
        ]);
    }

    #[test]
    fn refuses_a_named_reference_to_this_stage_or_a_later_one() {
        assert_refused(&[
            (
                "FROM a AS b\nCOPY --from=b x y\n",
                2,
                "refers to this stage or a later one",
            ),
            (
                "FROM a\nCOPY --from=c x y\nFROM a AS c\n",
                2,
                "refers to this stage or a later one",
            ),
        ]);
    }

    #[test]
    fn refuses_instructions_out_of_place() {
        assert_refused(&[
            (
                "FROM a\nONBUILD FROM b\n",
                2,
                "isn't allowed as an ONBUILD trigger",
            ),
            (
                "FROM a\nCOPY x <<EOF\nEOF\n",
                2,
                "cannot accept a heredoc as a destination",
            ),
            ("RUN x\n", 1, "before the first FROM"),
        ]);
    }

    #[test]
    fn refuses_a_file_without_instructions_or_without_from() {
        assert_refused(&[
            ("# only a comment\n\n", 2, "file with no instructions"),
            ("ARG A=1\n", 1, "no FROM instruction"),
        ]);
    }

    #[test]
    fn refuses_a_numeric_reference_to_a_stage_that_does_not_exist() {
        let e = p("FROM a\nCOPY --from=3 x y\n").unwrap_err();
        assert!(matches!(e, BuildError::UnknownStage { line: 2, .. }), "{e}");
    }

    #[test]
    fn onbuild_triggers_add_dependencies() {
        let d = p("FROM alpine AS src\nFROM busybox AS base\nONBUILD COPY --from=src /a /b\nFROM base AS mid\nFROM scratch\nCOPY --from=mid /b /\n").unwrap();
        assert_eq!(d.stages[2].copies_from, vec![0]);
        assert_eq!(d.stages[1].copies_from, Vec::<usize>::new());
    }

    #[test]
    fn lex_view_keeps_lines_and_heredocs() {
        let (esc, ins) = lex(
            "Dockerfile",
            "# escape=`\nFROM a:1 AS one\nRUN echo a `\n  # c\n  b\nRUN <<EOF\nx\nEOF\n",
        )
        .unwrap();
        assert_eq!(esc, '`');
        assert_eq!(ins[1].keyword, "RUN");
        assert_eq!(ins[1].rest, "echo a   b");
        assert_eq!(ins[2].line, 6);
        assert_eq!(ins[2].heredocs, vec!["x\n".to_string()]);
    }
}
