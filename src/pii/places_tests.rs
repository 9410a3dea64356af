//! Every place a request carries text is scanned and redacted: JSON member names, form field
//! names, bare query names, the path, header values (but credentials), multipart part headers, and
//! text in compatibility forms.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;

pub(super) fn redactor() -> Redactor {
    Redactor::new(&PiiConfig {
        scanner: ScannerConfig::default(),
        hash_key: None,
        scan_headers: true,
        unscanned_headers: vec!["authorization".into(), "cookie".into(), "x-api-key".into()],
        vault_max_executions: 8,
        vault_max_values: 64,
        vault_idle: std::time::Duration::from_secs(60),
    })
    .expect("redactor builds")
}

const CARD: &str = "4111 1111 1111 1111";

struct Body {
    content_type: &'static str,
    json: Value,
    form: BTreeMap<String, String>,
    text: Vec<String>,
    decoded: Vec<u8>,
    heads: Vec<String>,
    spans: Vec<Option<(usize, usize)>>,
}

impl Body {
    fn new(content_type: &'static str, decoded: &str) -> Body {
        Body {
            content_type,
            // As inspection parses it: objects only.
            json: serde_json::from_str(decoded)
                .ok()
                .filter(Value::is_object)
                .unwrap_or(Value::Null),
            form: BTreeMap::new(),
            text: Vec::new(),
            decoded: decoded.as_bytes().to_vec(),
            heads: Vec::new(),
            spans: Vec::new(),
        }
    }

    fn parts(&self) -> BodyParts<'_> {
        BodyParts {
            content_type: self.content_type,
            json: &self.json,
            form: &self.form,
            text: &self.text,
            decoded: &self.decoded,
            part_heads: &self.heads,
            part_spans: &self.spans,
        }
    }
}

const NO_HEADERS: &[(String, String)] = &[];

fn head<'a>(
    path: &'a str,
    query: Option<&'a str>,
    headers: &'a [(String, String)],
) -> RequestHead<'a> {
    RequestHead {
        path,
        query,
        headers,
    }
}

fn mask(kinds: &[&str]) -> Vec<RedactRule> {
    vec![(kinds.iter().map(|k| k.to_string()).collect(), Style::Mask)]
}

fn detected(body: &Body, head: &RequestHead<'_>) -> BTreeMap<String, u64> {
    redactor().detect_request(&body.parts(), head)
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

#[test]
fn detection_reads_every_place_of_a_request() {
    let headers = vec![
        (
            "authorization".to_string(),
            "Bearer sk-proj-abcdefghijklmnopqrstuvwxyz012345".to_string(),
        ),
        ("cookie".to_string(), "session=jane@example.com".to_string()),
        ("x-customer".to_string(), "jane@example.com".to_string()),
    ];
    type Case<'a> = (Body, RequestHead<'a>, BTreeMap<String, u64>);
    let cases: Vec<Case> = vec![
        (
            Body::new(
                "application/json",
                r#"{"metadata": {"alice@example.com": "x"}}"#,
            ),
            head("/", None, NO_HEADERS),
            counts(&[("email", 1)]),
        ),
        (
            Body::new(
                "application/x-www-form-urlencoded",
                "SSN 078-05-1121 card 4111 1111 1111 1111",
            ),
            head("/", None, NO_HEADERS),
            counts(&[("credit_card", 1), ("us_ssn", 1)]),
        ),
        (
            Body::new("", ""),
            head("/", Some("4111111111111111"), NO_HEADERS),
            counts(&[("credit_card", 1)]),
        ),
        (
            Body::new("", ""),
            head("/users/jane%40example.com/orders", None, NO_HEADERS),
            counts(&[("email", 1)]),
        ),
        (
            Body::new("", ""),
            head("/", None, &headers),
            counts(&[("email", 1)]),
        ),
        (
            Body::new(
                "text/plain",
                "card ４１１１ １１１１ １１１１ １１１１ for ja\u{200b}ne@example.com",
            ),
            head("/", None, NO_HEADERS),
            counts(&[("credit_card", 1), ("email", 1)]),
        ),
    ];
    for (body, head, want) in cases {
        assert_eq!(
            detected(&body, &head),
            want,
            "{:?} {head:?}",
            body.content_type
        );
    }
}

#[test]
fn multipart_part_headers_are_scanned() {
    let mut body = Body::new("multipart/form-data", "");
    body.heads = vec![
        "Content-Disposition: form-data; name=\"file\"; filename=\"rows of jane@example.com\""
            .into(),
    ];
    body.text = vec![format!("{{\"card\": \"{CARD}\"}}")];
    assert_eq!(
        detected(&body, &head("/", None, NO_HEADERS)),
        counts(&[("credit_card", 1), ("email", 1)])
    );
    let r = redactor();
    let mut json = Value::Null;
    let refused = r.redact(
        mask(&["email"]),
        "s",
        (&body.parts(), BodyShape::Multipart, &mut json),
        None,
    );
    assert!(matches!(refused, Err(RedactError::UnrewritableBody(_))));
}

