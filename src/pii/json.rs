//! JSON-aware scanning: the string values of a document and the names of its members (after
//! JSON escapes are decoded), each value with the name of its field, so a redaction edits strings
//! and renames members in place and the JSON stays valid.

use serde_json::Value;

use super::redact::{Replacer, redact};
use super::vault::VaultError;
use super::{Finding, Scanner};

/// A finding inside a JSON document: the string's JSON pointer and the offsets in that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonFinding {
    /// RFC 6901 pointer to the string (`/messages/0/content`), or to the member whose name it is.
    pub pointer: String,
    /// The finding is in the member's name (`{"jane@example.com": ...}`), not in a value.
    pub key: bool,
    /// The finding, with offsets into the decoded string.
    pub finding: Finding,
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Every finding in the string values of `value`.
pub fn scan_json(scanner: &Scanner, value: &Value) -> Vec<JsonFinding> {
    let mut out = Vec::new();
    walk(scanner, value, "", "", &mut out);
    out
}

fn walk(scanner: &Scanner, value: &Value, pointer: &str, field: &str, out: &mut Vec<JsonFinding>) {
    match value {
        Value::String(s) => {
            for finding in scanner.scan_field(field, s) {
                out.push(JsonFinding {
                    pointer: pointer.to_string(),
                    key: false,
                    finding,
                });
            }
        }
        Value::Number(n) => {
            // A card number or an id sent as a JSON number is still one.
            for finding in scanner.scan_field(field, &n.to_string()) {
                out.push(JsonFinding {
                    pointer: pointer.to_string(),
                    key: false,
                    finding,
                });
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(scanner, item, &format!("{pointer}/{i}"), field, out);
            }
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let path = format!("{pointer}/{}", escape_pointer(name));
                for finding in scanner.scan(name) {
                    out.push(JsonFinding {
                        pointer: path.clone(),
                        key: true,
                        finding,
                    });
                }
                walk(scanner, item, &path, name, out);
            }
        }
        _ => {}
    }
}

/// Redacts the string values of `value` in place, and renames members whose names hold something
/// to redact; returns how many strings changed. A renamed member never replaces a sibling: when
/// its new name is taken (two addresses masked alike), `#2`, `#3`, ... is appended.
pub fn redact_json(
    scanner: &Scanner,
    value: &mut Value,
    replacer: &mut impl Replacer,
) -> Result<usize, VaultError> {
    redact_walk(scanner, value, "", replacer)
}

fn redact_walk(
    scanner: &Scanner,
    value: &mut Value,
    field: &str,
    replacer: &mut impl Replacer,
) -> Result<usize, VaultError> {
    match value {
        Value::String(s) => {
            let findings = scanner.scan_field(field, s);
            match redact(s, &findings, replacer)? {
                Some(redacted) => {
                    *s = redacted;
                    Ok(1)
                }
                None => Ok(0),
            }
        }
        Value::Number(n) => {
            // Replaced by a string when it holds something to redact (the JSON stays valid).
            let text = n.to_string();
            let findings = scanner.scan_field(field, &text);
            match redact(&text, &findings, replacer)? {
                Some(redacted) => {
                    *value = Value::String(redacted);
                    Ok(1)
                }
                None => Ok(0),
            }
        }
        Value::Array(items) => {
            let mut changed = 0;
            for item in items {
                changed += redact_walk(scanner, item, field, replacer)?;
            }
            Ok(changed)
        }
        Value::Object(fields) => {
            let mut changed = 0;
            for (name, item) in fields.iter_mut() {
                changed += redact_walk(scanner, item, name, replacer)?;
            }
            let mut renames = Vec::new();
            for name in fields.keys() {
                let findings = scanner.scan(name);
                if let Some(renamed) = redact(name, &findings, replacer)? {
                    renames.push((name.clone(), renamed));
                }
            }
            changed += renames.len();
            let moved: Vec<(String, Value)> = renames
                .into_iter()
                .filter_map(|(old, new)| fields.remove(&old).map(|item| (new, item)))
                .collect();
            for (name, item) in moved {
                let free = unique_name(fields, name);
                fields.insert(free, item);
            }
            Ok(changed)
        }
        _ => Ok(0),
    }
}

/// `name`, or `name#2`, `name#3`, ... : the first no member of `fields` has.
fn unique_name(fields: &serde_json::Map<String, Value>, name: String) -> String {
    if !fields.contains_key(&name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}#{n}"))
        .find(|candidate| !fields.contains_key(candidate))
        .unwrap_or(name)
}
