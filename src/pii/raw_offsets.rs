//! Where the strings of a JSON text sit in that text, so a finding's offsets in a decoded string
//! (what the detectors read) can be given as offsets in the text itself (what an editor, a diff
//! or a redaction tool holds): escapes such as `\u0040` make the two differ.

use std::collections::HashMap;

use serde_json::Value;

/// A member name, string or number of a JSON text: its RFC 6901 pointer and its bytes in the text,
/// quotes excluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The pointer of the value, or of the member whose name this is.
    pub pointer: String,
    /// A member's name rather than a value.
    pub key: bool,
    /// First byte in the text (after the opening quote of a string).
    pub start: usize,
    /// Byte after the last (before the closing quote of a string).
    pub end: usize,
    /// A string (escapes inside), not a number.
    pub string: bool,
}

/// Every name, string and number of the JSON document `text` (one value, whitespace around it
/// allowed), in order; `None` when `text` is not such a document, or when its pointers would take
/// more than a few times the text's own size (a long name above a large array repeats in every
/// pointer below it).
pub fn tokens(text: &str) -> Option<Vec<Token>> {
    let mut walker = Walker {
        text,
        at: 0,
        out: Vec::new(),
        pointer_bytes: 0,
        pointer_budget: text.len().saturating_mul(4).saturating_add(1 << 16),
    };
    let mut pointer = String::new();
    walker.value(&mut pointer, 0)?;
    walker.space();
    (walker.at == text.len()).then_some(walker.out)
}

/// The tokens by pointer and kind (a name or a value), the last of each kept (as serde keeps
/// the last of members named twice).
pub fn index(tokens: &[Token]) -> HashMap<(&str, bool), &Token> {
    tokens
        .iter()
        .map(|t| ((t.pointer.as_str(), t.key), t))
        .collect()
}

/// The last token named `pointer` (as serde keeps the last of members named twice).
pub fn find<'a>(tokens: &'a [Token], pointer: &str, key: bool) -> Option<&'a Token> {
    tokens
        .iter()
        .rev()
        .find(|t| t.key == key && t.pointer == pointer)
}

/// `text[start..end]` of the decoded string of `token`, as offsets in `text`: a range that falls
/// inside one escape takes the whole escape. A number's findings are in its shortest spelling;
/// when the text spells it otherwise (`1e3`, `1.50`) the whole number is given.
pub fn to_raw(text: &str, token: &Token, start: usize, end: usize) -> (usize, usize) {
    let raw = &text[token.start..token.end];
    if !token.string {
        let shortest = serde_json::from_str::<Value>(raw).map(|n| n.to_string());
        let same = shortest.is_ok_and(|spelt| spelt.as_str() == raw);
        return match same && end <= raw.len() {
            true => (token.start + start, token.start + end),
            false => (token.start, token.end),
        };
    }
    (
        token.start + decoded_to_raw(raw, start, false),
        token.start + decoded_to_raw(raw, end, true),
    )
}

/// The offset in `raw` (a JSON string's bytes between its quotes) of byte `decoded` of the string
/// it stands for; inside an escape, its start (`up`: its end).
pub fn decoded_to_raw(raw: &str, decoded: usize, up: bool) -> usize {
    let b = raw.as_bytes();
    let (mut at, mut seen) = (0, 0);
    while at < b.len() && seen < decoded {
        let (raw_len, decoded_len) = unit(raw, at);
        if seen + decoded_len > decoded {
            return if up { at + raw_len } else { at };
        }
        at += raw_len;
        seen += decoded_len;
    }
    at
}

/// The bytes in `raw` and in the decoded string of the unit (a character or an escape) at `at`.
fn unit(raw: &str, at: usize) -> (usize, usize) {
    let b = raw.as_bytes();
    if b[at] != b'\\' {
        let len = raw[at..].chars().next().map_or(1, char::len_utf8);
        return (len, len);
    }
    if b.get(at + 1) != Some(&b'u') {
        return (2, 1);
    }
    let code = |i: usize| {
        raw.get(i..i + 4)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
    };
    match code(at + 2) {
        Some(0xD800..=0xDBFF)
            if raw.get(at + 6..at + 8) == Some("\\u")
                && code(at + 8).is_some_and(|low| (0xDC00..=0xDFFF).contains(&low)) =>
        {
            (12, 4)
        }
        Some(c) => (6, char::from_u32(c).map_or(3, char::len_utf8)),
        None => (2, 1),
    }
}

/// Deepest nesting walked: serde_json refuses deeper documents too.
const MAX_DEPTH: usize = 128;

struct Walker<'a> {
    text: &'a str,
    at: usize,
    out: Vec<Token>,
    /// Bytes of pointers held so far, and how many may be.
    pointer_bytes: usize,
    pointer_budget: usize,
}

