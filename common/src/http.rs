//! HTTP clients of every tool: one TLS provider (rustls with ring), installed once, and the builders that use it.

use std::sync::Once;

/// Install rustls' ring provider as the process default (idempotent).
///
/// reqwest is built without a provider of its own (`rustls-no-provider`), so
/// every client must be made after this; the builders below call it.
pub fn install_tls_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first: that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An async client builder with the TLS provider installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// A reqwest error's whole cause chain on one line (`error sending request: client error
/// (Connect): tcp connect error: Connection refused (os error 111)`), each cause once, and
/// `(timed out)` when it timed out. The URL is in it only if the error still has one: callers
/// that name the URL themselves pass `e.without_url()`.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        src = c.source();
    }
    if e.is_timeout() && !s.contains("timed out") {
        s.push_str(" (timed out)");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn builds_a_client_twice() {
        super::client_builder().build().expect("first client");
        super::client_builder().build().expect("second client");
    }
}
