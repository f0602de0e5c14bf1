//! Resolve every `host/name:tag` read from stdin to its manifest digest through
//! oci-client's `fetch_manifest_digest` (plain HTTP, anonymous), with a fixed
//! concurrency on one client, and report the time: the oci-client figure of
//! `scripts/bench/digest-resolve.sh`.
//!
//! Usage: `oci-client-floor CONCURRENCY < refs.txt`

use futures::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

#[tokio::main]
async fn main() {
    let concurrency: usize = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    let input = std::io::read_to_string(std::io::stdin()).expect("stdin");
    let refs: Vec<Reference> = input
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().expect("image reference"))
        .collect();
    // The workspace's provider (ring); post-quantum key exchange is beside the point on plain HTTP.
    #[allow(deprecated)]
    rustls::crypto::ring::default_provider()
        .install_default()
        .expect("crypto provider");
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let start = std::time::Instant::now();
    let ok = futures::stream::iter(refs.iter())
        .map(|r| {
            let client = &client;
            async move {
                client
                    .fetch_manifest_digest(r, &RegistryAuth::Anonymous)
                    .await
                    .is_ok_and(|d| d.starts_with("sha256:"))
            }
        })
        .buffer_unordered(concurrency)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await;
    eprintln!(
        "oci-client-floor: {ok}/{} digests in {:.3}s",
        refs.len(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ok, refs.len(), "some digests failed");
}
