//! Any request body with any `Content-Type` and `Content-Encoding`: decoding (content codings,
//! charsets), recognition (JSON, forms, multipart, SQL, LLM and tool calls), detection over body,
//! path and headers, and a mask redaction finish without panic; a JSON body stays valid JSON
//! once redacted.
#![no_main]

use bytes::Bytes;
use gatehouse::inspect::{InspectConfig, Request, body_facts, examine};
use gatehouse::pii::{BodyShape, RequestHead, Style};
use libfuzzer_sys::fuzz_target;

#[path = "shared_redactor.rs"]
mod shared_redactor;
use shared_redactor::redactor;

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(3, |b| *b == b'\n');
    let content_type = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let encoding = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let body = Bytes::copy_from_slice(lines.next().unwrap_or_default());
    let config = InspectConfig {
        sql_fields: vec!["query".to_string(), "sql".to_string()],
        prose_fields: vec!["query".to_string()],
        ..InspectConfig::default()
    };
    let sent = Request {
        host: "api.openai.com",
        method: "POST",
        path: "/v1/chat/completions",
        query: Some("q=1"),
        content_type: Some(&content_type)
            .filter(|c| !c.is_empty())
            .map(String::as_str),
        prefer: None,
        body: &body,
    };
    let encoding = Some(encoding.as_str()).filter(|e| !e.is_empty());
    let Ok((decoded, recognised)) = examine(sent, encoding, 1 << 20, &config) else {
        return;
    };
    let content_type = recognised.content_type.clone().or(Some(content_type));
    let facts = body_facts(&decoded, content_type.as_deref(), recognised.json);
    let headers = vec![("x-note".to_string(), "call 555-0100".to_string())];
    let uri: http::Uri = "/v1/chat/completions?q=1".parse().expect("uri");
    let head = RequestHead::of(&uri, &headers);
    let parts = facts.scanned(&decoded);
    let _ = redactor().detect_request(&parts, &head);
    let shape = BodyShape::of(&parts);
    let mut json = facts.json.clone();
    let rules = vec![(vec!["any".to_string()], Style::Mask)];
    let redacted = redactor().redact(rules, "fuzz", (&parts, shape, &mut json), Some(&head));
    if let (Ok(redacted), BodyShape::Json) = (redacted, shape)
        && let Some(body) = redacted.body
    {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&body).is_ok(),
            "redacted JSON no longer parses"
        );
    }
});
