//! Step 7, evaluate, as the pipeline runs it: what is known about a request becomes policy facts,
//! the policies in force give a verdict, the audit trail records it before anything else happens,
//! and a refusing verdict becomes the error the agent receives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;

use crate::audit::{AuditLog, DecisionRecord};
use crate::error::{DecisionRef, ErrorKind, ProxyError};
use crate::geo::Geo;
use crate::policy::{
    AgentFacts, BodyFacts, Decision, DestinationFacts, Effect, Facts, Obligation, PolicyHandle,
    RequestFacts, Trigger, Verdict,
};
use crate::proxy::ClientInfo;
use crate::proxy::guard::non_global_category;
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
    /// Request headers (none for a CONNECT).
    pub headers: Option<&'a HeaderMap>,
}

impl<'a> Line<'a> {
    /// A destination seen as the CONNECT for it (host-level rules).
    pub fn connect(target: &'a Target) -> Line<'a> {
        Line {
            method: "CONNECT",
            scheme: "",
            target,
            path: "",
            query: None,
            headers: None,
        }
    }
}

/// What the policy said about one trigger, for the record.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Decision id.
    pub id: String,
    /// The effect enforced.
    pub effect: Effect,
    /// The deciding rules.
    pub rules: Vec<String>,
    /// Monitor-mode rules that applied.
    pub monitored: Vec<String>,
    /// Version of the policies that judged.
    pub policy_version: String,
}

/// What is judged. Only a request inspected whole can wait for a person: a hold verdict on a
/// tunnel, an answer or a body that could not be read is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A request whose body was inspected.
    Request,
    /// A request whose body could not be inspected; `too_large` when it exceeds the limit (its
    /// default deny is then a 413).
    Uninspected {
        /// The body exceeds the limit.
        too_large: bool,
    },
    /// A CONNECT, or a plain-HTTP request's host-level rules.
    Connect,
    /// An upstream's answer.
    Answer,
}

/// The facts of `line` for `trigger`, at the checked addresses `destination` (empty: not
/// resolved yet).
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
            query: line
                .query
                .map(|q| crate::policy::fields_of(q.as_bytes()))
                .unwrap_or_default(),
            headers,
        },
        destination: destination_facts(destination, geo),
        llm: None,
        tool: None,
        data: None,
        body: BodyFacts::default(),
        pii: Default::default(),
        response: None,
    }
}

/// 6. locate: where the checked addresses the proxy may connect to are, and whether one of them
///    is in a private range (allowed by config).
pub fn destination_facts(addresses: &[SocketAddr], geo: &Geo) -> DestinationFacts {
    let ips: Vec<std::net::IpAddr> = addresses.iter().map(SocketAddr::ip).collect();
    DestinationFacts::new(
        ips.first().map(ToString::to_string).unwrap_or_default(),
        ips.iter().any(|ip| non_global_category(*ip).is_some()),
        geo.locate_all(&ips),
    )
}

