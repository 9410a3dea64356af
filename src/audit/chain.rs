//! The hash chain: each line is a JSON object holding the record's fields, `prev` (the previous
//! line's hash) and `hash` = SHA-256(prev ‖ the line's bytes before `,"hash"`, closed by `}`).
//! Keyed records (the scheme since issue 14) also carry `"chain": "hmac-sha256"` inside what is
//! hashed, and end with `mac` = HMAC-SHA256(chain key, hash): the SHA-256 chain stays checkable
//! by anyone, the mac only by the key's holder, so whoever rewrites the file without the key
//! cannot make its macs. Older files hold unkeyed records only; they still verify, as unkeyed. A
//! record that is not keyed after one that is, is a downgrade and fails.

use ring::digest::SHA256;
use serde_json::Value;

use super::checkpoint::Checkpoint;
use super::keys::ChainKey;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The `chain` field of keyed records.
pub const KEYED: &str = "hmac-sha256";

/// Seals `record` (written bounded, see [`encode`](super::encode)) to follow `prev`; returns the
/// line to append and its hash. The writer encodes before it takes its lock; tests seal at once.
#[cfg(test)]
pub fn seal(
    record: &impl serde::Serialize,
    prev: &str,
    key: Option<&ChainKey>,
) -> Result<(String, String), SealError> {
    seal_encoded(super::encode::encode(record)?, prev, key)
}

/// What a record that cannot be sealed is.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// It does not serialise.
    #[error("the record does not serialise: {0}")]
    Encode(#[from] serde_json::Error),
    /// It serialises to something other than a JSON object.
    #[error("the record is not a JSON object")]
    NotAnObject,
}

/// Adds `chain` (when keyed) and `prev` to the JSON object `body`, then `hash` and `mac`; returns
/// the line to append and its hash. The hash covers the exact bytes of the line before its
/// `hash` field, so any edit of the line changes it, and the order of the fields is free.
pub fn seal_encoded(
    mut body: Vec<u8>,
    prev: &str,
    key: Option<&ChainKey>,
) -> Result<(String, String), SealError> {
    if body.first() != Some(&b'{') || body.pop() != Some(b'}') {
        return Err(SealError::NotAnObject);
    }
    if body.len() > 1 {
        body.push(b',');
    }
    if key.is_some() {
        body.extend_from_slice(b"\"chain\":\"");
        body.extend_from_slice(KEYED.as_bytes());
        body.extend_from_slice(b"\",");
    }
    body.extend_from_slice(b"\"prev\":\"");
    body.extend_from_slice(prev.as_bytes());
    body.extend_from_slice(b"\"}");
    let hash = hash_of(prev, &body);
    body.pop();
    body.extend_from_slice(b",\"hash\":\"");
    body.extend_from_slice(hash.as_bytes());
    if let Some(key) = key {
        body.extend_from_slice(b"\",\"mac\":\"");
        body.extend_from_slice(key.mac(&hash).as_bytes());
    }
    body.extend_from_slice(b"\"}\n");
    let line = String::from_utf8(body).map_err(|_| SealError::NotAnObject)?;
    Ok((line, hash))
}

fn hash_of(prev: &str, body: &[u8]) -> String {
    let mut context = ring::digest::Context::new(&SHA256);
    context.update(prev.as_bytes());
    context.update(body);
    hex::encode(context.finish())
}

/// A line taken apart: the bytes its hash covers, the stated hash, and the mac if any.
struct Sealed {
    body: String,
    hash: String,
    mac: Option<String>,
}

/// Takes `,"tag":"<64 hex>"}` off the end of `line`: what is left and the hex.
fn strip_tail<'a>(line: &'a str, tag: &str) -> Option<(&'a str, &'a str)> {
    let tail = ",\"".len() + tag.len() + "\":\"".len() + 64 + "\"}".len();
    if line.len() <= tail || !line.is_char_boundary(line.len() - tail) {
        return None;
    }
    let (head, rest) = line.split_at(line.len() - tail);
    let hex = rest
        .strip_prefix(",\"")?
        .strip_prefix(tag)?
        .strip_prefix("\":\"")?
        .strip_suffix("\"}")?;
    hex.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then_some((head, hex))
}

