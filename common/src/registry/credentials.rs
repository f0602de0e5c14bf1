//! Registry credentials the way docker finds them: `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json` or `~/.docker/config.json` (`auths`, `credsStore`, `credHelpers` via `docker-credential-*`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryError;
use crate::reference::DEFAULT_REGISTRY;

/// The server address docker uses for Docker Hub in config files and helpers.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or a personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// An `OAuth2` refresh token (`identitytoken`), exchanged at the token endpoint.
    IdentityToken(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Basic { username, .. } => write!(f, "Basic({username}, ***)"),
            Self::IdentityToken(_) => write!(f, "IdentityToken(***)"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Debug, Deserialize)]
struct HelperOutput {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The auth files to consult, most specific first: `$REGISTRY_AUTH_FILE`,
/// then `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`).
pub fn default_auth_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(d).join("config.json"));
    } else if let Some(home) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        files.push(PathBuf::from(home).join(".docker").join("config.json"));
    }
    files
}

/// docker's `ConvertToHostname`: strip the scheme and any path.
fn hostname_of(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn registry_matches(key: &str, registry: &str) -> bool {
    let host = hostname_of(key);
    if registry == DEFAULT_REGISTRY {
        matches!(
            host,
            "docker.io" | "index.docker.io" | "registry-1.docker.io"
        )
    } else {
        host == registry
    }
}

/// The server address to hand to a credential helper for a registry.
fn server_address(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_SERVER
    } else {
        registry
    }
}

/// Find the credential for `registry` (as in a reference: `docker.io`,
/// `host:port`) in the given auth files. `Ok(None)` means anonymous.
pub fn lookup(files: &[PathBuf], registry: &str) -> Result<Option<Credential>, RegistryError> {
    for file in files {
        let Some(cfg) = read_config(file)? else {
            continue;
        };
        // credHelpers beat credsStore beat inline auths, as in docker.
        if let Some((_, helper)) = cfg
            .cred_helpers
            .iter()
            .find(|(k, _)| registry_matches(k, registry))
        {
            return run_helper(helper, server_address(registry));
        }
        if let Some(store) = cfg.creds_store.as_deref().filter(|s| !s.is_empty())
            && let Some(c) = run_helper(store, server_address(registry))?
        {
            return Ok(Some(c));
        }
        if let Some((key, entry)) = cfg
            .auths
            .iter()
            .find(|(k, _)| registry_matches(k, registry))
            && let Some(c) = entry_credential(file, key, entry)?
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

fn read_config(file: &Path) -> Result<Option<ConfigFile>, RegistryError> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::CredentialsIo {
                registry: String::new(),
                what: format!("cannot read {}", file.display()),
                source: Arc::new(e),
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RegistryError::CredentialsJson {
            registry: String::new(),
            what: format!("{}: invalid JSON", file.display()),
            source: Arc::new(e),
        })
}

fn entry_credential(
    file: &Path,
    key: &str,
    entry: &AuthEntry,
) -> Result<Option<Credential>, RegistryError> {
    if let Some(tok) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(tok.to_string())));
    }
    if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = |why: &str| RegistryError::Credentials {
            registry: key.to_string(),
            message: format!("{}: auths.{key}.auth {why}", file.display()),
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad("is not base64"))?;
        let s = String::from_utf8(raw).map_err(|_| bad("is not UTF-8"))?;
        let (u, p) = s
            .split_once(':')
            .ok_or_else(|| bad("is not user:password"))?;
        return Ok(Some(Credential::Basic {
            username: u.to_string(),
            password: p.to_string(),
        }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Run `docker-credential-<helper> get` with the server address on stdin.
fn run_helper(helper: &str, server: &str) -> Result<Option<Credential>, RegistryError> {
    let program = format!("docker-credential-{helper}");
    let err = |message: String| RegistryError::Credentials {
        registry: server.to_string(),
        message,
    };
    let io = |what: String, e: std::io::Error| RegistryError::CredentialsIo {
        registry: server.to_string(),
        what,
        source: Arc::new(e),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io(format!("cannot run {program}"), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| io(program.clone(), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| io(program.clone(), e))?;
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stdout).trim().to_string()
            + String::from_utf8_lossy(&out.stderr).trim();
        if msg.contains("credentials not found") {
            return Ok(None);
        }
        return Err(err(format!("{program} get failed: {msg}")));
    }
    let parsed: HelperOutput =
        serde_json::from_slice(&out.stdout).map_err(|e| RegistryError::CredentialsJson {
            registry: server.to_string(),
            what: format!("{program} printed invalid JSON"),
            source: Arc::new(e),
        })?;
    if parsed.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(parsed.secret)));
    }
    if parsed.username.is_empty() && parsed.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credential::Basic {
        username: parsed.username,
        password: parsed.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inline_auths_by_host() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},"localhost:5000":{"username":"a","password":"b"},"q.io":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let files = vec![f];
        assert_eq!(
            lookup(&files, "docker.io").unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert_eq!(
            lookup(&files, "localhost:5000").unwrap(),
            Some(Credential::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
        assert_eq!(
            lookup(&files, "q.io").unwrap(),
            Some(Credential::IdentityToken("tok".into()))
        );
        assert_eq!(lookup(&files, "other.io").unwrap(), None);
    }

    #[test]
    fn missing_helper_is_a_credentials_error_caused_by_the_spawn() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(&f, r#"{"credHelpers":{"r.io":"does-not-exist-xyz"}}"#).unwrap();
        let e = lookup(&[f], "r.io").unwrap_err();
        assert!(
            matches!(&e, RegistryError::CredentialsIo { registry, .. } if registry == "r.io"),
            "{e}"
        );
        assert_eq!(e.exit_code(), crate::exit::AUTH);
        let cause = std::error::Error::source(&e).expect("a source");
        let io = cause
            .downcast_ref::<Arc<std::io::Error>>()
            .expect("the spawn's io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        assert!(
            e.to_string().starts_with(
                "credentials for r.io: cannot run docker-credential-does-not-exist-xyz: "
            ),
            "{e}"
        );
    }

    #[test]
    fn unreadable_and_invalid_auth_files_keep_their_cause() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails with an io::Error.
        let e = lookup(&[dir.path().to_path_buf()], "r.io").unwrap_err();
        let cause = std::error::Error::source(&e).expect("a source");
        assert!(cause.downcast_ref::<Arc<std::io::Error>>().is_some(), "{e}");
        assert!(e.to_string().contains("cannot read "), "{e}");

        let f = dir.path().join("config.json");
        std::fs::write(&f, "{not json").unwrap();
        let e = lookup(&[f], "r.io").unwrap_err();
        assert!(matches!(e, RegistryError::CredentialsJson { .. }), "{e}");
        let cause = std::error::Error::source(&e).expect("a source");
        let json = cause
            .downcast_ref::<Arc<serde_json::Error>>()
            .expect("the serde_json::Error");
        assert_eq!(json.line(), 1);
        assert!(e.to_string().contains("config.json: invalid JSON: "), "{e}");
    }
}
