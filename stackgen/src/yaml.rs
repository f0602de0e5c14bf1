//! A small, fast YAML emitter for JSON values: block style, keys in insertion order, strings plain only when YAML cannot read them as anything else (else double-quoted, or a literal block for multi-line text).

use std::fmt::Write as _;

use serde_json::Value;

/// One YAML document (no `---`), ending with a newline.
pub fn to_string(v: &Value) -> String {
    let mut out = String::with_capacity(1024);
    write_doc(&mut out, v);
    out
}

/// Append one YAML document to `out`.
pub fn write_doc(out: &mut String, v: &Value) {
    match v {
        Value::Object(m) if !m.is_empty() => write_map(out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(out, a, 0),
        other => {
            write_scalar(out, other, 0);
            out.push('\n');
        }
    }
}

fn indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

fn write_map(out: &mut String, m: &serde_json::Map<String, Value>, ind: usize) {
    let mut first = true;
    for (k, v) in m {
        if !first {
            indent(out, ind);
        }
        first = false;
        write_key(out, k);
        out.push(':');
        write_value_after_key(out, v, ind);
    }
}

/// A value after `key:` (or after `- ` for sequences) at indentation `ind`.
fn write_value_after_key(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            indent(out, ind + 2);
            write_map(out, m, ind + 2);
        }
        // Sequences in mappings are not indented (as serde_yaml and kubectl write them).
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            indent(out, ind);
            write_seq(out, a, ind);
        }
        other => {
            out.push(' ');
            write_scalar(out, other, ind + 2);
            out.push('\n');
        }
    }
}

fn write_seq(out: &mut String, a: &[Value], ind: usize) {
    let mut first = true;
    for v in a {
        if !first {
            indent(out, ind);
        }
        first = false;
        out.push('-');
        match v {
            Value::Object(m) if !m.is_empty() => {
                out.push(' ');
                write_map(out, m, ind + 2);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push(' ');
                write_seq(out, inner, ind + 2);
            }
            other => {
                out.push(' ');
                write_scalar(out, other, ind + 2);
                out.push('\n');
            }
        }
    }
}

fn write_scalar(out: &mut String, v: &Value, ind: usize) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s, ind),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// Words YAML 1.1 or 1.2 reads as booleans, null or special floats.
const RESERVED: [&str; 16] = [
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", ".inf", "-.inf", "+.inf",
    ".nan", "=", "<<",
];

fn plain_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b[0] == b' ' || b[b.len() - 1] == b' ' || b[b.len() - 1] == b':' {
        return false;
    }
    if !b.iter().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'-' | b'_'
                    | b'.'
                    | b'/'
                    | b':'
                    | b'='
                    | b'+'
                    | b'@'
                    | b' '
                    | b'('
                    | b')'
                    | b'$'
                    | b';'
            )
    }) {
        return false;
    }
    // Indicators at the start: `-` only when not followed by a space, `:` never.
    match b[0] {
        b'-' if b.len() == 1 || b[1] == b' ' => return false,
        b':' | b'=' | b'@' => return false,
        _ => {}
    }
    if s.contains(": ") {
        return false;
    }
    if number_like(s) {
        return false;
    }
    if b.len() <= 6 && RESERVED.iter().any(|r| r.eq_ignore_ascii_case(s)) {
        return false;
    }
    true
}

/// Whether YAML 1.1 or 1.2 could read `s` as a number, a date or a time.
fn number_like(s: &str) -> bool {
    let t = s.trim_start_matches(['+', '-']);
    let all = |p: &str, f: fn(u8) -> bool| !p.is_empty() && p.bytes().all(|c| f(c) || c == b'_');
    if let Some(h) = t.strip_prefix("0x") {
        return all(h, |c| c.is_ascii_hexdigit());
    }
    if let Some(o) = t.strip_prefix("0o") {
        return all(o, |c| (b'0'..=b'7').contains(&c));
    }
    if let Some(bin) = t.strip_prefix("0b") {
        return all(bin, |c| c == b'0' || c == b'1');
    }
    t.bytes()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == b'.')
        && t.bytes().all(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    b'.' | b'_'
                        | b':'
                        | b'e'
                        | b'E'
                        | b'+'
                        | b'-'
                        | b' '
                        | b'T'
                        | b't'
                        | b'Z'
                        | b'z'
                )
        })
}

/// Characters written escaped in a double-quoted scalar: C0 controls, DEL,
/// C1 controls (NEL among them), the BOM, the Unicode line and paragraph
/// separators (line breaks to YAML 1.1 parsers) and the non-characters
/// U+FFFE and U+FFFF. None of them may appear raw in a YAML stream that every
/// parser reads back.
fn must_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
}

fn block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && s.chars().all(|c| c == '\n' || !must_escape(c))
        && s.split('\n').all(|l| !l.ends_with(' '))
}

