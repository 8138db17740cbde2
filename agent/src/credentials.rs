//! Credentials read from files: the exporter's bearer token and TLS material
//! ([`ExportCredentials`]), and the listeners' ([`ListenerCredentials`]).
//!
//! Nothing here is kept between loads: [`crate::config::Config::validate`] loads everything once
//! to check it (so `redline-agent validate` and a start with a broken file fail naming the
//! file and the problem), the agent loads it again at start, and again on every reload
//! (SIGHUP), building new clients and acceptors from the result. A failed reload leaves the
//! previous credentials in use. Secrets never come from the command line or the environment.
//!
//! Every rustls configuration is built with the ring provider explicitly, so no code path
//! depends on which provider the process installed by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use redline_common::tls::ServerNameOverride;

use crate::config::{ClientTlsConfig, ExporterConfig, ServerTlsConfig};

/// A credential file that cannot be used. Each variant names the configuration key (see
/// [`CredentialError::key`]) and the file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("{path}: cannot read: {source}")]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid {
        key: String,
        path: PathBuf,
        problem: String,
    },
}

impl CredentialError {
    /// The configuration key whose file is at fault (e.g. `exporter.tls.ca_file`).
    pub fn key(&self) -> &str {
        match self {
            CredentialError::Read { key, .. } | CredentialError::Invalid { key, .. } => key,
        }
    }

