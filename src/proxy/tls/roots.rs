//! Trust for the upstream side: system roots, webpki roots, and any extra CA the config names.

use std::path::{Path, PathBuf};

use base64::Engine;
use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why the upstream trust store could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    /// An extra CA file is unreadable or holds no certificate.
    #[error("{path}: {reason}")]
    ExtraCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS client configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A verifying client config for upstream connections (ALPN is left to the connector).
pub fn client_config(extra_ca_files: &[PathBuf]) -> Result<ClientConfig, RootsError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(system_roots = added, "loaded system trust roots");
    for path in extra_ca_files {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| RootsError::ExtraCa {
                path: path.clone(),
                reason: e.to_string(),
            })?;
        }
    }
    Ok(ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RootsError> {
    let fail = |reason: String| RootsError::ExtraCa {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in file".into()));
    }
    Ok(certs)
}

/// The system's trust roots as PEM, for bundles handed to agent runtimes.
pub fn native_roots_pem() -> String {
    let native = rustls_native_certs::load_native_certs();
    native.certs.iter().map(pem_encode_certificate).collect()
}

/// One certificate as a PEM block.
pub fn pem_encode_certificate(der: &CertificateDer<'_>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}
