//! `gatehouse audit verify` beyond the chain: the file against the signed checkpoints of its
//! trail, and the SQLite index against the file (a row the file does not hold, or holds
//! otherwise, is an index someone edited; a decision the index marks as indexed but lacks, one
//! someone deleted from it).

use std::path::Path;

use super::chain::{Verifier, VerifyError, VerifyReport, verify_text};
use super::checkpoint::{Checkpoint, trail_of};
use super::keys::{ChainKey, PublicKey};
use super::store::{AuditStore, StoreError};
use crate::store::AuditCheckpoint;

/// A trail that holds, and what it was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The chain.
    pub report: VerifyReport,
    /// The trail's name (its first record's hash), `None` for an empty file.
    pub trail: Option<String>,
}

/// Verifies the text of an audit file: its chain, its macs when `key` is given, and, when
/// `checkpoints` are (the store's rows of this trail, and the public key to check them with),
/// that it reaches every one with the head signed. A non-empty trail with no checkpoint at all
/// fails then: it was rewritten from its first record (or never written by a proxy that signs).
pub fn verify_trail(
    text: &str,
    key: Option<&ChainKey>,
    checkpoints: Option<(&[AuditCheckpoint], &PublicKey)>,
) -> Result<Verified, VerifyError> {
    let trail = trail_of(text);
    let checked = match checkpoints {
        Some((stored, public)) => {
            let checked = Checkpoint::checked(stored, public)?;
            if checked.is_empty() && trail.is_some() {
                return Err(VerifyError::NoCheckpoint);
            }
            checked
        }
        None => Vec::new(),
    };
    let verifier = Verifier {
        key,
        checkpoints: &checked,
    };
    Ok(Verified {
        report: verify_text(text, &verifier)?,
        trail,
    })
}

/// Reads and verifies an audit file's chain (and macs, with `key`).
pub fn verify_file(
    path: &Path,
    key: Option<&ChainKey>,
) -> Result<Result<VerifyReport, VerifyError>, std::io::Error> {
    let text = std::fs::read_to_string(path)?;
    Ok(verify_trail(&text, key, None).map(|v| v.report))
}

/// Checks the index at `index` against the file's `text`: every row is the file's line of its
/// number, word for word, and every decision up to the index's mark has its row. Returns the rows
/// checked.
pub fn verify_index(index: &Path, text: &str) -> Result<Result<u64, VerifyError>, StoreError> {
    let store = AuditStore::open(index)?;
    let (rows, indexed) = store.rows()?;
    let lines: Vec<&str> = text.lines().collect();
    let mut seen = std::collections::BTreeSet::new();
    for (line, record) in &rows {
        let in_file = usize::try_from(*line)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| lines.get(i));
        let reason = match in_file {
            None => "the index holds a record the file does not".to_string(),
            Some(found) if found != record => {
                "the index's record differs from the file's (one of them was edited)".to_string()
            }
            Some(_) => {
                seen.insert(*line);
                continue;
            }
        };
        return Ok(Err(VerifyError::Index {
            line: *line,
            reason,
        }));
    }
    for (i, line) in lines.iter().enumerate().take(indexed as usize) {
        let number = i as u64 + 1;
        let decision = serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|v| v.get("record").is_none());
        if decision && !seen.contains(&number) {
            return Ok(Err(VerifyError::Index {
                line: number,
                reason: "the file's decision is missing from the index (a row was deleted)".into(),
            }));
        }
    }
    Ok(Ok(rows.len() as u64))
}