    fn invalid(key: &str, path: &Path, problem: impl Into<String>) -> CredentialError {
        CredentialError::Invalid {
            key: key.to_string(),
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, CredentialError> {
    std::fs::read(path).map_err(|source| CredentialError::Read {
        key: key.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a bearer token: the file's content with surrounding whitespace trimmed. It must be
/// non-empty and printable ASCII without spaces (it goes into an HTTP header).
pub fn load_token(key: &str, path: &Path) -> Result<String, CredentialError> {
    let raw = read(key, path)?;
    let text = String::from_utf8(raw)
        .map_err(|_| CredentialError::invalid(key, path, "token is not UTF-8 text"))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CredentialError::invalid(key, path, "token file is empty"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CredentialError::invalid(
            key,
            path,
            "token must be printable ASCII without spaces or line breaks",
        ));
    }
    Ok(token.to_string())
}

/// A PEM file's bytes together with its parsed certificates.
#[derive(Debug, Clone)]
pub struct PemCerts {
    pub pem: Vec<u8>,
    pub certs: Vec<CertificateDer<'static>>,
}

/// Reads every certificate in a PEM file (at least one).
pub fn load_certs(key: &str, path: &Path) -> Result<PemCerts, CredentialError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CredentialError::invalid(key, path, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(CredentialError::invalid(
            key,
            path,
            "no CERTIFICATE block found",
        ));
    }
    Ok(PemCerts { pem, certs })
}

/// Reads the first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(
    key: &str,
    path: &Path,
) -> Result<(Vec<u8>, PrivateKeyDer<'static>), CredentialError> {
    let pem = read(key, path)?;
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| CredentialError::invalid(key, path, format!("no usable private key: {e}")))?;
    Ok((pem, der))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS material for the exporter, loaded and checked.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CA file as read (tonic parses it again for gRPC).
    pub ca_pem: Vec<u8>,
    /// Client certificate chain and key PEM, for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// Expected server name, overriding the endpoint's host.
    pub server_name: Option<String>,
    /// The complete rustls configuration (OTLP/HTTP uses it directly).
    pub rustls: Arc<rustls::ClientConfig>,
}

/// Everything the exporter's client needs from files.
#[derive(Debug, Clone, Default)]
pub struct ExportCredentials {
    /// Bearer token for the `authorization` header.
    pub token: Option<String>,
    pub tls: Option<ClientTls>,
}

impl ExportCredentials {
    /// Reads `exporter.token_file` and the `exporter.tls` files.
    pub fn load(cfg: &ExporterConfig) -> Result<ExportCredentials, CredentialError> {
        let token = match &cfg.token_file {
            Some(p) => Some(load_token("exporter.token_file", p)?),
            None => None,
        };
        let tls = match &cfg.tls {
            Some(t) => Some(client_tls(t)?),
            None => None,
        };
        Ok(ExportCredentials { token, tls })
    }
}

fn client_tls(t: &ClientTlsConfig) -> Result<ClientTls, CredentialError> {
    let ca_key = "exporter.tls.ca_file";
    let ca = load_certs(ca_key, &t.ca_file)?;
    let mut roots = RootCertStore::empty();
    for c in &ca.certs {
        roots.add(c.clone()).map_err(|e| {
            CredentialError::invalid(ca_key, &t.ca_file, format!("unusable CA certificate: {e}"))
        })?;
    }
    let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| CredentialError::invalid(ca_key, &t.ca_file, e.to_string()))?;
    let verifier: Arc<dyn ServerCertVerifier> = match &t.server_name {
        None => inner,
        Some(name) => {
            let name = ServerName::try_from(name.clone()).map_err(|e| {
                CredentialError::invalid(
                    "exporter.tls.server_name",
                    &t.ca_file,
                    format!("invalid server name {name:?}: {e}"),
                )
            })?;
            Arc::new(ServerNameOverride::new(inner, name))
        }
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CredentialError::invalid(ca_key, &t.ca_file, e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let (config, identity) = match &t.client_cert {
        None => (builder.with_no_client_auth(), None),
        Some((cert_path, key_path)) => {
            let cert = load_certs("exporter.tls.cert_file", cert_path)?;
            let (key_pem, key) = load_key("exporter.tls.key_file", key_path)?;
            let config = builder
                .with_client_auth_cert(cert.certs, key)
                .map_err(|e| {
                    CredentialError::invalid(
                        "exporter.tls.key_file",
                        key_path,
                        format!("does not fit {}: {e}", cert_path.display()),
                    )
                })?;
            (config, Some((cert.pem, key_pem)))
        }
    };
    Ok(ClientTls {
        ca_pem: ca.pem,
        identity,
        server_name: t.server_name.clone(),
        rustls: Arc::new(config),
    })
}

/// A listener's credentials: an optional TLS server configuration and an optional token.
#[derive(Debug, Clone, Default)]
pub struct ListenerCredentials {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub token: Option<String>,
}

impl ListenerCredentials {
    /// Reads a listener's files; `prefix` is its configuration section (e.g. `relay`).
    pub fn load(
        prefix: &str,
        tls: Option<&ServerTlsConfig>,
        token_file: Option<&Path>,
    ) -> Result<ListenerCredentials, CredentialError> {
        let token = match token_file {
            Some(p) => Some(load_token(&format!("{prefix}.token_file"), p)?),
            None => None,
        };
        let tls = match tls {
            Some(t) => Some(Arc::new(server_tls(prefix, t)?)),
            None => None,
        };
        Ok(ListenerCredentials { tls, token })
    }
}

fn server_tls(prefix: &str, t: &ServerTlsConfig) -> Result<rustls::ServerConfig, CredentialError> {
    let cert_key = format!("{prefix}.tls.cert_file");
    let key_key = format!("{prefix}.tls.key_file");
    let cert = load_certs(&cert_key, &t.cert_file)?;
    let (_, key) = load_key(&key_key, &t.key_file)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| CredentialError::invalid(&cert_key, &t.cert_file, e.to_string()))?;
    let builder = match &t.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let ca_key = format!("{prefix}.tls.client_ca_file");
            let ca = load_certs(&ca_key, ca_path)?;
            let mut roots = RootCertStore::empty();
            for c in ca.certs {
                roots.add(c).map_err(|e| {
                    CredentialError::invalid(
                        &ca_key,
                        ca_path,
                        format!("unusable CA certificate: {e}"),
                    )
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider(),
            )
            .build()
            .map_err(|e| CredentialError::invalid(&ca_key, ca_path, e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_single_cert(cert.certs, key).map_err(|e| {
        CredentialError::invalid(
            &key_key,
            &t.key_file,
            format!("does not fit {}: {e}", t.cert_file.display()),
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Compares a presented `authorization` header value with `Bearer <token>` in constant time
/// (`subtle`: constant-time for equal lengths; the token's length is not a secret worth
/// hiding).
pub fn bearer_matches(header: Option<&[u8]>, token: &str) -> bool {
    let Some(h) = header else {
        return false;
    };
    let Some(presented) = h
        .strip_prefix(b"Bearer ")
        .or_else(|| h.strip_prefix(b"bearer "))
    else {
        return false;
    };
    use subtle::ConstantTimeEq;
    bool::from(presented.ct_eq(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t");
        std::fs::write(&p, "  s3cret\n").unwrap();
        assert_eq!(load_token("k", &p).unwrap(), "s3cret");
        std::fs::write(&p, "\n").unwrap();
        let e = load_token("k", &p).unwrap_err().to_string();
        assert!(
            e.contains("empty") && e.contains(&p.display().to_string()),
            "{e}"
        );
        std::fs::write(&p, "a b").unwrap();
        assert!(load_token("k", &p).is_err());
        let e = load_token("k", &dir.path().join("missing")).unwrap_err();
        assert_eq!(e.key(), "k");
    }

    #[test]
    fn bearer_comparison() {
        assert!(bearer_matches(Some(b"Bearer abc"), "abc"));
        assert!(!bearer_matches(Some(b"Bearer abd"), "abc"));
        assert!(!bearer_matches(Some(b"Bearer ab"), "abc"));
        assert!(!bearer_matches(Some(b"Basic abc"), "abc"));
        assert!(!bearer_matches(None, "abc"));
    }

    #[test]
    fn bad_pem_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        std::fs::write(&p, "not a certificate").unwrap();
        let e = load_certs("exporter.tls.ca_file", &p).unwrap_err();
        assert_eq!(e.key(), "exporter.tls.ca_file");
        assert!(e.to_string().contains("ca.pem"), "{e}");
    }
}
