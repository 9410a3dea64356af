//! Steps 2 and 7 seen from the pipeline: turn what is known about a request into policy facts,
//! ask the policy for a verdict, and turn a refusing verdict into the agent's answer.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::{Instant, SystemTime};

use http::HeaderMap;

use super::record::path_shape;
use crate::audit::{AuditLog, DecisionRecord};
use crate::config::policies::Policies;
use crate::error::{DecisionRef, ProxyError};
use crate::geo::Geo;
use crate::policy::{
    AgentFacts, BodyFacts, Effect, Facts, Obligation, RequestFacts, Trigger, Verdict,
};
use crate::proxy::ClientInfo;
use crate::proxy::target::Target;

/// The request line as the policy sees it.
pub struct Line<'a> {
    /// Method (`CONNECT` for tunnels).
    pub method: &'a str,
    /// `http`, `https`, or empty for a CONNECT.
    pub scheme: &'a str,
    /// Destination.
    pub target: &'a Target,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// Request headers (empty for a CONNECT).
    pub headers: Option<&'a HeaderMap>,
}

/// What the policy said about one trigger, for the record.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Decision id.
    pub id: String,
    /// The trigger judged.
    pub trigger: Trigger,
    /// The effect enforced.
    pub effect: Effect,
    /// The deciding rules.
    pub rules: Vec<String>,
    /// Monitor-mode rules that applied.
    pub monitored: Vec<String>,
    /// Version of the policies that judged.
    pub policy_version: String,
    /// Redactions the verdict obliges (empty unless allowed).
    pub obligations: Vec<Obligation>,
}

/// A destination seen as the CONNECT for it (host-level rules).
pub fn connect_line(target: &Target) -> Line<'_> {
    Line {
        method: "CONNECT",
        scheme: "",
        target,
        path: "",
        query: None,
        headers: None,
    }
}

/// Builds the facts of `line` for `trigger`.
pub fn facts(
    trigger: Trigger,
    client: &ClientInfo,
    line: &Line<'_>,
    destination: &[SocketAddr],
    geo: &Geo,
) -> Facts {
    let identity = &client.identity;
    let headers = line
        .headers
        .map(|headers| {
            crate::policy::join_repeated(headers.iter().map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            }))
        })
        .unwrap_or_default();
    let query = line
        .query
        .map(|q| crate::policy::fields_of(q.as_bytes()))
        .unwrap_or_default();
    Facts {
        trigger,
        agent: AgentFacts {
            id: identity.agent.clone(),
            team: identity.team.clone(),
            env: identity.env.clone(),
            execution: identity.execution.clone(),
            labels: identity.labels.clone(),
        },
        request: RequestFacts {
            method: line.method.to_string(),
            scheme: line.scheme.to_string(),
            host: line.target.host.as_string(),
            port: line.target.port,
            path: line.path.to_string(),
            query,
            headers,
        },
        destination: super::locate::destination_facts(destination, geo),
        llm: None,
        tool: None,
        data: None,
        body: BodyFacts::default(),
        pii: Default::default(),
        response: None,
    }
}

/// Judges requests against the policies in force and records every decision in the audit trail.
/// The policies can be swapped while requests are judged; each decision uses one version whole.
pub struct Judge {
    policies: ArcSwap<Policies>,
    audit: Arc<AuditLog>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Judge {
    /// A judge over `policies`, recording into `audit` and counting into `metrics`.
    pub fn new(
        policies: Policies,
        audit: Arc<AuditLog>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            policies: ArcSwap::from_pointee(policies),
            audit,
            metrics,
        }
    }

    /// The version of the policies in force.
    pub fn policy_version(&self) -> String {
        self.policies.load().version.clone()
    }

    /// Records a refusal the proxy made itself, before or around the rules (network guard, a body
    /// that cannot be inspected, a non-canonical path): a deny with no rule, and its reason.
    pub fn record_refusal(&self, facts: &Facts, request_id: &str, err: &ProxyError) {
        let policies = self.policies.load();
        let mut record = self.record_of(facts, request_id, &format!("{request_id}-r"), &policies);
        self.metrics
            .decided(facts.trigger.name(), Effect::Deny.name(), &[], None);
        record.effect = Effect::Deny.name().to_string();
        record.reason = err.reason.clone();
        if let Err(e) = self.audit.record(&record) {
            tracing::error!(error = %e, "refusal could not be recorded");
        }
    }

    fn record_of(
        &self,
        facts: &Facts,
        request_id: &str,
        decision: &str,
        policies: &Policies,
    ) -> DecisionRecord {
        DecisionRecord {
            time: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            decision: decision.to_string(),
            request: request_id.to_string(),
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
        }
    }