impl Walker<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.space();
        (self.peek() == Some(c)).then(|| self.at += 1)
    }

    fn value(&mut self, pointer: &mut String, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.space();
        match self.peek()? {
            b'{' => self.object(pointer, depth),
            b'[' => self.array(pointer, depth),
            b'"' => {
                let (start, end) = self.string()?;
                self.push(pointer, false, start, end, true)
            }
            _ => {
                let start = self.at;
                while self.peek().is_some_and(|c| {
                    !matches!(c, b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
                }) {
                    self.at += 1;
                }
                let scalar: Value = serde_json::from_str(&self.text[start..self.at]).ok()?;
                match scalar.is_number() {
                    true => self.push(pointer, false, start, self.at, false),
                    false => Some(()),
                }
            }
        }
    }

    fn object(&mut self, pointer: &mut String, depth: usize) -> Option<()> {
        self.at += 1;
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            self.space();
            let (start, end) = self.string()?;
            let name: String = serde_json::from_str(&self.text[start - 1..end + 1]).ok()?;
            let outer = pointer.len();
            pointer.push('/');
            pointer.push_str(&name.replace('~', "~0").replace('/', "~1"));
            self.push(pointer, true, start, end, true)?;
            self.eat(b':')?;
            self.value(pointer, depth + 1)?;
            pointer.truncate(outer);
            if self.eat(b',').is_none() {
                return self.eat(b'}');
            }
        }
    }

    fn array(&mut self, pointer: &mut String, depth: usize) -> Option<()> {
        self.at += 1;
        if self.eat(b']').is_some() {
            return Some(());
        }
        let mut index = 0usize;
        loop {
            let outer = pointer.len();
            pointer.push('/');
            pointer.push_str(&index.to_string());
            self.value(pointer, depth + 1)?;
            pointer.truncate(outer);
            index += 1;
            if self.eat(b',').is_none() {
                return self.eat(b']');
            }
        }
    }

    /// The bytes between the quotes of the string at the cursor.
    fn string(&mut self) -> Option<(usize, usize)> {
        let b = self.text.as_bytes();
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let mut i = start;
        while i < b.len() && b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        (i < b.len()).then(|| {
            self.at = i + 1;
            (start, i)
        })
    }

    fn push(
        &mut self,
        pointer: &str,
        key: bool,
        start: usize,
        end: usize,
        string: bool,
    ) -> Option<()> {
        self.pointer_bytes = self.pointer_bytes.saturating_add(pointer.len());
        if self.pointer_bytes > self.pointer_budget {
            return None;
        }
        self.out.push(Token {
            pointer: pointer.to_string(),
            key,
            start,
            end,
            string,
        });
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoded_offsets_become_offsets_in_the_text() {
        // (raw string between quotes, decoded range, raw range)
        type Range = (usize, usize);
        let cases: &[(&str, Range, Range)] = &[
            ("plain", (1, 3), (1, 3)),
            ("a\\u0040b", (1, 2), (1, 7)),
            ("a\\u0040b", (2, 3), (7, 8)),
            ("\\n x", (2, 3), (3, 4)),
            ("\\ud83d\\ude00 hi", (5, 7), (13, 15)),
            ("\\ud83d\\ude00 hi", (1, 2), (0, 12)),
            ("é@x", (2, 3), (2, 3)),
            ("\\u00e9@x", (2, 3), (6, 7)),
        ];
        for &(raw, (start, end), expected) in cases {
            let got = (
                decoded_to_raw(raw, start, false),
                decoded_to_raw(raw, end, true),
            );
            assert_eq!(got, expected, "{raw} {start}..{end}");
        }
    }

    #[test]
    fn every_name_string_and_number_is_found_by_its_pointer() {
        let text = r#" {"a/b": ["x", 12, {"~k": "v\"w"}], "n": null, "e": 1e3 } "#;
        let found = tokens(text).unwrap();
        let named: Vec<(&str, bool, &str)> = found
            .iter()
            .map(|t| (t.pointer.as_str(), t.key, &text[t.start..t.end]))
            .collect();
        assert_eq!(
            named,
            [
                ("/a~1b", true, "a/b"),
                ("/a~1b/0", false, "x"),
                ("/a~1b/1", false, "12"),
                ("/a~1b/2/~0k", true, "~k"),
                ("/a~1b/2/~0k", false, "v\\\"w"),
                ("/n", true, "n"),
                ("/e", true, "e"),
                ("/e", false, "1e3"),
            ]
        );
        let e = find(&found, "/e", false).unwrap();
        assert_eq!(to_raw(text, e, 0, 1), (e.start, e.end), "spelt otherwise");
        let twelve = find(&found, "/a~1b/1", false).unwrap();
        assert_eq!(&text[to_raw(text, twelve, 1, 2).0..][..1], "2");
    }

    #[test]
    fn what_is_not_one_json_document_has_no_tokens() {
        for text in [
            "",
            "{",
            "[1,]x",
            "{\"a\" 1}",
            "\"open",
            "{} {}",
            "{\"a\":tru}",
        ] {
            assert_eq!(tokens(text), None, "{text}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(tokens(&deep), None);
    }

    #[test]
    fn pointers_past_a_few_times_the_text_give_no_tokens() {
        let name = "k".repeat(1000);
        let small = format!(r#"{{"{name}": [{}0]}}"#, "0,".repeat(50));
        assert!(tokens(&small).is_some());
        let large = format!(r#"{{"{name}": [{}0]}}"#, "0,".repeat(5000));
        assert_eq!(tokens(&large), None, "5,000 pointers of 1 KB each");
    }

    #[test]
    fn a_member_named_twice_is_found_at_its_last_spelling() {
        let text = r#"{"a": "first", "a": "second"}"#;
        let found = tokens(text).unwrap();
        let last = find(&found, "/a", false).unwrap();
        assert_eq!(&text[last.start..last.end], "second");
    }
}