/// Judges requests against the policies in force and records every decision in the audit trail.
pub struct Judge {
    policies: Arc<PolicyHandle>,
    audit: Arc<AuditLog>,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Judge {
    /// A judge over `policies`, recording into `audit` and counting into `metrics`.
    pub fn new(
        policies: Arc<PolicyHandle>,
        audit: Arc<AuditLog>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        Self {
            policies,
            audit,
            metrics,
        }
    }

    /// The audit trail decisions are written to.
    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    /// The version of the policies in force.
    pub fn policy_version(&self) -> String {
        self.policies.version()
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

    /// Records a refusal the proxy made itself (network guard, inspection): a deny with no rule.
    pub fn record_refusal(&self, facts: &Facts, request_id: &str, err: &ProxyError) {
        let record = DecisionRecord::refused(facts, request_id, &self.policies.load(), &err.reason);
        self.metrics
            .decided(facts.trigger.name(), Effect::Deny.name(), &[], None);
        if let Err(e) = self.audit.record(&record) {
            tracing::error!(error = %e, "refusal could not be recorded");
        }
    }

    /// Judges `facts` under decision `id`: the judgement for the record, and the verdict (never
    /// `Deny`: a refusal is the error the agent receives). A decision that cannot be recorded is
    /// refused (fail closed).
    pub fn decide(
        &self,
        facts: &Facts,
        (request_id, id): (&str, String),
        subject: Subject,
    ) -> (Judgement, Result<Verdict, ProxyError>) {
        let policies = self.policies.load();
        let started = Instant::now();
        let decision = policies.set.evaluate(facts);
        let elapsed = started.elapsed();
        self.metrics.decided(
            facts.trigger.name(),
            decision.effect().name(),
            &decision.deciding,
            Some(elapsed.as_secs_f64()),
        );
        let judgement = Judgement {
            id,
            effect: decision.effect(),
            rules: decision.deciding.clone(),
            monitored: decision
                .monitored
                .iter()
                .map(|(id, _)| id.clone())
                .collect(),
            policy_version: policies.version.clone(),
        };
        let outcome = outcome(&decision, &judgement, facts, subject);
        let reason = match &outcome {
            Err(err) => err.reason.clone(),
            Ok(Verdict::Hold { .. }) => {
                format!("held for human approval by {}", judgement.rules.join(", "))
            }
            Ok(_) if judgement.rules.is_empty() => "no response rule refuses it".to_string(),
            Ok(_) => format!("allowed by {}", judgement.rules.join(", ")),
        };
        let policy_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let ids = (request_id, judgement.id.as_str());
        let record = DecisionRecord::decided(facts, ids, &policies, &decision, reason, policy_us);
        if let Err(e) = self.audit.record(&record) {
            tracing::error!(error = %e, "decision could not be recorded; request refused");
            let refused =
                ProxyError::internal("the decision could not be recorded in the audit trail");
            return (judgement, Err(refused));
        }
        (judgement, outcome)
    }
}

/// What `decision` means for the judged thing: its verdict, or the refusal the agent receives.
fn outcome(
    decision: &Decision,
    judgement: &Judgement,
    facts: &Facts,
    subject: Subject,
) -> Result<Verdict, ProxyError> {
    let refuse = |kind: ErrorKind, reason: String| {
        let decision = DecisionRef {
            id: judgement.id.clone(),
            rules: judgement.rules.clone(),
        };
        Err(ProxyError::new(kind, crate::error::Side::Agent, reason).with_decision(decision))
    };
    let rules = judgement
        .rules
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = decision
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    let body = &facts.body;
    match &decision.verdict {
        Verdict::Allow { .. } => Ok(decision.verdict.clone()),
        Verdict::Hold { .. } if subject == Subject::Request => Ok(decision.verdict.clone()),
        Verdict::Deny if decision.is_default_deny() && !body.inspected => refuse(
            // A body too large to read is refused as too large, unless a rule refused it.
            if subject == (Subject::Uninspected { too_large: true }) {
                ErrorKind::PayloadTooLarge
            } else {
                ErrorKind::Forbidden
            },
            format!(
                "{}; the request was not forwarded uninspected (no allowing rule says \
                 `allow_uninspected: true`)",
                body.problem
            ),
        ),
        Verdict::Deny if decision.is_default_deny() => refuse(
            ErrorKind::Forbidden,
            format!(
                "denied by default: no rule allows this {} request",
                facts.trigger
            ),
        ),
        Verdict::Deny => refuse(
            ErrorKind::Forbidden,
            format!("denied by rule {rules}{message}"),
        ),
        Verdict::Hold { .. } => refuse(
            ErrorKind::Forbidden,
            format!(
                "rule {rules} holds this for human approval{message}; only requests can wait \
                 for a person (a tunnel or an answer cannot), so it is refused"
            ),
        ),
    }
}

/// The obligations of an admitting verdict.
pub fn obligations(verdict: &Verdict) -> Vec<Obligation> {
    match verdict {
        Verdict::Allow { obligations } | Verdict::Hold { obligations } => obligations.clone(),
        Verdict::Deny => Vec::new(),
    }
}
