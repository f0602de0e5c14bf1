//! The `docker build` options we understand (tags, Dockerfile, build args, target, platform, ...) pulled out of the pass-through arguments, which keep their order.

use std::collections::BTreeMap;

use crate::cli::DOCKER_VALUE;
use crate::error::BuildError;

/// One pass-through option as given (`--label a=b` is one item with a value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassArg {
    /// The option name as written (`--label`, `-q`).
    pub name: String,
    /// Its value (separate or after `=`), if any.
    pub value: Option<String>,
    /// The tokens exactly as given.
    pub tokens: Vec<String>,
}

/// What we understood of the `docker build` command line.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `-t/--tag`, in order.
    pub tags: Vec<String>,
    /// `-f/--file`.
    pub file: Option<String>,
    /// `--build-arg K=V` (a bare `K` takes the value from the environment).
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--network`.
    pub network: Option<String>,
    /// `--iidfile` (written with the final image id).
    pub iidfile: Option<String>,
    /// `--cache-from` given by the user (read like our own cache refs).
    pub cache_from: Vec<String>,
    /// buildah global options (`--root`, `--runroot`, `--storage-driver`, `--storage-opt`), as tokens.
    pub buildah_global: Vec<String>,
    /// Everything else, in order; passed to the builder verbatim.
    pub pass: Vec<PassArg>,
    /// The build context: a path, a URL or `-`.
    pub context: String,
}

fn value_of<'a>(
    argv: &'a [String],
    i: &mut usize,
    name: &str,
    inline: Option<&'a str>,
) -> Result<&'a str, BuildError> {
    if let Some(v) = inline {
        return Ok(v);
    }
    *i += 1;
    argv.get(*i)
        .map(String::as_str)
        .ok_or_else(|| BuildError::Usage(format!("option {name} needs a value")))
}

/// Parse the pass-through arguments.
#[allow(clippy::many_single_char_names)]
pub fn parse(argv: &[String]) -> Result<BuildOptions, BuildError> {
    let mut o = BuildOptions::default();
    let mut positional = Vec::new();
    let mut i = 0;
    let mut only_positional = false;
    while i < argv.len() {
        let a = &argv[i];
        if only_positional || a == "-" || !a.starts_with('-') {
            positional.push(a.clone());
            i += 1;
            continue;
        }
        if a == "--" {
            only_positional = true;
            i += 1;
            continue;
        }
        // `--name=value`, `-tvalue` (short options with an attached value).
        let (name, inline): (String, Option<&str>) = if let Some((n, v)) = a.split_once('=')
            && a.starts_with("--")
        {
            (n.to_string(), Some(v))
        } else if !a.starts_with("--")
            && a.len() > 2
            && a.get(..2).is_some_and(|p| DOCKER_VALUE.contains(&p))
        {
            (a[..2].to_string(), Some(&a[2..]))
        } else {
            (a.clone(), None)
        };
        let takes_value = DOCKER_VALUE.contains(&name.as_str());
        if !takes_value {
            o.pass.push(PassArg {
                name: name.clone(),
                value: inline.map(str::to_string),
                tokens: vec![a.clone()],
            });
            i += 1;
            continue;
        }
        let start = i;
        let v = value_of(argv, &mut i, &name, inline)?.to_string();
        let tokens = argv[start..=i].to_vec();
        i += 1;
        match name.as_str() {
            "-t" | "--tag" => o.tags.push(v),
            "-f" | "--file" => o.file = Some(v),
            "--target" => o.target = Some(v),
            "--iidfile" => o.iidfile = Some(v),
            "--cache-from" => o.cache_from.push(v),
            "--root" | "--runroot" | "--storage-driver" | "--storage-opt" => {
                o.buildah_global.push(name.clone());
                o.buildah_global.push(v);
            }
            _ => {
                match name.as_str() {
                    "--build-arg" if v.is_empty() || v.starts_with('=') => {
                        return Err(BuildError::Usage(format!(
                            "--build-arg {v:?}: expected NAME=VALUE or NAME"
                        )));
                    }
                    "--platform" => {
                        // One platform or a comma-separated list, each os/arch[/variant].
                        for one in v.split(',') {
                            microplatform_common::registry::Platform::parse(one.trim())
                                .map_err(|e| BuildError::Usage(format!("--platform: {e}")))?;
                        }
                        o.platform = Some(v.clone());
                    }
                    "--build-arg" => {
                        let (k, val) = match v.split_once('=') {
                            Some((k, val)) => (k.to_string(), Some(val.to_string())),
                            None => (v.clone(), std::env::var(&v).ok()),
                        };
                        if let Some(val) = val {
                            o.build_args.insert(k, val);
                        }
                    }
                    "--network" => o.network = Some(v.clone()),
                    _ => {}
                }
                o.pass.push(PassArg {
                    name,
                    value: Some(v),
                    tokens,
                });
            }
        }
    }
    match positional.as_slice() {
        [ctx] => o.context.clone_from(ctx),
        [] => {
            return Err(BuildError::Usage(
                "missing build context: build-with-cache [OPTIONS] -t IMAGE:TAG PATH|URL|-".into(),
            ));
        }
        many => {
            return Err(BuildError::Usage(format!(
                "exactly one build context expected, got {}: {}",
                many.len(),
                many.join(" ")
            )));
        }
    }
    if o.tags.is_empty() {
        return Err(BuildError::Usage(
            "-t/--tag is required (the image to build and push)".into(),
        ));
    }
    if let Some(p) = &o.platform {
        o.build_args
            .entry("TARGETPLATFORM".to_string())
            .or_insert_with(|| p.clone());
    }
    Ok(o)
}

impl BuildOptions {
    /// Pass-through tokens, minus options named in `drop`.
    #[must_use]
    pub fn pass_tokens(&self, drop: &[&str]) -> Vec<String> {
        self.pass
            .iter()
            .filter(|p| !drop.contains(&p.name.as_str()))
            .flat_map(|p| p.tokens.iter().cloned())
            .collect()
    }

    /// Whether a pass-through option was given.
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.pass.iter().any(|p| p.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_string()).collect()
    }

    #[test]
    fn understood_and_passed_in_order() {
        let o = parse(&s(&[
            "--label",
            "x=1",
            "-tr/a:1",
            "--tag=r/a:2",
            "-f",
            "D",
            "--build-arg",
            "A=b",
            "--no-cache",
            "--target",
            "build",
            "--root",
            "/tmp/r",
            "ctx",
        ]))
        .unwrap();
        assert_eq!(o.tags, s(&["r/a:1", "r/a:2"]));
        assert_eq!(o.file.as_deref(), Some("D"));
        assert_eq!(o.target.as_deref(), Some("build"));
        assert_eq!(o.build_args.get("A").map(String::as_str), Some("b"));
        assert_eq!(o.buildah_global, s(&["--root", "/tmp/r"]));
        assert_eq!(
            o.pass_tokens(&[]),
            s(&["--label", "x=1", "--build-arg", "A=b", "--no-cache"])
        );
        assert_eq!(o.context, "ctx");
    }

    #[test]
    fn errors() {
        assert!(parse(&s(&["ctx"])).unwrap_err().to_string().contains("-t"));
        assert!(
            parse(&s(&["-t", "a:1"]))
                .unwrap_err()
                .to_string()
                .contains("context")
        );
        assert!(
            parse(&s(&["-t", "a:1", "a", "b"]))
                .unwrap_err()
                .to_string()
                .contains("exactly one")
        );
        let usage = |argv: &[&str]| match parse(&s(argv)) {
            Err(BuildError::Usage(m)) => m,
            other => panic!("{argv:?}: expected a usage error, got {other:?}"),
        };
        assert!(usage(&["-t", "a:1", "--platform", "x", "."]).contains("--platform"));
        assert!(usage(&["-t", "a:1", "--platform=linux/amd64,", "."]).contains("--platform"));
        assert!(usage(&["-t", "a:1", "--build-arg", "=v", "."]).contains("NAME=VALUE"));
        let ok = parse(&s(&[
            "-t",
            "a:1",
            "--platform",
            "linux/amd64,linux/arm64/v8",
            ".",
        ]))
        .unwrap();
        assert_eq!(ok.platform.as_deref(), Some("linux/amd64,linux/arm64/v8"));
    }
}
