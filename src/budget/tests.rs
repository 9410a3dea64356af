//! Golden fixtures per provider, streamed and not (`tests/data/usage/`), fed to the meter in
//! chunks of every size; price lookups by name; exact decimal costs.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/usage/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn usage(input: u64, cached_input: u64, cache_write: u64, output: u64) -> Usage {
    Usage {
        input,
        cached_input,
        cache_write,
        output,
    }
}

#[test]
fn usage_is_read_from_every_providers_answers_in_any_chunking() {
    let cases = [
        (
            "openai_chat.json",
            Dialect::OpenAi,
            false,
            usage(176, 1024, 0, 50),
        ),
        (
            "openai_chat_stream.sse",
            Dialect::OpenAi,
            true,
            usage(20, 0, 0, 5),
        ),
        (
            "openai_responses.json",
            Dialect::OpenAi,
            false,
            usage(200, 100, 0, 40),
        ),
        (
            "openai_responses_stream.sse",
            Dialect::OpenAi,
            true,
            usage(200, 100, 0, 40),
        ),
        (
            "openai_embeddings.json",
            Dialect::OpenAi,
            false,
            usage(8, 0, 0, 0),
        ),
        (
            "anthropic.json",
            Dialect::Anthropic,
            false,
            usage(25, 2000, 100, 120),
        ),
        (
            "anthropic_stream.sse",
            Dialect::Anthropic,
            true,
            usage(25, 2000, 100, 120),
        ),
        (
            "gemini.json",
            Dialect::Gemini,
            false,
            usage(300, 200, 0, 200),
        ),
        (
            "gemini_stream.sse",
            Dialect::Gemini,
            true,
            usage(500, 0, 0, 200),
        ),
    ];
    for (file, dialect, events, expected) in cases {
        let bytes = fixture(file);
        for chunk in [1, 3, 7, 64, bytes.len()] {
            let mut meter = Meter::new(dialect, events);
            for piece in bytes.chunks(chunk) {
                meter.push(piece);
            }
            assert_eq!(
                meter.finish(),
                Some(expected),
                "{file} in chunks of {chunk}"
            );
            assert!(meter.ended(), "{file} reached its last event");
        }
    }
}

#[test]
fn an_anthropic_stream_cut_after_message_start_has_not_ended() {
    let bytes = fixture("anthropic_stream.sse");
    let text = String::from_utf8_lossy(&bytes);
    let start = text.find("event: message_start").expect("a message_start");
    let after = start + text[start..].find("\n\n").expect("its end") + 2;
    let mut meter = Meter::new(Dialect::Anthropic, true);
    meter.push(&bytes[..after]);
    let seen = meter.finish().expect("message_start reports usage");
    assert!(seen.output <= 5, "only the first tokens: {seen:?}");
    assert!(
        !meter.ended(),
        "the usage seen is not what the provider bills"
    );
}

#[test]
fn a_cut_stream_or_a_stream_without_usage_reports_none() {
    let bytes = fixture("openai_chat_stream.sse");
    let cut = &bytes[..bytes.len() / 2];
    let mut meter = Meter::new(Dialect::OpenAi, true);
    meter.push(cut);
    assert_eq!(meter.finish(), None);
    let mut meter = Meter::new(Dialect::OpenAi, false);
    meter.push(b"{\"error\": {\"message\": \"overloaded\"}}");
    assert_eq!(meter.finish(), None);
}

#[test]
fn prices_are_found_by_snapshot_alias_and_prefix_never_by_a_similar_name() {
    let table = PriceTable::from_yaml(DEFAULT_PRICES, "prices.yaml").expect("shipped table");
    let cases = [
        ("gpt-4o", Some("gpt-4o")),
        ("gpt-4o-2024-08-06", Some("gpt-4o")),
        ("gpt-4o-2024-05-13", Some("gpt-4o-2024-05-13")),
        ("openai/gpt-4o-2024-05-13", Some("gpt-4o-2024-05-13")),
        ("gpt-4o-mini-2024-07-18", Some("gpt-4o-mini")),
        ("openai/gpt-4.1", Some("gpt-4.1")),
        ("claude-sonnet-4-5-20250929", Some("claude-sonnet-4-5")),
        ("claude-sonnet-4-5@20250929", Some("claude-sonnet-4-5")),
        ("models/gemini-2.5-flash", Some("gemini-2.5-flash")),
        ("gemini-2.5-flash-preview-05-20", Some("gemini-2.5-flash")),
        ("gemini-2.5-flash-lite", Some("gemini-2.5-flash-lite")),
        ("mistral-large-latest", Some("mistral-large")),
        ("mistral-large-2411", Some("mistral-large")),
        ("chatgpt-4o-latest", Some("gpt-4o")),
        ("GPT-4O", Some("gpt-4o")),
        ("o3-pro", None),
        ("gpt-4o-audio-preview", None),
        ("llama-3.1-70b", None),
    ];
    for (model, expected) in cases {
        assert_eq!(
            table.price(model).map(|(name, _)| name),
            expected,
            "{model}"
        );
    }
}

#[test]
fn costs_are_exact_decimals() {
    let table = PriceTable::from_yaml(DEFAULT_PRICES, "prices.yaml").expect("shipped table");
    let cost = cost_of(
        &table,
        "gpt-4o-2024-08-06",
        Some(usage(176, 1024, 0, 50)),
        None,
    );
    assert_eq!(cost.status, CostStatus::Exact);
    assert_eq!(
        cost.usd,
        Some(Decimal::from_str("0.00222").expect("decimal"))
    );
    let cost = cost_of(
        &table,
        "claude-sonnet-4-5",
        Some(usage(25, 2000, 100, 120)),
        None,
    );
    // 25×3 + 2000×0.30 + 100×3.75 + 120×15 = 2850 per million.
    assert_eq!(
        cost.usd,
        Some(Decimal::from_str("0.00285").expect("decimal"))
    );
    assert_eq!(
        cost_of(&table, "mystery-model", Some(usage(1, 0, 0, 1)), None).status,
        CostStatus::Unpriced
    );
    let cut = cost_of(&table, "gpt-4o", None, Some(2_500_000_000));
    assert_eq!(cut.status, CostStatus::Estimated);
    assert_eq!(cut.usd, Some(Decimal::new(25, 1)));
}

#[test]
fn litellm_price_files_load_per_million() {
    let text = String::from_utf8(fixture("litellm_sample.json")).expect("utf8");
    let table = PriceTable::from_litellm(&text, "litellm.json").expect("loads");
    assert_eq!(
        table.len(),
        3,
        "sample_spec has prices of 0; dall-e-3 has none per token"
    );
    let (_, gpt) = table.price("gpt-4o-2024-11-20").expect("gpt-4o");
    assert_eq!(gpt.input, Decimal::from_str("2.5").expect("decimal"));
    assert_eq!(
        gpt.cached_input,
        Decimal::from_str("1.25").expect("decimal")
    );
    let (_, claude) = table.price("claude-sonnet-4-5").expect("claude");
    assert_eq!(
        claude.cache_write,
        Decimal::from_str("3.75").expect("decimal")
    );
}

#[test]
fn a_bad_price_table_names_the_problem() {
    let negative = "models:\n  m: { input: -1, output: 2 }\n";
    let err = PriceTable::from_yaml(negative, "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("p.yaml") && err.contains("`m`"), "{err}");
    let dangling = "models:\n  m: { input: 1, output: 2 }\naliases:\n  x: nothing\n";
    let err = PriceTable::from_yaml(dangling, "p.yaml")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`x`"), "{err}");
}
