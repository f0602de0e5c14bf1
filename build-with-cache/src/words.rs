//! Shell-word processing as `BuildKit` does it for Dockerfile words (its `shell.Lex`): quote removal, quote-aware splitting and every `${…}` substitution form.
//!
//! Supported: `$x`, `${x}`, `${x:-d}`, `${x-d}`, `${x:+a}`, `${x+a}`, `${x:?msg}`, `${x?msg}`,
//! `${x#p}`, `${x##p}`, `${x%p}`, `${x%%p}`, `${x/p/r}`, `${x//p/r}`, nested forms
//! (`${A:-${B}}`), single and double quotes, and the Dockerfile escape character.
//! Patterns (`#`, `%`, `/`) know `*` and `?`; `\*`, `\?`, `\\` are literal.

use std::collections::BTreeMap;

/// Where variables come from.
pub trait Env {
    /// The value of `name`, if set (an empty value is set).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

impl Env for BTreeMap<String, Option<String>> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).and_then(|v| v.as_deref())
    }
}

/// No variables at all.
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _: &str) -> Option<&str> {
        None
    }
}

/// A word that cannot be processed (unterminated quote, bad substitution, `${x?}` on an unset variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {word:?}: {message}")]
pub struct WordError {
    /// The word as written.
    pub word: String,
    /// What is wrong.
    pub message: String,
}

/// The lexer's settings.
#[derive(Debug, Clone, Copy)]
pub struct Lex {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Keep quote characters in the result.
    pub raw_quotes: bool,
    /// Keep escape characters in the result.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lex {
    /// A lexer with the given escape character and default settings.
    #[must_use]
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
        }
    }

    /// Expand and unquote `word` into one string (spaces kept).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, WordError> {
        self.run(word, env).map(|(s, _)| s)
    }

    /// Expand and unquote `word`, then split it into words on unquoted whitespace.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, WordError> {
        self.run(word, env).map(|(_, w)| w)
    }

    fn run(self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), WordError> {
        let mut sw = Shell {
            lex: self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
        };
        sw.stop_on(None, self.raw_escapes)
            .map_err(|message| WordError {
                word: word.to_string(),
                message,
            })
    }
}

struct Words {
    buf: String,
    done: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.done.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.done.push(self.buf);
        }
        self.done
    }
}

struct Shell<'a> {
    lex: Lex,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Env,
    raw_escapes: bool,
}

type Res<T> = Result<T, String>;

