//! The Dockerfile parser through the binary: `--dump-ast` in `BuildKit`'s format, the stage graph of `--dry-run` for `BuildKit`'s word, `ARG`, heredoc and directive rules, and the inputs `BuildKit` refuses (one line naming `file:line`, exit 3).

use crate::common;

use common::{Plan, bwc};
use microplatform_test_support::TestDir;

const IMAGE: &str = "127.0.0.1:5999/team/app:v1";

fn plan(dockerfile: &str, extra: &[&str]) -> Plan {
    let dir = TestDir::new();
    dir.write("Dockerfile", dockerfile);
    let mut args = vec!["--dry-run", "--backend", "docker", "-t", IMAGE];
    args.extend_from_slice(extra);
    args.push(".");
    let out = bwc(&dir).args(args).run();
    out.success();
    out.json()
}

fn stages(p: &Plan) -> Vec<(String, String, Vec<String>)> {
    p.stages
        .iter()
        .map(|s| (s.name.clone(), s.base.clone(), s.depends_on.clone()))
        .collect()
}

fn st(name: &str, base: &str, deps: &[&str]) -> (String, String, Vec<String>) {
    (
        name.to_string(),
        base.to_string(),
        deps.iter().map(|d| (*d).to_string()).collect(),
    )
}

#[test]
fn dump_ast_prints_buildkit_result_format() {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        "\u{feff}# syntax=docker/dockerfile:1\n# escape=`\n\nFROM --platform=$BUILDPLATFORM golang:1 AS build\nENV A=1 B=\"x y\"\nRUN echo a `\n  # a comment\n\n  && echo b\nCOPY <<EOF /hello\nhi\nEOF\nONBUILD ADD [\"a\", \"b\"]\nCMD [\"run\"]\n",
    );
    let out = bwc(&dir).args(["--dump-ast", "Dockerfile"]).run();
    out.success();
    out.stdout_eq(
        "(from [\"--platform=$BUILDPLATFORM\"] \"golang:1\" \"AS\" \"build\")\n\
         (env \"A\" \"1\" \"=\" \"B\" \"\\\"x y\\\"\" \"=\")\n\
         (run \"echo a   && echo b\")\n\
         (copy \"<<EOF\" \"/hello\")\n\
         (onbuild (add \"a\" \"b\"))\n\
         (cmd \"run\")\n",
    );
    dir.write("Empty", "# nothing\n");
    let out = bwc(&dir).args(["--dump-ast", "Empty"]).run();
    out.code(3).stdout_empty().stderr_one_line();
    out.stderr_contains("Empty:1: file with no instructions");
}

#[test]
fn quoted_and_substituted_words_give_buildkit_stages() {
    let p = plan(
        "ARG BASE=\"golang:1.22\" X=\"a b\"\nARG V=\"supported\"\nARG REG\n\
         FROM \"${BASE}\" AS delve-supported\n\
         FROM alpine:3 AS delve-unsupported\n\
         FROM delve-${V} AS dev\n\
         COPY --from=delve-supported /x /x\n\
         FROM ${REG:-${NOPE:-docker.io}}/library/${BASE%%:*}:1-${X#a?}\n\
         COPY --from=dev /y /y\n",
        &[],
    );
    assert_eq!(
        stages(&p),
        vec![
            st("delve-supported", "golang:1.22", &[]),
            st("dev", "stage:delve-supported", &["delve-supported"]),
            st("3", "docker.io/library/golang:1-b", &["dev"]),
        ]
    );
    assert_eq!(p.pruned, vec!["delve-unsupported".to_string()]);
}

#[test]
fn redeclared_global_args_keep_their_values() {
    let p = plan(
        "ARG VERSION=3.19\nARG VERSION\nARG TARGETOS\nARG TARGETARCH\nFROM alpine:${VERSION}-${TARGETOS}-${TARGETARCH}\n",
        &["--platform", "linux/arm64"],
    );
    assert_eq!(stages(&p), vec![st("0", "alpine:3.19-linux-arm64", &[])]);
    let p = plan(
        "ARG VERSION=3.19\nARG VERSION\nFROM alpine:${VERSION}\n",
        &["--build-arg", "VERSION=3.20"],
    );
    assert_eq!(stages(&p), vec![st("0", "alpine:3.20", &[])]);
}

#[test]
fn heredoc_bodies_are_not_instructions_and_only_real_markers_count() {
    let p = plan(
        "FROM alpine:3 AS a\n\
         RUN <<file.txt cat\nFROM nothing AS no\nfile.txt\n\
         COPY <<-END-OF-SCRIPT /s\n\tFROM nothing2\n\tEND-OF-SCRIPT\n\
         RUN echo $((1<<2)) \"<<NOHEREDOC\"\n\
         RUN [\"sh\", \"-c\", \"cat <<X\"]\n\
         FROM a\n",
        &[],
    );
    assert_eq!(
        stages(&p),
        vec![st("a", "alpine:3", &[]), st("1", "stage:a", &["a"])]
    );
}

#[test]
fn directives_end_at_the_first_unknown_one() {
    // `# escape=`` after an unknown directive is a comment: `\` stays the escape.
    let p = plan(
        "# foo=bar\n# escape=`\nFROM alpine:3 \\\n  AS one\nFROM one\n",
        &[],
    );
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[1].base, "stage:one");
}

#[test]
fn buildkit_refusals_name_file_and_line() {
    for (text, needle) in [
        (
            "FROM a:1\n\nENV PATH\n",
            "Dockerfile:3: ENV must have two arguments",
        ),
        (
            "FROM a:1\nADD --from=a x y\n",
            "Dockerfile:2: unknown flag: --from",
        ),
        (
            "FROM \"\" AS foo\n",
            "Dockerfile:1: base name (\"\") should not be blank",
        ),
        (
            "FROM scratch\nCOPY --from=$FOO . .\n",
            "Dockerfile:2: --from=$FOO: variable expansion is not supported",
        ),
        (
            "FROM a:1 AS one\nCOPY --from=two x y\nFROM a:1 AS two\n",
            "Dockerfile:2: --from=two refers to this stage or a later one",
        ),
    ] {
        let dir = TestDir::new();
        dir.write("Dockerfile", text);
        let out = bwc(&dir).args(["--dry-run", "-t", IMAGE, "."]).run();
        out.code(3).stdout_empty().stderr_one_line();
        out.stderr_contains(needle);
    }
}

#[test]
fn bytes_that_are_not_utf8_do_not_refuse_the_file() {
    let dir = TestDir::new();
    dir.write(
        "Dockerfile",
        b"FROM alpine:3 AS a\n# caf\xe9\nRUN echo \xe9\nFROM a\n".as_slice(),
    );
    let out = bwc(&dir)
        .args(["--dry-run", "--backend", "docker", "-t", IMAGE, "."])
        .run();
    out.success();
    let p: Plan = out.json();
    assert_eq!(p.stages.len(), 2);
}
