//! What an LLM answer says about itself besides its usage, read by the meter from the same
//! documents: the model that answered and why it stopped (OpenAI chat `model` and
//! `choices[].finish_reason`, the Responses API's `response.model` and `status`, Anthropic's
//! `message.model` and `stop_reason`, Gemini's `modelVersion` and `candidates[].finishReason`).
//! Bounded: a short model name, a few short reasons.

use serde_json::Value;

use crate::inspect::Dialect;

/// The longest model name kept.
const MAX_MODEL: usize = 128;
/// Distinct finish reasons kept.
const MAX_REASONS: usize = 8;
/// The longest finish reason kept.
const MAX_REASON: usize = 40;

/// The answering model and the finish reasons seen so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerFacts {
    /// The model the answer names.
    pub model: Option<String>,
    /// Why the answer ended, each reason once.
    pub finish_reasons: Vec<String>,
}

impl AnswerFacts {
    /// Reads one JSON document (a whole answer, or one event of a stream).
    pub fn read(&mut self, dialect: Dialect, doc: &Value) {
        let kind = doc["type"].as_str().unwrap_or_default();
        match dialect {
            Dialect::OpenAi if kind.starts_with("response.") => {
                let response = &doc["response"];
                self.model(&response["model"]);
                if matches!(
                    kind,
                    "response.completed" | "response.incomplete" | "response.failed"
                ) {
                    self.reason(&response["status"]);
                }
            }
            Dialect::OpenAi => {
                self.model(&doc["model"]);
                for choice in doc["choices"].as_array().into_iter().flatten() {
                    self.reason(&choice["finish_reason"]);
                }
                // The Responses API answered whole.
                if doc["object"] == "response" {
                    self.reason(&doc["status"]);
                }
            }
            Dialect::Anthropic => {
                let message = if kind == "message_start" {
                    &doc["message"]
                } else {
                    doc
                };
                self.model(&message["model"]);
                self.reason(&message["stop_reason"]);
                self.reason(&doc["delta"]["stop_reason"]);
            }
            Dialect::Gemini => {
                self.model(&doc["modelVersion"]);
                for candidate in doc["candidates"].as_array().into_iter().flatten() {
                    self.reason(&candidate["finishReason"]);
                }
            }
        }
    }

    fn model(&mut self, value: &Value) {
        if let Some(model) = value
            .as_str()
            .filter(|m| !m.is_empty() && m.len() <= MAX_MODEL)
        {
            self.model = Some(model.to_string());
        }
    }

    fn reason(&mut self, value: &Value) {
        let Some(reason) = value
            .as_str()
            .filter(|r| !r.is_empty() && r.len() <= MAX_REASON)
        else {
            return;
        };
        if self.finish_reasons.len() < MAX_REASONS
            && !self.finish_reasons.iter().any(|r| r == reason)
        {
            self.finish_reasons.push(reason.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(dialect: Dialect, docs: &[Value]) -> AnswerFacts {
        let mut facts = AnswerFacts::default();
        for doc in docs {
            facts.read(dialect, doc);
        }
        facts
    }

    #[test]
    fn each_dialect_names_its_model_and_finish_reasons() {
        let openai = read(
            Dialect::OpenAi,
            &[
                json!({"model": "gpt-4o-2024-08-06", "choices": [{"delta": {}, "finish_reason": null}]}),
                json!({"model": "gpt-4o-2024-08-06", "choices": [{"finish_reason": "stop"}, {"finish_reason": "length"}]}),
                json!({"model": "gpt-4o-2024-08-06", "choices": [], "usage": {}}),
            ],
        );
        assert_eq!(openai.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(openai.finish_reasons, ["stop", "length"]);
        let responses = read(
            Dialect::OpenAi,
            &[
                json!({"type": "response.completed", "response": {"model": "o3", "status": "completed"}}),
            ],
        );
        assert_eq!(responses.model.as_deref(), Some("o3"));
        assert_eq!(responses.finish_reasons, ["completed"]);
        let anthropic = read(
            Dialect::Anthropic,
            &[
                json!({"type": "message_start", "message": {"model": "claude-sonnet-4-5", "stop_reason": null}}),
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
            ],
        );
        assert_eq!(anthropic.model.as_deref(), Some("claude-sonnet-4-5"));
        assert_eq!(anthropic.finish_reasons, ["end_turn"]);
        let gemini = read(
            Dialect::Gemini,
            &[
                json!({"modelVersion": "gemini-2.0-flash", "candidates": [{"finishReason": "STOP"}]}),
            ],
        );
        assert_eq!(gemini.finish_reasons, ["STOP"]);
    }

    #[test]
    fn what_is_kept_is_bounded() {
        let many: Vec<Value> = (0..20)
            .map(|i| json!({"model": "x".repeat(200), "choices": [{"finish_reason": format!("r{i}")}]}))
            .collect();
        let facts = read(Dialect::OpenAi, &many);
        assert_eq!(facts.model, None);
        assert_eq!(facts.finish_reasons.len(), MAX_REASONS);
    }
}
