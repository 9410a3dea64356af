//! What a span says about a request, as attributes: the GenAI semantic conventions for an LLM
//! call (`gen_ai.*`), the HTTP client conventions for where it went (`http.*`, `server.*`), and
//! `gatehouse.*` for what the proxy decided. Ids, kinds, counts, amounts and names the operator
//! configured — never a header value, a body, a query, a message, a found value or a key. The only
//! strings that come from the traffic are the host, the execution id and model names: model names
//! only when they look like one (see [`model_name`]), and none of them when the PII detectors find
//! something in it (`Telemetry::scrub`).

use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry::{Array, KeyValue, StringValue, Value};

/// What the policy decided about one trigger of the request.
#[derive(Debug, Clone, Copy)]
pub struct Decided<'a> {
    /// Decision id.
    pub id: &'a str,
    /// `allow`, `deny` or `hold`.
    pub effect: &'a str,
    /// The deciding rules.
    pub rules: &'a [String],
    /// Content hash of the policies that judged.
    pub policy_version: &'a str,
}

/// An LLM call, as far as the proxy saw it.
#[derive(Debug, Clone, Default)]
pub struct LlmExchange<'a> {
    /// The provider as Gatehouse names it (`openai`, `azure_openai`, `gemini`, ...).
    pub provider: &'a str,
    /// The operation (`chat`, `embeddings`, ...).
    pub operation: &'a str,
    /// The model the request named, when it may be exported.
    pub request_model: Option<&'a str>,
    /// The model the answer named.
    pub response_model: Option<&'a str>,
    /// Why the answer ended, as the provider says it.
    pub finish_reasons: &'a [String],
    /// Input tokens (cached and cache writes included), output tokens, cache reads, cache writes.
    pub tokens: Option<Tokens>,
    /// USD, when the call was priced.
    pub cost_usd: Option<f64>,
    /// `exact`, `estimated`, `unpriced` or `unknown`.
    pub cost_status: &'a str,
    /// From arrival to the first byte of a streamed answer.
    pub first_chunk: Option<Duration>,
}

/// Tokens of one call, as the semantic conventions count them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Every input token, cached or not.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from a cache.
    pub cache_read: u64,
    /// Input tokens written to a cache.
    pub cache_creation: u64,
}

/// One request through the proxy, as it ended.
#[derive(Debug, Clone, Default)]
pub struct Exchange<'a> {
    /// Request id.
    pub request: &'a str,
    /// Agent id, team and execution id (issued by the proxy).
    pub agent: &'a str,
    /// The agent's team.
    pub team: Option<&'a str>,
    /// The execution id.
    pub execution: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Destination host.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// The status the agent received (0: it hung up first).
    pub status: u16,
    /// `forwarded`, `cut`, `abandoned`, `cancelled`, or the error code.
    pub outcome: &'a str,
    /// Whether the request failed (refused, or an error on either side).
    pub failed: bool,
    /// The final effect: the last decision's, or `deny` for a refusal the proxy made itself.
    pub effect: &'a str,
    /// Every decision taken on the request, in order.
    pub decisions: Vec<Decided<'a>>,
    /// Personal data found, by kind.
    pub pii: Option<&'a BTreeMap<String, u64>>,
    /// Values redacted, by kind.
    pub redacted: Option<&'a BTreeMap<String, u64>>,
    /// A held request's approval: its decision and how long the request waited.
    pub approval: Option<(&'a str, Duration)>,
    /// Response body bytes that reached the agent's side.
    pub response_bytes: u64,
    /// The LLM call, when it was one.
    pub llm: Option<LlmExchange<'a>>,
}

/// The semantic conventions' name of a provider (`gen_ai.provider.name`).
pub fn provider_name(provider: &str) -> &str {
    match provider {
        "azure_openai" => "azure.ai.openai",
        "gemini" => "gcp.gemini",
        "vertex" => "gcp.vertex_ai",
        "bedrock" => "aws.bedrock",
        // OpenAI and servers speaking its API on hosts the proxy does not know.
        "openai_compatible" => "openai",
        other => other,
    }
}

/// `model` when it looks like a model name (letters, digits and `._:/@-`, up to 128 bytes, no
/// domain after an `@`), so that a text, an address or a number put in its place never leaves
/// in a span; the caller also checks it holds no finding of the PII detectors.
pub fn model_name(model: &str) -> Option<&str> {
    let shaped = !model.is_empty()
        && model.len() <= 128
        && model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@-".contains(&b))
        && model
            .split_once('@')
            .is_none_or(|(_, version)| !version.contains(['.', '@']));
    shaped.then_some(model)
}

