//! A real registry for tests: Debian's `docker-registry` (CNCF distribution) on a free loopback port, with seeding over plain HTTP.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use super::{TestDir, free_port, require, wait_until};
use microplatform_common::io::sha256_digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker v2 schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// All four manifest types, for `Accept`.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// How the registry authenticates clients.
#[derive(Debug, Clone)]
pub enum RegistryAuth {
    /// Anonymous access.
    None,
    /// htpasswd (bcrypt) Basic auth with one user.
    Basic {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// Bearer tokens from an external token server (`auth.token` config).
    Token {
        /// Token endpoint URL (`realm`).
        realm: String,
        /// `service` claim.
        service: String,
        /// `issuer` claim.
        issuer: String,
        /// PEM certificate bundle the registry trusts for token signatures.
        rootcertbundle: PathBuf,
    },
}

/// A running `docker-registry`, stopped (by PID) on drop. It dereferences to a [`Client`] with
/// its own credentials, so `reg.push_image(...)` seeds it; token-auth registries are seeded
/// through [`Registry::with_token`].
pub struct Registry {
    child: Child,
    /// The registry's storage and config, removed with it.
    _dir: TestDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The auth mode it was started with.
    pub auth: RegistryAuth,
    client: Client,
}

/// Seeds and reads a registry over plain HTTP: blobs, manifests, images, indexes.
#[derive(Clone)]
pub struct Client {
    url: String,
    http: reqwest::blocking::Client,
    credentials: Credentials,
}

#[derive(Clone)]
enum Credentials {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

impl std::ops::Deref for Registry {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Registry {
    /// Start an anonymous registry.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(RegistryAuth::None)
    }

    /// Start a registry with the given auth mode.
    #[must_use]
    pub fn start_with(auth: RegistryAuth) -> Self {
        let bin = require("docker-registry", "docker-registry");
        let dir = TestDir::new();
        let auth_cfg = match &auth {
            RegistryAuth::None => String::new(),
            RegistryAuth::Basic { user, password } => {
                let htpasswd = require("htpasswd", "apache2-utils");
                let out = Command::new(htpasswd)
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd");
                assert!(out.status.success(), "htpasswd failed");
                dir.write("htpasswd", &out.stdout);
                format!(
                    "auth: {{htpasswd: {{realm: test-realm, path: {}}}}}\n",
                    dir.join("htpasswd").display()
                )
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                rootcertbundle,
            } => format!(
                "auth: {{token: {{realm: \"{realm}\", service: \"{service}\", issuer: \"{issuer}\", rootcertbundle: {}}}}}\n",
                rootcertbundle.display()
            ),
        };
        // A port free a moment ago may be taken by the time the registry binds it (another
        // test's server, or a client connection's local port): start again on another one.
        for attempt in 1.. {
            let port = free_port();
            let addr = format!("127.0.0.1:{port}");
            let config = format!(
                "version: 0.1\nlog: {{level: warn, accesslog: {{disabled: true}}}}\nstorage: {{filesystem: {{rootdirectory: {}}}, delete: {{enabled: true}}}}\nhttp: {{addr: {addr}}}\n{auth_cfg}",
                dir.join("data").display()
            );
            dir.write("config.yml", config);
            let log = std::fs::File::create(dir.join("registry.log")).expect("log");
            let mut child = Command::new(&bin)
                .args(["serve", &dir.join("config.yml").to_string_lossy()])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let http = crate::blocking_client_builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let credentials = match &auth {
                RegistryAuth::Basic { user, password } => Credentials::Basic {
                    user: user.clone(),
                    password: password.clone(),
                },
                _ => Credentials::None,
            };
            let client = Client {
                url: format!("http://{addr}"),
                http,
                credentials,
            };
            let url = format!("http://{addr}/v2/");
            let mut exited = false;
            let up = wait_until(Duration::from_secs(15), || {
                exited = child.try_wait().ok().flatten().is_some();
                exited || client.http.get(&url).send().is_ok()
            });
            let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            if exited && log.contains("address already in use") && attempt < 5 {
                continue;
            }
            assert!(up && !exited, "docker-registry did not start: {log}");
            return Self {
                child,
                _dir: dir,
                addr,
                auth,
                client,
            };
        }
        unreachable!("the loop returns or panics")
    }

    /// The PID of the registry process.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A client of this registry that sends `token` as bearer (for token-auth registries, see
    /// `TokenServer::mint`).
    #[must_use]
    pub fn with_token(&self, token: String) -> Client {
        Client {
            credentials: Credentials::Bearer(token),
            ..self.client.clone()
        }
    }
}

impl Client {
    /// `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        self.url.clone()
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::blocking::RequestBuilder {
        let rb = self.http.request(method, url);
        match &self.credentials {
            Credentials::Basic { user, password } => rb.basic_auth(user, Some(password)),
            Credentials::Bearer(token) => rb.bearer_auth(token),
            Credentials::None => rb,
        }
    }

