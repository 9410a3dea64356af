//! Any answer body, read by the meter as one JSON answer of any dialect: it keeps only the
//! members it looks up (`budget::answer_doc`), and must read exactly what a whole
//! `serde_json::Value` of the same bytes gives: the same usage (never lower, never missing),
//! model and finish reasons, and refuse exactly what serde_json refuses (then the call is
//! settled at its reservation).
//!
//! Input: byte 0 chooses the dialect, the rest is the answer.
#![no_main]

use gatehouse::budget::{AnswerFacts, Dialect, Meter, Usage, read_usage};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let dialect = match pick % 3 {
        0 => Dialect::OpenAi,
        1 => Dialect::Anthropic,
        _ => Dialect::Gemini,
    };
    let mut meter = Meter::new(dialect, false);
    for piece in body.chunks(usize::from(pick / 3 % 64) + 1) {
        meter.push(piece);
    }
    let usage = meter.finish();
    let (mut expected, mut facts) = (Usage::default(), AnswerFacts::default());
    let whole = serde_json::from_slice::<Value>(body).ok();
    let seen = whole.as_ref().is_some_and(|doc| {
        facts.read(dialect, doc);
        read_usage(dialect, doc, &mut expected)
    });
    assert_eq!(usage, seen.then_some(expected));
    assert_eq!(meter.answer(), &facts);
    assert_eq!(meter.ended(), whole.is_some());
});
