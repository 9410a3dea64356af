//! Step 13, record: a drop guard, so a request's end is recorded also when the agent hangs up
//! mid-request. Once a response starts, the guard travels inside the response body
//! ([`crate::stream::Watched`]) so the record also says how the stream ended. When it drops it works
//! out the outcome, and hands it to the ledger (settle), the metrics, the audit trail and the log
//! line — who, where, what happened and why, never bodies, query strings or credentials.

use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;

use super::ctx::RequestCtx;
use crate::audit::{AuditLog, BudgetRecord, CostRecord, OutcomeRecord, RequestLine};
use crate::budget::{CallEnd, Ledger, Meter, Settlement};
use crate::error::{Ending, ErrorKind, ProxyError};
use crate::metrics::{LlmCall, Metrics};
use crate::stream::{BodyEnd, Watcher};
use crate::telemetry::LlmEnd;

/// How a request ended.
#[derive(Debug, Default)]
enum Outcome {
    /// The future was dropped before a response was produced (agent hung up).
    #[default]
    Cancelled,
    /// A response was produced; its body ended as `body` says.
    Responded { status: StatusCode, body: BodyEnd },
    /// The request failed with this error.
    Failed(ProxyError),
}

/// Owns the request's context while the steps run, and writes its record when dropped.
pub struct Record {
    /// The request's facts; steps update them through this field.
    pub ctx: RequestCtx,
    outcome: Outcome,
    response_bytes: u64,
    audit: Arc<AuditLog>,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    meter: Option<Meter>,
    /// Whether the record is written (once, when the answer's last byte is about to leave, or
    /// when the request ends otherwise).
    written: bool,
}

impl Record {
    /// Starts the record of `ctx`; its outcome goes to `audit` once it ends (after any decision).
    pub fn begin(
        ctx: RequestCtx,
        audit: Arc<AuditLog>,
        ledger: Arc<Ledger>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            ctx,
            outcome: Outcome::Cancelled,
            response_bytes: 0,
            audit,
            ledger,
            metrics,
            meter: None,
            written: false,
        }
    }

    /// Meters the answer's usage with `meter` as its bytes pass.
    pub fn meter(&mut self, meter: Meter) {
        self.meter = Some(meter);
    }

    /// Notes the error the request ended with.
    pub fn failed(&mut self, err: &ProxyError) {
        self.outcome = Outcome::Failed(err.clone());
    }

    /// Notes the response status; the body has not ended yet.
    pub fn responded(&mut self, status: StatusCode) {
        if !matches!(self.outcome, Outcome::Failed(_)) {
            self.outcome = Outcome::Responded {
                status,
                body: BodyEnd::Unfinished,
            };
        }
    }
}

impl Watcher for Record {
    fn passed(&mut self, data: &[u8]) {
        self.response_bytes += data.len() as u64;
        self.ctx.trace.passed();
        if let Some(meter) = &mut self.meter {
            meter.push(data);
        }
    }

    /// A body that ended (complete or broken) is recorded now, before its last frame reaches
    /// the agent: an agent that got its whole answer finds the call in the audit file (and so,
    /// after any crash, in the ledger).
    fn ended(&mut self, end: BodyEnd) {
        let over = end != BodyEnd::Unfinished;
        if let Outcome::Responded { body, .. } = &mut self.outcome {
            *body = end;
        }
        if over {
            self.finish();
        }
    }
}

impl Record {
    /// How the request ended, as records name it.
    fn ending(&self) -> Ending<'_> {
        let (status, outcome, side, reason) = match &self.outcome {
            Outcome::Cancelled => (
                0,
                "cancelled",
                "agent",
                "agent closed the request before a response",
            ),
            Outcome::Responded { status, body } => match body {
                BodyEnd::Complete => (status.as_u16(), "forwarded", "", ""),
                BodyEnd::Unfinished => (
                    status.as_u16(),
                    "abandoned",
                    "agent",
                    "agent closed the connection before the response body ended",
                ),
                BodyEnd::Failed(reason) => (status.as_u16(), "cut", "upstream", reason.as_str()),
            },
            Outcome::Failed(err) => return err.ending(),
        };
        Ending {
            status,
            outcome,
            side,
            reason,
        }
    }

    /// Settles an LLM call in the ledger. A call never handed to the upstream, or whose
    /// connection failed before any answer, cost nothing.
    fn settle(&mut self) -> Option<(String, Settlement)> {
        let ctx = &self.ctx;
        let (_, model) = ctx.llm.as_ref()?;
        let never_sent = !ctx.forwarded
            || (matches!(&self.outcome, Outcome::Failed(err) if err.kind == ErrorKind::BadGateway)
                && ctx.connected.is_none());
        let identity = &ctx.client.identity;
        let usage = self.meter.as_mut().and_then(Meter::finish);
        let call = CallEnd {
            request: &ctx.id,
            model,
            agent: &identity.agent,
            team: identity.team.as_deref(),
            usage,
            complete: self.meter.as_ref().is_some_and(Meter::ended),
            never_sent,
            reserved: &ctx.reserved,
        };
        let settlement = self.ledger.settle_call(&call);
        if !never_sent {
            let team = identity.team.as_deref();
            let call = LlmCall::of(&identity.agent, team, &settlement.cost);
            self.metrics.llm_call(&call);
        }
        Some((model.clone(), settlement))
    }
}

