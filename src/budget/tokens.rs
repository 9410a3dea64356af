//! Input tokens of a call before it leaves, for the worst case a budget reserves: counted with
//! OpenAI's own tokenizers (tiktoken's encodings) for the models that use them; for other models
//! (Anthropic, Gemini, Mistral…, whose tokenizers are not public) estimated at one token per 4
//! bytes of the request body. Both count the whole JSON body, keys and punctuation included, so
//! they lean high, which is the safe side for a reservation. Bodies over 16 KiB are estimated too:
//! byte-pair encoding costs ~25 µs per KiB of prose and far more for long unbroken words (a 1 MiB
//! word takes ~0.3 s), which a request must not be able to make the proxy spend.

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

/// How input tokens were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// With the model's tokenizer.
    Tokenizer,
    /// Estimated from the body's size.
    Estimate,
}

/// Largest body counted with a tokenizer.
pub const TOKENIZER_MAX_BYTES: usize = 16 * 1024;

/// Input tokens of a request to `model` carrying `body`.
pub fn input_tokens(model: &str, body: &[u8]) -> (u64, Counted) {
    let text = (body.len() <= TOKENIZER_MAX_BYTES)
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    match (text, get_tokenizer(model).map(encoding)) {
        (Some(text), Some(bpe)) => (
            bpe.encode_with_special_tokens(text).len() as u64,
            Counted::Tokenizer,
        ),
        _ => (estimated_tokens(body.len()), Counted::Estimate),
    }
}

/// The estimate for a body of `bytes` bytes.
pub fn estimated_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// Loads the encodings OpenAI's current models use, so the first call does not wait for them.
pub fn warm_up() {
    encoding(Tokenizer::O200kBase);
    encoding(Tokenizer::Cl100kBase);
}

fn encoding(tokenizer: Tokenizer) -> &'static CoreBPE {
    match tokenizer {
        Tokenizer::O200kHarmony => tiktoken_rs::o200k_harmony_singleton(),
        Tokenizer::O200kBase => tiktoken_rs::o200k_base_singleton(),
        Tokenizer::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        Tokenizer::P50kBase => tiktoken_rs::p50k_base_singleton(),
        Tokenizer::P50kEdit => tiktoken_rs::p50k_edit_singleton(),
        Tokenizer::R50kBase | Tokenizer::Gpt2 => tiktoken_rs::r50k_base_singleton(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_models_are_counted_with_their_tokenizer_and_others_estimated() {
        let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}"#;
        let cases: &[(&str, Counted)] = &[
            ("gpt-4o", Counted::Tokenizer),
            ("gpt-4o-mini-2024-07-18", Counted::Tokenizer),
            ("gpt-4", Counted::Tokenizer),
            ("o3-mini", Counted::Tokenizer),
            ("claude-sonnet-4-5", Counted::Estimate),
            ("gemini-2.5-pro", Counted::Estimate),
        ];
        for (model, how) in cases {
            let (tokens, counted) = input_tokens(model, body);
            assert_eq!(counted, *how, "{model}");
            assert!(
                tokens > 10 && tokens <= body.len() as u64,
                "{model}: {tokens}"
            );
        }
        // o200k: a real count, fewer than the byte estimate for English JSON.
        let (counted, _) = input_tokens("gpt-4o", body);
        assert!(counted < estimated_tokens(body.len()) + 5);
        assert_eq!(input_tokens("gpt-4o", b"\xff\xfe").1, Counted::Estimate);
        let large = vec![b'x'; TOKENIZER_MAX_BYTES + 1];
        assert_eq!(
            input_tokens("gpt-4o", &large),
            (estimated_tokens(large.len()), Counted::Estimate),
            "large bodies are never fed to the tokenizer"
        );
    }
}
