//! The compact JSON text of a `serde_json::Value`: the bytes `serde_json::to_vec` writes, made
//! faster where a redacted body spends its time. serde_json tests every byte of a string against
//! its escape table; here a string's bytes are tested sixteen at a time and copied in runs, since
//! what needs an escape (a quote, a backslash, a control character) is rare in text.

use std::fmt::Write;

use serde_json::Value;

/// `value` as compact JSON text, as `serde_json::to_vec` writes it.
pub fn to_vec(value: &Value) -> Vec<u8> {
    to_string(value).into_bytes()
}

/// `value` as compact JSON text, as `serde_json::to_string` writes it.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// [`to_vec`] into a buffer that starts with room for `capacity` bytes: a body written again
/// after small changes is about as long as it came, and growing to that by doubling copies it
/// some ten times over.
pub fn to_vec_sized(value: &Value, capacity: usize) -> Vec<u8> {
    let mut out = String::with_capacity(capacity);
    write_value(&mut out, value);
    out.into_bytes()
}

/// Appends `value` to `out`. Nesting is as deep as the parsers that made the value allow (128 by
/// default for serde_json), so recursion is bounded by them.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // A `Number` displays as it serialises (itoa, or zmij for the finite floats it holds).
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (name, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, name);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// A high bit set in each byte of `w` that may need an escape: every byte below 0x20, `"` and
/// `\`, and at worst a byte above one of them (a borrow), which the byte test then passes over.
fn may_escape(w: u64) -> u64 {
    let equal = |c: u8| {
        let x = w ^ (LOW * u64::from(c));
        x.wrapping_sub(LOW) & !x
    };
    (w.wrapping_sub(LOW * 0x20) & !w | equal(b'"') | equal(b'\\')) & HIGH
}

/// Appends `s` as a JSON string: quoted, with serde_json's escapes (`\"`, `\\`, `\b`, `\f`,
/// `\n`, `\r`, `\t`, else `\u00XX` in lower-case hex, for the control characters only).
fn write_str(out: &mut String, s: &str) {
    out.reserve(s.len() + 2);
    out.push('"');
    let bytes = s.as_bytes();
    // The bytes before `run` are written; escapes split only at ASCII bytes, so every split is
    // at a character boundary.
    let mut run = 0;
    let chunks = bytes.chunks_exact(16);
    let tail = bytes.len() - chunks.remainder().len();
    for (n, chunk) in chunks.enumerate() {
        let (a, b) = chunk.split_at(8);
        let word = |half: &[u8]| {
            let mut word = [0u8; 8];
            word.copy_from_slice(half);
            u64::from_le_bytes(word)
        };
        if may_escape(word(a)) | may_escape(word(b)) != 0 {
            for at in n * 16..n * 16 + 16 {
                run = escape_at(out, s, run, at);
            }
        }
    }
    for at in tail..bytes.len() {
        run = escape_at(out, s, run, at);
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// By byte: the letter of its short escape (`\\n`), `u` for `\\u00XX`, 0 for none.
const ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = b'u';
        c += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0a] = b'n';
    table[0x0c] = b'f';
    table[0x0d] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

/// Writes the run `s[run..at]` and the escape of the byte at `at` when it needs one, returning
/// where the unwritten run now starts.
fn escape_at(out: &mut String, s: &str, run: usize, at: usize) -> usize {
    let byte = s.as_bytes()[at];
    let escape = ESCAPE[usize::from(byte)];
    if escape == 0 {
        return run;
    }
    out.push_str(&s[run..at]);
    out.push('\\');
    if escape == b'u' {
        let _ = write!(out, "u{byte:04x}");
    } else {
        out.push(char::from(escape));
    }
    at + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(value: &Value) {
        let ours = to_vec(value);
        let theirs = serde_json::to_vec(value).expect("serialises");
        assert_eq!(
            String::from_utf8_lossy(&ours),
            String::from_utf8_lossy(&theirs),
            "{value:?}"
        );
        assert_eq!(to_vec_sized(value, 3), ours, "{value:?}");
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let cases = [
            json!(null),
            json!(true),
            json!(false),
            json!(0),
            json!(-17),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.0),
            json!(1e300),
            json!(1e-7),
            json!(0.1),
            json!(123_456_789.123_456_79),
            json!(""),
            json!("plain text longer than one word of eight bytes"),
            json!("\"quoted\" and \\back\\ and \u{7f} and é, 日本, 😀"),
            json!("\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f} \u{20}"),
            json!("ends with an escape after eight bytes\n"),
            json!("1234567\""),
            json!("12345678\""),
            json!([]),
            json!({}),
            json!([1, "two", [3, {"four": null}], {}]),
            json!({"b": 1, "a": [true, false], "\n": {"é": "\t"}, "": ""}),
        ];
        for case in &cases {
            same(case);
        }
    }

    #[test]
    fn every_ascii_byte_at_every_position_of_three_chunks_and_a_tail_is_escaped_alike() {
        for len in 1..=40 {
            for at in 0..len {
                for c in 0u8..0x80 {
                    let mut text = vec![b'a'; len];
                    text[at] = c;
                    let text = String::from_utf8(text).expect("ASCII");
                    same(&Value::String(text));
                }
            }
        }
    }

    #[test]
    fn wide_characters_across_chunk_edges_next_to_escapes_are_copied_whole() {
        for wide in ["é", "€", "😀", "\u{2028}", "\u{7f}"] {
            for at in 0..20 {
                for escape in ["\"", "\\", "\n", "\u{1}"] {
                    let text = format!("{}{wide}{escape}{}", "x".repeat(at), "y".repeat(at % 7));
                    same(&Value::String(text));
                }
            }
        }
    }

    #[test]
    fn random_strings_of_escapes_letters_and_wide_characters_match() {
        let alphabet = [
            'a', ' ', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '€', '😀',
        ];
        let mut rng = crate::pii::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = rng.next() % 40;
            let text: String = (0..len)
                .map(|_| alphabet[rng.next() % alphabet.len()])
                .collect();
            same(&Value::String(text.clone()));
            same(&json!({ text.clone(): [text] }));
        }
    }
}
