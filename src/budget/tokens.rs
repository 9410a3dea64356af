//! Input tokens of a call before it leaves, for the worst case a budget reserves: counted with
//! OpenAI's own encodings (o200k_base, cl100k_base; the `bpe-openai` crate, whose counts equal
//! tiktoken's, in linear time) for the models that use them; for other models (Anthropic, Gemini,
//! Mistral…, whose tokenizers are not public) estimated at one token per 4 bytes of the request
//! body. Both count the whole JSON body, keys and punctuation included, so they lean high, which
//! is the safe side for a reservation. Text that spells a special token (`<|endoftext|>`) counts
//! as the ordinary text it is, which is more tokens than the special one.
//!
//! A body over [`TOKENIZER_MAX_BYTES`] for an OpenAI model is not encoded: it is reserved at one
//! token per byte, a bound the count never exceeds (every token stands for at least one byte),
//! so a request cannot make the proxy spend more than the cap's worth of encoding.

use bpe_openai::Tokenizer;

/// How input tokens were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// With the model's tokenizer: the count.
    Tokenizer,
    /// The model's tokenizer is known but the body is too large to encode: one token per byte,
    /// never below the count.
    Bound,
    /// The model's tokenizer is not known: estimated from the body's size.
    Estimate,
}

/// Largest body encoded with a tokenizer (~1 ms of encoding for prose).
pub const TOKENIZER_MAX_BYTES: usize = 256 * 1024;

/// Input tokens of a request to `model` carrying `body`.
pub fn input_tokens(model: &str, body: &[u8]) -> (u64, Counted) {
    let Some(tokenizer) = encoding(model) else {
        return (estimated_tokens(body.len()), Counted::Estimate);
    };
    let text = (body.len() <= TOKENIZER_MAX_BYTES)
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    match text {
        Some(text) => (tokenizer.count(text) as u64, Counted::Tokenizer),
        None => (body.len() as u64, Counted::Bound),
    }
}

/// The estimate for a body of `bytes` bytes to a model whose tokenizer is not known.
pub fn estimated_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// Loads the encodings OpenAI's current models use, so the first call does not wait for them.
pub fn warm_up() {
    bpe_openai::o200k_base().count("warm");
    bpe_openai::cl100k_base().count("warm");
}

/// Models named exactly so use o200k_base (tiktoken's table; `gpt-oss` uses o200k_harmony,
/// which only adds special tokens).
const O200K_MODELS: &[&str] = &["o1", "o3", "o4-mini", "gpt-5", "gpt-4.1", "gpt-4o"];
const O200K_PREFIXES: &[&str] = &[
    "o1-",
    "o3-",
    "o4-mini-",
    "gpt-5",
    "gpt-4.5-",
    "gpt-4.1-",
    "chatgpt-4o-",
    "gpt-4o-",
    "gpt-oss-",
    "codex-mini",
];
const CL100K_MODELS: &[&str] = &[
    "gpt-4",
    "gpt-3.5-turbo",
    "gpt-3.5",
    "gpt-35-turbo",
    "davinci-002",
    "babbage-002",
    "text-embedding-ada-002",
    "text-embedding-3-small",
    "text-embedding-3-large",
];
const CL100K_PREFIXES: &[&str] = &["gpt-4-", "gpt-3.5-turbo-", "gpt-35-turbo-"];

/// The encoding of an OpenAI model (a fine-tune, `ft:base:…`, uses its base's), as tiktoken maps
/// them. The retired completion models of the p50k and r50k encodings are left to the estimate.
fn encoding(model: &str) -> Option<&'static Tokenizer> {
    let model = match model.strip_prefix("ft:") {
        Some(rest) => rest.split(':').next().unwrap_or(rest),
        None => model,
    };
    let is = |models: &[&str], prefixes: &[&str]| {
        models.contains(&model) || prefixes.iter().any(|p| model.starts_with(p))
    };
    if is(O200K_MODELS, O200K_PREFIXES) {
        Some(bpe_openai::o200k_base())
    } else if is(CL100K_MODELS, CL100K_PREFIXES) {
        Some(bpe_openai::cl100k_base())
    } else {
        None
    }
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
