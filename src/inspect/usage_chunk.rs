//! OpenAI chat-completion streams report usage only when the client asks for
//! `stream_options.include_usage`. When it did not, the proxy asks on its behalf (so the call can be
//! metered) and takes the extra usage-only chunk out of what the client sees, so the client gets the
//! stream it asked for.

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::Dialect;
use crate::pii::{MAX_EVENT, event_end_from};

/// The request body with `stream_options.include_usage` set, when it is a streamed chat
/// completion to OpenAI or an OpenAI-compatible API (`provider`) that did not ask for usage;
/// `None` to leave it as it is. Azure's older API versions reject `stream_options`: not there.
/// `stream` is what inspection read of the body's `stream`: a call that is not streamed is left
/// as it is without parsing its body again.
pub fn ask_for_usage(
    provider: Option<&str>,
    stream: bool,
    path: &str,
    body: &[u8],
) -> Option<Bytes> {
    let openai = provider.is_some_and(|p| Dialect::of(p) == Dialect::OpenAi && p != "azure_openai");
    if !stream || !openai || !path.ends_with("/chat/completions") {
        return None;
    }
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let object = doc.as_object_mut()?;
    if object.get("stream") != Some(&Value::Bool(true)) {
        return None;
    }
    let options = object
        .entry("stream_options")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    let options = options.as_object_mut()?;
    if options.get("include_usage") == Some(&Value::Bool(true)) {
        return None;
    }
    options.insert("include_usage".into(), Value::Bool(true));
    Some(Bytes::from(crate::json_text::to_vec(&doc)))
}

/// The request body with an output limit of `limit` tokens, in the field the endpoint reads, when
/// it sets none: a budget's reservation is then a bound on the bill, not a guess. `None` for
/// endpoints without output (embeddings) or bodies that are not JSON objects.
pub fn with_output_limit(provider: &str, path: &str, body: &[u8], limit: u64) -> Option<Bytes> {
    let mut doc: Value = serde_json::from_slice(body).ok()?;
    let object = doc.as_object_mut()?;
    let field = match Dialect::of(provider) {
        Dialect::Anthropic => "max_tokens",
        Dialect::Gemini => {
            // Into the object the agent wrote (the API reads either spelling), never a second one.
            let (key, field) = if object.contains_key("generation_config") {
                ("generation_config", "max_output_tokens")
            } else {
                ("generationConfig", "maxOutputTokens")
            };
            let config = object
                .entry(key)
                .or_insert_with(|| Value::Object(serde_json::Map::new()));
            if !config.is_object() {
                // `null` reads as unset to the provider: the limit must be there all the same.
                *config = Value::Object(serde_json::Map::new());
            }
            let config = config.as_object_mut()?;
            config.insert(field.into(), Value::from(limit));
            return Some(Bytes::from(crate::json_text::to_vec(&doc)));
        }
        Dialect::OpenAi if path.ends_with("/responses") => "max_output_tokens",
        Dialect::OpenAi
            if path.ends_with("/chat/completions") && provider != "openai_compatible" =>
        {
            "max_completion_tokens"
        }
        Dialect::OpenAi if path.ends_with("/completions") => "max_tokens",
        Dialect::OpenAi => return None,
    };
    object.insert(field.into(), Value::from(limit));
    Some(Bytes::from(crate::json_text::to_vec(&doc)))
}

/// Passes complete events on, except the usage-only one; holds an incomplete event back.
#[derive(Default)]
pub struct UsageChunkFilter {
    pending: BytesMut,
}

impl UsageChunkFilter {
    /// The complete events of what came so far, but the usage-only one. An event still
    /// incomplete past [`MAX_EVENT`] bytes is not the usage chunk (a few hundred bytes): what came
    /// of it passes on, so nothing grows without bound.
    pub fn push(&mut self, data: &[u8]) -> Bytes {
        let mut from = self.pending.len();
        self.pending.extend_from_slice(data);
        let mut out = BytesMut::new();
        while let Some(end) = event_end_from(&self.pending, from) {
            let event = self.pending.split_to(end);
            if !is_usage_only(&event) {
                out.extend_from_slice(&event);
            }
            from = 0;
        }
        if self.pending.len() > MAX_EVENT {
            out.extend_from_slice(&self.pending.split());
        }
        out.freeze()
    }