#[test]
fn json_member_names_are_renamed_without_losing_a_sibling() {
    let r = redactor();
    let body = Body::new("application/json", "");
    let mut doc = json!({
        "metadata": {"alice@example.com": "a", "bob@example.com": "b", "[EMAIL]": "c"},
        "note": "keep"
    });
    let redacted = r
        .redact(
            mask(&["email"]),
            "s",
            (&body.parts(), BodyShape::Json, &mut doc),
            Some(&head("/", None, NO_HEADERS)),
        )
        .expect("redacts");
    let sent: Value = serde_json::from_slice(&redacted.body.expect("changed")).unwrap();
    assert_eq!(
        sent,
        json!({"metadata": {"[EMAIL]": "c", "[EMAIL]#2": "a", "[EMAIL]#3": "b"}, "note": "keep"})
    );
    assert_eq!(redacted.replaced, counts(&[("email", 2)]));
}

#[test]
fn form_names_query_names_and_header_values_are_rewritten() {
    let r = redactor();
    let body = Body::new(
        "application/x-www-form-urlencoded",
        "SSN+078-05-1121+card+4111+1111+1111+1111&note=hi",
    );
    let headers = vec![
        ("x-customer".to_string(), "jane@example.com".to_string()),
        (
            "authorization".to_string(),
            "Bearer jane@example.com".to_string(),
        ),
    ];
    let mut json = Value::Null;
    let redacted = r
        .redact(
            mask(&["us_ssn", "credit_card", "email"]),
            "s",
            (&body.parts(), BodyShape::Form, &mut json),
            Some(&head("/v1", Some("4111111111111111&a=b"), &headers)),
        )
        .expect("redacts");
    assert_eq!(
        redacted.body.as_deref(),
        Some(&b"SSN+%5BSSN%5D+card+%5BCARD%5D=&note=hi"[..])
    );
    assert_eq!(redacted.query.as_deref(), Some("%5BCARD%5D=&a=b"));
    assert_eq!(redacted.headers, vec![(0, "[EMAIL]".to_string())]);
}

#[test]
fn the_path_and_framing_headers_refuse_rather_than_change_what_the_request_does() {
    let r = redactor();
    let body = Body::new("", "");
    let mut json = Value::Null;
    let path = r.redact(
        mask(&["email"]),
        "s",
        (&body.parts(), BodyShape::Opaque, &mut json),
        Some(&head("/users/jane%40example.com", None, NO_HEADERS)),
    );
    assert!(
        matches!(&path, Err(RedactError::UnrewritablePlace(p)) if p == "the URL path"),
        "{:?}",
        path.err()
    );
    let headers = vec![(
        "content-type".to_string(),
        "multipart/form-data; boundary=jane@example.com".to_string(),
    )];
    let framing = r.redact(
        mask(&["email"]),
        "s",
        (&body.parts(), BodyShape::Opaque, &mut json),
        Some(&head("/", None, &headers)),
    );
    assert!(
        matches!(framing, Err(RedactError::UnrewritablePlace(p)) if p.contains("content-type"))
    );
}

#[test]
fn a_fullwidth_card_is_masked_where_it_stands() {
    let r = redactor();
    let text = "pay with ４１１１ １１１１ １１１１ １１１１ today";
    let body = Body::new("text/plain", text);
    let mut json = Value::Null;
    let redacted = r
        .redact(
            mask(&["credit_card"]),
            "s",
            (&body.parts(), BodyShape::Text, &mut json),
            None,
        )
        .expect("redacts");
    assert_eq!(
        redacted.body.as_deref(),
        Some(&b"pay with [CARD] today"[..])
    );
}

