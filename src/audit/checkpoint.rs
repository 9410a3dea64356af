//! Checkpoints: the proxy signs (Ed25519) how many records its trail holds and the last one's
//! hash, periodically and at shutdown, and keeps the statement in the store, away from the file.
//! A trail is named by its first record's hash, so a file rewritten from its first line on has no
//! checkpoints at all, and one rewritten later (or cut) disagrees with them. `audit verify` checks
//! the signatures with the public key alone (offline), then the file against them.

use std::time::SystemTime;

use super::chain::{VerifyError, first_hash};
use super::keys::{PublicKey, SigningKey};
use crate::store::AuditCheckpoint;

/// A checkpoint whose signature checked out (or that was just signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The audit file as configured.
    pub file: String,
    /// The trail: its first record's hash.
    pub trail: String,
    /// Records in the trail.
    pub records: u64,
    /// The hash of its last record.
    pub head: String,
    /// RFC 3339 time.
    pub time: String,
    /// Ed25519 signature over the fields above, hex.
    pub signature: String,
}

/// What is signed: every field, in a form no two checkpoints share.
fn message((file, trail): (&str, &str), records: u64, head: &str, time: &str) -> Vec<u8> {
    format!("gatehouse-audit-checkpoint/1\n{file}\n{trail}\n{records}\n{head}\n{time}").into_bytes()
}

impl Checkpoint {
    /// Signs the state of `trail` in `file`: `records` records, the last hashing to `head`.
    pub fn sign(
        (file, trail): (&str, &str),
        records: u64,
        head: &str,
        key: &SigningKey,
    ) -> Checkpoint {
        let time = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
        let signature = key.sign(&message((file, trail), records, head, &time));
        Checkpoint {
            file: file.to_string(),
            trail: trail.to_string(),
            records,
            head: head.to_string(),
            time,
            signature,
        }
    }

    /// The row the store keeps.
    pub fn stored(&self) -> AuditCheckpoint {
        AuditCheckpoint {
            file: self.file.clone(),
            trail: self.trail.clone(),
            records: i64::try_from(self.records).unwrap_or(i64::MAX),
            head: self.head.clone(),
            time: self.time.clone(),
            signature: self.signature.clone(),
        }
    }

    /// Checks the signatures of stored checkpoints with `public`; the first that fails is a
    /// forged checkpoint.
    pub fn checked(
        stored: &[AuditCheckpoint],
        public: &PublicKey,
    ) -> Result<Vec<Checkpoint>, VerifyError> {
        stored
            .iter()
            .map(|s| {
                let records = u64::try_from(s.records).unwrap_or(u64::MAX);
                let signed = message((&s.file, &s.trail), records, &s.head, &s.time);
                if !public.verifies(&signed, &s.signature) {
                    return Err(VerifyError::ForgedCheckpoint {
                        records,
                        time: s.time.clone(),
                    });
                }
                Ok(Checkpoint {
                    file: s.file.clone(),
                    trail: s.trail.clone(),
                    records,
                    head: s.head.clone(),
                    time: s.time.clone(),
                    signature: s.signature.clone(),
                })
            })
            .collect()
    }
}

/// The trail name of an audit file's text: its first record's hash, `None` while it is empty.
pub fn trail_of(text: &str) -> Option<String> {
    first_hash(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{GENESIS, Verifier, seal, verify_text};
    use crate::audit::keys::ChainKey;

    struct Keys {
        _dir: tempfile::TempDir,
        chain: ChainKey,
        signing: SigningKey,
        public: PublicKey,
    }

    fn keys() -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let chain = ChainKey::load_or_create(dir.path()).unwrap();
        let signing = SigningKey::load_or_create(dir.path(), dir.path()).unwrap();
        let public = PublicKey::parse(&signing.public_hex()).unwrap();
        Keys {
            _dir: dir,
            chain,
            signing,
            public,
        }
    }

    /// `n` keyed records and the hash after each.
    fn trail(n: usize, key: Option<&ChainKey>) -> (Vec<String>, Vec<String>) {
        let mut prev = GENESIS.to_string();
        let mut hashes = Vec::new();
        let lines = (0..n)
            .map(|i| {
                let (line, hash) = seal(&serde_json::json!({"decision": i}), &prev, key).unwrap();
                prev = hash.clone();
                hashes.push(hash);
                line
            })
            .collect();
        (lines, hashes)
    }

    fn verify(text: &str, keys: &Keys, stored: &[AuditCheckpoint]) -> Result<usize, VerifyError> {
        let checkpoints = Checkpoint::checked(stored, &keys.public)?;
        let verifier = Verifier {
            key: Some(&keys.chain),
            checkpoints: &checkpoints,
        };
        verify_text(text, &verifier).map(|r| r.records)
    }

    #[test]
    fn cut_tails_rewrites_and_forged_checkpoints_are_detected() {
        let keys = keys();
        let (lines, hashes) = trail(6, Some(&keys.chain));
        let name = trail_of(&lines.concat()).unwrap();
        let at = |n: usize| {
            Checkpoint::sign(("a.jsonl", &name), n as u64, &hashes[n - 1], &keys.signing)
        };
        let stored = vec![at(2).stored(), at(5).stored()];
        assert_eq!(verify(&lines.concat(), &keys, &stored), Ok(6));

        // The tail cut back before the last checkpoint, on a record boundary.
        let cut = lines[..4].concat();
        assert!(matches!(
            verify(&cut, &keys, &stored),
            Err(VerifyError::Cut {
                records: 4,
                checkpointed: 5,
                ..
            })
        ));
        // The whole file rewritten from line 2 with a recomputed unkeyed chain: the SHA-256
        // chain holds, but not at the checkpoint (nor the downgrade rule).
        let (unkeyed, _) = trail(6, None);
        let mut rewritten = lines[0].clone();
        let mut prev = hashes[0].clone();
        for i in 1..6 {
            let (line, hash) = seal(&serde_json::json!({"decision": i * 10}), &prev, None).unwrap();
            rewritten.push_str(&line);
            prev = hash;
        }
        assert!(verify(&rewritten, &keys, &stored).is_err());
        // Rewritten from the first line: another trail, with no checkpoints of its own.
        assert_ne!(trail_of(&unkeyed.concat()).as_deref(), Some(name.as_str()));

        // A checkpoint that was not signed by the key, or was altered after signing.
        let mut forged = at(6).stored();
        forged.records = 9;
        assert!(matches!(
            verify(&lines.concat(), &keys, &[forged]),
            Err(VerifyError::ForgedCheckpoint { records: 9, .. })
        ));
        let other = self::keys();
        let foreign = Checkpoint::sign(("a.jsonl", &name), 6, &hashes[5], &other.signing).stored();
        assert!(matches!(
            verify(&lines.concat(), &keys, &[foreign]),
            Err(VerifyError::ForgedCheckpoint { .. })
        ));
        // A cut that also drops the checkpointed record, then re-chains new records onto it.
        let mut regrown = lines[..4].concat();
        let mut prev = hashes[3].clone();
        for i in 0..3 {
            let (line, hash) =
                seal(&serde_json::json!({"x": i}), &prev, Some(&keys.chain)).unwrap();
            regrown.push_str(&line);
            prev = hash;
        }
        assert!(matches!(
            verify(&regrown, &keys, &stored),
            Err(VerifyError::Diverged { records: 5, .. })
        ));
    }
}
