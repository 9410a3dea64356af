//! Counts against fixed expectations produced with tiktoken (tiktoken-rs 0.12.1,
//! `encode_ordinary`), the size caps, and the model-to-encoding table.

use super::*;

/// Texts of every shape the pre-tokenizer splits differently, with their o200k_base and
/// cl100k_base counts as tiktoken gives them.
fn table() -> Vec<(&'static str, String, usize, usize)> {
    let prose = serde_json::json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Summarise the open tickets for the refund team. ".repeat(80)}],
    })
    .to_string();
    vec![
        ("empty", String::new(), 0, 0),
        ("hello", "hello world".into(), 2, 2),
        (
            "json",
            r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}"#.into(),
            22,
            21,
        ),
        ("prose", prose, 900, 899),
        ("long word", "x".repeat(4000), 500, 500),
        ("digits", "1234567890".repeat(50), 167, 167),
        (
            "whitespace runs",
            "a    b\n\n\n  c\t\t d   \n \r\n\r\n   end   ".into(),
            13,
            13,
        ),
        ("leading", "   leading and trailing   ".into(), 5, 5),
        (
            "unicode",
            "Grüße aus Köln — naïve café ☕ 日本語のテキスト 🤖👩‍👩‍👧 Привет мир".into(),
            30,
            41,
        ),
        (
            "decomposed",
            "e\u{301}cole de\u{301}ja\u{300} vu".into(),
            8,
            8,
        ),
        (
            "contractions",
            "I'm can't we'll they've HE'S You'D".into(),
            8,
            12,
        ),
        (
            "code",
            "fn main() {\r\n    println!(\"{}\", 1+2); // sum\r\n}\r\n".into(),
            16,
            16,
        ),
        // Counted as text: more than the 8 (o200k) and 4 (cl100k) of the special tokens.
        ("special", "<|endoftext|> hi <|fim_prefix|>".into(), 14, 14),
        ("emoji", "🤖".repeat(500), 1000, 1500),
        ("mixed word", "ab日本".repeat(300), 600, 900),
        (
            "numbers",
            "3.14159265358979 1,000,000 2024-01-01T00:00:00Z".into(),
            27,
            27,
        ),
        (
            "camel case",
            "HTTPServerErrorXMLHttpRequest getHTTPResponseCode".into(),
            10,
            8,
        ),
    ]
}

#[test]
fn counts_equal_tiktokens() {
    for (name, text, o200k, cl100k) in table() {
        assert_eq!(
            input_tokens("gpt-4o", text.as_bytes()),
            (o200k as u64, Counted::Tokenizer),
            "o200k: {name}"
        );
        assert_eq!(
            input_tokens("gpt-4", text.as_bytes()),
            (cl100k as u64, Counted::Tokenizer),
            "cl100k: {name}"
        );
        // The bound used past the cap is never below the count.
        assert!(o200k.max(cl100k) <= text.len(), "{name}");
    }
    // The size estimate is not a bound: emoji and digits take more than one token per 4 bytes.
    let emoji = "🤖".repeat(500);
    assert!(input_tokens("gpt-4o", emoji.as_bytes()).0 > estimated_tokens(emoji.len()));
}

#[test]
fn models_map_to_their_encodings_as_in_tiktoken() {
    let o200k = Some(&*O200K as *const Encoding);
    let cl100k = Some(&*CL100K as *const Encoding);
    let table = [
        ("gpt-4o", o200k),
        ("gpt-4o-mini-2024-07-18", o200k),
        ("chatgpt-4o-latest", o200k),
        ("gpt-4.1", o200k),
        ("gpt-4.1-mini", o200k),
        ("gpt-4.5-preview", o200k),
        ("gpt-5", o200k),
        ("gpt-5.2-codex", o200k),
        ("o1", o200k),
        ("o3-mini", o200k),
        ("o4-mini", o200k),
        ("gpt-oss-120b", o200k),
        ("codex-mini-latest", o200k),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", o200k),
        ("gpt-4", cl100k),
        ("gpt-4-turbo", cl100k),
        ("gpt-3.5-turbo-0125", cl100k),
        ("gpt-35-turbo-16k", cl100k),
        ("text-embedding-3-small", cl100k),
        ("davinci-002", cl100k),
        ("ft:gpt-3.5-turbo:acme::x", cl100k),
        ("text-davinci-003", None),
        ("claude-sonnet-4-5", None),
        ("gemini-2.5-pro", None),
        ("gpt-6", None),
        ("o2", None),
    ];
    for (model, want) in table {
        assert_eq!(
            encoding(model).map(|e| e as *const Encoding),
            want,
            "{model}"
        );
    }
}

#[test]
fn large_or_undecodable_bodies_are_bounded_and_unknown_models_estimated() {
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"hello world"}]}"#;
    assert_eq!(input_tokens("gpt-4o", body), (22, Counted::Tokenizer));
    assert_eq!(
        input_tokens("claude-sonnet-4-5", body),
        (estimated_tokens(body.len()), Counted::Estimate)
    );
    assert_eq!(input_tokens("gpt-4o", b"\xff\xfe"), (2, Counted::Bound));
    let at_cap = vec![b'x'; TOKENIZER_MAX_BYTES];
    assert_eq!(input_tokens("gpt-4o", &at_cap).1, Counted::Tokenizer);
    let large = vec![b'x'; TOKENIZER_MAX_BYTES + 1];
    assert_eq!(
        input_tokens("gpt-4o", &large),
        (large.len() as u64, Counted::Bound),
        "large bodies are never fed to the tokenizer"
    );
    assert_eq!(
        input_tokens("gemini-2.5-pro", &large),
        (estimated_tokens(large.len()), Counted::Estimate)
    );
}