    /// Upload a blob (monolithic POST then PUT) and return its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        let resp = self
            .request(
                reqwest::Method::POST,
                &format!("{}/v2/{repo}/blobs/uploads/", self.url()),
            )
            .send()
            .expect("POST upload");
        assert_eq!(
            resp.status().as_u16(),
            202,
            "start upload: {}",
            resp.status()
        );
        let location = resp
            .headers()
            .get("location")
            .expect("Location")
            .to_str()
            .unwrap()
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{}{location}", self.url())
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let resp = self
            .request(
                reqwest::Method::PUT,
                &format!("{location}{sep}digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .expect("PUT blob");
        assert_eq!(resp.status().as_u16(), 201, "put blob: {}", resp.status());
        digest
    }

    /// Store a manifest under a tag (or digest) and return the digest of its bytes.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let resp = self
            .request(
                reqwest::Method::PUT,
                &format!("{}/v2/{repo}/manifests/{reference}", self.url()),
            )
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .expect("PUT manifest");
        assert_eq!(
            resp.status().as_u16(),
            201,
            "put manifest: {} {}",
            resp.status(),
            resp.text().unwrap_or_default()
        );
        sha256_digest(bytes)
    }

    /// Push a small single-platform image (config + one layer) with the given
    /// manifest media type (`OCI_MANIFEST` or `DOCKER_MANIFEST`). Returns
    /// `(manifest digest, manifest bytes)`. `salt` makes distinct images.
    pub fn push_image(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        salt: &str,
    ) -> (String, Vec<u8>) {
        self.push_image_for(repo, tag, media_type, salt, "linux", "amd64")
    }

    /// Like `push_image`, for a given platform.
    pub fn push_image_for(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        salt: &str,
        os: &str,
        arch: &str,
    ) -> (String, Vec<u8>) {
        let layer = format!("layer {salt} {os}/{arch}").into_bytes();
        let layer_digest = self.push_blob(repo, &layer);
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": os,
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
            "config": {"Labels": {"salt": salt}}
        }))
        .unwrap();
        let config_digest = self.push_blob(repo, &config);
        let (config_type, layer_type) = if media_type == DOCKER_MANIFEST {
            (
                "application/vnd.docker.container.image.v1+json",
                "application/vnd.docker.image.rootfs.diff.tar.gzip",
            )
        } else {
            (
                "application/vnd.oci.image.config.v1+json",
                "application/vnd.oci.image.layer.v1.tar",
            )
        };
        let manifest = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer.len()}]
        }))
        .unwrap();
        let digest = self.push_manifest(repo, tag, media_type, &manifest);
        (digest, manifest)
    }

    /// Push a multi-platform OCI index over images for the given
    /// `(os, arch)` pairs. Returns `(index digest, [(platform, manifest digest)])`.
    pub fn push_index(
        &self,
        repo: &str,
        tag: &str,
        salt: &str,
        platforms: &[(&str, &str)],
    ) -> (String, Vec<(String, String)>) {
        let mut entries = Vec::new();
        let mut out = Vec::new();
        for (os, arch) in platforms {
            let (d, bytes) = self.push_image_for(
                repo,
                &format!("{tag}-{os}-{arch}"),
                OCI_MANIFEST,
                salt,
                os,
                arch,
            );
            entries.push(json!({
                "mediaType": OCI_MANIFEST, "digest": d, "size": bytes.len(),
                "platform": {"os": os, "architecture": arch}
            }));
            out.push((format!("{os}/{arch}"), d));
        }
        let index = serde_json::to_vec_pretty(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries
        }))
        .unwrap();
        let digest = self.push_manifest(repo, tag, OCI_INDEX, &index);
        (digest, out)
    }

    /// GET a manifest with all four types accepted; returns
    /// `(status, Docker-Content-Digest header, body)`.
    pub fn get_manifest(&self, repo: &str, reference: &str) -> (u16, Option<String>, Vec<u8>) {
        let resp = self
            .request(
                reqwest::Method::GET,
                &format!("{}/v2/{repo}/manifests/{reference}", self.url()),
            )
            .header("accept", ACCEPT_ALL)
            .send()
            .expect("GET manifest");
        let status = resp.status().as_u16();
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (status, digest, resp.bytes().expect("body").to_vec())
    }

    /// Whether a tag (or digest) exists in a repository.
    #[must_use]
    pub fn has(&self, repo: &str, reference: &str) -> bool {
        self.get_manifest(repo, reference).0 == 200
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
