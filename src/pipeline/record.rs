//! Step 13, record: one log line per request, written by a drop guard so it is also written when
//! the agent hangs up mid-request. Once a response starts, the guard travels inside the response
//! body ([`super::recorded_body`]) so the record also says how the stream ended. Carries who,
//! where, what happened and why — never bodies, query strings or credentials.

use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;

use super::ctx::RequestCtx;
use super::judge::Judgement;
use super::reserve::BudgetStep;
use crate::audit::{AuditLog, BudgetRecord, CostRecord, OutcomeRecord};
use crate::budget::{CostStatus, Meter, PriceTable, cost_of, from_nano, to_nano};
use crate::error::{ErrorKind, ProxyError};
use crate::metrics::{LlmCall, Metrics};
use crate::proxy::target::Target;
use crate::proxy::{ClientInfo, ConnectPlan};
use crate::store::SpendOf;

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

/// How a response body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Not (yet) finished: if the record is written like this, the agent went away mid-stream.
    Unfinished,
    /// Every byte reached the agent's side.
    Complete,
    /// The stream broke (upstream reset, idle or total timeout).
    Failed(String),
}

/// Owns the request's context while the steps run, and writes its record when dropped.
pub struct Record {
    /// The request's facts; steps update them through this field.
    pub ctx: RequestCtx,
    outcome: Outcome,
    response_bytes: u64,
    audit: Arc<AuditLog>,
    prices: Arc<PriceTable>,
    budgets: Arc<BudgetStep>,
    metrics: Arc<Metrics>,
    meter: Option<Meter>,
}

impl Record {
    /// Starts the record of `ctx`; its outcome goes to `audit` once it ends (after any decision).
    pub fn begin(
        ctx: RequestCtx,
        audit: Arc<AuditLog>,
        prices: Arc<PriceTable>,
        budgets: Arc<BudgetStep>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            ctx,
            outcome: Outcome::Cancelled,
            response_bytes: 0,
            audit,
            prices,
            budgets,
            metrics,
            meter: None,
        }
    }

    /// Meters the answer's usage with `meter` as its bytes pass.
    pub fn meter(&mut self, meter: Meter) {
        self.meter = Some(meter);
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

    /// Counts (and meters) response body bytes that passed towards the agent.
    pub fn add_response_bytes(&mut self, data: &[u8]) {
        self.response_bytes += data.len() as u64;
        if let Some(meter) = &mut self.meter {
            meter.push(data);
        }
    }

    /// Notes how the response body ended.
    pub fn body_ended(&mut self, end: BodyEnd) {
        if let Outcome::Responded { body, .. } = &mut self.outcome {
            *body = end;
        }
    }

    /// Notes the error the request ended with.
    pub fn failed(&mut self, err: &ProxyError) {
        self.outcome = Outcome::Failed(err.clone());
    }
}

