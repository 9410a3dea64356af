//! Restoring pseudonyms in a stream of server-sent events whose text arrives a token at a time:
//! `<EMAIL_1>` may come as `<`, `EMAIL`, `_1`, `>` in four events. The text of each event (the
//! delta of OpenAI chat and responses, Anthropic and Gemini streams) goes through one restorer, so
//! only the text that could still complete a placeholder waits for the next event; what still waits
//! when a non-text event comes is sent first in an event of its own, shaped like the last text one.

use serde_json::Value;

use super::vault::Restorer;

/// Where stream formats put the next piece of text.
const TEXT_AT: [&str; 4] = [
    "/choices/0/delta/content",
    "/delta/text",
    "/candidates/0/content/parts/0/text",
    "/delta",
];

/// A restorer for a stream of events.
pub struct EventRestorer {
    text: Restorer,
    raw: Restorer,
    pending: Vec<u8>,
    last_text_event: Option<(Vec<String>, Value, &'static str)>,
}

impl EventRestorer {
    /// Restores events with `text` for their text and `raw` for events that carry none.
    pub fn new(text: Restorer, raw: Restorer) -> EventRestorer {
        EventRestorer {
            text,
            raw,
            pending: Vec::new(),
            last_text_event: None,
        }
    }

    /// The restored events complete so far. An event still incomplete past [`MAX_EVENT`] bytes
    /// is no provider's: what came of it passes restored as raw bytes, so nothing grows without
    /// bound.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut from = self.pending.len();
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = event_end_from(&self.pending, from) {
            let event: Vec<u8> = self.pending.drain(..end).collect();
            out.extend(self.event(&event));
            from = 0;
        }
        if self.pending.len() > MAX_EVENT {
            let rest = std::mem::take(&mut self.pending);
            out.extend(self.flush_text());
            out.extend(self.raw.push(&rest));
        }
        out
    }

    /// Whatever is left at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        let mut out = self.flush_text();
        if !rest.is_empty() {
            out.extend(self.raw.push(&rest));
        }
        out.extend(self.raw.finish());
        out
    }

    fn event(&mut self, event: &[u8]) -> Vec<u8> {
        let text = String::from_utf8_lossy(event);
        let mut other_lines = Vec::new();
        let mut data = String::new();
        for line in text.lines() {
            match line.strip_prefix("data:") {
                Some(d) => data.push_str(d.trim_start()),
                None if line.is_empty() => {}
                None => other_lines.push(line.to_string()),
            }
        }
        let parsed = serde_json::from_str::<Value>(&data).ok();
        let field = parsed.as_ref().and_then(|doc| {
            TEXT_AT
                .iter()
                .find(|p| doc.pointer(p).is_some_and(Value::is_string))
                .copied()
        });
        match (parsed, field) {
            (Some(mut doc), Some(pointer)) => {
                let piece = doc
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let restored =
                    String::from_utf8_lossy(&self.text.push(piece.as_bytes())).into_owned();
                if let Some(slot) = doc.pointer_mut(pointer) {
                    *slot = Value::String(restored);
                }
                self.last_text_event = Some((other_lines.clone(), doc.clone(), pointer));
                render(&other_lines, &doc)
            }
            _ => {
                let mut out = self.flush_text();
                out.extend(self.raw.push(event));
                out
            }
        }
    }

    /// The text still held back, sent in an event shaped like the last text event.
    fn flush_text(&mut self) -> Vec<u8> {
        let held = String::from_utf8_lossy(&self.text.finish()).into_owned();
        if held.is_empty() {
            return Vec::new();
        }
        let Some((lines, mut doc, pointer)) = self.last_text_event.clone() else {
            return held.into_bytes();
        };
        if let Some(slot) = doc.pointer_mut(pointer) {
            *slot = Value::String(held);
        }
        render(&lines, &doc)
    }
}

/// The text a stream of events carries, its deltas put together: what a reader of the answer
/// sees, and where personal data split across tokens can be found.
pub fn stream_text(stream: &[u8]) -> String {
    let text = String::from_utf8_lossy(stream);
    let mut out = String::new();
    for line in text.lines() {
        let Some(data) = line.strip_prefix("data:") else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(data.trim_start()) else {
            continue;
        };
        if let Some(piece) = TEXT_AT
            .iter()
            .find_map(|p| doc.pointer(p).and_then(Value::as_str))
        {
            out.push_str(piece);
        }
    }
    out
}

