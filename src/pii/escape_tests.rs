//! Bodies read as their readers read them: a body that is one JSON string, and the quoted strings
//! of text that is not JSON to serde (a member named twice, a lone surrogate, prose), have their
//! `\u` escapes decoded for detection; a form is redacted as a form even when it also parses as JSON;
//! a header value is read percent-decoded too, and as Latin-1 when it is not UTF-8; redaction
//! leaves no finding behind.

use std::collections::BTreeMap;

use serde_json::Value;

use super::*;

fn redactor() -> Redactor {
    Redactor::new(&PiiConfig {
        scanner: ScannerConfig::default(),
        hash_key: None,
        scan_headers: true,
        unscanned_headers: vec!["authorization".into()],
        vault_max_executions: 8,
        vault_max_values: 64,
        vault_idle: std::time::Duration::from_secs(60),
    })
    .expect("redactor builds")
}

const HEAD: RequestHead<'static> = RequestHead {
    path: "/",
    query: None,
    headers: &[],
};

/// What detection finds in `decoded` (a body of `content_type`, parsed as inspection parses
/// it: JSON objects only, form fields of a form), and the body forwarded after masking emails
/// and cards.
fn detect_and_mask(content_type: &str, decoded: &str) -> (BTreeMap<String, u64>, String) {
    let r = redactor();
    let mut json: Value = serde_json::from_str(decoded)
        .ok()
        .filter(Value::is_object)
        .unwrap_or(Value::Null);
    let form: BTreeMap<String, String> = match content_type {
        "application/x-www-form-urlencoded" => form_urlencoded::parse(decoded.as_bytes())
            .into_owned()
            .collect(),
        _ => BTreeMap::new(),
    };
    let (text, heads, spans) = (Vec::new(), Vec::new(), Vec::new());
    let doc = json.clone();
    let body = BodyParts {
        content_type,
        json: &doc,
        form: &form,
        text: &text,
        decoded: decoded.as_bytes(),
        part_heads: &heads,
        part_spans: &spans,
    };
    let found = r.detect_request(&body, &HEAD);
    let rules = vec![(
        vec!["email".to_string(), "credit_card".to_string()],
        Style::Mask,
    )];
    let shape = BodyShape::of(&body);
    let redacted = r
        .redact(rules, "s", (&body, shape, &mut json), Some(&HEAD))
        .expect("redacts");
    let sent = redacted
        .body
        .map(|b| String::from_utf8(b.to_vec()).expect("UTF-8"))
        .unwrap_or_else(|| decoded.to_string());
    (found, sent)
}