fn split_line(line: &str) -> Option<Sealed> {
    let (line, mac) = match strip_tail(line, "mac") {
        Some((head, mac)) => (format!("{head}}}"), Some(mac.to_string())),
        None => (line.to_string(), None),
    };
    let (head, hash) = strip_tail(&line, "hash")?;
    Some(Sealed {
        body: format!("{head}}}"),
        hash: hash.to_string(),
        mac,
    })
}

/// Whether `line` is a whole sealed record (a JSON object ending in its `hash`, and `mac` when
/// keyed), whatever it chains to: what a crash cannot have left half-written.
pub fn is_sealed(line: &str) -> bool {
    split_line(line).is_some_and(|sealed| serde_json::from_str::<Value>(&sealed.body).is_ok())
}

/// The hash the next record must chain to, read from the file's last line.
pub fn last_hash(text: &str) -> Result<String, String> {
    let Some(last) = text.lines().next_back() else {
        return Ok(GENESIS.to_string());
    };
    split_line(last)
        .map(|sealed| sealed.hash.to_string())
        .ok_or_else(|| "its last line is not a sealed audit record".to_string())
}
/// The hash of the first record: the name of the trail its checkpoints are kept under.
pub fn first_hash(text: &str) -> Option<String> {
    text.lines()
        .next()
        .and_then(split_line)
        .map(|sealed| sealed.hash)
}

/// What a verification checks against, beyond the file itself.
#[derive(Default)]
pub struct Verifier<'a> {
    /// The chain key: every keyed record's mac is checked (only the proxy's user can read it).
    pub key: Option<&'a ChainKey>,
    /// Checkpoints whose signatures were checked: the file must reach each, with its head hash.
    pub checkpoints: &'a [Checkpoint],
}

/// A chain that checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: usize,
    /// Of those, keyed records (the rest are of the unkeyed scheme before them).
    pub keyed: usize,
    /// Whether the macs were checked (the chain key was at hand).
    pub macs_checked: bool,
    /// Checkpoints the file was checked against.
    pub checkpoints: usize,
}

/// The first place the trail does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A line is not a JSON object with `prev` and `hash`.
    #[error("line {line}: not an audit record: {reason}")]
    Malformed {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The line's content does not hash to its `hash`: it was edited.
    #[error("line {line}: content does not match its hash (the record was edited)")]
    Edited {
        /// 1-based line.
        line: usize,
    },
    /// The line's `prev` is not the previous line's hash: a line was removed, inserted or moved.
    #[error(
        "line {line}: does not chain to the line before it (a record was removed, inserted or reordered)"
    )]
    Broken {
        /// 1-based line.
        line: usize,
    },
    /// A keyed record without its mac, or an unkeyed one with a mac.
    #[error("line {line}: its mac is missing or misplaced (the record was edited)")]
    Unsealed {
        /// 1-based line.
        line: usize,
    },
    /// An unkeyed record after keyed ones.
    #[error(
        "line {line}: an unkeyed record after keyed ones (the file was rewritten without the chain key)"
    )]
    Downgraded {
        /// 1-based line.
        line: usize,
    },
    /// The mac is not the chain key's.
    #[error(
        "line {line}: its mac is not the chain key's (the file was rewritten by someone without the key)"
    )]
    Forged {
        /// 1-based line.
        line: usize,
    },
    /// A checkpoint's signature is not the signing key's.
    #[error(
        "checkpoint of {time} ({records} records): its signature is not the audit signing key's (a forged checkpoint)"
    )]
    ForgedCheckpoint {
        /// The records it claims.
        records: u64,
        /// Its time.
        time: String,
    },
    /// The file is shorter than a checkpoint says it was.
    #[error(
        "the file holds {records} records, but the signed checkpoint of {time} counted {checkpointed} (its tail was cut)"
    )]
    Cut {
        /// Records in the file.
        records: usize,
        /// Records the checkpoint counted.
        checkpointed: u64,
        /// The checkpoint's time.
        time: String,
    },
    /// The record a checkpoint counted up to does not hash to the checkpoint's head.
    #[error(
        "record {records} does not hash to the head signed by the checkpoint of {time} (the file was rewritten)"
    )]
    Diverged {
        /// The checkpoint's record count.
        records: u64,
        /// The checkpoint's time.
        time: String,
    },
    /// The file's newest checkpoint names another trail.
    #[error(
        "the newest checkpoint of this file ({records} records at {time}) is of another trail: \
         the file was replaced, emptied or rewritten"
    )]
    Replaced {
        /// Records the newest checkpoint counted.
        records: u64,
        /// Its time.
        time: String,
    },
    /// A non-empty trail the store holds no checkpoint of.
    #[error(
        "the store holds no signed checkpoint of this file (rewritten from its first record, or \
         never written by a proxy that signs checkpoints)"
    )]
    NoCheckpoint,
    /// The index holds a row the file does not, or lacks one it does.
    #[error("audit index, line {line}: {reason}")]
    Index {
        /// 1-based line of the file.
        line: u64,
        /// What disagrees.
        reason: String,
    },
}

