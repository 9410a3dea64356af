//! What detection (step 5) found in each place of a JSON body — string and number values with
//! their field's name, member names — and of the request's head (the decoded path, header names
//! and values), so redaction (step 10) does not scan them again. A scan
//! of a plain text is a function of the field's name (its last bytes, see
//! [`super::anchors::field_tail`]) and the text: a place detection saw clean is clean, and a place
//! it saw holding findings holds those same findings. Keyed by the exact text, never by a hash
//! alone, so no other text can borrow a place's findings. What the proxy itself added in between
//! (an output limit the ledger set) holds nothing of the agent's. Bounded: past [`MAX_KEPT`] bytes
//! of kept text, every place is scanned again, as without notes.

use std::collections::HashMap;
use std::hash::BuildHasher;

use super::Finding;
use super::anchors::field_tail;

/// Bytes of kept texts past which the notes give up (a body of many findings is rescanned).
const MAX_KEPT: usize = 1 << 20;

/// The findings of every JSON place that held one, by the hash of the place and then by its text.
#[derive(Default)]
pub struct Known {
    hasher: foldhash::fast::RandomState,
    /// Keyed by a hash already: foldhash of a `u64`, not SipHash (some 150 instructions a
    /// lookup, twice for every string of a body).
    held: HashMap<u64, Vec<Noted>, foldhash::fast::RandomState>,
    /// Bytes of text kept; past [`MAX_KEPT`] `held` is emptied and every place rescanned.
    kept: usize,
    overflowed: bool,
}

/// Counts only: the kept texts are personal data.
impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Known")
            .field("places", &self.held.values().map(Vec::len).sum::<usize>())
            .field("kept_bytes", &self.kept)
            .field("overflowed", &self.overflowed)
            .finish()
    }
}

/// One place kept: what it is, its field's name (the part scanning reads), its text, and what
/// redaction does with it.
struct Noted {
    place: Place,
    field: String,
    text: String,
    reuse: Reuse,
}

/// What a place is: a string or number value (with its field's name), a member's name, or a
/// part of the request's head (the decoded path, a header's name as words, a header's value).
#[derive(Debug, Hash, PartialEq, Eq, Clone, Copy)]
pub(super) enum Place {
    Value,
    Name,
    Head,
}

/// What redaction does with a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Reuse {
    /// Nothing to do: detection found nothing there.
    Clean,
    /// These findings, with offsets in the text as it stands.
    Findings(Vec<Finding>),
    /// Scan it again: its findings are of documents or escaped strings it holds, or the notes
    /// gave up.
    Rescan,
}

impl Reuse {
    /// What redaction does with a place whose scan found `found`.
    pub(super) fn of(found: &[Finding]) -> Reuse {
        match found.is_empty() {
            true => Reuse::Clean,
            false => Reuse::Findings(found.to_vec()),
        }
    }
}

impl Known {
    /// Notes what `text` (the value of `field`, or a member's name) held, unless it was clean.
    pub(super) fn note(&mut self, place: Place, field: &str, text: &str, reuse: Reuse) {
        let field = field_tail(field);
        if reuse == Reuse::Clean || self.overflowed || self.find(place, field, text).is_some() {
            return;
        }
        self.kept += field.len() + text.len();
        if self.kept > MAX_KEPT {
            self.overflowed = true;
            self.held = HashMap::default();
            return;
        }
        let key = self.hasher.hash_one((place, field, text));
        self.held.entry(key).or_default().push(Noted {
            place,
            field: field.to_string(),
            text: text.to_string(),
            reuse,
        });
    }

    fn find(&self, place: Place, field: &str, text: &str) -> Option<&Reuse> {
        let key = self.hasher.hash_one((place, field, text));
        self.held
            .get(&key)?
            .iter()
            .find(|n| n.place == place && n.field == field && n.text == text)
            .map(|n| &n.reuse)
    }
}

