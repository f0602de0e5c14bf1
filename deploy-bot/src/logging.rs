//! Logging setup: one line per event on stderr, as text or JSON (`--log-format json`); the agent logs at info by default.

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable: `2026-01-01T00:00:00Z  INFO message key=value`.
    #[default]
    Text,
    /// One JSON object per line: `{"timestamp","level","fields":{"message",…}}`.
    Json,
}

/// Install the global subscriber. `default_level` applies unless `-v`, `-q` or `RUST_LOG` says otherwise.
pub fn init(verbose: u8, quiet: bool, format: LogFormat, default_level: &str) {
    let level = if quiet {
        "error"
    } else {
        match verbose {
            0 => default_level,
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}
