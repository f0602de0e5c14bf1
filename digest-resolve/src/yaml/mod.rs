//! A YAML event parser that reads what libyaml (kubectl, docker compose, Argo) reads: yaml-rust2's scanner and parser, patched.
//!
//! `scanner.rs`, `parser.rs` and `char_traits.rs` are copied from yaml-rust2 0.13.1
//! (<https://github.com/Ethiraric/yaml-rust2>, MIT OR Apache-2.0; copyright notice in
//! `LICENSE-MIT.yaml-rust2`), with these changes, each marked `digest-resolve:` in the code:
//!
//! - marker indices count characters after a block scalar line holding non-ASCII text
//!   (upstream advanced them by the line's byte length, so every later marker was off);
//! - inside a flow collection, indentation is not checked (libyaml and go-yaml do not):
//!   a closing `]` or `}` at its key's indentation, and a multi-line plain scalar whose
//!   continuation lines are indented less than the collection, are accepted;
//! - the continuation lines of a quoted scalar may be indented less than its block or
//!   collection, as libyaml reads them;
//! - a continuation line of a quoted scalar may start with a tab (upstream: "tab cannot be
//!   used as indentation");
//! - a comment may follow a quoted scalar or a flow collection without whitespace
//!   (`"x"# c`), as libyaml reads it;
//! - a byte order mark starting the stream is skipped (upstream read it as content, so
//!   the first key of a file saved with a BOM was `\u{feff}kind`);
//! - the look-ahead buffer is a `VecDeque` (upstream uses the `arraydeque` crate);
//! - the upstream tests and debug printing are left out.

#![allow(
    clippy::pedantic,
    clippy::all,
    dead_code,
    missing_docs,
    unused_macros,
    rustdoc::all
)]

macro_rules! debug_print {
    ($($arg:tt)*) => {{}};
}

pub mod char_traits;
pub mod parser;
pub mod scanner;
