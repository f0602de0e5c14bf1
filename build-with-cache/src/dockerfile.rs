//! Dockerfile parsing: parser directives, line continuations, heredocs, instructions, global `ARG`s and the stage list with every cross-stage reference.

use std::collections::BTreeMap;

use crate::error::BuildError;

/// Instructions the parser accepts (upper case).
const INSTRUCTIONS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// One logical instruction (continuations joined, heredoc bodies attached).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Upper-case keyword (`FROM`, `RUN`, ...).
    pub keyword: String,
    /// Everything after the keyword, continuations joined with a space.
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
    /// Stages read with `COPY --from`, `ADD --from` or `RUN --mount=…,from=` (sorted, unique).
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
    let (escape, instructions) = lex(path, text)?;
    build(path, escape, &instructions, build_args)
}

fn syntax(path: &str, line: usize, message: impl Into<String>) -> BuildError {
    BuildError::Syntax {
        path: path.to_string(),
        line,
        message: message.into(),
    }
}

/// Split the text into logical instructions.
pub fn lex(path: &str, text: &str) -> Result<(char, Vec<Instruction>), BuildError> {
    let lines: Vec<&str> = text.split('\n').map(|l| l.trim_end_matches('\r')).collect();
    let mut escape = '\\';
    let mut i = 0;
    // Parser directives: `# key=value` lines at the very top.
    let mut seen_directives = Vec::new();
    while i < lines.len() {
        let l = lines[i].trim();
        let Some(body) = l.strip_prefix('#') else {
            break;
        };
        let Some((k, v)) = body.split_once('=') else {
            break;
        };
        let key = k.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains(char::is_whitespace) {
            break;
        }
        if seen_directives.contains(&key) {
            return Err(syntax(
                path,
                i + 1,
                format!("parser directive `{key}` given twice"),
            ));
        }
        if key == "escape" {
            escape = match v.trim() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return Err(syntax(
                        path,
                        i + 1,
                        format!("invalid escape character {other:?} (use \\ or `)"),
                    ));
                }
            };
        }
        seen_directives.push(key);
        i += 1;
    }

    let mut out = Vec::new();
    while i < lines.len() {
        let raw = lines[i];
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut logical = String::new();
        let mut current = trimmed.to_string();
        loop {
            let t = current.trim_end();
            if let Some(stripped) = t.strip_suffix(escape) {
                logical.push_str(stripped);
                logical.push(' ');
                i += 1;
                // Skip comment and empty lines inside a continuation.
                while i < lines.len() {
                    let n = lines[i].trim_start();
                    if n.starts_with('#') || n.trim().is_empty() {
                        i += 1;
                    } else {
                        break;
                    }
                }
                if i >= lines.len() {
                    break;
                }
                current = lines[i].trim_start().to_string();
            } else {
                logical.push_str(t);
                i += 1;
                break;
            }
        }
        let logical = logical.trim().to_string();
        let (kw, rest) = match logical.find(char::is_whitespace) {
            Some(p) => (&logical[..p], logical[p..].trim_start()),
            None => (logical.as_str(), ""),
        };
        let keyword = kw.to_ascii_uppercase();
        if !INSTRUCTIONS.contains(&keyword.as_str()) {
            return Err(syntax(path, start, format!("unknown instruction `{kw}`")));
        }
        // Heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`) on RUN, COPY, ADD.
        let mut heredocs = Vec::new();
        if matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
            for (delim, strip_tabs) in heredoc_markers(rest) {
                let mut body = String::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let cmp = if strip_tabs {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if cmp == delim {
                        closed = true;
                        break;
                    }
                    body.push_str(cmp);
                    body.push('\n');
                }
                if !closed {
                    return Err(syntax(
                        path,
                        start,
                        format!("heredoc `{delim}` is not terminated"),
                    ));
                }
                heredocs.push(body);
            }
        }
        out.push(Instruction {
            keyword,
            rest: rest.to_string(),
            line: start,
            heredocs,
        });
    }
    Ok((escape, out))
}

/// The heredoc markers of an instruction line: (delimiter, strip leading tabs).
fn heredoc_markers(rest: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let bytes = rest.as_bytes();
    let mut p = 0;
    while let Some(off) = rest[p..].find("<<") {
        let mut q = p + off + 2;
        let strip = bytes.get(q) == Some(&b'-');
        if strip {
            q += 1;
        }
        let quote = match bytes.get(q) {
            Some(b'"') => Some('"'),
            Some(b'\'') => Some('\''),
            _ => None,
        };
        if quote.is_some() {
            q += 1;
        }
        let word: String = rest[q..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if word.is_empty() || !word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            p += off + 2;
            continue;
        }
        out.push((word.clone(), strip));
        p = q + word.len();
    }
    out
}

