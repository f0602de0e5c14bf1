//! Copying images by digest between repositories and registries, without an engine: cross-repository blob mounts within one registry, streamed blob copies between registries, manifests (an index's children first) with their exact bytes.
//!
//! - Whatever the target already has is skipped: a manifest found by digest (`HEAD`) is
//!   complete (the registry checked its blobs and children when it was pushed), and a
//!   blob found by `HEAD` is not transferred. A second copy moves no bytes.
//! - Same registry host: `POST /v2/<target>/blobs/uploads/?mount=<digest>&from=<source>`
//!   with a token scope of `repository:<target>:pull,push repository:<source>:pull`.
//!   `201 Created` means mounted; `202 Accepted` means the registry refused to mount and
//!   opened an upload session instead, which is then filled by a streamed copy.
//! - Between registries (or after a refused mount): `GET` the source blob and `PUT` it
//!   to the upload session as the body is read (a monolithic upload whose body is a
//!   stream, with `Content-Length` when known): the blob is never held in memory. A
//!   failed transfer is started again (new session) up to the client's retry count.
//!   A blob request may take the client's timeout plus one second per megabyte.
//! - Manifests are `PUT` by digest with the bytes and media type the source serves, so
//!   the digest is the same; an index's child manifests (and their config and layers)
//!   are copied before the index. Foreign (non-distributable) layers with `urls` are
//!   not copied, as registries do not require them.
//! - In one [`Copier`], a blob needed by several images of the same target repository
//!   is transferred once (the first image to need it counts it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::{StreamExt as _, TryStreamExt as _};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::client::{error_message, header_str};
use super::{DOCKER_MANIFEST, OCI_MANIFEST, RegistryClient, RegistryError, is_index};
use crate::reference::Reference;

/// How deep indexes may nest (an index of indexes of manifests is 2).
const MAX_DEPTH: usize = 4;

/// What happened to one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobTransfer {
    /// The target already had it.
    Present,
    /// Mounted from the source repository of the same registry (no bytes moved).
    Mounted,
    /// Copied: this many bytes streamed from the source to the target.
    Copied(u64),
}

/// The result of a mount request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// `201 Created`: the blob is now in the target repository.
    Mounted,
    /// `202 Accepted`: not mounted; an upload session was opened at this URL.
    Refused {
        /// The upload session's URL (absolute).
        location: String,
    },
}

/// Counts of one copy (one image with its children, or a sum of images).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Manifests (the image, an index's children) `PUT` to the target.
    pub manifests_copied: u64,
    /// Manifests the target already had.
    pub manifests_present: u64,
    /// Blobs mounted from the source repository.
    pub blobs_mounted: u64,
    /// Blobs streamed from the source.
    pub blobs_copied: u64,
    /// Blobs the target already had (or that another image of the run brought).
    pub blobs_present: u64,
    /// Blob bytes streamed from the source to the target.
    pub bytes_copied: u64,
    /// Sizes of the mounted blobs (not transferred).
    pub bytes_mounted: u64,
    /// Bytes of the manifests `PUT` (copied manifests and tag updates).
    pub manifest_bytes: u64,
}

impl std::ops::AddAssign for CopyStats {
    fn add_assign(&mut self, o: Self) {
        self.manifests_copied += o.manifests_copied;
        self.manifests_present += o.manifests_present;
        self.blobs_mounted += o.blobs_mounted;
        self.blobs_copied += o.blobs_copied;
        self.blobs_present += o.blobs_present;
        self.bytes_copied += o.bytes_copied;
        self.bytes_mounted += o.bytes_mounted;
        self.manifest_bytes += o.manifest_bytes;
    }
}

/// One copied image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedImage {
    /// The manifest digest (the same at source and target).
    pub digest: String,
    /// The top manifest's media type.
    pub media_type: String,
    /// Whether the target tag was created or moved to the digest.
    pub tag_updated: bool,
    /// What was transferred.
    pub stats: CopyStats,
}

/// A blob as a manifest describes it.
struct BlobRef {
    digest: String,
    size: Option<u64>,
}

type BlobCell = Arc<tokio::sync::OnceCell<Result<BlobTransfer, RegistryError>>>;

fn protocol(url: &str, message: impl Into<String>) -> RegistryError {
    RegistryError::Protocol {
        url: url.to_string(),
        message: message.into(),
    }
}

