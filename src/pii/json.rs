//! JSON-aware scanning: the string values of a document and the names of its members (after
//! JSON escapes are decoded), each value with the name of its field, so a redaction edits strings
//! and renames members in place and the JSON stays valid. Text that is JSON through and through
//! (a body sent as text, a JSON Lines file, a string value holding JSON such as a tool call's
//! `arguments`) is read the same way: a server reading it as JSON decodes `\u0040`, so must we.

use serde_json::Value;

use super::known::{Known, Place, Reuse, reuse};
use super::redact::{Replacer, redact};
use super::unique::parse_unique_stream;
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

/// Every finding in the member names and the string values of `value`. A string that is itself
/// JSON has the findings of the document it holds, with offsets in that document's strings.
pub fn scan_json(scanner: &Scanner, value: &Value) -> Vec<JsonFinding> {
    let mut out = Vec::new();
    walk(scanner, value, (Some(""), ""), &mut out, &mut None);
    out
}

/// [`scan_json`] without pointers (the proxy counts findings; it does not place them), noting in
/// `known` what each place held. Building every value's pointer was quadratic in a body whose
/// long member name holds a long array.
pub(super) fn scan_json_noting(
    scanner: &Scanner,
    value: &Value,
    mut known: Option<&mut Known>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    walk(scanner, value, (None, ""), &mut out, &mut known);
    out.into_iter().map(|f| f.finding).collect()
}

fn walk(
    scanner: &Scanner,
    value: &Value,
    (pointer, field): (Option<&str>, &str),
    out: &mut Vec<JsonFinding>,
    known: &mut Option<&mut Known>,
) {
    let found = match value {
        Value::String(s) => {
            let (found, plain) = scan_value_read(scanner, field, s);
            keep(known, (Place::Value, field, s), &found, plain);
            found
        }
        Value::Number(n) => {
            // A card number or an id sent as a JSON number is still one.
            let text = n.to_string();
            let found = scanner.scan_field(field, &text);
            keep(known, (Place::Value, field, &text), &found, true);
            found
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let pointer = pointer.map(|p| format!("{p}/{i}"));
                walk(scanner, item, (pointer.as_deref(), field), out, known);
            }
            return;
        }
        Value::Object(fields) => {
            for (name, item) in fields {
                let path = pointer.map(|p| format!("{p}/{}", escape_pointer(name)));
                let found = scanner.scan(name);
                keep(known, (Place::Name, "", name), &found, true);
                out.extend(found.into_iter().map(|finding| JsonFinding {
                    pointer: path.clone().unwrap_or_default(),
                    key: true,
                    finding,
                }));
                walk(scanner, item, (path.as_deref(), name), out, known);
            }
            return;
        }
        _ => return,
    };
    out.extend(found.into_iter().map(|finding| JsonFinding {
        pointer: pointer.unwrap_or_default().to_string(),
        key: false,
        finding,
    }));
}

