//! The records of the audit trail, built from what the request's steps found (its facts), what
//! the rules decided, and how the call was settled. Never a body, a header value, a query or a
//! credential: kinds and counts of personal data, the path's shape, ids and amounts.

use std::time::SystemTime;

use serde::Serialize;

use super::path_shape;
use crate::budget::{BudgetSettlement, from_nano};
use crate::policy::{Decision, Facts, Obligation, Policies};

/// One decision, as recorded. Never holds a body, a header value, a query or a credential.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// RFC 3339 time of the decision.
    pub time: String,
    /// Decision id (also sent to the agent on refusals).
    pub decision: String,
    /// Request id (the same for the connect and request decisions of a plain-HTTP request).
    pub request: String,
    /// Agent id.
    pub agent: String,
    pub team: Option<String>,
    pub env: Option<String>,
    /// Execution id.
    pub execution: Option<String>,
    /// The trigger judged.
    pub trigger: String,
    /// Method (`CONNECT` for tunnels).
    pub method: String,
    /// Destination host.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// Path shape (identifiers replaced by `*`).
    pub path: String,
    /// The checked address the proxy connects to.
    pub destination: String,
    /// Its country (ISO 3166-1 alpha-2), `unknown`, or empty before the address is resolved.
    pub country: String,
    /// `allow`, `deny` or `hold`.
    pub effect: String,
    /// The rules that decided (empty: the default deny).
    pub rules: Vec<String>,
    /// Monitor-mode rules that applied.
    pub monitored: Vec<String>,
    /// Why, in words (the agent sees the same on refusals).
    pub reason: String,
    /// Content hash of the policies that judged.
    pub policy_version: String,
    /// Git commit of the policy folder, when it is a git checkout.
    pub policy_commit: Option<String>,
    /// Obligations of the applying rules (`redact email as mask`).
    pub obligations: Vec<String>,
    /// Personal data found in the request: findings per kind, never values.
    pub pii: std::collections::BTreeMap<String, u64>,
    /// Microseconds the policy step took.
    pub policy_us: u64,
    /// The LLM call recognised (provider, model, stream, max tokens; never messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<serde_json::Value>,
    /// The tool called (its name; never arguments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The data access recognised (statement, tables, columns, WHERE, LIMIT; never values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// For a refusal: the status the agent received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// How a request ended, written after its decisions: the status the agent got, what the upstream
/// answered, and how the answer ended. `record: "outcome"` tells it from a decision.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRecord {
    /// Always `outcome`.
    pub record: &'static str,
    /// RFC 3339 time the request ended.
    pub time: String,
    /// Request id (its decisions carry the same).
    pub request: String,
    /// Status the agent received (0 when it hung up first).
    pub status: u16,
    /// The upstream's status, when the upstream answered.
    pub upstream_status: Option<u16>,
    /// `forwarded`, `cut`, `abandoned`, `cancelled`, or the error code.
    pub outcome: String,
    /// Response body bytes that reached the agent's side.
    pub response_bytes: u64,
    /// Milliseconds from arrival to the end.
    pub elapsed_ms: u64,
    /// For an LLM call: its model, tokens and cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<CostRecord>,
    /// For a call budgets covered: what was reserved and what was settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetRecord>,
    /// For a held request: the approval, who decided, why, and how long the request waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
    /// For a call the ledger charged: what it wrote behind the answer (run, nano-USD, whose
    /// spend, budgets and windows), so the next start charges it from this file if the proxy
    /// died before the write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<crate::budget::LedgerEntry>,
}

/// How a relayed tunnel or an allowed WebSocket ended, written when it does: bytes (and, for a
/// WebSocket, messages) each way. `record: "closed"` tells it from a decision.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedRecord {
    /// Always `closed`.
    pub record: &'static str,
    /// `tunnel` (relayed without interception) or `websocket`.
    pub kind: &'static str,
    /// RFC 3339 time it ended.
    pub time: String,
    /// The request that opened it (the WebSocket's upgrade), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Agent id.
    pub agent: String,
    /// Destination host.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// Bytes from the agent.
    pub bytes_up: u64,
    /// Bytes to the agent.
    pub bytes_down: u64,
    /// Messages from the agent (WebSocket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_up: Option<u64>,
    /// Messages to the agent (WebSocket).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages_down: Option<u64>,
    /// `closed`, `error`, `shutdown`, or `refused: <why>`.
    pub outcome: String,
    /// Milliseconds it was open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<u64>,
}