/// The span's name: `{operation} {model}` for an LLM call (as the GenAI conventions name it),
/// the method otherwise (as the HTTP conventions do).
pub fn span_name(exchange: &Exchange<'_>) -> String {
    match &exchange.llm {
        Some(llm) => match llm.request_model {
            Some(model) => format!("{} {model}", llm.operation),
            None => llm.operation.to_string(),
        },
        None => exchange.method.to_string(),
    }
}

fn strings<'a>(values: impl IntoIterator<Item = &'a str>) -> Value {
    let values: Vec<StringValue> = values
        .into_iter()
        .map(|v| StringValue::from(v.to_string()))
        .collect();
    Value::Array(Array::String(values))
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The span's attributes.
pub fn attributes(exchange: &Exchange<'_>) -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new("http.request.method", exchange.method.to_string()),
        KeyValue::new("server.address", exchange.host.clone()),
        KeyValue::new("server.port", i64::from(exchange.port)),
        KeyValue::new("gatehouse.agent", exchange.agent.to_string()),
        KeyValue::new("gatehouse.outcome", exchange.outcome.to_string()),
        KeyValue::new("gatehouse.effect", exchange.effect.to_string()),
        KeyValue::new("gatehouse.response.bytes", int(exchange.response_bytes)),
    ];
    if !exchange.scheme.is_empty() {
        out.push(KeyValue::new("url.scheme", exchange.scheme.to_string()));
    }
    if !exchange.request.is_empty() {
        out.push(KeyValue::new(
            "gatehouse.request.id",
            exchange.request.to_string(),
        ));
    }
    if exchange.status != 0 {
        out.push(KeyValue::new(
            "http.response.status_code",
            i64::from(exchange.status),
        ));
    }
    if exchange.failed {
        out.push(KeyValue::new("error.type", exchange.outcome.to_string()));
    }
    if let Some(team) = exchange.team {
        out.push(KeyValue::new("gatehouse.team", team.to_string()));
    }
    if let Some(execution) = exchange.execution {
        out.push(KeyValue::new(
            "gatehouse.execution.id",
            execution.to_string(),
        ));
    }
    decisions(&exchange.decisions, &mut out);
    for (prefix, found) in [
        ("gatehouse.pii", exchange.pii),
        ("gatehouse.redacted", exchange.redacted),
    ] {
        counts(prefix, found, &mut out);
    }
    if let Some((decision, waited)) = exchange.approval {
        out.push(KeyValue::new(
            "gatehouse.approval.decision",
            decision.to_string(),
        ));
        out.push(KeyValue::new(
            "gatehouse.approval.wait_seconds",
            waited.as_secs_f64(),
        ));
    }
    if let Some(llm) = &exchange.llm {
        gen_ai(llm, &mut out);
    }
    out
}

