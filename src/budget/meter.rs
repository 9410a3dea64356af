//! Reads the usage of an answer as it streams past, without holding it back: a JSON answer is kept
//! (bounded) and read at its end; server-sent events are read event by event as lines complete.

use serde_json::Value;

use super::answer::AnswerFacts;
use super::usage::{Usage, read_usage};
use crate::inspect::Dialect;

/// Largest JSON answer kept to read its usage.
const MAX_KEPT: usize = 4 << 20;
/// Longest SSE line kept while it completes.
const MAX_LINE: usize = 1 << 20;

/// The usage meter of one answer.
pub struct Meter {
    dialect: Dialect,
    events: bool,
    kept: Vec<u8>,
    usage: Usage,
    seen: bool,
    overflow: bool,
    /// The answer reached its end as the provider marks it (`[DONE]`, `message_stop`, a finish
    /// reason): only then is the usage seen the call's final usage.
    terminal: bool,
    /// The answering model and why it stopped.
    answer: AnswerFacts,
}

impl Meter {
    /// A meter for an answer of `dialect`; `events` when it is a stream of server-sent events.
    pub fn new(dialect: Dialect, events: bool) -> Meter {
        Meter {
            dialect,
            events,
            kept: Vec::new(),
            usage: Usage::default(),
            seen: false,
            overflow: false,
            terminal: false,
            answer: AnswerFacts::default(),
        }
    }

    /// Reads the next bytes of the answer.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.overflow {
            return;
        }
        self.kept.extend_from_slice(bytes);
        if !self.events {
            if self.kept.len() > MAX_KEPT {
                self.overflow = true;
                self.kept = Vec::new();
            }
            return;
        }
        let mut start = 0;
        while let Some(offset) = self.kept[start..].iter().position(|b| *b == b'\n') {
            let end = start + offset;
            self.event_line(start, end);
            start = end + 1;
        }
        self.kept.drain(..start);
        if self.kept.len() > MAX_LINE {
            self.kept.clear();
        }
    }

    fn event_line(&mut self, start: usize, end: usize) {
        let line = self.kept[start..end].trim_ascii();
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        let data = data.trim_ascii();
        if data == b"[DONE]" {
            self.terminal = true;
            return;
        }
        if let Some(doc) = super::answer_doc::parse(data) {
            self.seen |= read_usage(self.dialect, &doc, &mut self.usage);
            self.terminal |= is_terminal(&doc);
            self.answer.read(self.dialect, &doc);
        }
    }

    /// Whether the answer ended as its provider ends one: a whole JSON answer, or an event stream
    /// that reached its last event. Usage seen before that (Anthropic's `message_start` counts
    /// one output token) is not what the provider bills.
    pub fn ended(&self) -> bool {
        self.terminal
    }

    /// Whether the answer is a stream of server-sent events.
    pub fn streamed(&self) -> bool {
        self.events
    }

    /// The answering model and why it stopped, as read so far (all of it after [`Meter::finish`]).
    pub fn answer(&self) -> &AnswerFacts {
        &self.answer
    }

    /// The usage the answer reported, if it reported any.
    pub fn finish(&mut self) -> Option<Usage> {
        if self.events {
            if !self.kept.is_empty() {
                let end = self.kept.len();
                self.event_line(0, end);
                self.kept.clear();
            }
        } else if !self.overflow
            && let Some(doc) = super::answer_doc::parse(&self.kept)
        {
            self.seen |= read_usage(self.dialect, &doc, &mut self.usage);
            self.terminal = true;
            self.answer.read(self.dialect, &doc);
        }
        self.seen.then_some(self.usage)
    }
}

/// The last event of a stream: Anthropic's `message_stop`, the Responses API's
/// `response.completed` (or `.incomplete`, `.failed`), OpenAI Realtime's `response.done`, or a
/// Gemini chunk whose candidate carries a finish reason. OpenAI chat ends with `[DONE]`.
fn is_terminal(doc: &Value) -> bool {
    let kind = doc.get("type").and_then(Value::as_str).unwrap_or_default();
    if matches!(
        kind,
        "message_stop"
            | "response.completed"
            | "response.incomplete"
            | "response.failed"
            | "response.done"
    ) {
        return true;
    }
    doc.get("candidates")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|c| c.get("finishReason").is_some()))
}
