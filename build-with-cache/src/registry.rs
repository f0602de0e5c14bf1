//! Registry operations on top of the shared `RegistryClient`: parallel existence checks, the image identity of a cached image (layers and creation time from its config), and the registry-side tag copy (manifest by digest, no layer download).

use std::collections::BTreeMap;

use microplatform_common::reference::Reference;
use microplatform_common::registry::{ClientOptions, Copier, RegistryClient, RegistryError};

/// What identifies an image's content for a cache-hit decision: the layer
/// diff ids, the creation time and the labels of its config (image ids
/// differ between builders only by cache metadata, which these leave out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKey {
    /// `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// `created`.
    pub created: String,
    /// `config.Labels` (the content key label among them).
    pub labels: BTreeMap<String, String>,
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-01-02T03:04:05.123Z`).
#[allow(clippy::many_single_char_names)]
fn epoch_seconds(t: &str) -> Option<f64> {
    let t = t.strip_suffix('Z')?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut hms = time.split(':');
    let (h, min) = (
        hms.next()?.parse::<i64>().ok()?,
        hms.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = hms.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + h * 3_600 + min * 60) as f64 + sec)
}

impl ImageKey {
    /// Whether two images are the same build result: the same layers, and
    /// creation times equal or less than a second apart (`BuildKit` stores
    /// layer times in its inline cache metadata a little later than the
    /// image history; a step that really ran again is much later).
    #[must_use]
    pub fn matches(&self, other: &ImageKey) -> bool {
        if self.diff_ids != other.diff_ids || self.labels != other.labels {
            return false;
        }
        if self.created == other.created {
            return true;
        }
        match (epoch_seconds(&self.created), epoch_seconds(&other.created)) {
            (Some(a), Some(b)) => (a - b).abs() < 1.0,
            _ => false,
        }
    }

    /// Read the key from an image config JSON (OCI or Docker).
    #[must_use]
    pub fn from_config(config: &serde_json::Value) -> Option<Self> {
        let diff_ids = config
            .pointer("/rootfs/diff_ids")?
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let created = config.get("created")?.as_str()?.to_string();
        let labels = config
            .pointer("/config/Labels")
            .and_then(|l| l.as_object())
            .map(|l| {
                l.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        Some(Self {
            diff_ids,
            created,
            labels,
        })
    }
}

/// A registry client for this tool.
#[derive(Clone)]
pub struct Registry {
    client: RegistryClient,
}

fn parse(r: &str) -> Result<Reference, RegistryError> {
    Reference::parse(r).map_err(|source| RegistryError::Reference {
        url: r.to_string(),
        source,
    })
}

/// A registry document that should be JSON and is not.
fn not_json(url: &str, what: &str, source: serde_json::Error) -> RegistryError {
    RegistryError::Json {
        url: url.to_string(),
        what: what.to_string(),
        source: std::sync::Arc::new(source),
    }
}

impl Registry {
    /// A client with short timeouts and few retries (cache access must not stall builds).
    pub fn new() -> Result<Self, RegistryError> {
        let opts = ClientOptions {
            timeout: std::time::Duration::from_secs(30),
            connect_timeout: std::time::Duration::from_secs(3),
            max_retries: 1,
            retry_base_delay: std::time::Duration::from_millis(100),
            max_retry_delay: std::time::Duration::from_secs(1),
            ..ClientOptions::default()
        };
        Ok(Self {
            client: RegistryClient::new(opts)?,
        })
    }

    /// The manifest digest of a ref, `None` when it does not exist.
    pub async fn head(&self, r: &str) -> Result<Option<String>, RegistryError> {
        let reference = parse(r)?;
        Ok(self
            .client
            .head_manifest(&reference)
            .await?
            .map(|i| i.digest))
    }

    /// The digest an image reference resolves to (the index digest for a
    /// multi-platform image); a pinned digest is checked to exist.
    pub async fn resolve(&self, r: &str) -> Result<String, RegistryError> {
        self.client.resolve(&parse(r)?, None).await
    }

    /// HEAD many refs in parallel: ref -> digest (missing refs absent) or the error.
    pub async fn head_all(
        &self,
        refs: &[String],
    ) -> BTreeMap<String, Result<Option<String>, RegistryError>> {
        let futs = refs
            .iter()
            .map(|r| async move { (r.clone(), self.head(r).await) });
        futures::future::join_all(futs).await.into_iter().collect()
    }

    /// The content key of the image a ref names (single-platform manifests only).
    pub async fn image_key(&self, r: &str) -> Result<Option<ImageKey>, RegistryError> {
        let reference = parse(r)?;
        let (body, _, _) = self.client.get_manifest(&reference).await?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| not_json(r, "manifest is not JSON", e))?;
        let Some(config_digest) = manifest.pointer("/config/digest").and_then(|d| d.as_str())
        else {
            return Ok(None);
        };
        let config = self.client.get_blob(&reference, config_digest).await?;
        let config: serde_json::Value = serde_json::from_slice(&config)
            .map_err(|e| not_json(r, "image config is not JSON", e))?;
        Ok(ImageKey::from_config(&config))
    }

    /// Copy the image `src` names to `dst` registry-side, without pulling it
    /// through the builder; returns the digest. Within one repository this is
    /// the manifest's GET and PUT by digest. Into another repository the
    /// config and layers go first: mounted from the source repository on the
    /// same registry (`POST …/blobs/uploads/?mount=&from=`), streamed from
    /// another registry, skipped where already present.
    pub async fn copy(&self, src: &str, dst: &str) -> Result<String, RegistryError> {
        let s = parse(src)?;
        let d = parse(dst)?;
        if s.registry() == d.registry() && s.repository() == d.repository() {
            let (body, media_type, digest) = self.client.get_manifest(&s).await?;
            let put = self.client.put_manifest(&d, &body, &media_type).await?;
            debug_assert_eq!(put, digest);
            return Ok(put);
        }
        let digest = match s.digest() {
            Some(digest) => digest.to_string(),
            None => self.client.resolve(&s, None).await?,
        };
        let pinned = s
            .with_digest(&digest)
            .map_err(|source| RegistryError::Reference {
                url: src.to_string(),
                source,
            })?;
        let copied = Copier::new(self.client.clone(), COPY_CONCURRENCY)
            .copy_image(&pinned, &d)
            .await?;
        tracing::debug!(
            "{src} -> {dst}: {} blobs mounted, {} copied, {} present",
            copied.stats.blobs_mounted,
            copied.stats.blobs_copied,
            copied.stats.blobs_present
        );
        Ok(copied.digest)
    }
}

/// Blobs of one image transferred at a time by a cross-repository copy.
const COPY_CONCURRENCY: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_within_a_second() {
        let k = |c: &str| ImageKey {
            diff_ids: vec!["sha256:a".into()],
            created: c.into(),
            labels: BTreeMap::new(),
        };
        assert_eq!(epoch_seconds("1970-01-02T00:00:01Z"), Some(86_401.0));
        assert!(k("2026-11-25T19:30:23.188607665Z").matches(&k("2026-11-25T19:30:23.189465587Z")));
        assert!(!k("2026-11-25T19:30:23.1Z").matches(&k("2026-11-25T19:30:25.1Z")));
        let mut other = k("2026-11-25T19:30:23.1Z");
        other.diff_ids.push("sha256:b".into());
        assert!(!k("2026-11-25T19:30:23.1Z").matches(&other));
        let mut labelled = k("2026-11-25T19:30:23.1Z");
        labelled.labels.insert("a".into(), "1".into());
        assert!(!k("2026-11-25T19:30:23.1Z").matches(&labelled));
        let cfg = serde_json::json!({"created": "2026-11-25T19:30:23.1Z",
            "rootfs": {"diff_ids": ["sha256:a"]}, "config": {"Labels": {"a": "1"}}});
        assert_eq!(ImageKey::from_config(&cfg), Some(labelled));
        let cfg = serde_json::json!({"created": "2026-11-25T19:30:23.1Z",
            "rootfs": {"diff_ids": ["sha256:a"]}, "config": {"Labels": null}});
        assert_eq!(
            ImageKey::from_config(&cfg),
            Some(k("2026-11-25T19:30:23.1Z"))
        );
    }
}
