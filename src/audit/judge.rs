//! Step 7 with its record: the policies in force judge a request's facts, and the decision is in
//! the audit trail before anything else happens. A decision that cannot be recorded refuses the
//! request (fail closed), so nothing is decided that the trail does not hold.

use std::sync::Arc;
use std::time::Instant;

use super::{AuditLog, ClosedRecord, DecisionRecord};
use crate::error::{DecisionRef, ErrorKind, ProxyError, Side};
use crate::metrics::Metrics;
use crate::policy::{
    AgentFacts, Effect, Facts, PolicyHandle, RequestFacts, Subject, Trigger, Verdict,
};
use crate::proxy::target::Target;
use crate::proxy::{ClientInfo, Refusal, TunnelEnd};

/// What the policy said about one trigger, for the request's log line.
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

/// Judges against the policies in force and records every decision in the audit trail.
#[derive(Clone)]
pub struct Judge {
    policies: Arc<PolicyHandle>,
    audit: Arc<AuditLog>,
    metrics: Arc<Metrics>,
}

impl Judge {
    /// A judge over `policies`, recording into `audit` and counting into `metrics`.
    pub fn new(policies: Arc<PolicyHandle>, audit: Arc<AuditLog>, metrics: Arc<Metrics>) -> Self {
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

    /// Whether the rules could still admit `facts` once their destination is known (see
    /// [`crate::policy::PolicySet::may_admit_once_located`]).
    pub fn may_admit_once_located(&self, facts: &Facts) -> bool {
        self.policies.load().set.may_admit_once_located(facts)
    }

    /// Records a refusal the proxy made itself (network guard, inspection): a deny with no rule.
    /// Returns the decision id it is recorded under (`None` when it could not be recorded), for
    /// the refusal to name.
    pub fn record_refusal(
        &self,
        facts: &Facts,
        request_id: &str,
        err: &ProxyError,
    ) -> Option<String> {
        let status = (err.status().as_u16(), err.reason.as_str());
        let record = DecisionRecord::refused(facts, request_id, &self.policies.load(), status);
        self.metrics
            .decided(facts.trigger.name(), Effect::Deny.name(), &[], None);
        match self.audit.record(&record) {
            Ok(()) => Some(record.decision),
            Err(e) => {
                tracing::error!(error = %e, "refusal could not be recorded");
                None
            }
        }
    }

    /// `err`, first recorded (and naming its record) when it is a refusal the proxy made on its
    /// own ([`ProxyError::is_own_refusal`]) about the request of `facts`.
    pub fn own_refusal(
        &self,
        facts: impl FnOnce() -> Facts,
        request_id: &str,
        err: ProxyError,
    ) -> ProxyError {
        if !err.is_own_refusal() {
            return err;
        }
        let recorded = self.record_refusal(&facts(), request_id, &err);
        err.recorded_decision(recorded)
    }

    /// Records a refusal the proxy made before the steps saw the request (407, 421, a head over
    /// its limit, a tunnel that is neither TLS nor HTTP): a deny without a rule. Returns the
    /// decision id it is recorded under.
    pub fn record_proxy_refusal(&self, refusal: &Refusal<'_>) -> Option<String> {
        let trigger = match refusal.method {
            "CONNECT" => Trigger::Connect,
            _ => Trigger::HttpRequest,
        };
        let host = refusal
            .target
            .map(|t| (t.host.as_string(), t.port))
            .unwrap_or_default();
        let request = RequestFacts::new((refusal.method, ""), host, refusal.path, None, None);
        // Not authenticated (yet): no agent to name.
        let agent = refusal
            .identity
            .map_or_else(AgentFacts::default, |id| AgentFacts {
                id: id.agent.clone(),
                team: id.team.clone(),
                env: id.env.clone(),
                execution: id.execution.clone(),
                labels: id.labels.clone(),
            });
        let facts = Facts::new(trigger, agent, request);
        self.record_refusal(&facts, &crate::random::request_id(), refusal.error)
    }

    /// Records how a relayed tunnel ended, with the bytes each way.
    pub fn record_tunnel_end(&self, client: &ClientInfo, target: &Target, end: &TunnelEnd) {
        let host = (target.host.as_string(), target.port);
        let mut record = ClosedRecord::now("tunnel", &client.identity.agent, host);
        record.bytes_up = end.bytes_up;
        record.bytes_down = end.bytes_down;
        record.outcome = end.outcome.clone();
        record.elapsed_ms = Some(end.elapsed_ms);
        if let Err(e) = self.audit.record_closed(&record) {
            tracing::error!(error = %e, "the end of a tunnel could not be recorded");
        }
    }

    /// Judges `facts` of `subject` under decision `id`: the judgement for the log line, and the
    /// verdict it goes on with (never `Deny`: a refusal is the error the agent receives, naming
    /// the decision and its rules).
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
            monitored: decision.monitored_ids(),
            policy_version: policies.version.clone(),
        };
        let outcome = decision.ruling(facts, subject).map_err(|refusal| {
            let kind = match refusal.too_large {
                true => ErrorKind::PayloadTooLarge,
                false => ErrorKind::Forbidden,
            };
            let decision = DecisionRef {
                id: judgement.id.clone(),
                rules: judgement.rules.clone(),
            };
            ProxyError::new(kind, Side::Agent, refusal.reason).with_decision(decision)
        });
        let rules = judgement.rules.join(", ");
        let reason = match &outcome {
            Err(err) => err.reason.clone(),
            Ok(Verdict::Hold { .. }) => {
                let message = decision.message.as_deref().unwrap_or("waits for a person");
                format!("held for human approval by {rules}: {message}")
            }
            Ok(_) if rules.is_empty() && facts.trigger == Trigger::WebsocketMessage => {
                "no websocket.message rule refuses it".to_string()
            }
            Ok(_) if rules.is_empty() => "no response rule refuses it".to_string(),
            Ok(_) => format!("allowed by {rules}"),
        };
        let policy_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let ids = (request_id, judgement.id.as_str());
        let mut record =
            DecisionRecord::decided(facts, ids, &policies, &decision, reason, policy_us);
        record.status = outcome.as_ref().err().map(|e| e.status().as_u16());
        if let Err(e) = self.audit.record(&record) {
            tracing::error!(error = %e, "decision could not be recorded; request refused");
            let refused =
                ProxyError::internal("the decision could not be recorded in the audit trail");
            return (judgement, Err(refused));
        }
        (judgement, outcome)
    }
}
