//! The hash chain: each line is a JSON object holding the record's fields, `prev` (the previous
//! line's hash) and `hash` = SHA-256(prev ‖ the object without `hash`, serialised with sorted keys).

use ring::digest::{SHA256, digest};
use serde_json::Value;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Adds `prev` and `hash` to `record`; returns the line to append and its hash. The hash covers
/// the exact bytes of the line before its `hash` field, so any edit of the line changes it.
pub fn seal(mut record: Value, prev: &str) -> (String, String) {
    if let Value::Object(fields) = &mut record {
        fields.remove("hash");
        fields.insert("prev".into(), Value::String(prev.to_string()));
    }
    let body = record.to_string();
    let hash = hash_of(prev, &body);
    let open = body.strip_suffix('}').unwrap_or(&body);
    (format!("{open},\"hash\":\"{hash}\"}}\n"), hash)
}

fn hash_of(prev: &str, body: &str) -> String {
    let mut input = Vec::with_capacity(prev.len() + body.len());
    input.extend_from_slice(prev.as_bytes());
    input.extend_from_slice(body.as_bytes());
    digest(&SHA256, &input)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Splits a line into the bytes its hash covers and the stated hash.
fn split_line(line: &str) -> Option<(String, &str)> {
    const TAIL: usize = ",\"hash\":\"".len() + 64 + "\"}".len();
    if line.len() < TAIL + 1 || !line.ends_with("\"}") {
        return None;
    }
    let (head, tail) = line.split_at(line.len() - TAIL);
    let hash = tail.strip_prefix(",\"hash\":\"")?.strip_suffix("\"}")?;
    hash.bytes()
        .all(|b| b.is_ascii_hexdigit())
        .then(|| (format!("{head}}}"), hash))
}

/// The hash the next record must chain to, read from the file's last line.
pub fn last_hash(text: &str) -> Result<String, String> {
    let Some(last) = text.lines().next_back() else {
        return Ok(GENESIS.to_string());
    };
    split_line(last)
        .map(|(_, hash)| hash.to_string())
        .ok_or_else(|| "its last line is not a sealed audit record".to_string())
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
        let malformed = |reason: &str| VerifyError::Malformed {
            line: line_no,
            reason: reason.to_string(),
        };
        let (body, stated) = split_line(line).ok_or_else(|| malformed("no trailing hash field"))?;
        let value: Value = serde_json::from_str(&body).map_err(|e| malformed(&e.to_string()))?;
        let stated_prev = value
            .get("prev")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("no prev field"))?;
        if hash_of(stated_prev, &body) != stated {
            return Err(VerifyError::Edited { line: line_no });
        }
        if stated_prev != prev {
            return Err(VerifyError::Broken { line: line_no });
        }
        prev = stated.to_string();
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
        let duplicated = lines.concat().replacen(
            "\"effect\":\"allow\"",
            "\"effect\":\"allow\",\"effect\":\"deny\"",
            1,
        );
        let spaced = lines
            .concat()
            .replacen("\"effect\":\"allow\"", "\"effect\": \"allow\"", 1);
        let truncated_front: String = lines[1..].concat();
        let table = [
            (removed, VerifyError::Broken { line: 3 }),
            (reordered, VerifyError::Broken { line: 2 }),
            (edited, VerifyError::Edited { line: 1 }),
            (duplicated, VerifyError::Edited { line: 1 }),
            (spaced, VerifyError::Edited { line: 1 }),
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