fn decisions(decided: &[Decided<'_>], out: &mut Vec<KeyValue>) {
    if decided.is_empty() {
        return;
    }
    let rules = decided
        .iter()
        .flat_map(|d| d.rules.iter().map(String::as_str));
    out.push(KeyValue::new("gatehouse.decision.rules", strings(rules)));
    out.push(KeyValue::new(
        "gatehouse.decision.ids",
        strings(decided.iter().map(|d| d.id)),
    ));
    out.push(KeyValue::new(
        "gatehouse.decision.effects",
        strings(decided.iter().map(|d| d.effect)),
    ));
    if let Some(last) = decided.last() {
        out.push(KeyValue::new("gatehouse.decision.id", last.id.to_string()));
        out.push(KeyValue::new(
            "gatehouse.policy.version",
            last.policy_version.to_string(),
        ));
    }
}

fn counts(prefix: &str, found: Option<&BTreeMap<String, u64>>, out: &mut Vec<KeyValue>) {
    let Some(found) = found.filter(|f| !f.is_empty()) else {
        return;
    };
    out.push(KeyValue::new(
        format!("{prefix}.kinds"),
        strings(found.keys().map(String::as_str)),
    ));
    out.push(KeyValue::new(
        format!("{prefix}.count"),
        int(found.values().sum()),
    ));
    for (kind, count) in found {
        out.push(KeyValue::new(format!("{prefix}.count.{kind}"), int(*count)));
    }
}

fn gen_ai(llm: &LlmExchange<'_>, out: &mut Vec<KeyValue>) {
    out.push(KeyValue::new(
        "gen_ai.operation.name",
        llm.operation.to_string(),
    ));
    out.push(KeyValue::new(
        "gen_ai.provider.name",
        provider_name(llm.provider).to_string(),
    ));
    if let Some(model) = llm.request_model {
        out.push(KeyValue::new("gen_ai.request.model", model.to_string()));
    }
    if let Some(model) = llm.response_model.and_then(model_name) {
        out.push(KeyValue::new("gen_ai.response.model", model.to_string()));
    }
    if !llm.finish_reasons.is_empty() {
        let reasons = llm.finish_reasons.iter().map(String::as_str);
        out.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            strings(reasons),
        ));
    }
    if let Some(tokens) = llm.tokens {
        out.push(KeyValue::new(
            "gen_ai.usage.input_tokens",
            int(tokens.input),
        ));
        out.push(KeyValue::new(
            "gen_ai.usage.output_tokens",
            int(tokens.output),
        ));
        out.push(KeyValue::new(
            "gen_ai.usage.cache_read.input_tokens",
            int(tokens.cache_read),
        ));
        out.push(KeyValue::new(
            "gen_ai.usage.cache_creation.input_tokens",
            int(tokens.cache_creation),
        ));
    }
    if let Some(first) = llm.first_chunk {
        out.push(KeyValue::new(
            "gen_ai.response.time_to_first_chunk",
            first.as_secs_f64(),
        ));
    }
    if let Some(usd) = llm.cost_usd {
        out.push(KeyValue::new("gatehouse.cost.usd", usd));
    }
    out.push(KeyValue::new(
        "gatehouse.cost.status",
        llm.cost_status.to_string(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
        attrs
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    }

    #[test]
    fn an_llm_call_is_named_and_attributed_by_the_conventions() {
        let rules = vec!["allow-llm".to_string()];
        let pii = BTreeMap::from([("email".to_string(), 2), ("phone".to_string(), 1)]);
        let reasons = vec!["stop".to_string()];
        let exchange = Exchange {
            request: "r1",
            agent: "a1",
            method: "POST",
            scheme: "https",
            host: "api.openai.com".into(),
            port: 443,
            status: 200,
            outcome: "forwarded",
            effect: "allow",
            decisions: vec![Decided {
                id: "r1",
                effect: "allow",
                rules: &rules,
                policy_version: "v1",
            }],
            pii: Some(&pii),
            llm: Some(LlmExchange {
                provider: "azure_openai",
                operation: "chat",
                request_model: model_name("gpt-4o"),
                response_model: Some("gpt-4o-2024-08-06"),
                finish_reasons: &reasons,
                tokens: Some(Tokens {
                    input: 10,
                    output: 3,
                    ..Tokens::default()
                }),
                cost_usd: Some(0.5),
                cost_status: "exact",
                ..LlmExchange::default()
            }),
            ..Exchange::default()
        };
        assert_eq!(span_name(&exchange), "chat gpt-4o");
        let attrs = attributes(&exchange);
        let text = |key| find(&attrs, key).map(|v| v.to_string());
        assert_eq!(text("gen_ai.provider.name").unwrap(), "azure.ai.openai");
        assert_eq!(text("gen_ai.response.model").unwrap(), "gpt-4o-2024-08-06");
        assert_eq!(text("gen_ai.usage.input_tokens").unwrap(), "10");
        assert_eq!(text("gatehouse.pii.count").unwrap(), "3");
        assert_eq!(text("gatehouse.pii.count.email").unwrap(), "2");
        assert_eq!(
            text("gatehouse.decision.rules").unwrap(),
            r#"["allow-llm"]"#
        );
        assert!(text("error.type").is_none());
    }

    #[test]
    fn only_model_shaped_names_are_exported() {
        for good in [
            "gpt-4o-mini",
            "claude-3-5-sonnet-v2@20241022",
            "models/gemini-2.0-flash",
            "meta-llama/Llama-3.3-70B-Instruct",
        ] {
            assert_eq!(model_name(good), Some(good));
        }
        for bad in [
            "",
            "jane.doe@example.com",
            "call me on +1 555 0100",
            "a\nb",
            "ünicode",
            &"x".repeat(129),
        ] {
            assert_eq!(model_name(bad), None, "{bad:?}");
        }
    }
}
