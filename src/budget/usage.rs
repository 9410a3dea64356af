//! Token usage as each provider reports it, read from the answer itself, streamed or not:
//! OpenAI chat completions (usage in the body, or in the last chunk of a stream), OpenAI responses
//! (`response.completed`), embeddings, Anthropic messages (`message_start`, then cumulative
//! `message_delta`; cache reads and writes apart), Gemini (`usageMetadata`, thinking tokens).

use rust_decimal::Decimal;
use serde_json::Value;

use super::prices::Price;
use crate::inspect::Dialect;

/// Tokens of one call, split the way prices are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens not read from a cache.
    pub input: u64,
    /// Input tokens read from a cache.
    pub cached_input: u64,
    /// Input tokens written to a cache.
    pub cache_write: u64,
    /// Output tokens, thinking tokens included.
    pub output: u64,
}

impl Usage {
    /// What these tokens cost at `price`, in USD.
    pub fn cost(&self, price: &Price) -> Decimal {
        let per_million = Decimal::from(1_000_000);
        (Decimal::from(self.input) * price.input
            + Decimal::from(self.cached_input) * price.cached_input
            + Decimal::from(self.cache_write) * price.cache_write
            + Decimal::from(self.output) * price.output)
            / per_million
    }

    /// All input tokens, cached or not.
    pub fn total_input(&self) -> u64 {
        self.input + self.cached_input + self.cache_write
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The usage in one JSON document (a whole answer, or one event of a stream), merged into
/// `usage`; returns whether the document carried any.
pub fn read_usage(dialect: Dialect, doc: &Value, usage: &mut Usage) -> bool {
    match dialect {
        Dialect::OpenAi => {
            // The responses API nests its usage in `response` on `response.completed`.
            let u = if doc["type"] == "response.completed" {
                &doc["response"]["usage"]
            } else {
                &doc["usage"]
            };
            if !u.is_object() {
                return false;
            }
            let prompt = count(&u["prompt_tokens"]).max(count(&u["input_tokens"]));
            let cached = count(&u["prompt_tokens_details"]["cached_tokens"])
                .max(count(&u["input_tokens_details"]["cached_tokens"]));
            usage.cached_input = cached.min(prompt);
            usage.input = prompt - usage.cached_input;
            usage.cache_write = 0;
            usage.output = count(&u["completion_tokens"]).max(count(&u["output_tokens"]));
            true
        }
        Dialect::Anthropic => {
            let u = match doc["type"].as_str() {
                Some("message_start") => &doc["message"]["usage"],
                _ => &doc["usage"],
            };
            if !u.is_object() {
                return false;
            }
            // Deltas carry cumulative counts of what they mention; keep the rest as started.
            if u.get("input_tokens").is_some() {
                usage.input = count(&u["input_tokens"]);
            }
            if u.get("cache_read_input_tokens").is_some() {
                usage.cached_input = count(&u["cache_read_input_tokens"]);
            }
            if u.get("cache_creation_input_tokens").is_some() {
                usage.cache_write = count(&u["cache_creation_input_tokens"]);
            }
            if u.get("output_tokens").is_some() {
                usage.output = count(&u["output_tokens"]);
            }
            true
        }
        Dialect::Gemini => {
            let u = &doc["usageMetadata"];
            if !u.is_object() {
                return false;
            }
            let prompt = count(&u["promptTokenCount"]);
            let cached = count(&u["cachedContentTokenCount"]).min(prompt);
            usage.cached_input = cached;
            usage.input = prompt - cached;
            usage.cache_write = 0;
            usage.output =
                count(&u["candidatesTokenCount"]).saturating_add(count(&u["thoughtsTokenCount"]));
            true
        }
    }
}