/// `s` as a YAML double-quoted scalar: `"` and `\` escaped, every
/// [`must_escape`] character as `\xNN` (up to U+00FF) or `\uNNNN`
/// (common ones by their short escapes: `\n`, `\t`, `\r`, `\0`).
pub fn write_double_quoted(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if must_escape(c) => {
                let n = u32::from(c);
                if n <= 0xff {
                    let _ = write!(out, "\\x{n:02X}");
                } else {
                    let _ = write!(out, "\\u{n:04X}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_key(out: &mut String, k: &str) {
    if plain_ok(k) {
        out.push_str(k);
    } else {
        write_double_quoted(out, k);
    }
}

fn write_str(out: &mut String, s: &str, ind: usize) {
    if plain_ok(s) {
        out.push_str(s);
    } else if block_ok(s) {
        let body = s.strip_suffix('\n');
        out.push_str(if body.is_some() { "|" } else { "|-" });
        for line in body.unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                indent(out, ind);
                out.push_str(line);
            }
        }
    } else {
        write_double_quoted(out, s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: &Value) {
        let text = to_string(v);
        let back: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, v, "\n{text}");
    }

    /// Each of `strings` round-trips as a key, a value, a list item and a nested key and item.
    fn roundtrip_as_keys_and_values(strings: &[&str]) {
        for &s in strings {
            roundtrip(&json!({ s: s, "list": [s, {s: [s]}] }));
        }
    }

    #[test]
    fn numbers_times_and_dates_as_strings_are_quoted() {
        roundtrip_as_keys_and_values(&[
            "8080",
            "0.5",
            "3.8",
            "1e3",
            "0x1F",
            "0o17",
            "1:20",
            "2026-01-01",
            ".inf",
        ]);
    }

    #[test]
    fn booleans_and_nulls_as_strings_are_quoted() {
        roundtrip_as_keys_and_values(&["true", "No", "ON", "y", "~", "null"]);
    }

    #[test]
    fn strings_with_yaml_indicators_are_quoted() {
        roundtrip_as_keys_and_values(&[
            "-", "- x", "a: b", "x:", ":x", "#c", "a #c", "{{x}}", "[a]", "*a", "&a", "!a", "|",
            ">", "'q'", "\"q\"", "%x", "@x", "`x`", "a,b", "=", "<<",
        ]);
    }

    #[test]
    fn strings_with_edge_whitespace_or_line_breaks_are_quoted() {
        roundtrip_as_keys_and_values(&[
            " lead",
            "trail ",
            "tab\tx",
            "multi\nline\n",
            "multi\nline",
            "\nlead",
            "x\n\n",
            "trailing \nspace",
        ]);
    }

    #[test]
    fn empty_and_non_ascii_strings_round_trip() {
        roundtrip_as_keys_and_values(&["", "ünï"]);
    }

    /// Every control character, DEL, the C1 range (NEL), the BOM, the line
    /// and paragraph separators and the non-characters.
    fn awkward() -> Vec<char> {
        (0u32..0x20)
            .chain(0x7f..=0x9f)
            .chain([0xfeff, 0x2028, 0x2029, 0xfffe, 0xffff])
            .filter_map(char::from_u32)
            .collect()
    }

    #[test]
    fn control_characters_are_escaped_and_read_back() {
        for c in awkward() {
            for s in [
                format!("{c}"),
                format!("a{c}b"),
                format!("line one\nline{c}two\n"),
            ] {
                let v = json!({ s.clone(): s.clone(), "list": [s.clone()] });
                roundtrip(&v);
                let text = to_string(&v);
                // Nothing raw: the text is printable ASCII, newlines and printable non-ASCII.
                assert!(
                    text.chars().all(|t| t == '\n' || !must_escape(t)),
                    "raw U+{:04X} in {text:?}",
                    u32::from(c)
                );
                // yaml-rust2 (a YAML 1.2 parser) reads it back too.
                let docs = yaml_rust2::YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("U+{:04X}: {e}\n{text:?}", u32::from(c)));
                assert_eq!(docs[0]["list"][0].as_str(), Some(s.as_str()));
            }
        }
        assert_eq!(to_string(&json!("a\u{7f}b")), "\"a\\x7Fb\"\n");
        assert_eq!(to_string(&json!("a\u{85}b")), "\"a\\x85b\"\n");
        assert_eq!(to_string(&json!("\u{9f}")), "\"\\x9F\"\n");
        assert_eq!(to_string(&json!("\u{1}\t\u{0}")), "\"\\x01\\t\\0\"\n");
        assert_eq!(to_string(&json!("x\u{2028}")), "\"x\\u2028\"\n");
        assert_eq!(to_string(&json!("\u{feff}x")), "\"\\uFEFFx\"\n");
        assert_eq!(to_string(&json!("q\"\\")), "\"q\\\"\\\\\"\n");
        assert_eq!(to_string(&json!({"k\u{85}": 1})), "\"k\\x85\": 1\n");
    }

    #[test]
    fn documents_read_back_identically() {
        roundtrip(&json!({
            "apiVersion": "v1",
            "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "api"}, "empty": {}},
            "spec": {"ports": [{"port": 80, "name": "http"}], "none": [], "nested": [[1, 2], []],
                     "flag": true, "nothing": null, "image": "127.0.0.1:5000/shop/api:v1",
                     "args": ["--listen", ":8080", "-q"],
                     "script": "set -eu\nexec x \"$A\"\n\nend\n"},
        }));
        assert_eq!(
            to_string(&json!({"a": {"b": [1, {"c": "d"}]}})),
            "a:\n  b:\n  - 1\n  - c: d\n"
        );
        assert_eq!(to_string(&json!({"s": "x\ny\n"})), "s: |\n  x\n  y\n");
    }
}