impl ClosedRecord {
    /// The record of a tunnel or socket of `kind` to `host`:`port` by `agent`, ending now.
    pub fn now(kind: &'static str, agent: &str, (host, port): (String, u16)) -> ClosedRecord {
        ClosedRecord {
            record: "closed",
            kind,
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            request: None,
            agent: agent.to_string(),
            host,
            port,
            bytes_up: 0,
            bytes_down: 0,
            messages_up: None,
            messages_down: None,
            outcome: String::new(),
            elapsed_ms: None,
        }
    }
}

/// The first record of a trail started where another was (moved aside, or emptied): which trail
/// it follows, as the store's newest checkpoint of the file knew it. `record: "trail"`.
#[derive(Debug, Clone, Serialize)]
pub struct TrailRecord {
    /// Always `trail`.
    pub record: &'static str,
    /// RFC 3339 time the new trail started.
    pub time: String,
    /// The trail before (its first record's hash).
    pub follows: String,
    /// Records it held at its newest checkpoint.
    pub follows_records: i64,
    /// The time of that checkpoint.
    pub follows_checkpoint: String,
}

impl TrailRecord {
    /// The record of a trail that follows the one `newest` is a checkpoint of.
    pub fn after(newest: &crate::store::AuditCheckpoint) -> TrailRecord {
        TrailRecord {
            record: "trail",
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            follows: newest.trail.clone(),
            follows_records: newest.records,
            follows_checkpoint: newest.time.clone(),
        }
    }
}

/// A held request's approval, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    /// The approval id.
    pub id: String,
    /// `approved`, `denied`, `expired`, `used` (by another request) or `pending` (the agent was
    /// told to retry).
    pub decision: &'static str,
    /// Who decided.
    pub reviewer: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Whether this request was a retry that found the approval of an earlier one.
    pub retried: bool,
    /// Milliseconds this request waited.
    pub waited_ms: u64,
    /// Seconds from the hold to the decision, once decided.
    pub decided_after_s: Option<i64>,
}

impl ApprovalRecord {
    /// The record of `approval` as this request saw it.
    pub fn of(
        approval: &crate::store::Approval,
        retried: bool,
        waited: std::time::Duration,
    ) -> ApprovalRecord {
        ApprovalRecord {
            id: approval.id.clone(),
            decision: approval.status.name(),
            reviewer: approval.reviewer.clone(),
            reason: approval.reason.clone(),
            retried,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            decided_after_s: approval.decided_at.map(|d| d - approval.created_at),
        }
    }
}

/// A reservation and its settlement, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetRecord {
    /// The budgets it was held in.
    pub budgets: Vec<String>,
    /// USD reserved before forwarding (the worst case).
    pub reserved_usd: String,
    /// USD settled when the answer ended.
    pub settled_usd: String,
    /// `actual` (the reported usage), `estimate` (no usage reported: a cut stream, a timeout) or
    /// `not_sent` (the upstream was never reached).
    pub settled_as: &'static str,
}

/// What an LLM call used and cost, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct CostRecord {
    /// The model requested.
    pub model: String,
    /// The price-table entry it was priced as.
    pub priced_as: Option<String>,
    /// Input tokens not read from a cache.
    pub input_tokens: Option<u64>,
    /// Input tokens read from a cache.
    pub cached_input_tokens: Option<u64>,
    /// Input tokens written to a cache.
    pub cache_write_tokens: Option<u64>,
    /// Output tokens (thinking included).
    pub output_tokens: Option<u64>,
    /// USD, as an exact decimal string.
    pub cost_usd: Option<String>,
    /// `exact`, `unpriced` or `unknown`.
    pub cost_status: &'static str,
}

