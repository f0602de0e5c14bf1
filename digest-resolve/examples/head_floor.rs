//! The HTTP floor for the benchmark: send `HEAD /v2/<name>/manifests/<tag>` for every reference read from stdin
//! (one `host/name:tag` per line) with a fixed concurrency on one connection-reusing client, and nothing else.
//!
//! Usage: `head_floor CONCURRENCY < refs.txt`

use futures::StreamExt as _;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

fn main() {
    let concurrency: usize = std::env::args()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    let input = std::io::read_to_string(std::io::stdin()).expect("stdin");
    let urls: Vec<String> = input
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (host, rest) = l.split_once('/').expect("host/name:tag");
            let (name, tag) = rest.rsplit_once(':').expect("name:tag");
            format!("http://{host}/v2/{name}/manifests/{tag}")
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = microplatform_common::http::client_builder()
        .build()
        .expect("client");
    let start = std::time::Instant::now();
    let ok = rt.block_on(async {
        futures::stream::iter(urls.iter())
            .map(|u| {
                let c = client.clone();
                async move {
                    let r = c
                        .head(u)
                        .header("accept", ACCEPT)
                        .send()
                        .await
                        .expect("HEAD");
                    r.status().is_success() && r.headers().contains_key("docker-content-digest")
                }
            })
            .buffer_unordered(concurrency)
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await
    });
    eprintln!(
        "head_floor: {ok}/{} HEADs ok in {:.3}s",
        urls.len(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(ok, urls.len(), "some HEADs failed");
}