/// What redaction does with a place: scan it (without notes, or notes that gave up) or what the
/// notes say.
pub(super) fn reuse(known: Option<&Known>, place: Place, field: &str, text: &str) -> Reuse {
    match known {
        Some(known) if !known.overflowed => known
            .find(place, field_tail(field), text)
            .cloned()
            .unwrap_or(Reuse::Clean),
        _ => Reuse::Rescan,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::super::places_tests::redactor;
    use super::super::{BodyParts, BodyShape, RequestHead, Style};
    use super::Known;

    fn parts<'a>(
        json: &'a Value,
        form: &'a BTreeMap<String, String>,
        bytes: &'a [u8],
    ) -> BodyParts<'a> {
        BodyParts {
            content_type: "application/json",
            json,
            form,
            text: &[],
            decoded: bytes,
            part_heads: &[],
            part_spans: &[],
        }
    }

    /// Redacting with detection's notes gives what redacting without them gives, wherever the
    /// findings stand: values, numbers, member names, strings holding JSON, repeated texts, and
    /// with a member the proxy adds between the two steps (the ledger's output limit).
    #[test]
    fn redaction_with_detections_notes_equals_redaction_without_them() {
        let cases = [
            json!({"messages": [{"role": "user", "content": "mail jane@example.com or call"}]}),
            json!({"card": 4111111111111111u64, "n": 7, "note": "plain text"}),
            json!({"jane@example.com": "x", "other": {"bob@example.org": 1}}),
            json!({"arguments": "{\"to\": \"jane@example.com\", \"cc\": [\"a@b.example\"]}"}),
            json!({"a": "same jane@example.com", "b": "same jane@example.com", "c": "same"}),
            json!({"text": "nothing here", "list": ["x", "y", 3.5, null, true]}),
            json!({"note": r#"he wrote "jane\u0040example.com" and bob@example.org"#}),
            // Read in pieces by detection (nothing), whole by redaction (a keyed secret).
            json!({"messages": [{"content": "password = \"Xk9mQ2vL7pR4tZ8w\\n\""}]}),
        ];
        let r = redactor();
        let head = RequestHead {
            path: "/",
            query: None,
            headers: &[],
        };
        let form = BTreeMap::new();
        for case in cases {
            let bytes = case.to_string().into_bytes();
            let parts = |json| parts(json, &form, &bytes);
            let mut known = Known::default();
            r.detect_request_noting(&parts(&case), &head, Some(&mut known));
            let rules = || {
                let kinds = ["email", "credit_card", "secret"]
                    .map(String::from)
                    .to_vec();
                vec![(kinds, Style::Mask)]
            };
            let mut with = case.clone();
            with["max_tokens"] = json!(1024);
            let mut without = with.clone();
            let body = (&parts(&case), BodyShape::Json, &mut with);
            let noted = r.redact_known(rules(), "s", body, None, Some(&known));
            let body = (&parts(&case), BodyShape::Json, &mut without);
            let full = r.redact(rules(), "s", body, None);
            assert_eq!(with, without, "{case}");
            let replaced = |r: Result<super::super::Redacted, _>| r.expect("redacts").replaced;
            assert_eq!(replaced(noted), replaced(full), "{case}");
        }
    }

    /// The same of the request's head: a path, header names and values holding findings, clean
    /// ones, and values whose findings only read percent-decoded (noted as read, scanned as they
    /// are by redaction), with form and text bodies too.
    #[test]
    fn head_redaction_with_detections_notes_equals_redaction_without_them() {
        let fields = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect()
        };
        let heads = [
            (
                "/v1/chat",
                fields(&[("x-note", "mail jane@example.com"), ("accept", "*/*")]),
            ),
            (
                "/v1/chat",
                fields(&[("referer", "https://a.example/?to=jane%40example.com")]),
            ),
            (
                "/v1/chat",
                fields(&[("x-4111111111111111", "y"), ("x-ok", "plain")]),
            ),
            ("/u/jane%40example.com", fields(&[("x-ok", "plain")])),
            (
                "/v1",
                fields(&[("content-type", "text/plain; jane@example.com")]),
            ),
            (
                "/v1",
                fields(&[("x-a", "bob@example.org 100%"), ("x-b", "bob@example.org")]),
            ),
        ];
        let r = redactor();
        let form = BTreeMap::new();
        let json = json!({"note": "jane@example.com"});
        let bytes = json.to_string().into_bytes();
        for (path, headers) in &heads {
            let head = RequestHead {
                path,
                query: Some("q=jane%40example.com"),
                headers,
            };
            for shape in [BodyShape::Json, BodyShape::Form] {
                let parts = parts(&json, &form, &bytes);
                let mut known = Known::default();
                r.detect_request_noting(&parts, &head, Some(&mut known));
                let rules = || {
                    vec![(
                        vec!["email".to_string(), "credit_card".to_string()],
                        Style::Mask,
                    )]
                };
                let (mut with, mut without) = (json.clone(), json.clone());
                let noted = r.redact_known(
                    rules(),
                    "s",
                    (&parts, shape, &mut with),
                    Some(&head),
                    Some(&known),
                );
                let full = r.redact(rules(), "s", (&parts, shape, &mut without), Some(&head));
                let seen = |r: Result<super::super::Redacted, super::super::RedactError>| match r {
                    Ok(r) => Ok((r.query, r.headers, r.replaced)),
                    Err(e) => Err(e.to_string()),
                };
                assert_eq!(seen(noted), seen(full), "{path} {headers:?}");
            }
        }
    }
}