/// Checks every line of an audit file's text, its macs when `verifier` has the key, and that it
/// reaches every checkpoint with the head hash signed.
pub fn verify_text(text: &str, verifier: &Verifier<'_>) -> Result<VerifyReport, VerifyError> {
    let mut prev = GENESIS.to_string();
    let mut records = 0;
    let mut keyed = 0;
    let at = |n: u64, hash: &str| -> Result<(), VerifyError> {
        match verifier
            .checkpoints
            .iter()
            .find(|c| c.records == n && c.head != hash)
        {
            Some(c) => Err(VerifyError::Diverged {
                records: n,
                time: c.time.clone(),
            }),
            None => Ok(()),
        }
    };
    at(0, GENESIS)?;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let malformed = |reason: &str| VerifyError::Malformed {
            line: line_no,
            reason: reason.to_string(),
        };
        let sealed = split_line(line).ok_or_else(|| malformed("no trailing hash field"))?;
        let value: Value =
            serde_json::from_str(&sealed.body).map_err(|e| malformed(&e.to_string()))?;
        let stated_prev = value
            .get("prev")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("no prev field"))?;
        if hash_of(stated_prev, sealed.body.as_bytes()) != sealed.hash {
            return Err(VerifyError::Edited { line: line_no });
        }
        if stated_prev != prev {
            return Err(VerifyError::Broken { line: line_no });
        }
        let is_keyed = value.get("chain").and_then(Value::as_str) == Some(KEYED);
        match (is_keyed, &sealed.mac) {
            (true, Some(mac)) => {
                if verifier
                    .key
                    .is_some_and(|key| !key.verifies(&sealed.hash, mac))
                {
                    return Err(VerifyError::Forged { line: line_no });
                }
                keyed += 1;
            }
            (false, None) if keyed > 0 => return Err(VerifyError::Downgraded { line: line_no }),
            (false, None) => {}
            _ => return Err(VerifyError::Unsealed { line: line_no }),
        }
        records += 1;
        at(records as u64, &sealed.hash)?;
        prev = sealed.hash;
    }
    if let Some(longest) = verifier
        .checkpoints
        .iter()
        .filter(|c| c.records > records as u64)
        .max_by_key(|c| c.records)
    {
        return Err(VerifyError::Cut {
            records,
            checkpointed: longest.records,
            time: longest.time.clone(),
        });
    }
    Ok(VerifyReport {
        records,
        keyed,
        macs_checked: verifier.key.is_some(),
        checkpoints: verifier.checkpoints.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize, key: Option<&ChainKey>) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|i| {
                let (line, hash) = seal(
                    &serde_json::json!({"decision": format!("d{i}"), "effect": "allow"}),
                    &prev,
                    key,
                )
                .unwrap();
                prev = hash;
                line
            })
            .collect()
    }

    fn key() -> (tempfile::TempDir, ChainKey) {
        let dir = tempfile::tempdir().unwrap();
        let key = ChainKey::load_or_create(dir.path()).unwrap();
        (dir, key)
    }

    #[test]
    fn an_intact_chain_verifies_keyed_or_not() {
        let (_dir, key) = key();
        let plain = Verifier::default();
        let report = verify_text(&chain(5, None).concat(), &plain).unwrap();
        assert_eq!((report.records, report.keyed), (5, 0));
        let keyed = Verifier {
            key: Some(&key),
            ..Verifier::default()
        };
        let report = verify_text(&chain(5, Some(&key)).concat(), &keyed).unwrap();
        assert_eq!((report.records, report.keyed), (5, 5));
        assert!(report.macs_checked);
        // Without the key, the SHA-256 chain of keyed records is still checked.
        assert_eq!(
            verify_text(&chain(3, Some(&key)).concat(), &plain)
                .unwrap()
                .keyed,
            3
        );
        assert_eq!(last_hash(&chain(3, Some(&key)).concat()).unwrap().len(), 64);
    }

    #[test]
    fn a_legacy_prefix_then_keyed_records_verify_but_not_the_reverse() {
        let (_dir, key) = key();
        let old = chain(2, None);
        let mut prev = last_hash(&old.concat()).unwrap();
        let mut text = old.concat();
        for i in 0..2 {
            let (line, hash) =
                seal(&serde_json::json!({"decision": i}), &prev, Some(&key)).unwrap();
            text.push_str(&line);
            prev = hash;
        }
        let verifier = Verifier {
            key: Some(&key),
            ..Verifier::default()
        };
        let report = verify_text(&text, &verifier).unwrap();
        assert_eq!((report.records, report.keyed), (4, 2));
        let (line, _) = seal(&serde_json::json!({"decision": "x"}), &prev, None).unwrap();
        text.push_str(&line);
        assert_eq!(
            verify_text(&text, &verifier),
            Err(VerifyError::Downgraded { line: 5 })
        );
    }

    #[test]
    fn tampering_is_detected_table() {
        let (_dir, key) = key();
        let lines = chain(5, Some(&key));
        let removed: String = [&lines[..2], &lines[3..]].concat().concat();
        let reordered: String = [
            lines[0].clone(),
            lines[2].clone(),
            lines[1].clone(),
            lines[3].clone(),
        ]
        .concat();
        let edited = lines
            .concat()
            .replacen("\"effect\":\"allow\"", "\"effect\":\"deny\"", 1);
        let duplicated = lines.concat().replacen(
            "\"effect\":\"allow\"",
            "\"effect\":\"allow\",\"effect\":\"deny\"",
            1,
        );
        let spaced = lines
            .concat()
            .replacen("\"effect\":\"allow\"", "\"effect\": \"allow\"", 1);
        let truncated_front: String = lines[1..].concat();
        // Someone without the key recomputes the whole chain: keyed, but with macs of their own.
        let (_other_dir, other) = self::key();
        let rewritten = chain(5, Some(&other)).concat();
        // ... or as the old unkeyed scheme.
        let unkeyed = chain(5, None).concat();
        let downgraded = [&lines[..2], &chain(5, None)[2..]].concat().concat();
        let mac_stripped = lines[0].replacen(",\"mac\":\"", ",\"x\":\"", 1);
        let table = [
            (removed, VerifyError::Broken { line: 3 }),
            (reordered, VerifyError::Broken { line: 2 }),
            (edited, VerifyError::Edited { line: 1 }),
            (duplicated, VerifyError::Edited { line: 1 }),
            (spaced, VerifyError::Edited { line: 1 }),
            (truncated_front, VerifyError::Broken { line: 1 }),
            (rewritten, VerifyError::Forged { line: 1 }),
            (downgraded, VerifyError::Broken { line: 3 }),
        ];
        let verifier = Verifier {
            key: Some(&key),
            ..Verifier::default()
        };
        for (text, expected) in table {
            assert_eq!(
                verify_text(&text, &verifier),
                Err(expected.clone()),
                "{expected}"
            );
        }
        assert!(matches!(
            verify_text(&mac_stripped, &verifier),
            Err(VerifyError::Malformed { line: 1, .. } | VerifyError::Edited { line: 1 })
        ));
        assert!(verify_text(&unkeyed, &verifier).is_ok_and(|r| r.keyed == 0));
        assert!(matches!(
            verify_text("not json\n", &verifier),
            Err(VerifyError::Malformed { line: 1, .. })
        ));
    }
}