/// A reference derived from `r` that is not valid.
fn reference_error(r: &Reference, source: crate::reference::ReferenceError) -> RegistryError {
    RegistryError::Reference {
        url: r.to_string(),
        source,
    }
}

/// `url` with query parameters appended.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> Result<String, RegistryError> {
    let mut u = url::Url::parse(url).map_err(|source| RegistryError::Url {
        url: url.to_string(),
        what: "invalid URL".into(),
        source,
    })?;
    {
        let mut q = u.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Ok(u.to_string())
}

/// `repository:<name>:<actions>`.
fn scope(r: &Reference, actions: &str) -> String {
    format!("repository:{}:{actions}", r.repository())
}

impl RegistryClient {
    fn blob_url(&self, r: &Reference, digest: &str) -> String {
        format!("{}/v2/{}/blobs/{digest}", self.base_url(r), r.repository())
    }

    /// The time allowed for one blob request, body included: the client's
    /// per-request timeout plus one second per megabyte (an hour when the size
    /// is unknown).
    fn blob_timeout(&self, size: Option<u64>) -> std::time::Duration {
        self.options().timeout
            + size.map_or(std::time::Duration::from_secs(3600), |n| {
                std::time::Duration::from_secs(n / 1_000_000)
            })
    }

    /// An upload `Location` made absolute against the registry's base URL.
    fn upload_location(
        &self,
        r: &Reference,
        url: &str,
        location: &str,
    ) -> Result<String, RegistryError> {
        let base_url = self.base_url(r);
        let base = url::Url::parse(&base_url).map_err(|source| RegistryError::Url {
            url: url.to_string(),
            what: format!("invalid base URL {base_url:?}"),
            source,
        })?;
        base.join(location)
            .map(String::from)
            .map_err(|source| RegistryError::Url {
                url: url.to_string(),
                what: format!("invalid upload Location {location:?}"),
                source,
            })
    }

    /// Ask the registry to mount `digest` from `source_repository` into the target's
    /// repository (same registry): `POST /v2/<target>/blobs/uploads/?mount=&from=`.
    pub async fn mount_blob(
        &self,
        target: &Reference,
        source_repository: &str,
        digest: &str,
    ) -> Result<Mount, RegistryError> {
        let url = with_query(
            &format!(
                "{}/v2/{}/blobs/uploads/",
                self.base_url(target),
                target.repository()
            ),
            &[("mount", digest), ("from", source_repository)],
        )?;
        let scopes = format!(
            "{} repository:{source_repository}:pull",
            scope(target, "pull,push")
        );
        let resp = self
            .send_scoped(
                target,
                &Method::POST,
                &url,
                &scopes,
                &HeaderMap::new(),
                None,
                None,
            )
            .await?;
        let status = resp.status();
        match status {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => {
                let location = header_str(&resp, LOCATION.as_str())
                    .ok_or_else(|| protocol(&url, "202 to a mount without a Location"))?;
                Ok(Mount::Refused {
                    location: self.upload_location(target, &url, &location)?,
                })
            }
            _ => {
                let body = resp.bytes().await.unwrap_or_default();
                Err(protocol(
                    &url,
                    format!("mount blob: {}", error_message(status, &body).0),
                ))
            }
        }
    }