impl Drop for Record {
    fn drop(&mut self) {
        let ctx = &self.ctx;
        let identity = &ctx.client.identity;
        let elapsed_ms = ctx.started.elapsed().as_secs_f64() * 1000.0;
        let destination = ctx
            .connected
            .or_else(|| ctx.destination.as_ref().and_then(|d| d.first().copied()))
            .map(|a| a.to_string())
            .unwrap_or_default();
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
            Outcome::Failed(err) => (
                err.status().as_u16(),
                err.kind.code(),
                err.side.as_str(),
                err.reason.as_str(),
            ),
        };
        // A call never handed to the upstream (refused, held, abandoned before), or whose
        // connection failed before any answer, cost nothing; any other without reported usage (a
        // cut stream, a timeout) is recorded and settled at the worst case estimated before it
        // left: the provider may well bill it.
        let never_sent = !ctx.forwarded
            || (matches!(&self.outcome, Outcome::Failed(err) if err.kind == ErrorKind::BadGateway)
                && ctx.connected.is_none());
        let cost = ctx.llm.as_ref().map(|(_, model)| {
            let usage = self.meter.as_mut().and_then(Meter::finish);
            let worst = if never_sent {
                Some(0)
            } else {
                ctx.worst_case_nano
            };
            let mut cost = cost_of(&self.prices, model, usage, worst);
            if never_sent && cost.usage.is_none() && cost.priced_as.is_some() {
                // Never made: it cost exactly nothing.
                cost.usd = Some(rust_decimal::Decimal::ZERO);
                cost.status = CostStatus::Exact;
            }
            (model.clone(), cost)
        });
        if let Some((_, cost)) = cost.as_ref().filter(|_| !never_sent) {
            use rust_decimal::prelude::ToPrimitive;
            self.metrics.llm_call(&LlmCall {
                agent: &identity.agent,
                team: identity.team.as_deref().unwrap_or(""),
                // An unpriced model's name is the agent's to choose: one label for all of them
                // keeps the number of series bounded.
                model: cost.priced_as.as_deref().unwrap_or("unpriced"),
                cost_status: cost.status.name(),
                usd: cost.usd.and_then(|d| d.to_f64()).unwrap_or(0.0),
                tokens: cost.usage.map(|u| {
                    [
                        ("input", u.input),
                        ("cached_input", u.cached_input),
                        ("cache_write", u.cache_write),
                        ("output", u.output),
                    ]
                }),
            });
        }
        for (kind, count) in &ctx.pii {
            self.metrics.pii_found(kind, *count);
        }
        if let Outcome::Failed(err) = &self.outcome
            && err.side == crate::error::Side::Upstream
        {
            self.metrics.upstream_error(err.kind.code());
        }
        let settled = cost.as_ref().and_then(|(model, cost)| {
            let amount = cost.usd.and_then(to_nano)?;
            // A call never sent is no one's spend; its reservation (if any) is released.
            let spend = (!never_sent).then(|| SpendOf {
                hour: hour_of(SystemTime::now()),
                agent: identity.agent.clone(),
                team: identity.team.clone().unwrap_or_default(),
                model: cost.priced_as.clone().unwrap_or_else(|| model.clone()),
            });
            if spend.is_some() || ctx.reservation.is_some() {
                self.budgets.settle(&ctx.id, amount, spend);
            }
            Some((amount, cost.status))
        });
        let budget = ctx.reservation.as_ref().map(|reservation| {
            let (amount, settled_as) = match settled {
                _ if never_sent => (0, "not_sent"),
                Some((amount, CostStatus::Exact)) => (amount, "actual"),
                Some((amount, _)) => (amount, "estimate"),
                None => {
                    // Not priced after all: the reservation is released at what it held.
                    self.budgets.settle(&ctx.id, reservation.nano, None);
                    (reservation.nano, "estimate")
                }
            };
            BudgetRecord {
                budgets: reservation.budgets.clone(),
                reserved_usd: from_nano(reservation.nano).normalize().to_string(),
                settled_usd: from_nano(amount).normalize().to_string(),
                settled_as,
            }
        });
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
                status,
                upstream_status,
                outcome: outcome.to_string(),
                response_bytes: self.response_bytes,
                elapsed_ms: elapsed_ms as u64,
                llm: cost
                    .as_ref()
                    .map(|(model, cost)| CostRecord::of(model, cost)),
                budget,
                approval: ctx.approval.clone(),
            };
            if let Err(e) = self.audit.record_outcome(&record) {
                tracing::error!(error = %e, request = %ctx.id, "request outcome could not be recorded");
            }
        }
        // The judgement that settled the request: the refusing one, else the last (http.request).
        let decided = ctx
            .judgements
            .iter()
            .find(|j| j.effect != crate::policy::Effect::Allow)
            .or(ctx.judgements.last());
        tracing::info!(
            target: "gatehouse::request",
            request = %ctx.id,
            agent = %identity.agent,
            execution = identity.execution.as_deref().unwrap_or(""),
            method = %ctx.method,
            scheme = %ctx.scheme,
            host = %ctx.target.host,
            port = ctx.target.port,
            path = %path_shape(&ctx.path),
            destination = %destination,
            status,
            response_bytes = self.response_bytes,
            outcome,
            side,
            reason,
            decision = %decided.map_or(String::new(), |j| j.id.clone()),
            effect = decided.map_or("", |j| j.effect.name()),
            rules = %decided.map(|j| j.rules.join(",")).unwrap_or_default(),
            monitored = %ctx.judgements.iter().flat_map(|j| j.monitored.iter().cloned()).collect::<Vec<_>>().join(","),
            policy_version = decided.map_or("", |j| j.policy_version.as_str()),
            pii = %counts(&ctx.pii),
            redacted = %counts(&ctx.redacted),
            elapsed_ms = format_args!("{elapsed_ms:.2}"),
            "request"
        );
    }
}

