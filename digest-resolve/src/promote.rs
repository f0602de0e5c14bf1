//! `--promote-to`: copy every image by digest into a release-candidate registry (blob mounts within one registry, streamed copies between registries) and its JSON report (`--promote-report`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt as _;
use microplatform_common::reference::Reference;
use microplatform_common::registry::{
    ClientOptions, Copier, CopyStats, Destination, RegistryClient, RegistryError,
};
use serde::{Deserialize, Serialize};

use crate::contract::SCHEMA_VERSION;
use crate::error::Error;
use crate::options::Options;

/// One image to promote: the reference as written (tag and/or digest) and its digest.
#[derive(Debug, Clone)]
pub struct Source {
    /// The reference as parsed from the input.
    pub reference: Reference,
    /// The digest it resolved to (or was pinned to).
    pub digest: String,
}

impl Source {
    /// The source, pinned: `registry/repo[:tag]@digest` (the tag as written, or the
    /// implicit `latest` of an unpinned reference).
    pub fn pinned(&self) -> Reference {
        let r = match self.reference.tag() {
            Some(t) => self
                .reference
                .with_tag(t)
                .unwrap_or_else(|_| self.reference.clone()),
            None => self.reference.clone(),
        };
        r.with_digest(&self.digest).unwrap_or(r)
    }
}

/// Where a source went.
#[derive(Debug, Clone)]
pub struct Promoted {
    /// The target, `RC[/PREFIX]/repo[:tag]@digest`.
    pub target: Reference,
}

/// Why a source was not promoted.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The target it was going to.
    pub target: Reference,
    /// The registry's error.
    pub error: RegistryError,
}

/// The text written for a promoted reference: the target, fully qualified, with its
/// tag unless `drop_tag`.
pub fn promoted_text(target: &Reference, drop_tag: bool) -> String {
    if drop_tag {
        target.without_tag().to_string()
    } else {
        target.to_string()
    }
}

/// `--promote-report`: what was copied.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteReport {
    /// Always 1.
    pub schema_version: u32,
    /// `--promote-to`, normalised (`REGISTRY[/PREFIX]`).
    pub destination: String,
    /// One entry per unique source reference, sorted by source.
    pub images: Vec<PromotedImage>,
    /// Sums over `images`.
    pub totals: Totals,
}

/// One promoted image.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromotedImage {
    /// The source, fully qualified and pinned (`reg.io/shop/api:v1@sha256:…`).
    pub source: String,
    /// The target, fully qualified and pinned (`rc.io/rc/shop/api:v1@sha256:…`).
    pub target: String,
    /// The manifest digest, identical at source and target.
    pub digest: String,
    /// The manifest's media type (an index or a single manifest).
    pub media_type: String,
    /// Whether the target tag was created or moved to `digest` (false without a tag).
    pub tag_updated: bool,
    /// Manifests written to the target (the image, an index's children).
    pub manifests_copied: u64,
    /// Manifests the target already had.
    pub manifests_present: u64,
    /// Blobs mounted from the source repository (same registry).
    pub blobs_mounted: u64,
    /// Blobs streamed from the source registry.
    pub blobs_copied: u64,
    /// Blobs the target already had (or another image of this run brought).
    pub blobs_present: u64,
    /// Blob bytes streamed through the tool.
    pub bytes_copied: u64,
    /// Sizes of the mounted blobs (not transferred).
    pub bytes_mounted: u64,
    /// Bytes of the manifests written.
    pub manifest_bytes: u64,
}

/// Sums over all images.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Number of images.
    pub images: u64,
    /// See [`PromotedImage`].
    pub manifests_copied: u64,
    /// See [`PromotedImage`].
    pub manifests_present: u64,
    /// See [`PromotedImage`].
    pub blobs_mounted: u64,
    /// See [`PromotedImage`].
    pub blobs_copied: u64,
    /// See [`PromotedImage`].
    pub blobs_present: u64,
    /// See [`PromotedImage`].
    pub bytes_copied: u64,
    /// See [`PromotedImage`].
    pub bytes_mounted: u64,
    /// See [`PromotedImage`].
    pub manifest_bytes: u64,
}

