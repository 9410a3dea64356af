//! The hash chain: each line is a JSON object holding the record's fields, `prev` (the previous
//! line's hash) and `hash` = SHA-256(prev ‖ the object without `hash`, serialised with sorted keys).

use ring::digest::{SHA256, digest};
use serde_json::Value;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Adds `prev` and `hash` to `record`; returns the line to append and its hash.
pub fn seal(mut record: Value, prev: &str) -> (String, String) {
    if let Value::Object(fields) = &mut record {
        fields.remove("hash");
        fields.insert("prev".into(), Value::String(prev.to_string()));
    }
    let hash = hash_of(&record, prev);
    if let Value::Object(fields) = &mut record {
        fields.insert("hash".into(), Value::String(hash.clone()));
    }
    (format!("{record}\n"), hash)
}

fn hash_of(record_without_hash: &Value, prev: &str) -> String {
    let mut input = prev.as_bytes().to_vec();
    input.extend_from_slice(record_without_hash.to_string().as_bytes());
    digest(&SHA256, &input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The hash the next record must chain to, read from the file's last line.
pub fn last_hash(text: &str) -> Result<String, String> {
    let Some(last) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Ok(GENESIS.to_string());
    };
    let value: Value =
        serde_json::from_str(last).map_err(|e| format!("last line is not JSON: {e}"))?;
    value
        .get("hash")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| "last line has no hash".to_string())
}

/// A chain that checks out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub records: usize,
}

/// The first place the chain breaks.
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
}

/// Checks every line of an audit file's text.
pub fn verify_text(text: &str) -> Result<VerifyReport, VerifyError> {
    let mut prev = GENESIS.to_string();
    let mut records = 0;
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut value: Value = serde_json::from_str(line).map_err(|e| VerifyError::Malformed {
            line: line_no,
            reason: e.to_string(),
        })?;
        let fields = value.as_object_mut().ok_or(VerifyError::Malformed {
            line: line_no,
            reason: "not an object".into(),
        })?;
        let stated = match fields.remove("hash") {
            Some(Value::String(h)) => h,
            _ => {
                return Err(VerifyError::Malformed {
                    line: line_no,
                    reason: "no hash".into(),
                });
            }
        };
        let stated_prev = fields
            .get("prev")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if hash_of(&value, &stated_prev) != stated {
            return Err(VerifyError::Edited { line: line_no });
        }
        if stated_prev != prev {
            return Err(VerifyError::Broken { line: line_no });
        }
        prev = stated;
        records += 1;
    }
    Ok(VerifyReport { records })
}

/// Reads and verifies an audit file.
pub fn verify_file(
    path: &std::path::Path,
) -> Result<Result<VerifyReport, VerifyError>, std::io::Error> {
    Ok(verify_text(&std::fs::read_to_string(path)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> Vec<String> {
        let mut prev = GENESIS.to_string();
        (0..n)
            .map(|i| {
                let (line, hash) = seal(
                    serde_json::json!({"decision": format!("d{i}"), "effect": "allow"}),
                    &prev,
                );
                prev = hash;
                line
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(
            verify_text(&chain(5).concat()),
            Ok(VerifyReport { records: 5 })
        );
        assert_eq!(last_hash(&chain(3).concat()).unwrap().len(), 64);
    }

    #[test]
    fn tampering_is_detected_table() {
        let lines = chain(5);
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
        let truncated_front: String = lines[1..].concat();
        let table = [
            (removed, VerifyError::Broken { line: 3 }),
            (reordered, VerifyError::Broken { line: 2 }),
            (edited, VerifyError::Edited { line: 1 }),
            (truncated_front, VerifyError::Broken { line: 1 }),
        ];
        for (text, expected) in table {
            assert_eq!(verify_text(&text), Err(expected.clone()), "{expected}");
        }
        assert!(matches!(
            verify_text("not json\n"),
            Err(VerifyError::Malformed { line: 1, .. })
        ));
    }
}
