//! Input tokens of a call before it leaves, for the worst case a budget reserves: counted with
//! OpenAI's own encodings (o200k_base, cl100k_base; the `bpe-openai` crate, whose counts equal
//! tiktoken's, in linear time) for the models that use them; for other models (Anthropic, Gemini,
//! Mistral…, whose tokenizers are not public) estimated at one token per 4 bytes of the request
//! body. Both count the whole JSON body, keys and punctuation included, so they lean high, which
//! is the safe side for a reservation. Text that spells a special token (`<|endoftext|>`) counts
//! as the ordinary text it is, which is more tokens than the special one.
//!
//! The ledger reserves at [`input_tokens_bound`] first and counts only when that does not fit, so
//! a budget with room costs no encoding at all.
//!
//! A body over [`TOKENIZER_MAX_BYTES`] for an OpenAI model is not encoded: it is reserved at one
//! token per byte, a bound the count never exceeds (every token stands for at least one byte),
//! so a request cannot make the proxy spend more than the cap's worth of encoding.

use std::collections::HashSet;
use std::sync::LazyLock;

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

/// Largest body encoded with a tokenizer: ~1.1 ms of encoding for prose, ~0.65 ms for one long
/// word (tiktoken took ~7 ms for a 16 KiB word, its cap then).
pub const TOKENIZER_MAX_BYTES: usize = 64 * 1024;

/// Input tokens of a request to `model` carrying `body`.
pub fn input_tokens(model: &str, body: &[u8]) -> (u64, Counted) {
    let Some(tokenizer) = encoding(model) else {
        return (estimated_tokens(body.len()), Counted::Estimate);
    };
    let text = (body.len() <= TOKENIZER_MAX_BYTES)
        .then(|| std::str::from_utf8(body).ok())
        .flatten();
    match text {
        Some(text) => (tokenizer.count(text), Counted::Tokenizer),
        None => (body.len() as u64, Counted::Bound),
    }
}

/// A bound on the input tokens of a request to `model` carrying `body`, without encoding it: one
/// token per byte for the OpenAI encodings (never below their count), the estimate for the rest.
/// A reservation made at the bound needs no tokenizer; [`input_tokens`] is for when the bound
/// does not fit a budget and the exact count might.
pub fn input_tokens_bound(model: &str, body: &[u8]) -> (u64, Counted) {
    match encoding(model) {
        Some(_) => (body.len() as u64, Counted::Bound),
        None => (estimated_tokens(body.len()), Counted::Estimate),
    }
}

/// The estimate for a body of `bytes` bytes to a model whose tokenizer is not known.
pub fn estimated_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4)
}

/// Loads the encodings OpenAI's current models use, so the first call does not wait for them.
pub fn warm_up() {
    LazyLock::force(&O200K);
    LazyLock::force(&CL100K);
}

/// An encoding, with the set of its tokens' bytes: most pieces the pre-tokenizer splits off are
/// one token, which tiktoken counts without running byte-pair merges, and so do we (the merges
/// of a piece that is a token end in that token).
struct Encoding {
    tokenizer: &'static Tokenizer,
    /// Byte strings that are one token, looked up for every piece: foldhash, not SipHash, which
    /// was about a fifth of counting. The set is fixed when built, so pieces an agent chooses
    /// cannot grow its probe chains.
    tokens: HashSet<&'static [u8], foldhash::fast::RandomState>,
}

impl Encoding {
    fn of(tokenizer: &'static Tokenizer) -> Encoding {
        let bpe = &tokenizer.bpe;
        let tokens = (0..bpe.num_tokens())
            .filter_map(|id| u32::try_from(id).ok())
            .map(|id| bpe.token_bytes(id))
            .collect();
        Encoding { tokenizer, tokens }
    }

    fn count(&self, text: &str) -> u64 {
        self.tokenizer
            .split(text)
            .map(|piece| match self.tokens.contains(piece.as_bytes()) {
                true => 1,
                false => self.tokenizer.bpe.count(piece.as_bytes()) as u64,
            })
            .sum()
    }
}

static O200K: LazyLock<Encoding> = LazyLock::new(|| Encoding::of(bpe_openai::o200k_base()));
static CL100K: LazyLock<Encoding> = LazyLock::new(|| Encoding::of(bpe_openai::cl100k_base()));

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
fn encoding(model: &str) -> Option<&'static Encoding> {
    let model = match model.strip_prefix("ft:") {
        Some(rest) => rest.split(':').next().unwrap_or(rest),
        None => model,
    };
    let is = |models: &[&str], prefixes: &[&str]| {
        models.contains(&model) || prefixes.iter().any(|p| model.starts_with(p))
    };
    if is(O200K_MODELS, O200K_PREFIXES) {
        Some(&O200K)
    } else if is(CL100K_MODELS, CL100K_PREFIXES) {
        Some(&CL100K)
    } else {
        None
    }
}

#[cfg(test)]
#[path = "tokens_tests.rs"]
mod tests;