    /// What is still held, at the end of the stream (nothing if it is the usage-only event).
    pub fn finish(&mut self) -> Bytes {
        let rest = self.pending.split().freeze();
        if is_usage_only(&rest) {
            Bytes::new()
        } else {
            rest
        }
    }
}

/// An event whose data is a chunk with no choices and a usage: the one `include_usage` adds.
fn is_usage_only(event: &[u8]) -> bool {
    let text = String::from_utf8_lossy(event);
    let data: String = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .collect();
    serde_json::from_str::<Value>(&data).is_ok_and(|doc| {
        doc["choices"].as_array().is_some_and(Vec::is_empty) && doc["usage"].is_object()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_event_passes_on_instead_of_growing() {
        let mut filter = UsageChunkFilter::default();
        let mut passed = filter.push(b"data: {\"x\": \"").len();
        for _ in 0..(MAX_EVENT / 4096 + 1) {
            passed += filter.push(&[b'x'; 4096]).len();
        }
        assert!(passed > MAX_EVENT, "passed on: {passed}");
        assert!(filter.pending.len() <= 4096);
        let usage = b"data: {\"choices\": [], \"usage\": {\"total_tokens\": 3}}\n\n";
        let after = filter.push(b"\n\n");
        assert!(after.ends_with(b"xx\n\n"));
        assert!(filter.push(usage).is_empty());
    }

    #[test]
    fn the_output_limit_goes_where_each_endpoint_reads_it() {
        let cases = [
            ("openai", "/v1/chat/completions", "/max_completion_tokens"),
            ("openai_compatible", "/v1/chat/completions", "/max_tokens"),
            (
                "azure_openai",
                "/openai/deployments/d/chat/completions",
                "/max_completion_tokens",
            ),
            ("openai", "/v1/responses", "/max_output_tokens"),
            ("openai", "/v1/completions", "/max_tokens"),
            ("anthropic", "/v1/messages", "/max_tokens"),
            (
                "gemini",
                "/v1beta/models/m:generateContent",
                "/generationConfig/maxOutputTokens",
            ),
        ];
        for (provider, path, pointer) in cases {
            let limited = with_output_limit(provider, path, br#"{"model":"m"}"#, 512).unwrap();
            let doc: Value = serde_json::from_slice(&limited).unwrap();
            assert_eq!(
                doc.pointer(pointer),
                Some(&Value::from(512)),
                "{provider} {path}"
            );
            assert_eq!(doc["model"], "m");
        }
        let snake = br#"{"generation_config":{"temperature":0}}"#;
        let limited = with_output_limit("gemini", "/v1beta/models/m:generateContent", snake, 9);
        let doc: Value = serde_json::from_slice(&limited.unwrap()).unwrap();
        assert_eq!(doc["generation_config"]["max_output_tokens"], 9);
        assert!(doc.get("generationConfig").is_none(), "{doc}");
        assert!(with_output_limit("openai", "/v1/embeddings", b"{}", 1).is_none());
        assert!(with_output_limit("openai", "/v1/chat/completions", b"[1]", 1).is_none());
    }

    #[test]
    fn usage_is_asked_for_only_where_missing() {
        let path = "/v1/chat/completions";
        let asked = ask_for_usage(
            Some("openai"),
            true,
            path,
            br#"{"model":"m","stream":true,"messages":[]}"#,
        )
        .unwrap();
        let doc: Value = serde_json::from_slice(&asked).unwrap();
        assert_eq!(doc["stream_options"]["include_usage"], true);
        assert!(ask_for_usage(Some("openai"), false, path, br#"{"stream":false}"#).is_none());
        let already = br#"{"stream":true,"stream_options":{"include_usage":true}}"#;
        assert!(ask_for_usage(Some("openai"), true, path, already).is_none());
        let responses = br#"{"stream":true}"#;
        assert!(ask_for_usage(Some("openai"), true, "/v1/responses", responses).is_none());
    }
}
