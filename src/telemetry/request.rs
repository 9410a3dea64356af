//! The trace of one request: its span (when spans are exported), the time its answer's first
//! byte passed, and the mapping of its record — the request's log line, its settlement, what the
//! meter read of the answer, its approval — to span attributes and GenAI metrics when it ends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;
use opentelemetry::Context;
use opentelemetry::trace::{Span as _, TraceContextExt as _};

use super::{Decided, Exchange, LlmExchange, Telemetry, Tokens, model_name, provider_name};
use crate::audit::{ApprovalRecord, RequestLine};
use crate::budget::{Meter, Settlement};
use crate::metrics::GenAiCall;

/// One request's trace; inert by default (for requests that never reach the steps).
#[derive(Default)]
pub struct RequestTrace {
    telemetry: Option<Telemetry>,
    /// The open span, until the request ends.
    span: Mutex<Option<opentelemetry_sdk::trace::Span>>,
    started: Option<Instant>,
    first_chunk: Option<Duration>,
}

impl std::fmt::Debug for RequestTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestTrace")
            .field("first_chunk", &self.first_chunk)
            .finish_non_exhaustive()
    }
}

/// The LLM call a request made, as the record knows it when it ends.
#[derive(Clone, Copy)]
pub struct LlmEnd<'a> {
    /// Provider and model, as recognised in the request.
    pub call: &'a (String, String),
    /// Whether it was handed to the upstream.
    pub sent: bool,
    /// Its settlement, once settled.
    pub settlement: Option<&'a Settlement>,
    /// What the meter read of its answer.
    pub meter: Option<&'a Meter>,
}

impl RequestTrace {
    pub(super) fn new(
        telemetry: Telemetry,
        span: Option<opentelemetry_sdk::trace::Span>,
    ) -> RequestTrace {
        RequestTrace {
            telemetry: Some(telemetry),
            span: Mutex::new(span),
            started: Some(Instant::now()),
            first_chunk: None,
        }
    }

    /// Puts this request's span context on its way upstream, in place of the agent's trace
    /// headers; without a span the headers go on as the agent sent them.
    pub fn propagate(&self, headers: &mut HeaderMap) {
        let Ok(span) = self.span.lock() else {
            return;
        };
        if let Some(span) = span.as_ref() {
            let cx = Context::new().with_remote_span_context(span.span_context().clone());
            super::trace_context::propagate(&cx, headers);
        }
    }

    /// Notes that answer bytes passed towards the agent (the first time: the first chunk).
    pub fn passed(&mut self) {
        if self.first_chunk.is_none() {
            self.first_chunk = self.started.map(|s| s.elapsed());
        }
    }

    /// Ends the trace with the request's record: the span gets its name and attributes, and an
    /// LLM call that was sent is counted in the GenAI metrics.
    pub fn end(
        &self,
        line: &RequestLine<'_>,
        llm: Option<LlmEnd<'_>>,
        approval: Option<&ApprovalRecord>,
    ) {
        let Some(telemetry) = &self.telemetry else {
            return;
        };
        let duration = self.started.map(|s| s.elapsed()).unwrap_or_default();
        let answer = llm.and_then(|l| l.meter).map(Meter::answer);
        let streamed = llm.and_then(|l| l.meter).is_some_and(Meter::streamed);
        let first_chunk = self.first_chunk.filter(|_| streamed);
        let cost = llm.and_then(|l| l.settlement).map(|s| &s.cost);
        let (provider, model) = llm.map(|l| (l.call.0.as_str(), l.call.1.as_str())).unzip();
        let operation = crate::inspect::operation_of(line.path);
        let exchange = self
            .span
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .map(|span| {
                let mut exchange = exchange(line, approval);
                exchange.llm = provider.map(|provider| LlmExchange {
                    provider,
                    operation,
                    request_model: model.and_then(model_name).filter(|m| telemetry.clean(m)),
                    response_model: answer
                        .and_then(|a| a.model.as_deref())
                        .filter(|m| telemetry.clean(m)),
                    finish_reasons: answer.map_or(&[], |a| &a.finish_reasons),
                    tokens: cost.and_then(|c| c.usage).map(|u| Tokens {
                        input: u.total_input(),
                        output: u.output,
                        cache_read: u.cached_input,
                        cache_creation: u.cache_write,
                    }),
                    cost_usd: cost.and_then(|c| c.usd).and_then(|d| {
                        use rust_decimal::prelude::ToPrimitive;
                        d.to_f64()
                    }),
                    cost_status: cost.map_or("unknown", |c| c.status.name()),
                    first_chunk,
                });
                telemetry.scrub(&mut exchange);
                (span, exchange)
            });
        if let Some((mut span, exchange)) = exchange {
            span.update_name(super::span_name(&exchange));
            super::finish(&mut span, &exchange, Vec::new());
        }
        let Some(llm) = llm.filter(|l| l.sent) else {
            return;
        };
        let failed = !matches!(line.ending.outcome, "forwarded" | "abandoned" | "cancelled");
        telemetry.gen_ai_call(&GenAiCall {
            operation,
            provider: provider_name(&llm.call.0),
            model: cost
                .and_then(|c| c.priced_as.as_deref())
                .unwrap_or("unpriced"),
            tokens: cost
                .and_then(|c| c.usage)
                .map(|u| (u.total_input(), u.output)),
            duration,
            first_chunk,
            error: failed.then_some(line.ending.outcome),
        });
    }
}

/// The exchange a request's log line describes.
fn exchange<'a>(line: &'a RequestLine<'a>, approval: Option<&'a ApprovalRecord>) -> Exchange<'a> {
    let ending = line.ending;
    let failed = !matches!(ending.outcome, "forwarded" | "abandoned" | "cancelled");
    // The judgement that settled the request: the refusing one, else the last.
    let decided = line
        .judgements
        .iter()
        .find(|j| j.effect.name() != "allow")
        .or(line.judgements.last());
    let refused_by_proxy = failed && matches!(ending.side, "agent" | "internal");
    let effect = match decided {
        Some(j) if j.effect.name() != "allow" => j.effect.name(),
        _ if refused_by_proxy => "deny",
        Some(j) => j.effect.name(),
        None => "",
    };
    Exchange {
        request: line.request,
        agent: line.agent,
        team: None,
        execution: Some(line.execution).filter(|e| !e.is_empty()),
        method: line.method,
        scheme: line.scheme,
        host: line.target.host.as_string(),
        port: line.target.port,
        status: ending.status,
        outcome: ending.outcome,
        failed,
        effect,
        decisions: line
            .judgements
            .iter()
            .map(|j| Decided {
                id: &j.id,
                effect: j.effect.name(),
                rules: &j.rules,
                policy_version: &j.policy_version,
            })
            .collect(),
        pii: Some(line.pii),
        redacted: Some(line.redacted),
        approval: approval.map(|a| (a.decision, Duration::from_millis(a.waited_ms))),
        response_bytes: line.response_bytes,
        llm: None,
    }
}
