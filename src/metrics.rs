//! Counters for Prometheus (`GET /metrics` on the admin listener): decisions by effect and rule,
//! the policy step's latency, LLM spend, tokens and calls per agent, team and model, PII findings
//! by kind, requests held, and upstream errors. Labels carry ids and kinds, never values.
//! Beside them, unprefixed, the GenAI client histograms of the OpenTelemetry conventions
//! (`gen_ai_client_token_usage`, `gen_ai_client_operation_duration_seconds`,
//! `gen_ai_client_operation_time_to_first_chunk_seconds`), the same the OTLP exporter sends.

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
    cost_status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    agent: String,
    team: String,
    model: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiLabels {
    gen_ai_operation_name: String,
    gen_ai_provider_name: String,
    gen_ai_request_model: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GenAiTokenLabels {
    gen_ai_operation_name: String,
    gen_ai_provider_name: String,
    gen_ai_request_model: String,
    gen_ai_token_type: &'static str,
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
    pub cost_status: &'static str,
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

/// Token counts the GenAI conventions recommend as histogram buckets.
pub const TOKEN_BUCKETS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Seconds the GenAI conventions recommend as histogram buckets for durations.
pub const SECONDS_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// One GenAI call as the conventions' client metrics see it. The model is the price-table
/// entry it was priced as (`unpriced` otherwise), so an agent cannot mint series.
#[derive(Debug, Clone, Copy)]
pub struct GenAiCall<'a> {
    /// `chat`, `embeddings`, ...
    pub operation: &'a str,
    /// The conventions' provider name.
    pub provider: &'a str,
    /// The model as priced.
    pub model: &'a str,
    /// Input (cached included) and output tokens, when the answer reported them.
    pub tokens: Option<(u64, u64)>,
    /// From arrival to the end of the answer.
    pub duration: std::time::Duration,
    /// From arrival to the first byte of a streamed answer.
    pub first_chunk: Option<std::time::Duration>,
    /// The error code, when the call failed.
    pub error: Option<&'a str>,
}

/// The GenAI client histograms, registered without the `gatehouse_` prefix.
struct GenAi {
    registry: Registry,
    tokens: Family<GenAiTokenLabels, Histogram>,
    duration: Family<GenAiLabels, Histogram>,
    first_chunk: Family<GenAiLabels, Histogram>,
}

impl GenAi {
    fn new() -> GenAi {
        let mut registry = Registry::default();
        let tokens = Family::<GenAiTokenLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(TOKEN_BUCKETS)
        });
        registry.register(
            "gen_ai_client_token_usage",
            "Number of input and output tokens used",
            tokens.clone(),
        );
        let seconds = || Histogram::new(SECONDS_BUCKETS);
        let duration = Family::<GenAiLabels, Histogram>::new_with_constructor(seconds);
        registry.register(
            "gen_ai_client_operation_duration_seconds",
            "GenAI operation duration",
            duration.clone(),
        );
        let first_chunk = Family::<GenAiLabels, Histogram>::new_with_constructor(seconds);
        registry.register(
            "gen_ai_client_operation_time_to_first_chunk_seconds",
            "Time to receive the first chunk of a streamed answer",
            first_chunk.clone(),
        );
        GenAi {
            registry,
            tokens,
            duration,
            first_chunk,
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
    gen_ai: GenAi,
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
            gen_ai: GenAi::new(),
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
        let LlmLabels { agent, team, model } = labels;
        let mut calls = CallLabels {
            agent,
            team,
            model,
            cost_status: call.cost_status,
        };
        self.llm_calls.get_or_create(&calls).inc();
        let Some(tokens) = call.tokens else {
            return;
        };
        // One set of labels, its kind changed for each count: the label strings are made once.
        let mut labels = TokenLabels {
            agent: std::mem::take(&mut calls.agent),
            team: std::mem::take(&mut calls.team),
            model: std::mem::take(&mut calls.model),
            kind: "",
        };
        for (kind, n) in tokens {
            labels.kind = kind;
            self.llm_tokens.get_or_create(&labels).inc_by(n);
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

    /// Records a GenAI call in the conventions' client histograms.
    pub fn gen_ai_call(&self, call: &GenAiCall<'_>) {
        let labels = GenAiLabels {
            gen_ai_operation_name: call.operation.to_string(),
            gen_ai_provider_name: call.provider.to_string(),
            gen_ai_request_model: call.model.to_string(),
        };
        if let Some((input, output)) = call.tokens {
            let mut labels = GenAiTokenLabels {
                gen_ai_operation_name: labels.gen_ai_operation_name.clone(),
                gen_ai_provider_name: labels.gen_ai_provider_name.clone(),
                gen_ai_request_model: labels.gen_ai_request_model.clone(),
                gen_ai_token_type: "",
            };
            for (kind, count) in [("input", input), ("output", output)] {
                labels.gen_ai_token_type = kind;
                self.gen_ai
                    .tokens
                    .get_or_create(&labels)
                    .observe(count as f64);
            }
        }
        if let Some(first) = call.first_chunk {
            self.gen_ai
                .first_chunk
                .get_or_create(&labels)
                .observe(first.as_secs_f64());
        }
        self.gen_ai
            .duration
            .get_or_create(&labels)
            .observe(call.duration.as_secs_f64());
    }

    /// The gauge of requests waiting for a human.
    pub fn held(&self) -> &Gauge {
        &self.held
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        let encoded = encode_registry(&mut out, &self.registry)
            .and_then(|()| encode_registry(&mut out, &self.gen_ai.registry))
            .and_then(|()| encode_eof(&mut out));
        if let Err(e) = encoded {
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
        metrics.gen_ai_call(&GenAiCall {
            operation: "chat",
            provider: "openai",
            model: "gpt-4o",
            tokens: Some((100, 7)),
            duration: std::time::Duration::from_millis(300),
            first_chunk: Some(std::time::Duration::from_millis(30)),
            error: None,
        });
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
            r#"gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o",gen_ai_token_type="input"} 100.0"#,
            r#"gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"} 1"#,
            r#"gen_ai_client_operation_time_to_first_chunk_seconds_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o"} 1"#,
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
