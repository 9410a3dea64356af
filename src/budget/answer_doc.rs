//! An answer document read for what the meter takes from it, and nothing else: the members on
//! the paths [`super::usage::read_usage`], [`super::answer::AnswerFacts::read`] and the stream's
//! end test look up, at any depth, with the usage objects whole; every other member (the
//! generated text, log probabilities, tool calls) is passed over without being built. Those
//! functions see the same values as in the whole document.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// The member names on the paths the meter reads.
const KEPT: [&str; 15] = [
    "type",
    "response",
    "usage",
    "usageMetadata",
    "model",
    "modelVersion",
    "choices",
    "candidates",
    "finish_reason",
    "finishReason",
    "stop_reason",
    "object",
    "status",
    "message",
    "delta",
];

/// The members kept whole: the usage objects, whose every count a dialect may read.
const WHOLE: [&str; 2] = ["usage", "usageMetadata"];

/// `bytes` as a JSON document with only the members the meter reads; `None` when it is not JSON.
///
/// Checked as UTF-8 once and read as a `str`, as [`crate::pii::parse_unique`] reads a body.
pub fn parse(bytes: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut de = serde_json::Deserializer::from_str(text);
    let doc = Pruned.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(doc)
}

/// A value whose objects keep only the [`KEPT`] members.
struct Pruned;

impl<'de> DeserializeSeed<'de> for Pruned {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pruned {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Pruned)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key_seed(Name)? {
            match name {
                Some((name, true)) => {
                    let value = map.next_value::<Value>()?;
                    members.insert(name.to_string(), value);
                }
                Some((name, false)) => {
                    let value = map.next_value_seed(Pruned)?;
                    members.insert(name.to_string(), value);
                }
                None => {
                    map.next_value_seed(Skip)?;
                }
            }
        }
        Ok(Value::Object(members))
    }
}

/// A value read and dropped: parsed as for a `Value` (strings checked, numbers in range, nesting
/// bounded), so the document is refused exactly where a whole parse refuses it, but nothing is
/// built (an unescaped string is borrowed from the input). serde's `IgnoredAny` checks less.
/// Numbers arrive as numbers because serde_json is built without `arbitrary_precision`; with it
/// they would arrive as maps, which the meter never reads outside the usage objects anyway.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// A member's name: the kept name it is and whether it is kept [`WHOLE`], or `None` for any
/// other, without building a string for it.
struct Name;

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Option<(&'static str, bool)>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Option<(&'static str, bool)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_str<E>(self, name: &str) -> Result<Self::Value, E> {
        Ok(KEPT
            .iter()
            .find(|kept| **kept == name)
            .map(|kept| (*kept, WHOLE.contains(kept))))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::answer::AnswerFacts;
    use super::super::usage::{Usage, read_usage};
    use super::*;
    use crate::inspect::Dialect;

    /// What the meter reads from a document, whole or pruned.
    fn read(dialect: Dialect, doc: &Value) -> (bool, Usage, AnswerFacts) {
        let mut usage = Usage::default();
        let seen = read_usage(dialect, doc, &mut usage);
        let mut facts = AnswerFacts::default();
        facts.read(dialect, doc);
        (seen, usage, facts)
    }

    #[test]
    fn the_meter_reads_the_same_from_a_pruned_document() {
        let docs = [
            json!({"id": "x", "object": "chat.completion", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi jane@example.com",
                "tool_calls": [{"function": {"arguments": "{\"usage\": 1}"}}]}, "finish_reason": "stop",
                "logprobs": {"content": [{"token": "hi"}]}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5,
                    "prompt_tokens_details": {"cached_tokens": 4}}}),
            json!({"type": "response.completed", "response": {"model": "o3", "status": "completed",
                "output": [{"content": [{"text": "long"}]}],
                "usage": {"input_tokens": 7, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 1}}}}),
            json!({"object": "response", "status": "incomplete", "model": "o3", "usage": {"input_tokens": 2}}),
            json!({"type": "message_start", "message": {"model": "claude", "stop_reason": null,
                "content": [], "usage": {"input_tokens": 9, "cache_read_input_tokens": 2, "output_tokens": 1}}}),
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"output_tokens": 12}}),
            json!({"modelVersion": "gemini-2.0-flash", "candidates": [{"content": {"parts": [{"text": "a"}]},
                "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2,
                "thoughtsTokenCount": 1, "cachedContentTokenCount": 3}}),
            json!({"usage": "not an object", "model": 5, "choices": {"finish_reason": "x"}}),
            json!([1, {"usage": {"prompt_tokens": 1}}]),
            json!("text"),
        ];
        for doc in &docs {
            let pruned = parse(doc.to_string().as_bytes()).expect("parses");
            for dialect in [Dialect::OpenAi, Dialect::Anthropic, Dialect::Gemini] {
                assert_eq!(read(dialect, &pruned), read(dialect, doc), "{doc}");
            }
        }
    }

    #[test]
    fn what_is_not_json_is_refused_as_serde_refuses_it() {
        let usage = r#""usage": {"prompt_tokens": 10, "completion_tokens": 5}"#;
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let texts: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"{".to_vec(),
            b"{\"a\": 1} x".to_vec(),
            b"{\"a\": tru}".to_vec(),
            b"[1,]".to_vec(),
            b"{\"usage\": {\"x\": }}".to_vec(),
            // Members passed over are checked as a whole parse checks them.
            format!(r#"{{"id": "\ud800", {usage}}}"#).into_bytes(),
            [
                &b"{\"id\": \""[..],
                b"\xff\xfe",
                b"\", ",
                usage.as_bytes(),
                b"}",
            ]
            .concat(),
            format!(r#"{{"logprob": 1e400, {usage}}}"#).into_bytes(),
            format!(r#"{{"choices": [{{"message": {{"content": {deep}}}}}], {usage}}}"#)
                .into_bytes(),
        ];
        for text in texts {
            let shown = String::from_utf8_lossy(&text).into_owned();
            assert!(serde_json::from_slice::<Value>(&text).is_err(), "{shown}");
            assert_eq!(parse(&text), None, "{shown}");
        }
        assert_eq!(
            parse(b" {\"model\": \"m\", \"id\": [1, {\"x\": null}]} "),
            Some(json!({"model": "m"}))
        );
    }
}
