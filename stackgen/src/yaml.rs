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

fn block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && s.chars()
            .all(|c| c == '\n' || (!c.is_control() && c != '\u{feff}'))
        && s.split('\n').all(|l| !l.ends_with(' '))
}

fn write_key(out: &mut String, k: &str) {
    if plain_ok(k) {
        out.push_str(k);
    } else {
        out.push_str(&serde_json::to_string(k).expect("strings serialise"));
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
        // A JSON string is a valid YAML double-quoted scalar.
        out.push_str(&serde_json::to_string(s).expect("strings serialise"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn roundtrip(v: &Value) {
        let text = to_string(v);
        let back: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(&back, v, "\n{text}");
    }

    #[test]
    fn strings_that_look_like_other_things_are_quoted() {
        for s in [
            "8080",
            "0.5",
            "3.8",
            "1e3",
            "0x1F",
            "0o17",
            "1:20",
            "2026-01-01",
            "true",
            "No",
            "ON",
            "y",
            "~",
            "null",
            ".inf",
            "-",
            "- x",
            "a: b",
            "x:",
            ":x",
            "#c",
            "a #c",
            "{{x}}",
            "[a]",
            "*a",
            "&a",
            "!a",
            "|",
            ">",
            "'q'",
            "\"q\"",
            "%x",
            "@x",
            "`x`",
            " lead",
            "trail ",
            "",
            "tab\tx",
            "ünï",
            "a,b",
            "multi\nline\n",
            "multi\nline",
            "\nlead",
            "x\n\n",
            "trailing \nspace",
            "=",
            "<<",
        ] {
            roundtrip(&json!({ s: s, "list": [s, {s: [s]}] }));
        }
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
