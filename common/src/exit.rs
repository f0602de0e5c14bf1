//! Exit codes shared by every tool, so scripts can tell failure classes apart.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | a check found differences (`--check`), or a generic failure |
//! | 2 | usage error (bad flags; clap's own code) |
//! | 3 | malformed input (a file, document or line that does not parse) |
//! | 4 | something named does not exist (unknown component, stage, environment, tag, ref) |
//! | 5 | git failed or the repository is not usable |
//! | 6 | network or registry failure (unreachable, 5xx, timeouts) |
//! | 7 | authentication or authorization failure |
//! | 8 | a dependency cycle or an invalid graph |
//! | 9 | an external tool (builder, kubectl, docker) failed |
//! | 10 | validation rejected the input (policy, schema) |
//! | 70 | internal error (a bug) |
//!
//! [`TABLE`] holds it once; [`help`] renders each tool's `--help` section from it.

/// Success.
pub const SUCCESS: u8 = 0;
/// A check found differences, or a generic failure.
pub const FAILURE: u8 = 1;
/// Usage error (bad flags or arguments).
pub const USAGE: u8 = 2;
/// Malformed input.
pub const INPUT: u8 = 3;
/// Something named does not exist.
pub const NOT_FOUND: u8 = 4;
/// git failed.
pub const GIT: u8 = 5;
/// Network or registry failure.
pub const NETWORK: u8 = 6;
/// Authentication failure.
pub const AUTH: u8 = 7;
/// Dependency cycle or invalid graph.
pub const CYCLE: u8 = 8;
/// An external tool failed.
pub const EXTERNAL: u8 = 9;
/// Validation rejected the input.
pub const VALIDATION: u8 = 10;
/// Internal error.
pub const INTERNAL: u8 = 70;

/// The one table: every code and its class, the same in every tool (the module's table explains each).
pub const TABLE: [(u8, &str); 12] = [
    (SUCCESS, "success"),
    (FAILURE, "failure"),
    (USAGE, "usage error"),
    (INPUT, "malformed input"),
    (NOT_FOUND, "not found"),
    (GIT, "git"),
    (NETWORK, "network or registry"),
    (AUTH, "authentication"),
    (CYCLE, "invalid graph"),
    (EXTERNAL, "an external tool failed"),
    (VALIDATION, "validation"),
    (INTERNAL, "internal error (a bug)"),
];

/// The meaning of a code in [`TABLE`].
pub fn meaning(code: u8) -> Option<&'static str> {
    TABLE.iter().find(|(c, _)| *c == code).map(|(_, m)| *m)
}

/// The `Exit codes:` section of a tool's `--help`: each code the tool uses,
/// with the table's meaning and the tool's own detail (what it means there).
///
/// # Panics
///
/// On a code that is not in [`TABLE`] (a programming error, caught by every
/// tool's `--help` test).
pub fn help(codes: &[(u8, &str)]) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("Exit codes:\n");
    for (code, detail) in codes {
        let meaning =
            meaning(*code).unwrap_or_else(|| panic!("exit code {code} is not in the table"));
        let _ = write!(out, "  {code:<3} {meaning}");
        if !detail.is_empty() {
            out.push_str(": ");
            out.push_str(detail);
        }
        out.push('\n');
    }
    out
}

/// The code for a file that cannot be read: `NOT_FOUND` when it does not
/// exist (the same in every tool), else `INPUT`.
pub fn for_read_error(e: &std::io::Error) -> u8 {
    if e.kind() == std::io::ErrorKind::NotFound {
        NOT_FOUND
    } else {
        INPUT
    }
}

/// Errors that know their exit code.
pub trait ExitCode {
    /// The process exit code for this error.
    fn exit_code(&self) -> u8;
}