    /// Open an upload session in the target's repository: its absolute URL.
    pub async fn start_upload(&self, target: &Reference) -> Result<String, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/uploads/",
            self.base_url(target),
            target.repository()
        );
        let resp = self
            .send_scoped(
                target,
                &Method::POST,
                &url,
                &scope(target, "pull,push"),
                &HeaderMap::new(),
                None,
                None,
            )
            .await?;
        let status = resp.status();
        if status != StatusCode::ACCEPTED {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(protocol(
                &url,
                format!("start upload: {}", error_message(status, &body).0),
            ));
        }
        let location = header_str(&resp, LOCATION.as_str())
            .ok_or_else(|| protocol(&url, "upload started without a Location"))?;
        self.upload_location(target, &url, &location)
    }

    /// One streamed transfer: `GET` the source blob and `PUT` it to the session at
    /// `location` as it arrives. Returns the bytes streamed.
    async fn stream_blob_once(
        &self,
        source: &Reference,
        target: &Reference,
        digest: &str,
        size: Option<u64>,
        location: &str,
    ) -> Result<u64, RegistryError> {
        let get_url = self.blob_url(source, digest);
        let resp = self
            .send_scoped(
                source,
                &Method::GET,
                &get_url,
                &scope(source, "pull"),
                &HeaderMap::new(),
                None,
                Some(self.blob_timeout(size)),
            )
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            let (message, code) = error_message(status, &body);
            if status == StatusCode::NOT_FOUND {
                return Err(RegistryError::NotFound {
                    url: get_url,
                    what: format!("blob {digest}"),
                    code,
                });
            }
            return Err(protocol(&get_url, format!("GET blob: {message}")));
        }
        let length = resp.content_length().or(size);
        let counter = Arc::new(AtomicU64::new(0));
        let c2 = counter.clone();
        let stream = resp.bytes_stream().inspect_ok(move |chunk| {
            c2.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        });
        let put_url = with_query(location, &[("digest", digest)])?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        if let Some(n) = length {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(n));
        }
        let resp = self
            .send_once(
                target,
                &Method::PUT,
                &put_url,
                &scope(target, "pull,push"),
                &headers,
                reqwest::Body::wrap_stream(stream),
                self.blob_timeout(length),
            )
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            let message = format!("PUT blob {digest}: {}", error_message(status, &body).0);
            return Err(if status.is_server_error() {
                RegistryError::Network {
                    url: put_url,
                    message,
                }
            } else {
                protocol(&put_url, message)
            });
        }
        Ok(counter.load(Ordering::Relaxed))
    }

    /// Stream a blob from the source into the target, starting again (with a new
    /// upload session) on network failures, up to the retry count. `location` is an
    /// already opened session (after a refused mount).
    pub async fn stream_blob(
        &self,
        source: &Reference,
        target: &Reference,
        digest: &str,
        size: Option<u64>,
        mut location: Option<String>,
    ) -> Result<u64, RegistryError> {
        let mut attempt = 0;
        loop {
            let loc = match location.take() {
                Some(l) => l,
                None => self.start_upload(target).await?,
            };
            match self
                .stream_blob_once(source, target, digest, size, &loc)
                .await
            {
                Err(e) if e.is_network() && attempt < self.max_retries() => {
                    tracing::debug!(
                        url = e.url(),
                        attempt,
                        "blob transfer failed, starting again: {e}"
                    );
                    self.wait_before_retry(attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Bring one blob into the target repository: nothing if it is there, a mount
    /// from the source repository on the same registry (a streamed copy if the
    /// registry refuses), a streamed copy between registries.
    pub async fn copy_blob(
        &self,
        source: &Reference,
        target: &Reference,
        digest: &str,
        size: Option<u64>,
    ) -> Result<BlobTransfer, RegistryError> {
        if self.blob_exists(target, digest).await? {
            return Ok(BlobTransfer::Present);
        }
        let mut location = None;
        if source.api_host() == target.api_host() && source.repository() != target.repository() {
            match self.mount_blob(target, source.repository(), digest).await? {
                Mount::Mounted => return Ok(BlobTransfer::Mounted),
                Mount::Refused { location: l } => {
                    tracing::debug!(digest, target = %target.name(), "mount refused (202); copying");
                    location = Some(l);
                }
            }
        }
        let n = self
            .stream_blob(source, target, digest, size, location)
            .await?;
        Ok(BlobTransfer::Copied(n))
    }
}

/// Copies images by digest, sharing blob transfers between the images of one run.
pub struct Copier {
    client: RegistryClient,
    blob_concurrency: usize,
    blobs: Mutex<HashMap<(String, String), BlobCell>>,
}

impl std::fmt::Debug for Copier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Copier")
            .field("blob_concurrency", &self.blob_concurrency)
            .finish_non_exhaustive()
    }
}

impl Copier {
    /// A copier over `client`, transferring at most `blob_concurrency` blobs of one
    /// manifest at a time.
    pub fn new(client: RegistryClient, blob_concurrency: usize) -> Self {
        Self {
            client,
            blob_concurrency: blob_concurrency.max(1),
            blobs: Mutex::new(HashMap::new()),
        }
    }

    /// Copy the image `source` names by digest (it must be pinned) to `target`'s
    /// repository, under the same digest; when `target` has an explicit tag, that
    /// tag is made to name the digest too.
    pub async fn copy_image(
        &self,
        source: &Reference,
        target: &Reference,
    ) -> Result<CopiedImage, RegistryError> {
        let digest = source
            .digest()
            .ok_or_else(|| {
                protocol(
                    &source.to_string(),
                    "a copy needs a reference pinned by digest",
                )
            })?
            .to_string();
        let src = source
            .without_tag()
            .with_digest(&digest)
            .map_err(|e| reference_error(source, e))?;
        let dst = target
            .without_tag()
            .with_digest(&digest)
            .map_err(|e| reference_error(target, e))?;
        let mut stats = CopyStats::default();
        let media_type = if let Some(info) = self.client.head_manifest(&dst).await? {
            stats.manifests_present += 1;
            info.media_type
        } else {
            let (s, mt) = self.copy_manifest(&src, &dst, 0).await?;
            stats += s;
            mt
        };
        let mut tag_updated = false;
        if let Some(tag) = target.explicit_tag() {
            let tagged = target
                .without_digest()
                .with_tag(tag)
                .map_err(|e| reference_error(target, e))?;
            let current = self.client.head_manifest(&tagged).await?;
            if current.as_ref().is_none_or(|i| i.digest != digest) {
                let (bytes, mt, _) = self.client.get_manifest(&dst).await?;
                self.client.put_manifest(&tagged, &bytes, &mt).await?;
                stats.manifest_bytes += bytes.len() as u64;
                tag_updated = true;
            }
        }
        Ok(CopiedImage {
            digest,
            media_type,
            tag_updated,
            stats,
        })
    }

    /// Copy the manifest `src` names (pinned) to `dst` (pinned to the same digest),
    /// children and blobs first. Returns the counts and the media type.
    fn copy_manifest<'a>(
        &'a self,
        src: &'a Reference,
        dst: &'a Reference,
        depth: usize,
    ) -> futures::future::BoxFuture<'a, Result<(CopyStats, String), RegistryError>> {
        Box::pin(async move {
            let url = self.client.manifest_url(src, src.manifest_reference());
            let (bytes, served_type, _) = self.client.get_manifest(src).await?;
            let doc: Value = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::json(&url, "manifest is not JSON", e))?;
            let doc_type = doc.get("mediaType").and_then(Value::as_str).unwrap_or("");
            let media_type = if served_type.is_empty() || served_type == "application/json" {
                doc_type.to_string()
            } else {
                served_type
            };
            let mut stats = CopyStats::default();
            let children = doc.get("manifests").and_then(Value::as_array);
            if is_index(&media_type) || (media_type.is_empty() && children.is_some()) {
                if depth >= MAX_DEPTH {
                    return Err(protocol(&url, "indexes nested too deep"));
                }
                let digests: Vec<String> = children
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.get("digest").and_then(Value::as_str).map(str::to_string))
                    .collect();
                let results: Vec<Result<CopyStats, RegistryError>> = futures::stream::iter(digests)
                    .map(|d| {
                        let url = &url;
                        async move {
                            let c_src =
                                src.with_digest(&d)
                                    .map_err(|source| RegistryError::Reference {
                                        url: url.clone(),
                                        source,
                                    })?;
                            let c_dst =
                                dst.with_digest(&d)
                                    .map_err(|source| RegistryError::Reference {
                                        url: url.clone(),
                                        source,
                                    })?;
                            if self.client.head_manifest(&c_dst).await?.is_some() {
                                return Ok(CopyStats {
                                    manifests_present: 1,
                                    ..CopyStats::default()
                                });
                            }
                            self.copy_manifest(&c_src, &c_dst, depth + 1)
                                .await
                                .map(|(s, _)| s)
                        }
                    })
                    .buffer_unordered(self.blob_concurrency)
                    .collect()
                    .await;
                for r in results {
                    stats += r?;
                }
            } else {
                let media_type = if media_type.is_empty() {
                    OCI_MANIFEST.to_string()
                } else {
                    media_type.clone()
                };
                if media_type != OCI_MANIFEST
                    && media_type != DOCKER_MANIFEST
                    && doc.get("layers").is_none()
                    && doc.get("config").is_none()
                {
                    return Err(protocol(
                        &url,
                        format!("unsupported manifest media type {media_type:?}"),
                    ));
                }
                let blobs = blob_refs(&doc);
                let results: Vec<Result<CopyStats, RegistryError>> = futures::stream::iter(blobs)
                    .map(|b| self.blob(src, dst, b))
                    .buffer_unordered(self.blob_concurrency)
                    .collect()
                    .await;
                for r in results {
                    stats += r?;
                }
            }
            if media_type.is_empty() {
                return Err(protocol(&url, "manifest has no media type"));
            }
            self.client.put_manifest(dst, &bytes, &media_type).await?;
            stats.manifests_copied += 1;
            stats.manifest_bytes += bytes.len() as u64;
            Ok((stats, media_type))
        })
    }

    /// One blob, transferred at most once per target repository in this copier.
    async fn blob(
        &self,
        src: &Reference,
        dst: &Reference,
        b: BlobRef,
    ) -> Result<CopyStats, RegistryError> {
        let key = (dst.name(), b.digest.clone());
        let cell = {
            let mut map = self.blobs.lock().expect("blobs lock");
            map.entry(key).or_default().clone()
        };
        let mine = AtomicBool::new(false);
        let result = cell
            .get_or_init(|| async {
                mine.store(true, Ordering::Relaxed);
                self.client.copy_blob(src, dst, &b.digest, b.size).await
            })
            .await
            .clone()?;
        let mut s = CopyStats::default();
        if !mine.load(Ordering::Relaxed) {
            s.blobs_present = 1;
            return Ok(s);
        }
        match result {
            BlobTransfer::Present => s.blobs_present = 1,
            BlobTransfer::Mounted => {
                s.blobs_mounted = 1;
                s.bytes_mounted = b.size.unwrap_or(0);
            }
            BlobTransfer::Copied(n) => {
                s.blobs_copied = 1;
                s.bytes_copied = n;
            }
        }
        Ok(s)
    }
}