/// Records a CONNECT decision (one line per tunnel): intercepted, relayed, or refused and why,
/// with the decision id and the rules that decided.
pub fn connect_decision(
    client: &ClientInfo,
    target: &Target,
    decision: &Result<ConnectPlan, ProxyError>,
    judgement: Option<&Judgement>,
    policy_version: &str,
) {
    let identity = &client.identity;
    let (outcome, status, side, reason) = match decision {
        Ok(ConnectPlan::Intercept) => ("intercept", 200, "", ""),
        Ok(ConnectPlan::Relay(_)) => ("relay", 200, "", ""),
        Err(err) => (
            err.kind.code(),
            err.status().as_u16(),
            err.side.as_str(),
            err.reason.as_str(),
        ),
    };
    tracing::info!(
        target: "gatehouse::request",
        peer = %client.peer,
        agent = %identity.agent,
        execution = identity.execution.as_deref().unwrap_or(""),
        method = "CONNECT",
        host = %target.host,
        port = target.port,
        status,
        outcome,
        side,
        reason,
        decision = judgement.map_or("", |j| j.id.as_str()),
        effect = judgement.map_or("", |j| j.effect.name()),
        rules = %judgement.map(|j| j.rules.join(",")).unwrap_or_default(),
        monitored = %judgement.map(|j| j.monitored.join(",")).unwrap_or_default(),
        policy_version,
        "connect"
    );
}

/// Path segments common in the APIs agents call. Only these (and version tags like `v1`,
/// `v1beta`) are logged; every other segment may be a name, an id or a secret and becomes `*`.
const PATH_WORDS: &[&str] = &[
    "api",
    "apis",
    "openai",
    "deployments",
    "chat",
    "completions",
    "embeddings",
    "responses",
    "messages",
    "models",
    "files",
    "uploads",
    "images",
    "generations",
    "edits",
    "variations",
    "audio",
    "speech",
    "transcriptions",
    "translations",
    "moderations",
    "batches",
    "threads",
    "runs",
    "steps",
    "assistants",
    "vector_stores",
    "fine_tuning",
    "jobs",
    "count_tokens",
    "complete",
    "mcp",
    "sse",
    "tools",
    "resources",
    "prompts",
    "rpc",
    "rest",
    "graphql",
    "query",
    "search",
    "sql",
    "data",
    "health",
    "status",
    "users",
    "accounts",
    "customers",
    "charges",
    "payments",
    "payment_intents",
    "refunds",
    "invoices",
    "orders",
    "items",
    "issues",
    "pulls",
    "repos",
    "projects",
    "records",
    "tables",
    "rows",
    "documents",
    "collections",
    "indexes",
    "objects",
    "buckets",
    "keys",
    "secrets",
    "tokens",
    "oauth",
    "token",
    "login",
    "auth",
    "web",
];

/// The path with every segment that could carry an identifier or a secret replaced by `*`.
pub fn path_shape(path: &str) -> String {
    let shaped: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let version = (2..=8).contains(&segment.len())
                && segment.starts_with('v')
                && segment[1..].starts_with(|c: char| c.is_ascii_digit())
                && segment[1..]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase());
            if segment.is_empty() || version || PATH_WORDS.contains(&segment) {
                segment
            } else {
                "*"
            }
        })
        .collect();
    shaped.join("/")
}

/// Findings per kind as a log field (`email:2,phone:1`): kinds and counts, never values.
fn counts(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The UTC hour of `at` (`2026-11-25T18`), the finest grain spend is kept at.
fn hour_of(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(..13).unwrap_or(&text).to_string()
}

#[cfg(test)]
mod tests {
    use super::path_shape;

    #[test]
    fn path_shape_hides_identifiers_and_secrets() {
        let table = [
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/v1beta/models/gemini:generateContent", "/v1beta/models/*"),
            (
                "/users/john.doe/files/maria-lopez-passport.pdf",
                "/users/*/files/*",
            ),
            ("/vault/very-secret", "/*/*"),
            ("/bot123456:AAH-secret/sendMessage", "/*/*"),
            ("/users/john@example.com/orders", "/users/*/orders"),
            ("/accounts/42", "/accounts/*"),
            ("/", "/"),
        ];
        for (path, expected) in table {
            assert_eq!(path_shape(path), expected, "{path}");
        }
    }
}