fn render(lines: &[String], doc: &Value) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str("data: ");
    out.push_str(&crate::json_text::to_string(doc));
    out.push_str("\n\n");
    out.into_bytes()
}

/// Longest server-sent event held back whole (to restore its text or take out the usage chunk).
pub const MAX_EVENT: usize = 1 << 20;

/// The end (after the blank line) of the first complete server-sent event in `buf`.
pub fn event_end(buf: &[u8]) -> Option<usize> {
    event_end_from(buf, 0)
}

/// [`event_end`], when the first `scanned` bytes were searched before (and held no end): only
/// what came since is searched, so a long event costs its length once, not once per chunk.
pub fn event_end_from(buf: &[u8], scanned: usize) -> Option<usize> {
    let start = scanned.saturating_sub(3).min(buf.len());
    let tail = &buf[start..];
    let lf = tail
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| start + i + 2);
    let crlf = tail
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| start + i + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;

    #[test]
    fn an_event_found_across_chunks_and_an_endless_one_passes_raw() {
        assert_eq!(event_end_from(b"data: a\r\n\r\n", 8), Some(11));
        assert_eq!(event_end_from(b"data: a\n\ndata: b\n\n", 9), Some(9));
        let vault = Arc::new(HashMap::new());
        let mut events = EventRestorer::new(
            Restorer::new(vault.clone(), true),
            Restorer::new(vault, false),
        );
        let mut out = events.push(b"data: {\"delta\": \"");
        for _ in 0..(MAX_EVENT / 4096 + 1) {
            out.extend(events.push(&[b'x'; 4096]));
        }
        assert!(out.len() > MAX_EVENT - 4096, "passed on: {}", out.len());
        assert!(events.pending.len() <= 4096);
    }

    fn restorer() -> EventRestorer {
        let names: Arc<HashMap<String, String>> = Arc::new(
            [("EMAIL_1".to_string(), "jane@example.com".to_string())]
                .into_iter()
                .collect(),
        );
        EventRestorer::new(
            Restorer::new(names.clone(), false),
            Restorer::new(names, true),
        )
    }

    fn openai(token: &str) -> String {
        let doc = serde_json::json!({"choices": [{"index": 0, "delta": {"content": token}}]});
        format!("data: {doc}\n\n")
    }

    fn text_of(stream: &[u8]) -> String {
        String::from_utf8_lossy(stream)
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|d| {
                d.pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect()
    }

    #[test]
    fn a_placeholder_streamed_token_by_token_is_restored() {
        let tokens = ["Write to ", "<", "EMAIL", "_", "1", ">", " today."];
        let stream: String =
            tokens.iter().map(|t| openai(t)).collect::<String>() + "data: [DONE]\n\n";
        for size in [1, 7, 50, stream.len()] {
            let mut r = restorer();
            let mut out = Vec::new();
            for piece in stream.as_bytes().chunks(size) {
                out.extend(r.push(piece));
            }
            out.extend(r.finish());
            assert_eq!(
                text_of(&out),
                "Write to jane@example.com today.",
                "chunks of {size}"
            );
            assert!(String::from_utf8_lossy(&out).ends_with("data: [DONE]\n\n"));
        }
    }

    #[test]
    fn held_text_goes_out_before_the_next_non_text_event() {
        let mut r = restorer();
        let stream = openai("almost <EMAIL") + "event: done\ndata: {\"type\":\"done\"}\n\n";
        let mut out = r.push(stream.as_bytes());
        out.extend(r.finish());
        let text = String::from_utf8_lossy(&out);
        assert_eq!(
            text_of(&out),
            "almost <EMAIL",
            "an unfinished placeholder is passed on as it is"
        );
        assert!(text.find("<EMAIL").unwrap() < text.find("\"done\"").unwrap());
    }

    #[test]
    fn anthropic_gemini_and_responses_deltas_are_restored_too() {
        let events = [
            (
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"<EMA\"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"IL_1>\"}}\n\n",
            ),
            (
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"<EMA\"}]}}]}\n\n",
                "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"IL_1>\"}]}}]}\n\n",
            ),
            (
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"<EMA\"}\n\n",
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"IL_1>\"}\n\n",
            ),
        ];
        for (first, second) in events {
            let mut r = restorer();
            let mut out = r.push(first.as_bytes());
            out.extend(r.push(second.as_bytes()));
            out.extend(r.finish());
            let text = String::from_utf8_lossy(&out);
            assert!(
                text.contains("jane@example.com") && !text.contains("EMA"),
                "{text}"
            );
        }
    }
}