/// The config and layers of an image manifest (foreign layers with `urls` left out).
fn blob_refs(doc: &Value) -> Vec<BlobRef> {
    let one = |d: &Value| -> Option<BlobRef> {
        let digest = d.get("digest")?.as_str()?.to_string();
        let media_type = d.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let foreign = (media_type.contains("foreign") || media_type.contains("nondistributable"))
            && d.get("urls")
                .and_then(Value::as_array)
                .is_some_and(|u| !u.is_empty());
        (!foreign).then(|| BlobRef {
            digest,
            size: d.get("size").and_then(Value::as_u64),
        })
    };
    let mut out: Vec<BlobRef> = doc.get("config").and_then(one).into_iter().collect();
    for key in ["layers", "blobs"] {
        out.extend(
            doc.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(one),
        );
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|b| seen.insert(b.digest.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_refs_are_config_and_layers_without_foreign_ones_or_repeats() {
        let doc: Value = serde_json::from_str(
            r#"{"config": {"digest": "sha256:c", "size": 10},
                "layers": [
                  {"digest": "sha256:l1", "size": 100},
                  {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                   "digest": "sha256:win", "size": 9, "urls": ["https://example.com/l"]},
                  {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                   "digest": "sha256:kept"},
                  {"digest": "sha256:l1", "size": 100}
                ]}"#,
        )
        .unwrap();
        let got: Vec<(String, Option<u64>)> = blob_refs(&doc)
            .into_iter()
            .map(|b| (b.digest, b.size))
            .collect();
        assert_eq!(
            got,
            vec![
                ("sha256:c".into(), Some(10)),
                ("sha256:l1".into(), Some(100)),
                ("sha256:kept".into(), None),
            ]
        );
    }

    #[test]
    fn stats_add_up() {
        let mut a = CopyStats {
            blobs_copied: 1,
            bytes_copied: 5,
            ..CopyStats::default()
        };
        a += CopyStats {
            blobs_mounted: 2,
            bytes_mounted: 7,
            manifests_copied: 1,
            ..CopyStats::default()
        };
        assert_eq!(
            (
                a.blobs_copied,
                a.bytes_copied,
                a.blobs_mounted,
                a.bytes_mounted,
                a.manifests_copied
            ),
            (1, 5, 2, 7, 1)
        );
    }
}