#[test]
fn the_headers_sdks_send_hold_nothing() {
    let sdk = [
        ("user-agent", "OpenAI/Python 1.54.3"),
        ("x-stainless-lang", "python"),
        ("x-stainless-package-version", "1.54.3"),
        ("x-stainless-os", "Linux"),
        ("x-stainless-arch", "x64"),
        ("x-stainless-runtime-version", "3.12.3"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-read-timeout", "600.0"),
        (
            "idempotency-key",
            "stainless-python-retry-5b1d4f2e-8c1a-4d39-9c59-0f1e5f3a2b7c",
        ),
        ("anthropic-version", "2023-06-01"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
        ("x-request-id", "req_8f3a1c2b9d4e5f60"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, deflate, br, zstd"),
        ("content-type", "application/json"),
        ("content-length", "1234"),
        ("host", "api.openai.com"),
        ("user-agent", "curl/8.5.0"),
        ("user-agent", "python-requests/2.32.3"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("date", "Mon, 07 Dec 2026 01:45:00 GMT"),
    ];
    let headers: Vec<(String, String)> = sdk
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let found = detected(
        &Body::new("", ""),
        &head("/v1/chat/completions", None, &headers),
    );
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn text_that_is_json_is_read_and_redacted_as_json() {
    let r = redactor();
    let escaped = r#"{"to": "jane\u0040example.com"}"#;
    type Case = (&'static str, String, &'static str);
    let cases: Vec<Case> = vec![
        (
            "application/json",
            format!("[{escaped}]"),
            "[{\"to\":\"[EMAIL]\"}]",
        ),
        (
            "text/plain",
            format!("{escaped}\n{escaped}\n"),
            "{\"to\":\"[EMAIL]\"}\n{\"to\":\"[EMAIL]\"}\n",
        ),
        (
            "application/json",
            r#"{"arguments": "{\"email\": \"jane\\u0040example.com\"}"}"#.to_string(),
            r#"{"arguments":"{\"email\":\"[EMAIL]\"}"}"#,
        ),
    ];
    for (content_type, text, want) in cases {
        let mut body = Body::new(content_type, &text);
        let shape = match body.json.is_object() {
            true => BodyShape::Json,
            false => BodyShape::Text,
        };
        let emails = if text.contains('\n') { 2 } else { 1 };
        assert_eq!(
            detected(&body, &head("/", None, NO_HEADERS)),
            counts(&[("email", emails)]),
            "{text}"
        );
        let mut json = std::mem::take(&mut body.json);
        let redacted = r
            .redact(
                mask(&["email"]),
                "s",
                (&body.parts(), shape, &mut json),
                None,
            )
            .expect("redacts");
        assert_eq!(
            String::from_utf8(redacted.body.expect("changed").to_vec()).unwrap(),
            want
        );
    }
}

#[test]
fn a_header_name_holding_data_is_found_and_cannot_be_rewritten() {
    let r = redactor();
    let headers = vec![("x-4111111111111111".to_string(), "1".to_string())];
    let body = Body::new("", "");
    assert_eq!(
        detected(&body, &head("/", None, &headers)),
        counts(&[("credit_card", 1)])
    );
    let mut json = Value::Null;
    let refused = r.redact(
        mask(&["credit_card"]),
        "s",
        (&body.parts(), BodyShape::Opaque, &mut json),
        Some(&head("/", None, &headers)),
    );
    assert!(matches!(refused, Err(RedactError::UnrewritablePlace(p)) if p == "a header name"));
}

#[test]
fn a_hashed_value_gets_one_token_in_whatever_form_it_came() {
    let r = redactor();
    let text = "4111 1111 1111 1111 or ４１１１ １１１１ １１１１ １１１１";
    let body = Body::new("text/plain", text);
    let mut json = Value::Null;
    let rules = vec![(vec!["credit_card".to_string()], Style::Hash)];
    let redacted = r
        .redact(
            rules,
            "s",
            (&body.parts(), BodyShape::Text, &mut json),
            None,
        )
        .expect("redacts");
    let out = String::from_utf8(redacted.body.expect("changed").to_vec()).unwrap();
    let (a, b) = out.split_once(" or ").unwrap();
    assert!(a.starts_with("[CARD:"), "{out}");
    assert_eq!(a, b);
}

#[test]
fn findings_in_folded_text_lie_on_character_boundaries_in_order() {
    let s = Scanner::new(&ScannerConfig::default()).expect("scanner");
    let pieces = [
        "４",
        "1",
        " ",
        "\u{200b}",
        "ｊ",
        "a",
        "@",
        "＠",
        "ｅ",
        "x",
        ".",
        "．",
        "com",
        "\u{0}",
        "é",
        "\u{ad}",
        "①",
        "+",
        "-",
        "ﬁ",
        "\n",
        "1111",
        "４１１１",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..24 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(pieces[(seed % pieces.len() as u64) as usize]);
        }
        let mut last_end = 0;
        for f in s.scan(&text) {
            assert!(f.start < f.end && f.start >= last_end, "{text:?}");
            assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
            last_end = f.end;
        }
    }
    let text = "mail ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ and ４１１１ １１１１ １１１１ １１１１";
    let found: Vec<&str> = s.scan(text).iter().map(|f| &text[f.start..f.end]).collect();
    assert_eq!(
        found,
        [
            "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
            "４１１１ １１１１ １１１１ １１１１"
        ]
    );
}

#[test]
fn a_member_named_twice_is_told() {
    let cases: &[(&str, bool)] = &[
        (r#"{"a": 1, "b": {"a": 2}}"#, false),
        (r#"{"a": "jane@example.com", "a": "x"}"#, true),
        (r#"[{"to": 1, "\u0074o": 2}]"#, true),
        ("{\"a\": 1}\n{\"a\": 2}\n", false),
        ("{\"a\": 1}\n{\"b\": 2, \"b\": 3}\n", true),
        (
            r#"{"sql": "DELETE FROM users", "\u0073ql": "SELECT 1"}"#,
            true,
        ),
        (
            r#"{"params": {"arguments": {"query": "a", "query": "b"}}}"#,
            true,
        ),
        (
            r#"{"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]}"#,
            false,
        ),
        ("{\"truncated\": ", false),
        ("not json", false),
    ];
    for (text, twice) in cases {
        assert_eq!(names_a_member_twice(text.as_bytes()), *twice, "{text}");
    }
}