impl Record {
    /// Counts what the request carried and how its upstream failed, for Prometheus.
    fn count(&self) {
        for (kind, count) in &self.ctx.pii {
            self.metrics.pii_found(kind, *count);
        }
        if let Outcome::Failed(err) = &self.outcome
            && err.side == crate::error::Side::Upstream
        {
            self.metrics.upstream_error(err.kind.code());
        }
    }

    /// The outcome record (after the request's decisions, when it had any) and the log line.
    fn write(&self, ending: &Ending<'_>, settled: Option<(String, Settlement)>) {
        let ctx = &self.ctx;
        let elapsed_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        if !ctx.judgements.is_empty() {
            let upstream_status = match &self.outcome {
                Outcome::Responded { status, .. } if ctx.connected.is_some() => {
                    Some(status.as_u16())
                }
                _ => None,
            };
            let record = OutcomeRecord {
                record: "outcome",
                time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
                request: ctx.id.clone(),
                status: ending.status,
                upstream_status,
                outcome: ending.outcome.to_string(),
                response_bytes: self.response_bytes,
                elapsed_ms: elapsed_ms as u64,
                llm: settled
                    .as_ref()
                    .map(|(model, s)| CostRecord::of(model, &s.cost)),
                budget: settled
                    .as_ref()
                    .and_then(|(_, s)| s.budget.as_ref())
                    .map(BudgetRecord::of),
                approval: ctx.approval.clone(),
                ledger: settled.as_ref().and_then(|(_, s)| s.ledger.clone()),
            };
            if let Err(e) = self.audit.record_outcome(&record) {
                tracing::error!(error = %e, request = %ctx.id, "request outcome could not be recorded");
            }
        }
        let line = request_line(ctx, ending, self.response_bytes, elapsed_ms);
        crate::audit::log_request(&line);
        let llm = ctx.llm.as_ref().map(|call| LlmEnd {
            call,
            sent: ctx.forwarded,
            settlement: settled.as_ref().map(|(_, s)| s),
            meter: self.meter.as_ref(),
        });
        ctx.trace.end(&line, llm, ctx.approval.as_ref());
    }
}

impl Record {
    /// Works out how the request ended and hands it to the ledger, the metrics and the audit
    /// trail, once.
    fn finish(&mut self) {
        if std::mem::replace(&mut self.written, true) {
            return;
        }
        let settled = self.settle();
        self.count();
        self.write(&self.ending(), settled);
    }
}

impl Drop for Record {
    /// Records a request that ended without its answer ending (refused, failed, abandoned).
    fn drop(&mut self) {
        self.finish();
    }
}

/// The request's log line: who, where, how it ended and why.
fn request_line<'a>(
    ctx: &'a RequestCtx,
    ending: &'a Ending<'a>,
    response_bytes: u64,
    elapsed_ms: f64,
) -> RequestLine<'a> {
    let identity = &ctx.client.identity;
    let destination = ctx
        .connected
        .or_else(|| ctx.destination.as_ref().and_then(|d| d.first().copied()));
    RequestLine {
        request: &ctx.id,
        agent: &identity.agent,
        execution: identity.execution.as_deref().unwrap_or(""),
        method: ctx.method.as_str(),
        scheme: &ctx.scheme,
        target: &ctx.target,
        path: &ctx.path,
        destination,
        ending,
        response_bytes,
        judgements: &ctx.judgements,
        pii: &ctx.pii,
        redacted: &ctx.redacted,
        elapsed_ms,
    }
}
