//! The values and member names of a JSON body that held findings when the request was detected
//! (step 5), so redaction (step 10) scans only those again. A scan is a function of the field's
//! name and the text, so a value that held nothing then holds nothing now; what the proxy itself
//! added in between (an output limit the ledger set) is its own and holds nothing either. Kept
//! as hashes: a collision only makes redaction scan a value it could have skipped.

use std::collections::HashSet;
use std::hash::BuildHasher;

/// Hashes of `(place, field, text)` of every JSON place that held a finding.
#[derive(Debug, Default)]
pub struct Known {
    hasher: foldhash::fast::RandomState,
    held: HashSet<u64, foldhash::fast::RandomState>,
}

/// What a hash is of: a string or number value (with its field's name) or a member's name.
#[derive(Hash, Clone, Copy)]
pub(super) enum Place {
    Value,
    Name,
}

impl Known {
    fn key(&self, place: Place, field: &str, text: &str) -> u64 {
        self.hasher.hash_one((place, field, text))
    }

    /// Notes that `text` (the value of `field`, or a member's name) held a finding.
    pub(super) fn note(&mut self, place: Place, field: &str, text: &str) {
        let key = self.key(place, field, text);
        self.held.insert(key);
    }

    /// Whether `text` may hold a finding: it did at detection, or its hash collides with one that did.
    pub(super) fn may_hold(&self, place: Place, field: &str, text: &str) -> bool {
        self.held.contains(&self.key(place, field, text))
    }
}

/// Whether a place must be scanned: always without detection's notes, else only where they say.
pub(super) fn must_scan(known: Option<&Known>, place: Place, field: &str, text: &str) -> bool {
    known.is_none_or(|k| k.may_hold(place, field, text))
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
                let kinds = vec!["email".to_string(), "credit_card".to_string()];
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
}
