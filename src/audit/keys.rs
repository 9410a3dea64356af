//! The keys that make the audit trail hold against whoever can write its file but is not the
//! proxy: the chain key (HMAC-SHA256 over each record's hash) and the checkpoint signing key
//! (Ed25519), both in the CA folder readable by the proxy's user only (mode 0600, refused
//! otherwise). The signing key's public half is written beside the CA certificate, so anyone can
//! check checkpoints offline (`gatehouse audit verify --public-key`).

use std::path::{Path, PathBuf};

use ring::hmac;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

/// The chain key file in the CA folder.
pub const CHAIN_KEY_FILE: &str = "audit-key";
/// The checkpoint signing key (PKCS#8) in the CA folder.
pub const SIGNING_KEY_FILE: &str = "audit-signing-key";
/// The checkpoint public key (hex), beside the CA certificate; readable by anyone.
pub const PUBLIC_KEY_FILE: &str = "audit-signing.pub";

/// Why an audit key could not be had.
#[derive(Debug, thiserror::Error)]
#[error("audit key {path}: {reason}")]
pub struct KeyError {
    /// The key file.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

/// The chain key: an HMAC over each record's hash, which only the proxy can compute.
pub struct ChainKey(hmac::Key);

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(***)")
    }
}

impl ChainKey {
    /// The key of `dir`, made when there is none (see [`crate::secret::private_file`]).
    pub fn load_or_create(dir: &Path) -> Result<ChainKey, KeyError> {
        let path = dir.join(CHAIN_KEY_FILE);
        let bytes = crate::secret::private_file(&path, || {
            crate::random::random_hex(32)
                .map(String::into_bytes)
                .map_err(|_| "no randomness".to_string())
        })
        .map_err(|reason| KeyError {
            path: path.clone(),
            reason,
        })?;
        ChainKey::from_bytes(&bytes).map_err(|reason| KeyError { path, reason })
    }

    /// Reads an existing key file (for `audit verify --key`); never makes one.
    pub fn read(path: &Path) -> Result<ChainKey, KeyError> {
        let fail = |reason: String| KeyError {
            path: path.to_path_buf(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        ChainKey::from_bytes(&bytes).map_err(fail)
    }

    fn from_bytes(bytes: &[u8]) -> Result<ChainKey, String> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())?
            .trim();
        if text.len() < 32 {
            return Err("too short (at least 32 characters)".into());
        }
        Ok(ChainKey(hmac::Key::new(hmac::HMAC_SHA256, text.as_bytes())))
    }

    /// The mac of a record's hash.
    pub fn mac(&self, hash: &str) -> String {
        hex::encode(hmac::sign(&self.0, hash.as_bytes()))
    }

    /// Whether `mac` is the mac of `hash` (in constant time).
    pub fn verifies(&self, hash: &str, mac: &str) -> bool {
        unhex(mac).is_some_and(|tag| hmac::verify(&self.0, hash.as_bytes(), &tag).is_ok())
    }
}

/// The checkpoint signing key.
pub struct SigningKey(Ed25519KeyPair);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// The key of `dir`, made when there is none; its public half is (re)written to
    /// `public_dir` (the CA certificate's folder) for offline verification.
    pub fn load_or_create(dir: &Path, public_dir: &Path) -> Result<SigningKey, KeyError> {
        let path = dir.join(SIGNING_KEY_FILE);
        let fail = |reason: String| KeyError {
            path: path.clone(),
            reason,
        };
        let pkcs8 = crate::secret::private_file(&path, || {
            Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
                .map(|doc| doc.as_ref().to_vec())
                .map_err(|_| "no randomness".to_string())
        })
        .map_err(fail)?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|e| fail(e.to_string()))?;
        let key = SigningKey(pair);
        let public = public_dir.join(PUBLIC_KEY_FILE);
        let text = format!("{}\n", key.public_hex());
        if std::fs::read_to_string(&public).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&public, text).map_err(|e| KeyError {
                path: public,
                reason: e.to_string(),
            })?;
        }
        Ok(key)
    }

    /// The public key, hex.
    pub fn public_hex(&self) -> String {
        hex::encode(self.0.public_key())
    }

    /// The signature of `message`, hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message))
    }
}

/// A checkpoint public key, as `audit verify` reads it.
#[derive(Debug, Clone)]
pub struct PublicKey(Vec<u8>);

impl PublicKey {
    /// Reads a public key file (hex, as written beside the CA certificate).
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let fail = |reason: String| KeyError {
            path: path.to_path_buf(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        PublicKey::parse(text.trim()).map_err(fail)
    }

    /// A public key from its hex form.
    pub fn parse(text: &str) -> Result<PublicKey, String> {
        match unhex(text) {
            Some(bytes) if bytes.len() == 32 => Ok(PublicKey(bytes)),
            _ => Err("not an Ed25519 public key (64 hex digits)".into()),
        }
    }

    /// Whether `signature` (hex) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        unhex(signature).is_some_and(|sig| {
            UnparsedPublicKey::new(&ED25519, &self.0)
                .verify(message, &sig)
                .is_ok()
        })
    }
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn keys_are_made_private_and_refused_when_others_can_read_them() {
        let dir = tempfile::tempdir().unwrap();
        let chain = ChainKey::load_or_create(dir.path()).unwrap();
        let signing = SigningKey::load_or_create(dir.path(), dir.path()).unwrap();
        for file in [CHAIN_KEY_FILE, SIGNING_KEY_FILE] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        // The same keys on the next start.
        let again = ChainKey::load_or_create(dir.path()).unwrap();
        assert!(again.verifies("h", &chain.mac("h")));
        let public = PublicKey::read(&dir.path().join(PUBLIC_KEY_FILE)).unwrap();
        assert!(public.verifies(b"m", &signing.sign(b"m")));
        assert!(!public.verifies(b"n", &signing.sign(b"m")));
        for file in [CHAIN_KEY_FILE, SIGNING_KEY_FILE] {
            let path = dir.path().join(file);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        assert!(ChainKey::load_or_create(dir.path()).is_err());
        assert!(SigningKey::load_or_create(dir.path(), dir.path()).is_err());
    }

    #[test]
    fn macs_and_signatures_of_other_keys_do_not_verify() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (ka, kb) = (
            ChainKey::load_or_create(a.path()).unwrap(),
            ChainKey::load_or_create(b.path()).unwrap(),
        );
        assert!(!kb.verifies("h", &ka.mac("h")));
        assert!(!ka.verifies("h", "zz"));
        let sa = SigningKey::load_or_create(a.path(), a.path()).unwrap();
        let pb = PublicKey::parse(
            &SigningKey::load_or_create(b.path(), b.path())
                .unwrap()
                .public_hex(),
        )
        .unwrap();
        assert!(!pb.verifies(b"m", &sa.sign(b"m")));
    }
}
