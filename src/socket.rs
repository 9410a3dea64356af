//! The messages of a WebSocket a rule allowed (`allow_websocket: true`), judged one by one: each
//! text message, either way, is scanned for personal data and secrets and judged by the
//! `websocket.message` rules (what no rule refuses passes: the socket itself was allowed), every
//! decision in the audit trail. A refused message, or one that a redaction rule would have to
//! rewrite, closes the socket (1008) with the reason. A binary message is judged as text when it
//! is UTF-8, and closes the socket when it is not: it cannot be inspected; so does JSON naming a
//! member twice.

use std::sync::Arc;

use bytes::Bytes;

use crate::audit::{ClosedRecord, Judge};
use crate::pii::{RedactRule, Redactor};
use crate::policy::{Facts, Obligation, PiiFacts, Subject, Trigger};
use crate::proxy::websocket::{MessageGate, Passed};

/// Judges the messages of one socket with the facts of its upgrade request.
pub struct SocketJudge {
    facts: Facts,
    judge: Judge,
    redactor: Arc<Redactor>,
    request_id: String,
    messages: u64,
    opened: std::time::Instant,
}

impl SocketJudge {
    /// The judge of the socket opened by the request `request_id` with `facts`.
    pub fn new(facts: &Facts, judge: Judge, redactor: Arc<Redactor>, request_id: &str) -> Self {
        let mut facts = facts.clone();
        facts.trigger = Trigger::WebsocketMessage;
        facts.llm = None;
        facts.tool = None;
        facts.data = None;
        SocketJudge {
            facts,
            judge,
            redactor,
            request_id: request_id.to_string(),
            messages: 0,
            opened: std::time::Instant::now(),
        }
    }
}

impl MessageGate for SocketJudge {
    fn text(&mut self, _to_upstream: bool, text: &str) -> Result<(), String> {
        self.messages += 1;
        if crate::pii::names_a_member_twice(text.as_bytes()) {
            // The reader below keeps one value; the upstream's may read the other.
            return Err(
                "a JSON WebSocket message naming a member twice cannot be judged (readers                  disagree on which value counts); the socket was closed"
                    .into(),
            );
        }
        let bytes = Bytes::copy_from_slice(text.as_bytes());
        let json = serde_json::from_str(text).ok();
        let content_type = if json.is_some() {
            "application/json"
        } else {
            "text/plain"
        };
        self.facts.body = crate::inspect::body_facts(&bytes, Some(content_type), json);
        let found = self
            .redactor
            .detect_answer(&self.facts.body.scanned(&bytes));
        self.facts.pii = PiiFacts::from_counts(found);
        let id = format!("{}-ws{}", self.request_id, self.messages);
        let (_, verdict) = self
            .judge
            .decide(&self.facts, (&self.request_id, id), Subject::Answer);
        let verdict = verdict.map_err(|e| e.reason)?;
        let rules: Vec<RedactRule> = verdict.obligations().iter().map(Obligation::rule).collect();
        if !rules.is_empty() && self.redactor.obliged_in(&rules, text) {
            return Err(
                "the policy requires redacting this WebSocket message, which the proxy does not \
                 rewrite; the socket was closed"
                    .into(),
            );
        }
        Ok(())
    }

    fn binary(&mut self, _to_upstream: bool, len: usize) -> Result<(), String> {
        Err(format!(
            "a binary WebSocket message of {len} bytes that is not text cannot be inspected; \
             the socket was closed"
        ))
    }

    fn closed(&mut self, passed: &Passed, refused: Option<&str>) {
        tracing::info!(
            request_id = %self.request_id,
            agent = %self.facts.agent.id,
            host = %self.facts.request.host,
            messages_up = passed.messages_up,
            messages_down = passed.messages_down,
            bytes_up = passed.bytes_up,
            bytes_down = passed.bytes_down,
            refused = refused.unwrap_or(""),
            "websocket closed"
        );
        // The upgrade's outcome record was written with its 101; this one says what passed.
        let request = &self.facts.request;
        let mut record = ClosedRecord::now(
            "websocket",
            &self.facts.agent.id,
            (request.host.clone(), request.port),
        );
        record.request = Some(self.request_id.clone());
        record.bytes_up = passed.bytes_up;
        record.bytes_down = passed.bytes_down;
        record.messages_up = Some(passed.messages_up);
        record.messages_down = Some(passed.messages_down);
        record.outcome = refused.map_or_else(|| "closed".to_string(), |r| format!("refused: {r}"));
        record.elapsed_ms =
            Some(u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX));
        if let Err(e) = self.judge.audit().record_closed(&record) {
            tracing::error!(error = %e, "the end of a websocket could not be recorded");
        }
    }
}
