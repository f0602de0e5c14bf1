//! Resolving unique references against registries, in parallel with a bound, on one shared connection-reusing client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use futures::StreamExt as _;
use microplatform_common::reference::Reference;
use microplatform_common::registry::{ClientOptions, Platform, RegistryClient, RegistryError};

use crate::error::{Error, Location};
use crate::options::Options;

/// Why a reference has no digest.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The registry said no (or could not be reached).
    Registry(RegistryError),
    /// `--lock` has no entry.
    NotInLock,
}

impl Failure {
    /// The error for one occurrence.
    pub fn to_error(
        &self,
        at: Location,
        image: &str,
        r: &Reference,
        lock: Option<&PathBuf>,
    ) -> Error {
        match self {
            Failure::Registry(e) => Error::Resolve {
                at,
                image: image.to_string(),
                source: e.clone(),
            },
            Failure::NotInLock => Error::NotInLock {
                at,
                image: image.to_string(),
                reference: r.to_string(),
                lock: lock.cloned().unwrap_or_default(),
            },
        }
    }
}

/// Resolve references (each once), at most `--concurrency` at a time.
pub fn resolve_all(
    opts: &Options,
    refs: Vec<Reference>,
    platform: Option<&Platform>,
) -> Result<HashMap<String, Result<String, Failure>>, Error> {
    let client = RegistryClient::new(ClientOptions {
        insecure_registries: opts.insecure_registry.clone(),
        timeout: Duration::from_secs(opts.timeout.max(1)),
        connect_timeout: Duration::from_secs(opts.timeout.clamp(1, 10)),
        max_retries: opts.retries,
        ..ClientOptions::default()
    })
    .map_err(|source| Error::Client { source })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { source })?;
    let concurrency = usize::from(opts.concurrency);
    tracing::info!(count = refs.len(), concurrency, "resolving");
    let results = runtime.block_on(async {
        futures::stream::iter(refs)
            .map(|r| {
                let client = client.clone();
                let platform = platform.cloned();
                async move {
                    // Pinned references are only checked to exist.
                    let p = if r.digest().is_some() {
                        None
                    } else {
                        platform.as_ref()
                    };
                    let outcome = client.resolve(&r, p).await.map_err(Failure::Registry);
                    (r.to_string(), outcome)
                }
            })
            .buffer_unordered(concurrency)
            .collect::<HashMap<_, _>>()
            .await
    });
    Ok(results)
}
