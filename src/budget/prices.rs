//! What tokens cost: USD per million tokens per model, in decimal (never floats for money), from
//! our YAML table (`config/prices.yaml`, built in) or LiteLLM's `model_prices_and_context_window.json`.
//! Dated snapshots, `-latest`/preview suffixes and provider prefixes map to their base model; a model
//! with no price is `unpriced`, never guessed from a similar name.

use std::collections::HashMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::Deserialize;

/// The built-in table.
pub const DEFAULT_PRICES: &str = include_str!("../../config/prices.yaml");

/// USD per million tokens of one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    /// Input (prompt) tokens not read from a cache.
    pub input: Decimal,
    /// Output tokens (thinking tokens included).
    pub output: Decimal,
    /// Input tokens read from a cache (defaults to the input price).
    pub cached_input: Decimal,
    /// Input tokens written to a cache (defaults to the input price).
    pub cache_write: Decimal,
}

/// Why a price table could not be read.
#[derive(Debug, thiserror::Error)]
#[error("price table {file}: {reason}")]
pub struct PriceError {
    pub file: String,
    /// What is wrong (with the model it concerns).
    pub reason: String,
}

/// Prices by model name.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    models: HashMap<String, Price>,
    aliases: HashMap<String, String>,
}

/// A price as written: a YAML number or string, read as an exact decimal.
#[derive(Debug, Clone, Copy)]
struct Usd(Decimal);

impl<'de> Deserialize<'de> for Usd {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Usd;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a price in USD per million tokens")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Usd, E> {
                Decimal::from_str(v.trim()).map(Usd).map_err(E::custom)
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Usd, E> {
                // The shortest text that reads back as this float is the number as written.
                self.visit_str(&v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Usd, E> {
                Ok(Usd(Decimal::from(v)))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Usd, E> {
                Ok(Usd(Decimal::from(v)))
            }
        }
        d.deserialize_any(Visit)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrice {
    input: Usd,
    output: Usd,
    #[serde(default)]
    cached_input: Option<Usd>,
    #[serde(default)]
    cache_write: Option<Usd>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    models: HashMap<String, RawPrice>,
    #[serde(default)]
    aliases: HashMap<String, String>,
}

impl PriceTable {
    /// Our YAML format (`config/prices.yaml`).
    pub fn from_yaml(text: &str, file: &str) -> Result<PriceTable, PriceError> {
        let raw: RawTable = serde_saphyr::from_str(text).map_err(|e| PriceError {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
        let mut table = PriceTable::default();
        for (model, p) in raw.models {
            let price = Price {
                input: p.input.0,
                output: p.output.0,
                cached_input: p.cached_input.map_or(p.input.0, |c| c.0),
                cache_write: p.cache_write.map_or(p.input.0, |c| c.0),
            };
            if [
                price.input,
                price.output,
                price.cached_input,
                price.cache_write,
            ]
            .iter()
            .any(|d| d.is_sign_negative())
            {
                return Err(PriceError {
                    file: file.to_string(),
                    reason: format!("model `{model}`: a price is negative"),
                });
            }
            table.models.insert(model.to_ascii_lowercase(), price);
        }
        for (alias, model) in raw.aliases {
            let model = model.to_ascii_lowercase();
            if !table.models.contains_key(&model) {
                return Err(PriceError {
                    file: file.to_string(),
                    reason: format!("alias `{alias}` names `{model}`, which has no price"),
                });
            }
            table.aliases.insert(alias.to_ascii_lowercase(), model);
        }
        Ok(table)
    }

    /// LiteLLM's `model_prices_and_context_window.json` (USD per token, converted).
    pub fn from_litellm(text: &str, file: &str) -> Result<PriceTable, PriceError> {
        let fail = |reason: String| PriceError {
            file: file.to_string(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| fail(e.to_string()))?;
        let entries = value
            .as_object()
            .ok_or_else(|| fail("not a JSON object of models".into()))?;
        let per_million = |v: &serde_json::Value| -> Option<Decimal> {
            let text = v.as_number()?.to_string();
            Decimal::from_scientific(&text)
                .or_else(|_| Decimal::from_str(&text))
                .ok()
                .map(|d| d * Decimal::from(1_000_000))
        };
        let mut table = PriceTable::default();
        for (model, entry) in entries {
            let (Some(input), Some(output)) = (
                per_million(&entry["input_cost_per_token"]),
                per_million(&entry["output_cost_per_token"]),
            ) else {
                continue;
            };
            if input.is_sign_negative() || output.is_sign_negative() {
                return Err(fail(format!("model `{model}`: a price is negative")));
            }
            table.models.insert(
                model.to_ascii_lowercase(),
                Price {
                    input,
                    output,
                    cached_input: per_million(&entry["cache_read_input_token_cost"])
                        .unwrap_or(input),
                    cache_write: per_million(&entry["cache_creation_input_token_cost"])
                        .unwrap_or(input),
                },
            );
        }
        if table.models.is_empty() {
            return Err(fail("no model with input and output prices".into()));
        }
        Ok(table)
    }

    /// The price of `model` and the name it is priced under.
    pub fn price(&self, model: &str) -> Option<(&str, &Price)> {
        let lower = model.trim().to_ascii_lowercase();
        let mut candidates = vec![lower.clone()];
        if let Some((_, bare)) = lower.rsplit_once('/') {
            candidates.push(bare.to_string());
        }
        for name in candidates {
            let name = self.aliases.get(&name).cloned().unwrap_or(name);
            if let Some((key, price)) = self.models.get_key_value(&name) {
                return Some((key, price));
            }
            if let Some((key, price)) = bases(&name)
                .into_iter()
                .find_map(|base| self.models.get_key_value(base))
            {
                return Some((key, price));
            }
        }
        None
    }

    /// How many models are priced.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }
}

/// The names a dated or versioned model name may be priced under, nearest first: trailing parts
/// that are all digits or `latest`/`preview`/`exp` come off one by one (`gpt-4o-2024-08-06` →
/// `gpt-4o`, `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, `gemini-2.5-flash-preview-05-20` →
/// `gemini-2.5-flash`, `mistral-large-2411` → `mistral-large`, `…@20250929`). A part that names
/// another model (`o3-pro`) never comes off.
fn bases(name: &str) -> Vec<&str> {
    let unversioned = name.split('@').next().unwrap_or(name);
    let mut out = Vec::new();
    if unversioned != name {
        out.push(unversioned);
    }
    let mut name = unversioned;
    while let Some((head, last)) = name.rsplit_once('-') {
        let version_like = !last.is_empty()
            && (last.bytes().all(|b| b.is_ascii_digit())
                || matches!(last, "latest" | "preview" | "exp" | "experimental"));
        if !version_like || head.is_empty() {
            break;
        }
        out.push(head);
        name = head;
    }
    out
}