impl Shell<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Process up to `stop` (consumed) or the end.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Res<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let r = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        r
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words {
            buf: String::new(),
            done: Vec::new(),
            in_word: false,
        };
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let t = self.dollar()?;
                    result.push_str(&t);
                    words.add_string(&t);
                }
                '<' => {
                    let t = self.possible_heredoc();
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                '\'' => {
                    let t = self.single_quote()?;
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                '"' => {
                    let t = self.double_quote()?;
                    result.push_str(&t);
                    words.add_raw_string(&t);
                }
                _ => {
                    self.next();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        let Some(c) = self.next() else { break };
                        words.add_raw_char(c);
                        result.push(c);
                    } else {
                        words.add_char(ch);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(s) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {s}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Res<String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('\'');
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    );
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Res<String> {
        let mut out = String::new();
        let q = self.next().unwrap_or('"');
        if self.lex.raw_quotes {
            out.push(q);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => {
                    let v = self.dollar()?;
                    out.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(c) if c == '"' || c == '$' || c == self.lex.escape => {
                                ch = c;
                                self.next();
                            }
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_numeric() {
                while let Some(d) = self.peek().filter(|c| c.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && "@*#?-$!0".contains(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphabetic() && !ch.is_numeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn lookup(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    #[allow(clippy::too_many_lines)]
    fn dollar(&mut self) -> Res<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            Some(_) => {}
        }
        let name = self.name();
        let first = self.next();
        if first.is_none() {
            return Err("syntax error: missing '}'".into());
        }
        let mut chs: String = first.map_or('\u{fffd}', |c| c).to_string();
        let mut ch = first;
        let mut null_is_unset = false;
        match first {
            Some('}') => Ok(match self.lookup(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                if first == Some(':') {
                    null_is_unset = true;
                    ch = self.next();
                    chs.push(ch.map_or('\u{fffd}', |c| c));
                }
                let raw = matches!(ch, Some('#' | '%'));
                if null_is_unset && raw {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.stop_on(Some('}'), raw) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.lookup(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let empty = value
                    .as_deref()
                    .is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    Some('-') => Ok(if empty {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    Some('+') => Ok(if empty { String::new() } else { word }),
                    Some('?') => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be unset"
                            } else {
                                &word
                            }
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() {
                                "is not allowed to be empty"
                            } else {
                                &word
                            }
                        )),
                        Some(v) => Ok(v),
                    },
                    Some(c @ ('%' | '#')) => {
                        let mut pat = word.as_str();
                        let greedy = pat.starts_with(c);
                        if greedy {
                            pat = &pat[c.len_utf8()..];
                        }
                        let value = value.unwrap_or_default();
                        if c == '%' {
                            trim_suffix(pat, &value, greedy)
                        } else {
                            trim_prefix(pat, &value, greedy)
                        }
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            Some('/') => {
                let all = self.peek() == Some('/');
                if all {
                    self.next();
                }
                let pattern = match self.stop_on(Some('/'), true) {
                    Ok((p, _)) => p,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".into());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.stop_on(Some('}'), true) {
                    Ok((r, _)) => r,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.lookup(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                }
                let pat = Pattern::parse(&pattern, true)
                    .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
                Ok(pat.replace(&value.unwrap_or_default(), &replacement, all))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// A shell pattern (`*`, `?`, literals), matched like the regular expression `BuildKit` builds from it.
struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    fn parse(p: &str, greedy: bool) -> Result<Self, String> {
        let cs: Vec<char> = p.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            i += 1;
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => {
                    if matches!(cs.get(i), Some('}' | '/')) {
                        continue;
                    }
                    match cs.get(i) {
                        Some(&n @ ('*' | '?' | '\\')) => {
                            toks.push(Tok::Lit(n));
                            i += 1;
                        }
                        Some(&n) => return Err(format!("invalid escape '\\{n}'")),
                        None => return Err("invalid escape '\\'".into()),
                    }
                }
                _ => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Self { toks, greedy })
    }

    /// End of the match starting at `i` (backtracking, greedy or lazy stars).
    fn match_at(&self, t: &[char], k: usize, i: usize) -> Option<usize> {
        let Some(tok) = self.toks.get(k) else {
            return Some(i);
        };
        match *tok {
            Tok::Star => {
                let ends: Box<dyn Iterator<Item = usize>> = if self.greedy {
                    Box::new((i..=t.len()).rev())
                } else {
                    Box::new(i..=t.len())
                };
                for j in ends {
                    if t[i..j].contains(&'\n') {
                        continue;
                    }
                    if let Some(e) = self.match_at(t, k + 1, j) {
                        return Some(e);
                    }
                }
                None
            }
            Tok::Any => (i < t.len() && t[i] != '\n')
                .then(|| self.match_at(t, k + 1, i + 1))
                .flatten(),
            Tok::Lit(c) => (t.get(i) == Some(&c))
                .then(|| self.match_at(t, k + 1, i + 1))
                .flatten(),
        }
    }

    fn find_from(&self, t: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=t.len()).find_map(|s| self.match_at(t, 0, s).map(|e| (s, e)))
    }

    #[allow(clippy::many_single_char_names)]
    fn replace(&self, value: &str, repl: &str, all: bool) -> String {
        let t: Vec<char> = value.chars().collect();
        let s = |a: usize, b: usize| t[a..b].iter().collect::<String>();
        if !all {
            return match self.find_from(&t, 0) {
                Some((a, b)) => format!("{}{repl}{}", s(0, a), s(b, t.len())),
                None => value.to_string(),
            };
        }
        // Go's ReplaceAllString: `$0`/`${0}` is the match, `$$` a dollar, other groups empty.
        let expand = |m: &str| {
            let rc: Vec<char> = repl.chars().collect();
            let mut out = String::new();
            let mut i = 0;
            while i < rc.len() {
                if rc[i] != '$' {
                    out.push(rc[i]);
                    i += 1;
                    continue;
                }
                if rc.get(i + 1) == Some(&'$') {
                    out.push('$');
                    i += 2;
                    continue;
                }
                let (name, next) = if rc.get(i + 1) == Some(&'{') {
                    match rc[i + 2..].iter().position(|&c| c == '}') {
                        Some(p) => (rc[i + 2..i + 2 + p].iter().collect::<String>(), i + 3 + p),
                        None => (String::new(), i + 1),
                    }
                } else {
                    let n: String = rc[i + 1..]
                        .iter()
                        .take_while(|c| c.is_alphanumeric() || **c == '_')
                        .collect();
                    let l = n.chars().count();
                    (n, i + 1 + l)
                };
                if name.is_empty() {
                    out.push('$');
                    i += 1;
                    continue;
                }
                if name == "0" {
                    out.push_str(m);
                }
                i = next;
            }
            out
        };
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= t.len() {
            let Some((a, b)) = self.find_from(&t, search) else {
                break;
            };
            out.push_str(&s(last_end, a));
            if b > last_end || a == 0 {
                out.push_str(&expand(&s(a, b)));
            }
            last_end = b;
            search = if search + 1 > b { search + 1 } else { b };
        }
        if last_end <= t.len() {
            out.push_str(&s(last_end, t.len()));
        }
        out
    }
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let p = Pattern::parse(pattern, greedy)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    let t: Vec<char> = value.chars().collect();
    Ok(match p.match_at(&t, 0, 0) {
        Some(e) => t[e..].iter().collect(),
        None => value.to_string(),
    })
}

fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, String> {
    let mut p = Pattern::parse(pattern, greedy)
        .map_err(|e| format!("invalid pattern ({pattern}) in substitution: {e}"))?;
    p.toks.reverse();
    let t: Vec<char> = value.chars().rev().collect();
    Ok(match p.match_at(&t, 0, 0) {
        Some(e) => t[e..].iter().rev().collect(),
        None => value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [
            ("V", "supported"),
            ("E", ""),
            ("P", "/usr/local/bin/app.tar.gz"),
            ("B", "base:1"),
            ("S", "a b"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
    }

    fn w(s: &str) -> String {
        Lex::new('\\').process_word(s, &env()).unwrap()
    }

    #[test]
    fn simple_and_braced() {
        assert_eq!(w("delve-${V}"), "delve-supported");
        assert_eq!(w("$V-x"), "supported-x");
        assert_eq!(w("$NOPE."), ".");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("\"${B}\""), "base:1");
        assert_eq!(w("'${B}'"), "${B}");
        assert_eq!(w("\\$V"), "$V");
    }

    #[test]
    fn default_and_alternative_forms() {
        assert_eq!(w("${E:-d}"), "d");
        assert_eq!(w("${E-d}"), "");
        assert_eq!(w("${U-d}"), "d");
        assert_eq!(w("${E:+a}"), "");
        assert_eq!(w("${E+a}"), "a");
        assert_eq!(w("${V:+a}"), "a");
        assert_eq!(w("${U+a}"), "");
        assert_eq!(w("${U:-${B}}"), "base:1");
        assert_eq!(w("${U:-${U2:-x}y}"), "xy");
        assert_eq!(w("${V:?must}"), "supported");
        let l = Lex::new('\\');
        let e = l.process_word("${U:?must be set}", &env()).unwrap_err();
        assert!(e.message.contains("U: must be set"), "{e}");
        let e = l.process_word("${U?}", &env()).unwrap_err();
        assert!(e.message.contains("is not allowed to be unset"), "{e}");
        let e = l.process_word("${E:?}", &env()).unwrap_err();
        assert!(e.message.contains("is not allowed to be empty"), "{e}");
        assert_eq!(w("${E?}"), "");
    }

    #[test]
    fn pattern_forms() {
        assert_eq!(w("${P#*/}"), "usr/local/bin/app.tar.gz");
        assert_eq!(w("${P##*/}"), "app.tar.gz");
        assert_eq!(w("${P%.*}"), "/usr/local/bin/app.tar");
        assert_eq!(w("${P%%.*}"), "/usr/local/bin/app");
        assert_eq!(w("${P/local/opt}"), "/usr/opt/bin/app.tar.gz");
        assert_eq!(w("${P//\\//_}"), "_usr_local_bin_app.tar.gz");
        assert_eq!(w("${P/a?p/X}"), "/usr/local/bin/X.tar.gz");
        assert_eq!(w("${V/#sup/SUP}"), "supported");
        assert_eq!(w("${U#x}"), "");
        let e = Lex::new('\\').process_word("${V:#x}", &env()).unwrap_err();
        assert!(e.message.contains("unsupported modifier"), "{e}");
    }

    #[test]
    fn errors() {
        let l = Lex::new('\\');
        for bad in [
            "${", "${V", "${}", "${:x}", "'abc", "\"abc", "${V:=x}", "${V^}",
        ] {
            assert!(l.process_word(bad, &env()).is_err(), "{bad}");
        }
    }

    #[test]
    fn splitting_and_quotes() {
        let l = Lex::new('\\');
        assert_eq!(
            l.process_words("a \"b c\" d'e f' $S", &env()).unwrap(),
            vec!["a", "b c", "de f", "a", "b"]
        );
        assert_eq!(l.process_words("x\\ y", &env()).unwrap(), vec!["x y"]);
        let raw = Lex {
            raw_quotes: true,
            raw_escapes: true,
            skip_unset_env: true,
            ..Lex::new('\\')
        };
        assert_eq!(
            raw.process_words("RUN \"<<X\" $((1<<N)) <<-'E F' $U", &NoEnv)
                .unwrap(),
            vec!["RUN", "\"<<X\"", "$((1<<N))", "<<-'E F'", "$U"]
        );
        assert_eq!(raw.process_words("<< EOF", &NoEnv).unwrap(), vec!["<< EOF"]);
        let bt = Lex::new('`');
        assert_eq!(bt.process_word("a`$b\\c", &NoEnv).unwrap(), "a$b\\c");
    }
}