impl CostRecord {
    /// The record of `cost` for `model`.
    pub fn of(model: &str, cost: &crate::budget::Cost) -> CostRecord {
        let usage = cost.usage;
        CostRecord {
            model: model.to_string(),
            priced_as: cost.priced_as.clone(),
            input_tokens: usage.map(|u| u.input),
            cached_input_tokens: usage.map(|u| u.cached_input),
            cache_write_tokens: usage.map(|u| u.cache_write),
            output_tokens: usage.map(|u| u.output),
            cost_usd: cost.usd.map(|d| d.normalize().to_string()),
            cost_status: cost.status.name(),
        }
    }
}

impl BudgetRecord {
    /// The record of a reservation's settlement.
    pub fn of(settled: &BudgetSettlement) -> BudgetRecord {
        BudgetRecord {
            budgets: settled.budgets.clone(),
            reserved_usd: from_nano(settled.reserved_nano).normalize().to_string(),
            settled_usd: from_nano(settled.settled_nano).normalize().to_string(),
            settled_as: settled.settled_as,
        }
    }
}

impl DecisionRecord {
    /// The record of `decision` on `facts`, made under `policies` in `policy_us` microseconds;
    /// `reason` says it in words.
    pub fn decided(
        facts: &Facts,
        (request, id): (&str, &str),
        policies: &Policies,
        decision: &Decision,
        reason: String,
        policy_us: u64,
    ) -> DecisionRecord {
        DecisionRecord {
            effect: decision.effect().name().to_string(),
            rules: decision.deciding.clone(),
            monitored: decision.monitored_ids(),
            reason,
            obligations: decision.obligations().iter().map(obligation).collect(),
            policy_us,
            ..DecisionRecord::of(facts, request, id, policies)
        }
    }

    /// The record of a refusal the proxy made itself, before or around the rules (network guard,
    /// a body that cannot be inspected, a non-canonical path, credentials, a head over its
    /// limit): a deny with no rule, the `status` the agent got, and `reason`.
    pub fn refused(
        facts: &Facts,
        request: &str,
        policies: &Policies,
        (status, reason): (u16, &str),
    ) -> Self {
        DecisionRecord {
            effect: crate::policy::Effect::Deny.name().to_string(),
            reason: reason.to_string(),
            status: Some(status),
            ..DecisionRecord::of(facts, request, &format!("{request}-r"), policies)
        }
    }

    fn of(facts: &Facts, request: &str, decision: &str, policies: &Policies) -> DecisionRecord {
        DecisionRecord {
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            decision: decision.to_string(),
            request: request.to_string(),
            agent: facts.agent.id.clone(),
            team: facts.agent.team.clone(),
            env: facts.agent.env.clone(),
            execution: facts.agent.execution.clone(),
            trigger: facts.trigger.name().to_string(),
            method: facts.request.method.clone(),
            host: facts.request.host.clone(),
            port: facts.request.port,
            path: path_shape(&facts.request.path),
            destination: facts.destination.ip.clone(),
            // Judged before resolution (no rule needed the address): nothing to locate yet.
            country: if facts.destination.ip.is_empty() {
                String::new()
            } else {
                facts.destination.country.clone()
            },
            effect: String::new(),
            rules: Vec::new(),
            monitored: Vec::new(),
            reason: String::new(),
            policy_version: policies.version.clone(),
            policy_commit: policies.commit.clone(),
            obligations: Vec::new(),
            pii: facts.pii.counts.clone(),
            llm: facts.llm.as_ref().map(|l| {
                serde_json::json!({
                    "provider": l.provider, "model": l.model, "stream": l.stream,
                    "max_tokens": l.max_tokens,
                })
            }),
            tool: facts.tool.as_ref().map(|t| t.name.clone()),
            data: facts.data.as_ref().map(|d| {
                serde_json::json!({
                    "statement": d.statement, "tables": d.tables, "columns": d.columns,
                    "has_where": d.has_where, "limit": d.limit,
                })
            }),
            policy_us: 0,
            status: None,
        }
    }
}

/// An obligation as the audit trail and the agent read it (`redact email,phone as mask`).
fn obligation(Obligation::Redact { kinds, style }: &Obligation) -> String {
    format!("redact {} as {style}", kinds.join(","))
}
