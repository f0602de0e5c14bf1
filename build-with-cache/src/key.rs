//! The content key: the hash of everything a build's result depends on (sources, Dockerfile, resolved external images, build args, target, platform) that decides "this image already exists, skip the build".

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The domain string: the first field of the hashed document.
pub const DOMAIN: &str = "dev.microplatform.build-with-cache.content-key";
/// The version of the encoding (bumped when the rule changes).
pub const VERSION: u32 = 1;
/// The image label that carries the key.
pub const LABEL: &str = "dev.microplatform.content-key";

/// Where the sources' hash comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourcesKind {
    /// `--source-hash` (e.g. monobuild's Merkle hash of the component and its dependencies).
    SourceHash,
    /// The build context's own hash, honouring `.dockerignore`.
    Context,
}

/// The sources' hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sources {
    /// Where it comes from.
    pub kind: SourcesKind,
    /// The hash.
    pub hash: String,
}

/// Everything the key covers, in the order it is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInputs {
    /// [`DOMAIN`].
    pub domain: &'static str,
    /// [`VERSION`].
    pub version: u32,
    /// The sources.
    pub sources: Sources,
    /// `sha256:<hex>` of the Dockerfile's bytes.
    pub dockerfile: String,
    /// Every external image a needed stage uses (`FROM`, `COPY --from`,
    /// `RUN --mount from=`), as written after `ARG` expansion, with the
    /// digest its tag resolves to (`null` when it could not be resolved).
    pub images: BTreeMap<String, Option<String>>,
    /// `--build-arg` values (including `TARGETPLATFORM` from `--platform`).
    pub build_args: BTreeMap<String, String>,
    /// `--target` as given (`null`: the last stage).
    pub target: Option<String>,
    /// `--platform` as given.
    pub platform: Option<String>,
}

impl KeyInputs {
    /// The key, `sha256:<hex>` of the compact JSON encoding of the inputs
    /// (fields in declaration order, map keys sorted), or `None` while an
    /// image digest is unknown (an incomplete key must never skip a build).
    #[must_use]
    pub fn key(&self) -> Option<String> {
        if self.images.values().any(Option::is_none) {
            return None;
        }
        let doc = serde_json::to_vec(self).expect("key inputs serialize");
        Some(format!("sha256:{}", hex::encode(Sha256::digest(&doc))))
    }

    /// The images whose digest is unknown.
    #[must_use]
    pub fn unresolved(&self) -> Vec<&str> {
        self.images
            .iter()
            .filter(|(_, d)| d.is_none())
            .map(|(r, _)| r.as_str())
            .collect()
    }
}

/// The external images the given stages use: bases and `--from` images.
#[must_use]
pub fn external_images(df: &crate::dockerfile::Dockerfile, stages: &[usize]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for &i in stages {
        let st = &df.stages[i];
        if let crate::dockerfile::Source::Image(img) = &st.base {
            out.push(img.clone());
        }
        out.extend(st.images_from.iter().cloned());
    }
    out.sort();
    out.dedup();
    out
}

/// Gather the key's inputs: the sources (`source_hash`, else the context's
/// hash), the Dockerfile's bytes, and the digests of `images` resolved in
/// parallel (an image that cannot be resolved is logged and left `null`).
pub async fn gather(
    registry: &crate::registry::Registry,
    opts: &crate::args::BuildOptions,
    ctx: &crate::context::Prepared,
    source_hash: Option<&str>,
    images: &[String],
) -> Result<KeyInputs, crate::error::BuildError> {
    let sources = if let Some(h) = source_hash {
        Sources {
            kind: SourcesKind::SourceHash,
            hash: h.to_string(),
        }
    } else {
        let (dir, dockerfile) = (ctx.dir.clone(), ctx.dockerfile.clone());
        let hash =
            tokio::task::spawn_blocking(move || crate::context::hash_context(&dir, &dockerfile))
                .await
                .map_err(|e| crate::error::BuildError::Io {
                    path: ctx.dir.display().to_string(),
                    source: std::io::Error::other(e),
                })??;
        Sources {
            kind: SourcesKind::Context,
            hash,
        }
    };
    let resolved = futures::future::join_all(images.iter().map(|img| async move {
        if let Some(d) = pinned_digest(img) {
            return (img.clone(), Some(d.to_string()));
        }
        match registry.resolve(img).await {
            Ok(d) => (img.clone(), Some(d)),
            Err(e) => {
                tracing::warn!("cannot resolve the digest of {img}: {e}");
                (img.clone(), None)
            }
        }
    }))
    .await;
    Ok(KeyInputs {
        domain: DOMAIN,
        version: VERSION,
        sources,
        dockerfile: sha256(ctx.text.as_bytes()),
        images: resolved.into_iter().collect(),
        build_args: opts.build_args.clone(),
        target: opts.target.clone(),
        platform: opts.platform.clone(),
    })
}

/// `sha256:<hex>` of some bytes.
#[must_use]
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The digest pinned in a reference (`name@sha256:…`), if any.
#[must_use]
pub fn pinned_digest(reference: &str) -> Option<&str> {
    reference
        .split_once('@')
        .map(|(_, d)| d)
        .filter(|d| d.starts_with("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> KeyInputs {
        KeyInputs {
            domain: DOMAIN,
            version: VERSION,
            sources: Sources {
                kind: SourcesKind::SourceHash,
                hash: "abc".into(),
            },
            dockerfile: sha256(b"FROM base:1\n"),
            images: [("base:1".to_string(), Some("sha256:01".to_string()))].into(),
            build_args: BTreeMap::new(),
            target: None,
            platform: None,
        }
    }

    #[test]
    fn encoding_is_fixed() {
        let i = inputs();
        assert_eq!(
            String::from_utf8(serde_json::to_vec(&i).unwrap()).unwrap(),
            format!(
                "{{\"domain\":\"{DOMAIN}\",\"version\":1,\"sources\":{{\"kind\":\"source-hash\",\"hash\":\"abc\"}},\"dockerfile\":\"{}\",\"images\":{{\"base:1\":\"sha256:01\"}},\"build_args\":{{}},\"target\":null,\"platform\":null}}",
                sha256(b"FROM base:1\n")
            )
        );
        let k = i.key().unwrap();
        assert_eq!(k.len(), 71);
    }

    #[test]
    fn every_input_changes_the_key() {
        let base = inputs().key().unwrap();
        let mut i = inputs();
        i.images.insert("base:1".into(), Some("sha256:02".into()));
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.sources.hash = "abd".into();
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.sources.kind = SourcesKind::Context;
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.dockerfile = sha256(b"FROM base:1\nRUN x\n");
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.build_args.insert("A".into(), "1".into());
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.target = Some("build".into());
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.platform = Some("linux/arm64".into());
        assert_ne!(i.key().unwrap(), base);
        let mut i = inputs();
        i.images.insert("other:1".into(), None);
        assert_eq!(i.key(), None);
        assert_eq!(i.unresolved(), ["other:1"]);
        assert_eq!(pinned_digest("a/b@sha256:00"), Some("sha256:00"));
        assert_eq!(pinned_digest("a/b:1"), None);
    }
}
