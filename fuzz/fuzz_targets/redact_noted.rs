//! Any request head and body: redaction that reuses what detection noted (the proxy's path)
//! gives what a redaction that scans everything again gives, to the byte and to the refusal: the
//! same body, query and header values, the same counts replaced, the same error.
//!
//! Input: line 1 the path (with a query after `?`), then `name: value` header lines up to an
//! empty line, then the body (read as JSON when it parses, else as text).
#![no_main]

use std::collections::BTreeMap;

use gatehouse::pii::{BodyParts, BodyShape, RequestHead, Style};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[path = "shared_redactor.rs"]
mod shared_redactor;
use shared_redactor::redactor;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (head_text, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head_text.split('\n');
    let target = lines.next().unwrap_or_default();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let head = RequestHead {
        path,
        query,
        headers: &headers,
    };
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let form = BTreeMap::new();
    let parts = BodyParts {
        content_type: if json.is_null() {
            "text/plain"
        } else {
            "application/json"
        },
        json: &json,
        form: &form,
        text: &[],
        decoded: body.as_bytes(),
        part_heads: &[],
        part_spans: &[],
    };
    let shape = BodyShape::of(&parts);
    let r = redactor();
    let (_, known) = r.detect_noting(&parts, &head);
    let rules = || vec![(vec!["any".to_string()], Style::Mask)];
    let (mut noted_json, mut full_json) = (json.clone(), json.clone());
    let noted = r.redact_known(
        rules(),
        "s",
        (&parts, shape, &mut noted_json),
        Some(&head),
        Some(&known),
    );
    let full = r.redact(rules(), "s", (&parts, shape, &mut full_json), Some(&head));
    let seen = |r: Result<gatehouse::pii::Redacted, gatehouse::pii::RedactError>| match r {
        Ok(r) => Ok((r.body, r.query, r.headers, r.replaced)),
        Err(e) => Err(e.to_string()),
    };
    assert_eq!(seen(noted), seen(full));
    assert_eq!(noted_json, full_json);
});