/// Split `--flag=value` options off the front of an instruction's arguments.
fn split_flags(rest: &str) -> (Vec<(String, String)>, String) {
    let mut flags = Vec::new();
    let mut r = rest.trim_start();
    while let Some(after) = r.strip_prefix("--") {
        let end = after.find(char::is_whitespace).unwrap_or(after.len());
        let flag = &after[..end];
        let (k, v) = flag.split_once('=').unwrap_or((flag, ""));
        flags.push((k.to_ascii_lowercase(), v.to_string()));
        r = after[end..].trim_start();
    }
    (flags, r.to_string())
}

/// Substitute `$VAR`, `${VAR}`, `${VAR:-default}` and `${VAR:+alt}` from `vars`.
pub fn substitute(
    path: &str,
    line: usize,
    s: &str,
    escape: char,
    vars: &BTreeMap<String, Option<String>>,
) -> Result<String, BuildError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    let lookup = |name: &str| vars.get(name).cloned().flatten();
    while i < chars.len() {
        let c = chars[i];
        if c == escape && i + 1 < chars.len() && chars[i + 1] == '$' {
            out.push('$');
            i += 2;
            continue;
        }
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        if chars.get(i + 1) == Some(&'{') {
            let Some(close) = chars[i + 2..].iter().position(|&c| c == '}') else {
                return Err(syntax(path, line, format!("missing `}}` in {s:?}")));
            };
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            i += close + 3;
            if let Some((name, default)) = inner.split_once(":-") {
                out.push_str(
                    &lookup(name)
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| default.to_string()),
                );
            } else if let Some((name, alt)) = inner.split_once(":+") {
                if lookup(name).is_some_and(|v| !v.is_empty()) {
                    out.push_str(alt);
                }
            } else if inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !inner.is_empty()
            {
                out.push_str(&lookup(&inner).unwrap_or_default());
            } else {
                return Err(syntax(
                    path,
                    line,
                    format!("bad substitution `${{{inner}}}`"),
                ));
            }
        } else {
            let name: String = chars[i + 1..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            if name.is_empty() {
                out.push('$');
                i += 1;
            } else {
                i += 1 + name.chars().count();
                out.push_str(&lookup(&name).unwrap_or_default());
            }
        }
    }
    Ok(out)
}

fn valid_stage_name(name: &str) -> bool {
    let mut cs = name.chars();
    cs.next().is_some_and(|c| c.is_ascii_lowercase())
        && cs.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Does `s` look like an image reference rather than a bare stage name?
fn looks_like_image(s: &str) -> bool {
    s.contains('/') || s.contains(':') || s.contains('@')
}

/// Platform arguments `BuildKit` predefines, for `FROM --platform=$BUILDPLATFORM`.
fn platform_args(vars: &mut BTreeMap<String, Option<String>>, platform: Option<&str>) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let build = format!("linux/{arch}");
    let target = platform.map_or_else(|| build.clone(), str::to_string);
    let mut parts = target.split('/');
    let os = parts.next().unwrap_or("linux").to_string();
    let tarch = parts.next().unwrap_or(arch).to_string();
    for (k, v) in [
        ("BUILDPLATFORM", build.clone()),
        ("BUILDOS", "linux".to_string()),
        ("BUILDARCH", arch.to_string()),
        ("TARGETPLATFORM", target.clone()),
        ("TARGETOS", os),
        ("TARGETARCH", tarch),
    ] {
        vars.entry(k.to_string()).or_insert(Some(v));
    }
}

