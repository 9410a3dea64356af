//! The local certificate authority: created once under `certs/`, loaded on every start.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

/// File name of the CA certificate agents trust.
pub const CA_CERT_FILE: &str = "gatehouse-ca.pem";
/// File name of the CA private key (mode 0600).
pub const CA_KEY_FILE: &str = "gatehouse-ca.key";

const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86400);

/// Why the CA could not be created or loaded.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Reading or writing a CA file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A CA file exists but cannot be used.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Only one of certificate and key exists.
    #[error(
        "{present} exists but {missing} does not; restore it or remove both to create a new CA"
    )]
    Incomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The CA that signs leaf certificates.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Path of the CA certificate in `dir`.
    pub fn cert_path(dir: &Path) -> PathBuf {
        dir.join(CA_CERT_FILE)
    }

    /// Path of the CA key in `dir`.
    pub fn key_path(dir: &Path) -> PathBuf {
        dir.join(CA_KEY_FILE)
    }

    /// Loads the CA from `dir`, creating it when neither file exists. Returns whether it was
    /// created.
    pub fn load_or_create(dir: &Path) -> Result<(Self, bool), CaError> {
        let (cert, key) = (Self::cert_path(dir), Self::key_path(dir));
        match (cert.exists(), key.exists()) {
            (true, true) => Ok((Self::load(dir)?, false)),
            (false, false) => Ok((Self::create(dir)?, true)),
            (true, false) => Err(CaError::Incomplete {
                present: cert,
                missing: key,
            }),
            (false, true) => Err(CaError::Incomplete {
                present: key,
                missing: cert,
            }),
        }
    }

    /// Loads an existing CA from `dir`.
    pub fn load(dir: &Path) -> Result<Self, CaError> {
        let (cert_path, key_path) = (Self::cert_path(dir), Self::key_path(dir));
        let cert_pem = read(&cert_path)?;
        let key_pem = read(&key_path)?;
        if let Ok(meta) = fs::metadata(&key_path)
            && meta.permissions().mode() & 0o077 != 0
        {
            return Err(CaError::Invalid {
                path: key_path,
                reason: "other users can read or write the CA key (anyone who reads it can \
                         intercept every agent's TLS): `chmod 600` it"
                    .into(),
            });
        }
        let key = KeyPair::from_pem(&key_pem).map_err(|e| CaError::Invalid {
            path: key_path.clone(),
            reason: format!("not a PEM private key: {e}"),
        })?;
        let cert_der = rustls_pki_types::pem::PemObject::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| CaError::Invalid {
                path: cert_path.clone(),
                reason: format!("not a PEM certificate: {e}"),
            })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| CaError::Invalid {
            path: cert_path.clone(),
            reason: format!("cannot use as issuer: {e}"),
        })?;
        Ok(Self {
            cert_pem,
            cert_der,
            issuer,
        })
    }

    /// Creates a fresh CA in `dir`; refuses to overwrite existing files.
    pub fn create(dir: &Path) -> Result<Self, CaError> {
        let fresh = !dir.exists();
        let io = |source| CaError::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        if fresh {
            // Agents running as other users read the certificate and bundle; the key, tokens
            // and execution key in it are 0600.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(io)?;
        }
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "Gatehouse Local CA");
        name.push(DnType::OrganizationName, "Gatehouse");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.serial_number = Some(random_serial());
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(86400);
        params.not_after = now + CA_VALIDITY;
        let cert = params.self_signed(&key)?;

        let key_path = Self::key_path(dir);
        write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&Self::cert_path(dir), cert.pem().as_bytes(), 0o644)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate in DER, appended to every leaf chain.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The issuer that signs leaves.
    pub(super) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }
}

/// A random positive 128-bit serial number.
pub(super) fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    let rng = ring::rand::SystemRandom::new();
    if ring::rand::SecureRandom::fill(&rng, &mut bytes).is_err() {
        let nanos = OffsetDateTime::now_utc()
            .unix_timestamp_nanos()
            .to_be_bytes();
        bytes.copy_from_slice(&nanos);
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn read(path: &Path) -> Result<String, CaError> {
    fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    let io = |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    // Exactly `mode`, whatever the umask (the proxy runs with 077; agents read the certificate).
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io)?;
    file.write_all(contents).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_loaded_with_a_private_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let (created, fresh) = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert!(fresh);
        let mode = fs::metadata(CertificateAuthority::key_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (loaded, fresh) = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert!(!fresh);
        assert_eq!(created.cert_pem(), loaded.cert_pem());
    }

    #[test]
    fn half_a_ca_is_an_error_not_a_silent_replacement() {
        let dir = tempfile::tempdir().unwrap();
        CertificateAuthority::create(dir.path()).unwrap();
        fs::remove_file(CertificateAuthority::key_path(dir.path())).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, CaError::Incomplete { .. }), "{err}");
    }
}