impl Totals {
    fn add(&mut self, s: &CopyStats) {
        self.images += 1;
        self.manifests_copied += s.manifests_copied;
        self.manifests_present += s.manifests_present;
        self.blobs_mounted += s.blobs_mounted;
        self.blobs_copied += s.blobs_copied;
        self.blobs_present += s.blobs_present;
        self.bytes_copied += s.bytes_copied;
        self.bytes_mounted += s.bytes_mounted;
        self.manifest_bytes += s.manifest_bytes;
    }
}

/// The targets of the sources (by key), or a usage error when two sources with
/// different digests would land on the same target tag.
pub fn plan(
    dest: &Destination,
    sources: &BTreeMap<String, Source>,
) -> Result<BTreeMap<String, Reference>, Vec<Error>> {
    let mut targets = BTreeMap::new();
    let mut by_tag: HashMap<String, (&str, &str)> = HashMap::new();
    let mut errors = Vec::new();
    for (key, s) in sources {
        let pinned = s.pinned();
        match dest.map(&pinned) {
            Ok(t) => {
                let tagged = t.without_digest().to_string();
                if t.explicit_tag().is_some()
                    && let Some((other, d)) = by_tag.insert(tagged.clone(), (key, &s.digest))
                    && d != s.digest
                {
                    errors.push(Error::Usage(format!(
                        "{other} and {key} would both be promoted to {tagged} with different digests"
                    )));
                }
                targets.insert(key.clone(), t);
            }
            Err(source) => errors.push(Error::PromoteTarget { source }),
        }
    }
    if errors.is_empty() {
        Ok(targets)
    } else {
        Err(errors)
    }
}

/// Copy every source to its target (at most `--concurrency` images at a time).
/// Returns per key the promotion or the registry error, and the report.
pub fn promote_all(
    opts: &Options,
    dest: &Destination,
    sources: &BTreeMap<String, Source>,
    targets: &BTreeMap<String, Reference>,
) -> Result<Outcome, Error> {
    let client = RegistryClient::new(ClientOptions {
        insecure_registries: opts.insecure_registry.clone(),
        // A blob copy is one request: the timeout is per request.
        timeout: Duration::from_secs(opts.timeout.max(1)),
        connect_timeout: Duration::from_secs(opts.timeout.clamp(1, 10)),
        max_retries: opts.retries,
        ..ClientOptions::default()
    })
    .map_err(|source| Error::Client { source })?;
    let copier = Copier::new(client, usize::from(opts.concurrency).min(8));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { source })?;
    tracing::info!(count = sources.len(), destination = %dest, "promoting");
    let copier = &copier;
    let results: Vec<(String, Reference, Reference, Result<_, RegistryError>)> =
        runtime.block_on(async {
            futures::stream::iter(sources.iter())
                .map(|(key, s)| async move {
                    let source = s.pinned();
                    let target = targets[key].clone();
                    let outcome = copier.copy_image(&source, &target).await;
                    (key.clone(), source, target, outcome)
                })
                .buffer_unordered(usize::from(opts.concurrency))
                .collect()
                .await
        });
    let mut out = HashMap::new();
    let mut images = Vec::new();
    let mut totals = Totals::default();
    for (key, source, target, outcome) in results {
        match outcome {
            Ok(c) => {
                tracing::info!(
                    source = %source, target = %target,
                    bytes_copied = c.stats.bytes_copied, blobs_mounted = c.stats.blobs_mounted,
                    "promoted"
                );
                totals.add(&c.stats);
                let s = c.stats;
                images.push(PromotedImage {
                    source: source.to_string(),
                    target: target.to_string(),
                    digest: c.digest,
                    media_type: c.media_type,
                    tag_updated: c.tag_updated,
                    manifests_copied: s.manifests_copied,
                    manifests_present: s.manifests_present,
                    blobs_mounted: s.blobs_mounted,
                    blobs_copied: s.blobs_copied,
                    blobs_present: s.blobs_present,
                    bytes_copied: s.bytes_copied,
                    bytes_mounted: s.bytes_mounted,
                    manifest_bytes: s.manifest_bytes,
                });
                out.insert(key, Ok(Promoted { target }));
            }
            Err(error) => {
                out.insert(key, Err(Failure { target, error }));
            }
        }
    }
    images.sort_by(|a, b| a.source.cmp(&b.source));
    Ok((
        out,
        PromoteReport {
            schema_version: SCHEMA_VERSION,
            destination: dest.to_string(),
            images,
            totals,
        },
    ))
}

