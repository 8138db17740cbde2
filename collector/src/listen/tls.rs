//! TLS for the listeners: a rustls server configuration built from PEM files, optionally
//! requiring client certificates signed by a CA (mTLS), and swapped in place on reload.
//!
//! Lifecycle: [`ServerTls::load`] builds the configuration at start (and `validate` builds it
//! too, so a bad certificate fails `ExecStartPre`). Every accepted connection takes the
//! configuration current at that moment; [`ServerTls::reload`] (SIGHUP) builds a new one from
//! the same files and swaps it in, so renewed certificates apply to new connections while the
//! open ones carry on. A reload that fails keeps the configuration in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The PEM files of one TLS setup (`tls:` in the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct TlsFiles {
    /// The server's certificate chain, leaf first.
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// CA certificates that sign acceptable client certificates.
    pub client_ca_file: Option<PathBuf>,
}

/// A TLS configuration problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read {what}: {message}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("{path}: no {what} found (expected PEM)")]
    Empty { path: PathBuf, what: &'static str },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

fn certificates(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            path: path.to_owned(),
            what,
        });
    }
    Ok(certs)
}

/// Builds the server configuration. `require_client_cert` turns on client authentication
/// with `client_ca_file` (which must then be set).
fn build(
    files: &TlsFiles,
    require_client_cert: bool,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, TlsError> {
    let chain = certificates(&files.cert_file, "certificates")?;
    let key = PrivateKeyDer::from_pem_file(&files.key_file).map_err(|e| TlsError::Pem {
        path: files.key_file.clone(),
        what: "a private key",
        message: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Invalid {
            path: files.cert_file.clone(),
            message: e.to_string(),
        })?;
    let builder = match (&files.client_ca_file, require_client_cert) {
        (Some(ca), true) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca, "CA certificates")? {
                roots.add(cert).map_err(|e| TlsError::Invalid {
                    path: ca.clone(),
                    message: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError::Invalid {
                path: ca.clone(),
                message: e.to_string(),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Invalid {
            path: files.key_file.clone(),
            message: format!("the key does not fit the certificate: {e}"),
        })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A listener's TLS configuration, reloadable; cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    alpn: Vec<&'static [u8]>,
    current: Arc<RwLock<Current>>,
}

/// The files and client-certificate setting in force, and the configuration built from them.
struct Current {
    files: TlsFiles,
    require_client_cert: bool,
    config: Arc<rustls::ServerConfig>,
}

impl ServerTls {
    /// Builds the configuration. `alpn` lists the protocols offered (`h2` for gRPC; `h2` and
    /// `http/1.1` for HTTP listeners).
    pub fn load(
        files: &TlsFiles,
        require_client_cert: bool,
        alpn: &[&'static [u8]],
    ) -> Result<ServerTls, TlsError> {
        let config = build(files, require_client_cert, alpn)?;
        Ok(ServerTls {
            alpn: alpn.to_vec(),
            current: Arc::new(RwLock::new(Current {
                files: files.clone(),
                require_client_cert,
                config: Arc::new(config),
            })),
        })
    }

    /// Re-reads the files; on error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (files, require) = match self.current.read() {
            Ok(c) => (c.files.clone(), c.require_client_cert),
            Err(poisoned) => {
                let c = poisoned.into_inner();
                (c.files.clone(), c.require_client_cert)
            }
        };
        self.reconfigure(&files, require)
    }

    /// Builds a configuration from `files` (a configuration reload may name other files or
    /// turn client certificates on or off) and uses it for the connections that follow; on
    /// error the configuration in force stays. Connections already open keep theirs.
    pub fn reconfigure(&self, files: &TlsFiles, require_client_cert: bool) -> Result<(), TlsError> {
        let config = build(files, require_client_cert, &self.alpn)?;
        if let Ok(mut current) = self.current.write() {
            *current = Current {
                files: files.clone(),
                require_client_cert,
                config: Arc::new(config),
            };
        }
        Ok(())
    }

    /// The acceptor for the next connection.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = match self.current.read() {
            Ok(c) => c.config.clone(),
            Err(poisoned) => poisoned.into_inner().config.clone(),
        };
        tokio_rustls::TlsAcceptor::from(config)
    }

    pub fn requires_client_cert(&self) -> bool {
        match self.current.read() {
            Ok(c) => c.require_client_cert,
            Err(poisoned) => poisoned.into_inner().require_client_cert,
        }
    }
}
