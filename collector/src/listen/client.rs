//! The HTTP client of the command-line tools (`silence`, `incident`, `deploy`, `rollback`,
//! `dora`, `export`) that talk to a running collector's API.
//!
//! A protected API is reached with two environment variables rather than flags, so neither a
//! token nor its file name ends up in shell history or `ps`: `REDLINE_TOKEN_FILE` names a file
//! whose first token is sent as `Authorization: Bearer …`, and `REDLINE_CA_FILE` names PEM CA
//! certificates to trust for an `https://` API with a private CA.

use std::time::Duration;

/// A client with the token and CA from the environment.
pub fn api_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = std::env::var_os("REDLINE_TOKEN_FILE").filter(|p| !p.is_empty()) {
        let path = std::path::PathBuf::from(path);
        let tokens = super::auth::read_token_file(&path, super::Scope::Write)
            .map_err(|e| format!("REDLINE_TOKEN_FILE: {e}"))?;
        let token = tokens.into_iter().next().unwrap_or_default();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|e| format!("REDLINE_TOKEN_FILE: {}: {e}", path.display()))?;
        value.set_sensitive(true);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, value);
        builder = builder.default_headers(headers);
    }
    if let Some(path) = std::env::var_os("REDLINE_CA_FILE").filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| {
            format!(
                "REDLINE_CA_FILE: {}: {e}",
                std::path::Path::new(&path).display()
            )
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            format!(
                "REDLINE_CA_FILE: {}: {e}",
                std::path::Path::new(&path).display()
            )
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| e.to_string())
}
