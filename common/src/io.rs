//! JSON over stdin/stdout and atomic file writes (temp file, then rename).

use std::io::{Read, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Read all of stdin as a string.
pub fn read_stdin() -> std::io::Result<String> {
    let mut s = String::new();
    std::io::stdin().lock().read_to_string(&mut s)?;
    Ok(s)
}

/// Parse JSON from a string, with the line and column in the error.
pub fn parse_json<T: DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
    serde_json::from_str(text)
}

/// How a JSON document is laid out on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonLayout {
    /// Indented, two spaces (every tool's result document).
    Pretty,
    /// Indented on a terminal, one line when piped: for documents that can run to megabytes
    /// (`monobuild`'s plan of thousands of components).
    PrettyOnTerminal,
}

/// Write a tool's result document to stdout: `value` as pretty JSON plus a newline, buffered,
/// flushed. The one way JSON goes to stdout (see `docs/conventions.md`); nothing else is
/// written there, and nothing at all when the command fails.
pub fn write_json_stdout<T: Serialize>(value: &T) -> std::io::Result<()> {
    write_json_stdout_as(value, JsonLayout::Pretty)
}

/// [`write_json_stdout`] with another layout.
pub fn write_json_stdout_as<T: Serialize>(value: &T, layout: JsonLayout) -> std::io::Result<()> {
    use std::io::IsTerminal as _;
    let stdout = std::io::stdout();
    let pretty = match layout {
        JsonLayout::Pretty => true,
        JsonLayout::PrettyOnTerminal => stdout.is_terminal(),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    if pretty {
        serde_json::to_writer_pretty(&mut out, value)?;
    } else {
        serde_json::to_writer(&mut out, value)?;
    }
    out.write_all(b"\n")?;
    out.flush()
}

/// [`write_json_stdout_as`] with [`JsonLayout::PrettyOnTerminal`] for a document that renders
/// its own compact form (byte for byte what `serde_json` writes, faster, e.g. on several
/// threads): on a terminal `value` is indented as usual; piped, `compact` writes it. Then a
/// newline, flushed.
pub fn write_json_stdout_compact_with<T: Serialize>(
    value: &T,
    compact: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::io::IsTerminal as _;
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return write_json_stdout_as(value, JsonLayout::Pretty);
    }
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    compact(&mut out)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Write bytes to stdout in one go and flush.
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

/// Write `bytes` to `path` atomically: a temp file in the same directory,
/// fsync, then rename over the target. Readers never see a half-written file.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let name = path
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        // Keep the permissions of the file we replace.
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// sha256 of bytes as `sha256:<hex>`.
#[must_use]
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.yaml");
        atomic_write(&p, b"one").unwrap();
        atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