#[test]
fn json_escapes_are_decoded_wherever_text_is_json() {
    let cases: &[(&str, &str)] = &[
        // The whole body one JSON string.
        ("application/json", r#""mail jane\u0040example.com""#),
        ("text/plain", r#"  "card 4111\u00201111 1111 1111" "#),
        // JSON in a string naming a member twice: every member judged, escapes decoded.
        (
            "application/json",
            r#"{"arguments": "{\"a\": 1, \"a\": 2, \"to\": \"jane\\u0040example.com\"}"}"#,
        ),
        (
            "application/json",
            r#"{"arguments": "{\"a\": 1, \"\\u0061\": 2, \"jane\\u0040example.com\": 3}"}"#,
        ),
        (
            "text/plain",
            r#"[{"x": "{\"k\": 1, \"k\": \"4111\\u003111111111111\"}"}]"#,
        ),
        // JSON a lenient reader (JavaScript's, Python's) takes and serde does not: a lone
        // surrogate elsewhere in it.
        (
            "application/json",
            r#"{"arguments": "{\"to\": \"jane\\u0040example.com\", \"x\": \"\\ud800\"}"}"#,
        ),
        // A quoted JSON string in prose, as a model reads it.
        ("text/plain", r#"write to "jane\u0040example.com" today"#),
        // A form that also parses as JSON: the upstream reads the form.
        (
            "application/x-www-form-urlencoded",
            r#"{"x": "&to=jane%40example.com&"}"#,
        ),
    ];
    let mut failures = Vec::new();
    for (content_type, decoded) in cases {
        let (found, sent) = detect_and_mask(content_type, decoded);
        // What leaves holds nothing to redact, read as the upstream reads it, and JSON stays JSON.
        let (again, _) = detect_and_mask(content_type, &sent);
        let json = serde_json::from_str::<Value>(decoded).is_err()
            || serde_json::from_str::<Value>(&sent).is_ok()
            || content_type.ends_with("form-urlencoded");
        let masked = ["[EMAIL]", "[CARD]", "%5BEMAIL%5D"]
            .iter()
            .any(|m| sent.contains(m));
        if found.values().sum::<u64>() != 1 || !again.is_empty() || !json || !masked {
            failures.push(format!("{decoded} -> {sent}: {found:?} then {again:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn percent_encoded_header_values_are_read_decoded_and_refused_when_obliged() {
    let r = redactor();
    let referer = "https://app.example/?to=jane%40example.com".to_string();
    let headers = vec![("referer".to_string(), referer)];
    let head = RequestHead {
        path: "/",
        query: None,
        headers: &headers,
    };
    let (form, text, heads, spans) = (BTreeMap::new(), Vec::new(), Vec::new(), Vec::new());
    let body = BodyParts {
        content_type: "",
        json: &Value::Null,
        form: &form,
        text: &text,
        decoded: b"",
        part_heads: &heads,
        part_spans: &spans,
    };
    let found = r.detect_request(&body, &head);
    assert_eq!(found.get("email"), Some(&1), "{found:?}");
    let rules = vec![(vec!["email".to_string()], Style::Mask)];
    let mut json = Value::Null;
    let refused = r.redact(rules, "s", (&body, BodyShape::Text, &mut json), Some(&head));
    assert!(matches!(refused, Err(RedactError::UnrewritablePlace(_))));
}

#[test]
fn header_bytes_that_are_not_utf8_are_read_as_latin1() {
    let mut map = http::HeaderMap::new();
    // `4111 1111 1111 1111` with no-break spaces, as Latin-1 readers (Node, Python) read it.
    let value = http::HeaderValue::from_bytes(b"4111\xa01111\xa01111\xa01111").unwrap();
    map.insert("x-note", value);
    let headers = header_fields(&map);
    let head = RequestHead {
        path: "/",
        query: None,
        headers: &headers,
    };
    let (form, text, heads, spans) = (BTreeMap::new(), Vec::new(), Vec::new(), Vec::new());
    let body = BodyParts {
        content_type: "",
        json: &Value::Null,
        form: &form,
        text: &text,
        decoded: b"",
        part_heads: &heads,
        part_spans: &spans,
    };
    let found = redactor().detect_request(&body, &head);
    assert_eq!(found.get("credit_card"), Some(&1), "{found:?}");
}

#[test]
fn numbers_of_a_redacted_json_body_leave_with_the_values_the_agent_sent() {
    // The body is written again from its parse: a float read one unit off (serde_json without
    // `float_roundtrip`) would be forwarded changed.
    let body = r#"{"to":"alice@example.com","x":-3.2621709746126856e+66,"y":0.1,"z":-0.0,"n":18446744073709551615}"#;
    let (_, sent) = detect_and_mask("application/json", body);
    let sent: Value = serde_json::from_str(&sent).expect("JSON");
    for (name, number) in [
        ("x", "-3.2621709746126856e+66"),
        ("y", "0.1"),
        ("z", "-0.0"),
    ] {
        let agent: f64 = number.parse().expect("a float");
        let forwarded = sent[name].as_f64().map(f64::to_bits);
        assert_eq!(forwarded, Some(agent.to_bits()), "{name}");
    }
    assert_eq!(sent["n"].as_u64(), Some(u64::MAX));
    assert_ne!(sent["to"], "alice@example.com");
}