/// Notes in `known` what a place held: its findings when they are offsets in its text (`plain`).
pub(super) fn keep(
    known: &mut Option<&mut Known>,
    (place, field, text): (Place, &str, &str),
    found: &[Finding],
    plain: bool,
) {
    if let Some(known) = known.as_deref_mut() {
        // A text that holds documents or escaped strings is scanned in pieces here and whole
        // by redaction, which may find more (a keyword before an escaped value): scan it again.
        let reuse = match plain {
            true => Reuse::of(found),
            false => Reuse::Rescan,
        };
        known.note(place, field, text, reuse);
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
    redact_walk(scanner, value, "", replacer, None)
}

/// [`redact_json`] scanning only the places `known` (from detection) says held a finding.
pub(super) fn redact_json_known(
    scanner: &Scanner,
    value: &mut Value,
    replacer: &mut impl Replacer,
    known: Option<&Known>,
) -> Result<usize, VaultError> {
    redact_walk(scanner, value, "", replacer, known)
}

fn redact_walk(
    scanner: &Scanner,
    value: &mut Value,
    field: &str,
    replacer: &mut impl Replacer,
    known: Option<&Known>,
) -> Result<usize, VaultError> {
    match value {
        Value::String(s) => {
            let redacted = match reuse(known, Place::Value, field, s) {
                Reuse::Clean => None,
                Reuse::Findings(found) => redact(s, &found, replacer)?,
                Reuse::Rescan => redact_value(scanner, field, s, replacer)?,
            };
            Ok(redacted.map_or(0, |redacted| {
                *s = redacted;
                1
            }))
        }
        Value::Number(n) => {
            // Replaced by a string when it holds something to redact (the JSON stays valid).
            let text = n.to_string();
            let findings = match reuse(known, Place::Value, field, &text) {
                Reuse::Clean => return Ok(0),
                Reuse::Findings(found) => found,
                Reuse::Rescan => scanner.scan_field(field, &text),
            };
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
                changed += redact_walk(scanner, item, field, replacer, known)?;
            }
            Ok(changed)
        }
        Value::Object(fields) => {
            let mut changed = 0;
            for (name, item) in fields.iter_mut() {
                changed += redact_walk(scanner, item, name, replacer, known)?;
            }
            let mut renames = Vec::new();
            for name in fields.keys() {
                let findings = match reuse(known, Place::Name, "", name) {
                    Reuse::Clean => continue,
                    Reuse::Findings(found) => found,
                    Reuse::Rescan => scanner.scan(name),
                };
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

/// The JSON documents `text` is when it is JSON through and through: one document, or several one
/// after another (JSON Lines), each an object, an array or a string (a reader decodes the `\u`
/// escapes of a body that is one JSON string as well).
fn documents(text: &str) -> Option<Vec<Value>> {
    let first = text.trim_start().as_bytes().first()?;
    if !matches!(first, b'{' | b'[' | b'"') {
        return None;
    }
    // Text with a member named twice is read as it is: every value stands in it (see
    // `escaped_strings` for the quoted strings in it that hold escapes).
    let docs = parse_unique_stream(text)?;
    docs.iter()
        .all(|d| d.is_object() || d.is_array() || d.is_string())
        .then_some(docs)
}

/// The quoted JSON strings of `text` that hold escapes (`"jane\u0040example.com"`): the byte
/// range of each, quotes included, and the string it stands for. For text read as it is (JSON
/// naming a member twice, JSON serde refuses but lenient readers take, prose quoting JSON): a
/// reader decodes those escapes, so detection must.
fn escaped_strings(text: &str) -> Vec<(usize, usize, String)> {
    if !text.contains('\\') {
        return Vec::new();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let (start, mut escaped) = (i, false);
        i += 1;
        while i < bytes.len() && bytes[i] != b'"' {
            escaped |= bytes[i] == b'\\';
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        // `"` is one byte that never occurs inside a multi-byte character: `end` is a boundary.
        let end = (i + 1).min(bytes.len());
        if escaped && let Ok(decoded) = serde_json::from_str::<String>(&text[start..end]) {
            out.push((start, end, decoded));
        }
        i = end;
    }
    out
}

/// `text` with the literals of `strings` (ranges, in order) replaced by `with` of each.
fn replaced(
    text: &str,
    strings: &[(usize, usize, String)],
    with: impl Fn(usize) -> String,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, (start, end, _)) in strings.iter().enumerate() {
        out.push_str(&text[last..*start]);
        out.push_str(&with(i));
        last = *end;
    }
    out.push_str(&text[last..]);
    out
}

/// The findings of `text`, the value of `field` (empty when it has no name): those of the
/// documents it holds when it is JSON, else those of the text (its quoted strings with their
/// escapes decoded).
pub(super) fn scan_value(scanner: &Scanner, field: &str, text: &str) -> Vec<Finding> {
    scan_value_read(scanner, field, text).0
}

/// [`scan_value`], and whether `text` was read plain (no document or escaped string in it): then
/// the findings' offsets are in `text` itself.
fn scan_value_read(scanner: &Scanner, field: &str, text: &str) -> (Vec<Finding>, bool) {
    let found = match documents(text) {
        Some(docs) => docs
            .iter()
            .flat_map(|doc| scan_json(scanner, doc))
            .map(|f| f.finding)
            .collect(),
        None => {
            let strings = escaped_strings(text);
            if strings.is_empty() {
                return (scanner.scan_field(field, text), true);
            }
            // Each escaped string is read decoded, once; the rest of the text as it is.
            let rest = replaced(text, &strings, |_| "\"\"".to_string());
            let mut found = scanner.scan_field(field, &rest);
            for (_, _, decoded) in &strings {
                found.extend(scanner.scan_field(field, decoded));
            }
            found
        }
    };
    (found, false)
}

/// `text` (the value of `field`) redacted; JSON is redacted as JSON and written again, JSON Lines
/// one document a line. `None` when nothing changed.
pub(super) fn redact_value(
    scanner: &Scanner,
    field: &str,
    text: &str,
    replacer: &mut impl Replacer,
) -> Result<Option<String>, VaultError> {
    let Some(mut docs) = documents(text) else {
        // Escaped strings first, each rewritten as a JSON string; then the text as it is.
        let strings = escaped_strings(text);
        let mut rewritten = Vec::with_capacity(strings.len());
        for (start, end, decoded) in &strings {
            let findings = scanner.scan_field(field, decoded);
            rewritten.push(match redact(decoded, &findings, replacer)? {
                Some(new) => crate::json_text::to_string(&Value::String(new)),
                None => text[*start..*end].to_string(),
            });
        }
        let edited = replaced(text, &strings, |i| rewritten[i].clone());
        let findings = scanner.scan_field(field, &edited);
        return Ok(match redact(&edited, &findings, replacer)? {
            Some(done) => Some(done),
            None => (edited != text).then_some(edited),
        });
    };
    let mut changed = 0;
    for doc in &mut docs {
        changed += redact_json(scanner, doc, replacer)?;
    }
    if changed == 0 {
        return Ok(None);
    }
    let mut out = docs
        .iter()
        .map(crate::json_text::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if docs.len() > 1 && text.ends_with('\n') {
        out.push('\n');
    }
    Ok(Some(out))
}