fn build(
    path: &str,
    escape: char,
    instructions: &[Instruction],
    build_args: &BTreeMap<String, String>,
) -> Result<Dockerfile, BuildError> {
    let mut global_args: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stages: Vec<Stage> = Vec::new();
    let platform = build_args.get("TARGETPLATFORM").cloned();
    for ins in instructions {
        match ins.keyword.as_str() {
            "ARG" if stages.is_empty() => {
                for decl in ins.rest.split_whitespace() {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => {
                            let d = d.trim_matches('"').trim_matches('\'');
                            (
                                n,
                                Some(substitute(path, ins.line, d, escape, &global_args)?),
                            )
                        }
                        None => (decl, None),
                    };
                    if name.is_empty()
                        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    {
                        return Err(syntax(path, ins.line, format!("invalid ARG name {name:?}")));
                    }
                    let value = build_args.get(name).cloned().or(default);
                    global_args.insert(name.to_string(), value);
                }
            }
            "FROM" => {
                let (flags, args) = split_flags(&ins.rest);
                let words: Vec<&str> = args.split_whitespace().collect();
                let mut vars = global_args.clone();
                platform_args(&mut vars, platform.as_deref());
                let (image, name, written) = match words.as_slice() {
                    [image] => (*image, None, None),
                    [image, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => (
                        *image,
                        Some(name.to_ascii_lowercase()),
                        Some((*name).to_string()),
                    ),
                    [] => return Err(syntax(path, ins.line, "FROM needs an image")),
                    _ => {
                        return Err(syntax(
                            path,
                            ins.line,
                            format!("FROM expects `IMAGE [AS NAME]`, got {args:?}"),
                        ));
                    }
                };
                let image = substitute(path, ins.line, image, escape, &vars)?;
                if image.is_empty() {
                    return Err(syntax(
                        path,
                        ins.line,
                        "FROM image is empty after ARG substitution",
                    ));
                }
                if let Some(n) = &name {
                    if !valid_stage_name(n) {
                        return Err(syntax(path, ins.line, format!("invalid stage name {n:?}")));
                    }
                    if stages.iter().any(|s| s.name.as_ref() == Some(n)) {
                        return Err(syntax(
                            path,
                            ins.line,
                            format!("duplicate stage name {n:?}"),
                        ));
                    }
                }
                let lower = image.to_ascii_lowercase();
                let base = if let Some(s) = stages.iter().find(|s| s.name.as_ref() == Some(&lower))
                {
                    Source::Stage(s.index)
                } else if lower == "scratch" {
                    Source::Scratch
                } else {
                    Source::Image(image)
                };
                let mut platform_flag = None;
                for (k, v) in flags {
                    if k == "platform" {
                        platform_flag = Some(substitute(path, ins.line, &v, escape, &vars)?);
                    } else {
                        return Err(syntax(path, ins.line, format!("unknown FROM flag --{k}")));
                    }
                }
                stages.push(Stage {
                    index: stages.len(),
                    name,
                    name_as_written: written,
                    base,
                    platform: platform_flag,
                    line: ins.line,
                    copies_from: Vec::new(),
                    images_from: Vec::new(),
                    instructions: 0,
                });
            }
            kw => {
                let Some(current) = stages.len().checked_sub(1) else {
                    return Err(syntax(
                        path,
                        ins.line,
                        format!("{kw} before the first FROM (only ARG may come first)"),
                    ));
                };
                let (flags, _) = split_flags(&ins.rest);
                let mut froms = Vec::new();
                for (k, v) in &flags {
                    match (kw, k.as_str()) {
                        ("COPY" | "ADD", "from") => froms.push(v.clone()),
                        ("RUN", "mount") => {
                            for kv in v.split(',') {
                                if let Some(f) = kv.strip_prefix("from=") {
                                    froms.push(f.to_string());
                                }
                            }
                        }
                        _ => {}
                    }
                }
                for f in froms {
                    let f = substitute(path, ins.line, &f, escape, &global_args)?;
                    let src = resolve_from(path, ins.line, &f, current, &stages)?;
                    let st = &mut stages[current];
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
                stages[current].instructions += 1;
            }
        }
    }
    if stages.is_empty() {
        return Err(syntax(
            path,
            instructions.last().map_or(1, |i| i.line),
            "no FROM instruction",
        ));
    }
    Ok(Dockerfile {
        escape,
        global_args,
        stages,
    })
}

fn resolve_from(
    path: &str,
    line: usize,
    value: &str,
    current: usize,
    stages: &[Stage],
) -> Result<Source, BuildError> {
    if value.is_empty() {
        return Err(syntax(path, line, "empty --from"));
    }
    let lower = value.to_ascii_lowercase();
    if let Ok(i) = lower.parse::<usize>() {
        if i < current {
            return Ok(Source::Stage(i));
        }
        return Err(BuildError::UnknownStage {
            path: path.to_string(),
            line,
            stage: value.to_string(),
        });
    }
    if let Some(s) = stages[..current]
        .iter()
        .find(|s| s.name.as_deref() == Some(lower.as_str()))
    {
        return Ok(Source::Stage(s.index));
    }
    if looks_like_image(value) {
        return Ok(Source::Image(value.to_string()));
    }
    Err(BuildError::UnknownStage {
        path: path.to_string(),
        line,
        stage: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Dockerfile, BuildError> {
        parse("Dockerfile", text, &BTreeMap::new())
    }

    #[test]
    fn stages_names_and_refs() {
        let d = p("ARG BASE=alpine:3\nfrom ${BASE} as Deps\nRUN echo\nFROM deps AS build\nCOPY --from=DEPS /a /a\nRUN --mount=type=cache,target=/c,from=0 true\nFROM busybox:1\nCOPY --from=build /x /x\nCOPY --from=other/img:1 /y /y\n").unwrap();
        assert_eq!(d.stages.len(), 3);
        assert_eq!(d.stages[0].name.as_deref(), Some("deps"));
        assert_eq!(d.stages[0].base, Source::Image("alpine:3".into()));
        assert_eq!(d.stages[1].base, Source::Stage(0));
        assert_eq!(d.stages[1].copies_from, vec![0]);
        assert_eq!(d.stages[2].copies_from, vec![1]);
        assert_eq!(d.stages[2].images_from, vec!["other/img:1".to_string()]);
    }

    #[test]
    fn build_arg_overrides_global_default() {
        let mut args = BTreeMap::new();
        args.insert("TAG".to_string(), "2".to_string());
        let d = parse(
            "Dockerfile",
            "ARG TAG=1\nARG REG\nFROM ${REG:-docker.io}/lib/x:$TAG\n",
            &args,
        )
        .unwrap();
        assert_eq!(d.stages[0].base, Source::Image("docker.io/lib/x:2".into()));
    }

    #[test]
    fn platform_args_and_scratch() {
        let mut args = BTreeMap::new();
        args.insert("TARGETPLATFORM".to_string(), "linux/arm64".to_string());
        let d = parse(
            "Dockerfile",
            "FROM --platform=$BUILDPLATFORM golang:1 AS b\nFROM scratch\nCOPY --from=b /x /x\n",
            &args,
        )
        .unwrap();
        assert!(
            d.stages[0]
                .platform
                .as_deref()
                .unwrap()
                .starts_with("linux/")
        );
        assert_eq!(d.stages[1].base, Source::Scratch);
        let e = p("FROM --plat=x a\n").unwrap_err();
        assert!(e.to_string().contains("unknown FROM flag"), "{e}");
        let e = p("FROM a AS 1bad\n").unwrap_err();
        assert!(e.to_string().contains("invalid stage name"), "{e}");
        let e = p("# escape=x\nFROM a\n").unwrap_err();
        assert!(e.to_string().contains("Dockerfile:1"), "{e}");
    }

    #[test]
    fn continuations_escape_directive_and_heredocs() {
        let text = "# escape=`\nFROM a:1 AS one\nRUN echo a `\n  # comment\n  b\nRUN <<EOF\nFROM nothing\nEOF\nCOPY <<-A <<B /dst\n\tx\n\tA\ny\nB\nFROM one\n";
        let (esc, ins) = lex("Dockerfile", text).unwrap();
        assert_eq!(esc, '`');
        assert_eq!(ins[1].rest, "echo a  b");
        assert_eq!(ins[2].heredocs, vec!["FROM nothing\n".to_string()]);
        assert_eq!(ins[3].heredocs, vec!["x\n".to_string(), "y\n".to_string()]);
        let d = p(text).unwrap();
        assert_eq!(d.stages.len(), 2);
        assert_eq!(d.stages[1].base, Source::Stage(0));
        assert_eq!(d.stages[1].line, 14);
    }

    #[test]
    fn errors_carry_lines() {
        let e = p("FROM a:1\nRUNN x\n").unwrap_err();
        assert!(e.to_string().contains("Dockerfile:2"), "{e}");
        let e = p("FROM a:1\nCOPY --from=nope /a /a\n").unwrap_err();
        assert!(matches!(e, BuildError::UnknownStage { line: 2, .. }), "{e}");
        let e = p("RUN x\n").unwrap_err();
        assert!(e.to_string().contains("Dockerfile:1"), "{e}");
        let e = p("FROM a:1\nRUN <<EOF\nx\n").unwrap_err();
        assert!(e.to_string().contains("not terminated"), "{e}");
        let e = p("FROM a AS x\nFROM b AS X\n").unwrap_err();
        assert!(e.to_string().contains("duplicate"), "{e}");
    }
}