/// What `--promote-to` did: per source key, the promotion or its error; and the report.
pub type Outcome = (HashMap<String, Result<Promoted, Failure>>, PromoteReport);

/// The promotion step of a run: `None` without `--promote-to`, or when errors were
/// already found (they are reported and nothing is copied). Sources are the
/// occurrences to resolve (with their resolved digest) and the pinned ones.
pub(crate) fn run_step(
    opts: &Options,
    occurrences: &[crate::Occurrence],
    resolved: &HashMap<String, Result<String, crate::resolve::Failure>>,
    errors: &[Error],
) -> Result<Option<Outcome>, Vec<Error>> {
    let Some(to) = &opts.promote_to else {
        return Ok(None);
    };
    let dest = Destination::parse(to).map_err(|source| vec![Error::PromoteTo { source }])?;
    if !errors.is_empty() {
        return Ok(None);
    }
    let mut sources = BTreeMap::new();
    for o in occurrences {
        let (p, digest) = match &o.plan {
            crate::Plan::Pinned(p) => match p.r.digest() {
                Some(d) => (p, d.to_string()),
                None => continue,
            },
            crate::Plan::Resolve(p) => match resolved.get(&p.key) {
                Some(Ok(d)) => (p, d.clone()),
                // Reported by the caller; nothing is copied.
                _ => return Ok(None),
            },
            crate::Plan::Skip | crate::Plan::Failed => continue,
        };
        if opts.verify_pinned && matches!(resolved.get(&p.key), Some(Err(_))) {
            return Ok(None);
        }
        sources.entry(p.key.clone()).or_insert_with(|| Source {
            reference: p.r.clone(),
            digest,
        });
    }
    let targets = plan(&dest, &sources)?;
    promote_all(opts, &dest, &sources, &targets)
        .map(Some)
        .map_err(|e| vec![e])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_keeps_or_drops_the_tag() {
        let d = format!("sha256:{}", "c".repeat(64));
        let t = Reference::parse(&format!("rc.io/rc/shop/api:v1@{d}")).unwrap();
        assert_eq!(
            promoted_text(&t, false),
            format!("rc.io/rc/shop/api:v1@{d}")
        );
        assert_eq!(promoted_text(&t, true), format!("rc.io/rc/shop/api@{d}"));
    }

    #[test]
    fn implicit_latest_becomes_the_target_tag_and_collisions_are_refused() {
        let d1 = format!("sha256:{}", "1".repeat(64));
        let d2 = format!("sha256:{}", "2".repeat(64));
        let dest = Destination::parse("rc.io/rc").unwrap();
        let src = |r: &str, d: &str| Source {
            reference: Reference::parse(r).unwrap(),
            digest: d.to_string(),
        };
        let mut sources = BTreeMap::new();
        sources.insert("a".to_string(), src("reg.io/shop/api", &d1));
        sources.insert("b".to_string(), src(&format!("reg.io/shop/web@{d2}"), &d2));
        let t = plan(&dest, &sources).unwrap();
        assert_eq!(t["a"].to_string(), format!("rc.io/rc/shop/api:latest@{d1}"));
        assert_eq!(t["b"].to_string(), format!("rc.io/rc/shop/web@{d2}"));
        sources.insert("c".to_string(), src("other.io/shop/api:latest", &d2));
        let e = plan(&dest, &sources).unwrap_err();
        assert!(e[0].to_string().contains("both be promoted"), "{}", e[0]);
    }
}