/// Print an error chain once to stderr as `TOOL: error: outer: inner` and
/// return `code`. Each cause is printed unless the line already holds its text.
/// For a tool's own errors, [`fail`] picks the code and stops at the error.
pub fn report(tool: &str, err: &anyhow::Error, code: u8) -> std::process::ExitCode {
    eprintln!("{}", error_line(tool, err, |_| false));
    std::process::ExitCode::from(code)
}

/// Print a tool's failure once to stderr as one line `TOOL: error: context: message` and
/// return the exit code of the first `E` in the chain (`default` when there is none).
///
/// The line is the chain down to that `E`: the contexts added on the way out, then the
/// error's own message. A library error's message is complete, its cause included (as
/// the cause says it, or reshaped where that text would repeat a position or a pattern
/// the message already gives), so the causes below it, kept as `source()` for programs,
/// are not printed again. Without an `E` in the chain this is [`report`].
pub fn fail<E: ExitCode + std::error::Error + Send + Sync + 'static>(
    tool: &str,
    err: &anyhow::Error,
    default: u8,
) -> std::process::ExitCode {
    let code = code_of::<E>(err, default);
    eprintln!(
        "{}",
        error_line(tool, err, <dyn std::error::Error>::is::<E>)
    );
    std::process::ExitCode::from(code)
}

/// `TOOL: error: ` and the chain, each cause once, up to and including the first error
/// for which `last` holds.
fn error_line(
    tool: &str,
    err: &anyhow::Error,
    last: impl Fn(&(dyn std::error::Error + 'static)) -> bool,
) -> String {
    let mut line = format!("{tool}: error: {err}");
    let mut chain = err.chain();
    if chain.next().is_some_and(&last) {
        return line;
    }
    for cause in chain {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        if last(cause) {
            break;
        }
    }
    line
}

/// Find the exit code of the first error in the chain that is an `E`.
pub fn code_of<E: ExitCode + std::error::Error + Send + Sync + 'static>(
    err: &anyhow::Error,
    default: u8,
) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<E>().map(ExitCode::exit_code))
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library error whose message gives its cause reshaped (only the last line).
    #[derive(Debug, thiserror::Error)]
    #[error("file.yaml:3: invalid pattern: {}", source.to_string().lines().last().unwrap_or_default())]
    struct Lib {
        source: std::io::Error,
    }

    impl ExitCode for Lib {
        fn exit_code(&self) -> u8 {
            INPUT
        }
    }

    fn lib() -> Lib {
        Lib {
            source: std::io::Error::other("a diagram\nunclosed character class"),
        }
    }

    #[test]
    fn the_line_holds_each_cause_once_and_stops_at_the_tools_error() {
        let bare = anyhow::Error::new(lib());
        assert_eq!(
            error_line("t", &bare, <dyn std::error::Error>::is::<Lib>),
            "t: error: file.yaml:3: invalid pattern: unclosed character class"
        );
        assert_eq!(code_of::<Lib>(&bare, INTERNAL), INPUT);
        let wrapped = anyhow::Error::new(lib()).context("loading the stack");
        assert_eq!(
            error_line("t", &wrapped, <dyn std::error::Error>::is::<Lib>),
            "t: error: loading the stack: file.yaml:3: invalid pattern: unclosed character class"
        );
        // Not one of the tool's errors: the whole chain, a cause already said skipped.
        let io = anyhow::Error::new(std::io::Error::other("disk full"))
            .context("writing out: disk full")
            .context("saving");
        assert_eq!(
            error_line("t", &io, |_| false),
            "t: error: saving: writing out: disk full"
        );
    }

    #[test]
    fn help_renders_the_tables_class_and_the_tools_detail() {
        let h = help(&[(SUCCESS, ""), (INPUT, "a bad line"), (INTERNAL, "")]);
        assert_eq!(
            h,
            "Exit codes:\n  0   success\n  3   malformed input: a bad line\n  70  internal error (a bug)\n"
        );
        assert!(TABLE.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(meaning(42), None);
    }
}
