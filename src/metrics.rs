//! Counters for Prometheus (`GET /metrics` on the admin listener): decisions by effect and rule,
//! the policy step's latency, LLM spend, tokens and calls per agent, team and model, PII findings
//! by kind, requests held, and upstream errors. Labels carry ids and kinds, never values.

use crate::budget::Cost;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    trigger: String,
    effect: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LlmLabels {
    agent: String,
    team: String,
    model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    agent: String,
    team: String,
    model: String,
    cost_status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    agent: String,
    team: String,
    model: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// One LLM call as metered.
#[derive(Debug, Clone, Copy)]
pub struct LlmCall<'a> {
    /// Agent id.
    pub agent: &'a str,
    /// Team, or empty.
    pub team: &'a str,
    /// Model as priced.
    pub model: &'a str,
    /// `exact`, `estimated` or `unpriced`.
    pub cost_status: &'a str,
    /// USD (0 when unpriced).
    pub usd: f64,
    /// Tokens by kind (`input`, `cached_input`, `cache_write`, `output`), when reported.
    pub tokens: Option<[(&'static str, u64); 4]>,
}

impl<'a> LlmCall<'a> {
    /// The call `agent` of `team` made at `cost`.
    pub fn of(agent: &'a str, team: Option<&'a str>, cost: &'a Cost) -> LlmCall<'a> {
        use rust_decimal::prelude::ToPrimitive;
        LlmCall {
            agent,
            team: team.unwrap_or(""),
            // An unpriced model's name is the agent's to choose: one label for all of them keeps
            // the number of series bounded.
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
        }
    }
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    decisions: Family<DecisionLabels, Counter>,
    policy_seconds: Histogram,
    llm_cost: Family<LlmLabels, Counter<f64, AtomicU64>>,
    llm_calls: Family<CallLabels, Counter>,
    llm_tokens: Family<TokenLabels, Counter>,
    pii_findings: Family<KindLabels, Counter>,
    upstream_errors: Family<KindLabels, Counter>,
    held: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered under `gatehouse_`.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gatehouse");
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Policy decisions by trigger, effect and deciding rule",
            decisions.clone(),
        );
        // 1 µs to ~33 ms.
        let policy_seconds = Histogram::new(exponential_buckets(1e-6, 2.0, 16));
        registry.register(
            "policy_evaluation_seconds",
            "Time to evaluate the policies for one decision",
            policy_seconds.clone(),
        );
        let llm_cost = Family::<LlmLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "llm_cost_usd",
            "LLM spend in USD (exact or estimated) per agent, team and model",
            llm_cost.clone(),
        );
        let llm_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "llm_calls",
            "Metered LLM calls per agent, team, model and cost status",
            llm_calls.clone(),
        );
        let llm_tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "llm_tokens",
            "LLM tokens per agent, team, model and kind",
            llm_tokens.clone(),
        );
        let pii_findings = Family::<KindLabels, Counter>::default();
        registry.register(
            "pii_findings",
            "Personal data and secrets found in requests, by kind",
            pii_findings.clone(),
        );
        let upstream_errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "upstream_errors",
            "Requests that failed on the upstream's side, by error kind",
            upstream_errors.clone(),
        );
        let held = Gauge::default();
        registry.register(
            "held_requests",
            "Requests waiting for a human decision",
            held.clone(),
        );
        Metrics {
            registry,
            decisions,
            policy_seconds,
            llm_cost,
            llm_calls,
            llm_tokens,
            pii_findings,
            upstream_errors,
            held,
        }
    }

    /// Counts a decision (`rules` empty: decided by default) and how long evaluation took
    /// (`None` for a refusal the proxy made itself, without evaluating rules).
    pub fn decided(&self, trigger: &str, effect: &str, rules: &[String], seconds: Option<f64>) {
        if let Some(seconds) = seconds {
            self.policy_seconds.observe(seconds);
        }
        let count = |rule: &str| {
            self.decisions
                .get_or_create(&DecisionLabels {
                    trigger: trigger.to_string(),
                    effect: effect.to_string(),
                    rule: rule.to_string(),
                })
                .inc();
        };
        if rules.is_empty() {
            count("");
        }
        for rule in rules {
            count(rule);
        }
    }

    /// Counts a metered LLM call.
    pub fn llm_call(&self, call: &LlmCall<'_>) {
        let labels = LlmLabels {
            agent: call.agent.to_string(),
            team: call.team.to_string(),
            model: call.model.to_string(),
        };
        self.llm_cost.get_or_create(&labels).inc_by(call.usd);
        self.llm_calls
            .get_or_create(&CallLabels {
                agent: labels.agent.clone(),
                team: labels.team.clone(),
                model: labels.model.clone(),
                cost_status: call.cost_status.to_string(),
            })
            .inc();
        for (kind, n) in call.tokens.into_iter().flatten() {
            self.llm_tokens
                .get_or_create(&TokenLabels {
                    agent: labels.agent.clone(),
                    team: labels.team.clone(),
                    model: labels.model.clone(),
                    kind: kind.to_string(),
                })
                .inc_by(n);
        }
    }

    /// Counts personal data found in a request, by kind.
    pub fn pii_found(&self, kind: &str, count: u64) {
        self.pii_findings
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc_by(count);
    }

    /// Counts a request that failed on the upstream's side (`kind`: the error code).
    pub fn upstream_error(&self, kind: &str) {
        self.upstream_errors
            .get_or_create(&KindLabels {
                kind: kind.to_string(),
            })
            .inc();
    }

    /// The gauge of requests waiting for a human.
    pub fn held(&self) -> &Gauge {
        &self.held
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_come_out_in_the_text_format_with_their_labels() {
        let metrics = Metrics::new();
        metrics.decided("llm.request", "deny", &["no-prod".into()], Some(0.000_012));
        metrics.decided("connect", "deny", &[], Some(0.000_002));
        metrics.decided("http.request", "deny", &[], None);
        metrics.llm_call(&LlmCall {
            agent: "a1",
            team: "t",
            model: "gpt-4o",
            cost_status: "exact",
            usd: 0.25,
            tokens: Some([
                ("input", 100),
                ("cached_input", 0),
                ("cache_write", 0),
                ("output", 7),
            ]),
        });
        metrics.pii_found("email", 2);
        metrics.upstream_error("upstream_timeout");
        let text = metrics.encode();
        for line in [
            r#"gatehouse_decisions_total{trigger="llm.request",effect="deny",rule="no-prod"} 1"#,
            r#"gatehouse_decisions_total{trigger="connect",effect="deny",rule=""} 1"#,
            r#"gatehouse_llm_cost_usd_total{agent="a1",team="t",model="gpt-4o"} 0.25"#,
            r#"gatehouse_llm_calls_total{agent="a1",team="t",model="gpt-4o",cost_status="exact"} 1"#,
            r#"gatehouse_llm_tokens_total{agent="a1",team="t",model="gpt-4o",kind="output"} 7"#,
            r#"gatehouse_pii_findings_total{kind="email"} 2"#,
            r#"gatehouse_upstream_errors_total{kind="upstream_timeout"} 1"#,
            "gatehouse_policy_evaluation_seconds_count 2",
            "gatehouse_held_requests 0",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
    }
}