    /// The audit trail decisions are written to.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// Whether a response rule could apply to the answer of the request of `facts` (scope and
    /// match only): the response is then held back whole and judged.
    pub fn judges_response_of(&self, facts: &Facts) -> bool {
        let mut triggers = vec![Trigger::HttpResponse];
        if facts.llm.is_some() {
            triggers.push(Trigger::LlmResponse);
        }
        self.policies.load().set.may_apply(&triggers, facts)
    }

    /// Whether the rules of `trigger` need the resolved destination.
    pub fn reads_destination(&self, trigger: Trigger) -> bool {
        self.policies.load().set.reads_destination(trigger)
    }

    /// Puts `policies` in force for every decision from now on.
    pub fn replace(&self, policies: Policies) {
        self.policies.store(Arc::new(policies));
    }

    /// Judges `facts`; returns the judgement and the refusal the agent receives, if any. A decision
    /// that cannot be recorded is refused (fail closed).
    pub fn decide(
        &self,
        facts: &Facts,
        request_id: &str,
        decision_id: String,
    ) -> (Judgement, Result<(), ProxyError>) {
        let policies = self.policies.load();
        let started = Instant::now();
        let verdict = policies.set.evaluate(facts);
        let elapsed = started.elapsed();
        let policy_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.metrics.decided(
            facts.trigger.name(),
            verdict.effect.name(),
            &verdict.deciding,
            Some(elapsed.as_secs_f64()),
        );
        let judgement = Judgement {
            id: decision_id,
            trigger: facts.trigger,
            effect: verdict.effect,
            rules: verdict.deciding.clone(),
            monitored: verdict.monitored.iter().map(|(id, _)| id.clone()).collect(),
            policy_version: policies.version.clone(),
            obligations: if matches!(verdict.effect, Effect::Allow | Effect::Hold) {
                verdict.obligations.clone()
            } else {
                Vec::new()
            },
        };
        let outcome = refusal(&verdict, &judgement, &facts.body);
        let reason = match &outcome {
            Ok(()) if judgement.rules.is_empty() => "no response rule refuses it".to_string(),
            Ok(()) => format!("allowed by {}", judgement.rules.join(", ")),
            Err(err) => err.reason.clone(),
        };
        let mut record = self.record_of(facts, request_id, &judgement.id, &policies);
        record.effect = judgement.effect.name().to_string();
        record.rules = judgement.rules.clone();
        record.monitored = judgement.monitored.clone();
        record.reason = reason;
        record.obligations = obligations(&verdict);
        record.policy_us = policy_us;
        if let Err(e) = self.audit.record(&record) {
            tracing::error!(error = %e, "decision could not be recorded; request refused");
            let refused =
                ProxyError::internal("the decision could not be recorded in the audit trail");
            return (judgement, Err(refused));
        }
        (judgement, outcome)
    }
}

/// Obligations as the audit trail and the agent read them (`redact email,phone as mask`).
fn obligations(verdict: &Verdict) -> Vec<String> {
    verdict
        .obligations
        .iter()
        .map(|Obligation::Redact { kinds, style }| format!("redact {} as {style}", kinds.join(",")))
        .collect()
}

fn refusal(verdict: &Verdict, judgement: &Judgement, body: &BodyFacts) -> Result<(), ProxyError> {
    let decision = DecisionRef {
        id: judgement.id.clone(),
        rules: judgement.rules.clone(),
    };
    let rules = judgement
        .rules
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = verdict
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match verdict.effect {
        // A verdict is never `redact`: those rules only add obligations.
        Effect::Allow | Effect::Redact => Ok(()),
        Effect::Deny if verdict.is_default_deny() && !body.inspected => {
            Err(ProxyError::denied_by_policy(
                format!(
                    "{}; the request was not forwarded uninspected (no allowing rule says \
                     `allow_uninspected: true`)",
                    body.problem
                ),
                decision,
            ))
        }
        Effect::Deny if verdict.is_default_deny() => Err(ProxyError::denied_by_policy(
            format!(
                "denied by default: no rule allows this {} request",
                judgement.trigger
            ),
            decision,
        )),
        Effect::Deny => Err(ProxyError::denied_by_policy(
            format!("denied by rule {rules}{message}"),
            decision,
        )),
        Effect::Hold => Err(ProxyError::denied_by_policy(
            format!(
                "rule {rules} holds this for human approval{message}; only requests can wait \
                 for a person (a tunnel or an answer cannot), so it is refused"
            ),
            decision,
        )),
    }
}
