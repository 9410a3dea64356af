//! Whether a JSON text names a member twice in one object, and a JSON document read into a
//! `Value` that fails on such a member in the same pass. Parsers disagree on which of two values
//! under one name counts, so the one a reader drops could be the one the upstream reads: such a
//! body cannot be judged.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Whether `text` is JSON in which one object names a member twice (`{"a": 1, "a": 2}`, or
/// `"\u0061"` for the second): parsers disagree on which value counts, so the one dropped would
/// go unjudged. `false` for text that is not JSON.
pub fn names_a_member_twice(text: &[u8]) -> bool {
    let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<Unique>();
    stream.any(|doc| doc.is_err_and(|e| e.to_string().starts_with(TWICE)))
}

const TWICE: &str = "a member named twice";

/// The JSON document `text` (one value, whitespace around it allowed) as `serde_json` reads it,
/// or `None` when it is not one or when one of its objects names a member twice: one pass where
/// reading it and then asking [`names_a_member_twice`] took two.
///
/// The bytes are checked as UTF-8 once, whole, and read as a `str`: read from a slice, every
/// string is checked on its own, which cost several times more. A document that is not UTF-8
/// is none either way (outside strings only ASCII is JSON).
pub fn parse_unique(text: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(text).ok()?;
    serde_json::from_str::<UniqueValue>(text).ok().map(|v| v.0)
}

/// The JSON documents of `text` one after another (JSON Lines, or one), as `serde_json` reads
/// them, or `None` when one of them is no document or names a member twice: one pass, as
/// [`parse_unique`].
pub(super) fn parse_unique_stream(text: &str) -> Option<Vec<Value>> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<UniqueValue>()
        .map(|doc| doc.map(|UniqueValue(value)| value))
        .collect::<Result<_, _>>()
        .ok()
}

/// A document built as `serde_json::Value` builds itself, failing on a repeated member name.
struct UniqueValue(Value);

impl<'de> Deserialize<'de> for UniqueValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<UniqueValue, D::Error> {
        d.deserialize_any(UniqueValueVisitor)
    }
}

struct UniqueValueVisitor;

impl<'de> Visitor<'de> for UniqueValueVisitor {
    type Value = UniqueValue;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, b: bool) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Bool(b)))
    }

    fn visit_i64<E>(self, n: i64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Number(n.into())))
    }

    fn visit_u64<E>(self, n: u64) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Number(n.into())))
    }

    fn visit_f64<E>(self, n: f64) -> Result<UniqueValue, E> {
        // As `Value` does: a number JSON cannot hold reads as null.
        Ok(UniqueValue(
            Number::from_f64(n).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, s: &str) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(s.to_string())))
    }

    fn visit_string<E>(self, s: String) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::String(s)))
    }

    fn visit_unit<E>(self) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Null))
    }

    fn visit_none<E>(self) -> Result<UniqueValue, E> {
        Ok(UniqueValue(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<UniqueValue, D::Error> {
        UniqueValue::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<UniqueValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(UniqueValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(UniqueValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UniqueValue, A::Error> {
        let mut fields = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            let UniqueValue(item) = map.next_value()?;
            if fields.insert(name, item).is_some() {
                return Err(serde::de::Error::custom(TWICE));
            }
        }
        Ok(UniqueValue(Value::Object(fields)))
    }
}

/// Walks a JSON document without keeping it, failing on a member named twice in one object.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        d.deserialize_any(Unique)
    }
}

impl<'de> Visitor<'de> for Unique {
    type Value = Unique;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_unit<E>(self) -> Result<Unique, E> {
        Ok(Unique)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
        while seq.next_element::<Unique>()?.is_some() {}
        Ok(Unique)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
        // Objects are mostly small: their names are compared in a list, borrowed from the text
        // where they hold no escape; past `FEW` names a set takes over.
        const FEW: usize = 16;
        let mut few: Vec<Cow<'de, str>> = Vec::new();
        let mut many: Option<HashSet<Cow<'de, str>>> = None;
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let twice = match &mut many {
                Some(names) => !names.insert(name),
                None if few.contains(&name) => true,
                None => {
                    few.push(name);
                    if few.len() > FEW {
                        many = Some(few.drain(..).collect());
                    }
                    false
                }
            };
            if twice {
                return Err(serde::de::Error::custom(TWICE));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

/// A member's name, borrowed from the text unless it holds an escape.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Name<'de>, D::Error> {
        d.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(name)))
    }

    fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(name.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// What inspection did before it read a body in one pass.
    fn two_passes(text: &[u8]) -> Option<Value> {
        if super::names_a_member_twice(text) {
            return None;
        }
        serde_json::from_slice(text).ok()
    }

    /// What the JSON-in-text reading did before it read documents in one pass.
    fn stream_two_passes(text: &str) -> Option<Vec<Value>> {
        if super::names_a_member_twice(text.as_bytes()) {
            return None;
        }
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .ok()
    }

    #[test]
    fn one_pass_reads_what_two_did() {
        let table: &[&str] = &[
            r#"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi\n\u00e9"}]}"#,
            r#"{"a": 1, "b": {"a": 2}, "c": [{"a": 3}, {"a": 4}]}"#,
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": 1, "\u0061": 2}"#,
            r#"{"x": {"b": true, "b": false}}"#,
            r#"[{"k": 1}, {"k": 1, "k": 1}]"#,
            r#"{"n": [0, -0, 1.5, -2e-3, 18446744073709551615, -9223372036854775808, 1e308]}"#,
            r#"{"big": 1e400}"#,
            r#"{"s": null, "t": "", "u": {}, "v": []}"#,
            r#"  {"a": 1}  "#,
            r#"{"a": 1} {"a": 2}"#,
            r#"{"a": 1} {"b": 2, "b": 3}"#,
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            r#""just a string""#,
            "42",
            "",
            "{",
        ];
        for text in table {
            assert_eq!(
                super::parse_unique(text.as_bytes()),
                two_passes(text.as_bytes()),
                "{text}"
            );
            assert_eq!(
                super::parse_unique_stream(text),
                stream_two_passes(text),
                "{text}"
            );
        }
        assert!(super::parse_unique(br#"{"a": 1, "\u0061": 2}"#).is_none());
    }

    /// Bytes that are not UTF-8 (in a value, in a name, cut short, a surrogate encoded as
    /// UTF-8, next to an escape, after the end) and a BOM: refused as a read from a slice
    /// refuses them; non-ASCII UTF-8 in values and names is read as it reads it.
    #[test]
    fn bytes_that_are_not_utf8_are_refused_as_a_slice_read_refuses_them() {
        let table: &[&[u8]] = &[
            b"{\"a\": \"x\xff\"}",
            b"{\"a\xc3\": 1}",
            b"{\"a\": \"\xe2\x82\"}",
            b"{\"a\": \"\xed\xa0\x80\"}",
            b"{\"a\": \"\\u00e9\xa9\"}",
            b"\xef\xbb\xbf{\"a\": 1}",
            b"{\"a\": 1}\xff",
            b"{\"a\": 1} \xc2\xa0",
            b"{\"a\": \"\xc3\xa9\", \"\xe2\x82\xac\": \"\\ud83d\\ude00\"} \n",
        ];
        for text in table {
            let shown = String::from_utf8_lossy(text);
            assert_eq!(super::parse_unique(text), two_passes(text), "{shown}");
        }
        assert!(super::parse_unique(table[table.len() - 1]).is_some());
    }

    /// Random documents of nested objects and arrays whose names repeat now and then, cut short
    /// now and then: the one pass agrees with the two on every one.
    #[test]
    fn one_pass_agrees_with_two_on_random_documents() {
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        fn value(out: &mut String, depth: u32, next: &mut dyn FnMut(u64) -> u64) {
            match if depth > 3 { 3 + next(4) } else { next(7) } {
                0 | 1 => {
                    out.push('{');
                    for i in 0..next(5) {
                        if i > 0 {
                            out.push(',');
                        }
                        let names = ["a", "b", "\\u0061", "c\\n", "é"];
                        out.push_str(&format!("\"{}\":", names[next(5) as usize]));
                        value(out, depth + 1, next);
                    }
                    out.push('}');
                }
                2 => {
                    out.push('[');
                    for i in 0..next(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        value(out, depth + 1, next);
                    }
                    out.push(']');
                }
                3 => out.push_str(
                    ["1", "-0", "2.5e3", "1e999", "18446744073709551616"][next(5) as usize],
                ),
                4 => out.push_str(["true", "null", "false"][next(3) as usize]),
                _ => out.push_str(["\"x\"", "\"\\ud83d\\ude00\"", "\"\\\"\""][next(3) as usize]),
            }
        }
        let mut twice = 0;
        for _ in 0..20_000 {
            let mut text = String::new();
            value(&mut text, 0, &mut next);
            if next(8) == 0 {
                let cut = next(text.len() as u64 + 1) as usize;
                text.truncate(
                    (0..=cut)
                        .rev()
                        .find(|&i| text.is_char_boundary(i))
                        .unwrap_or(0),
                );
            }
            let want = two_passes(text.as_bytes());
            twice += usize::from(want.is_none() && serde_json::from_str::<Value>(&text).is_ok());
            assert_eq!(super::parse_unique(text.as_bytes()), want, "{text}");
            // Two documents in a row, as JSON Lines: read as the two passes read them.
            let lines = format!("{text}\n{text}");
            assert_eq!(
                super::parse_unique_stream(&lines),
                stream_two_passes(&lines),
                "{lines}"
            );
        }
        assert!(twice > 500, "{twice} documents naming a member twice");
    }

    /// Past sixteen names a set takes over: a repeat is told before, at and after the switch.
    #[test]
    fn a_repeat_among_many_names_is_told() {
        let names = |n: usize| (0..n).map(|i| format!("\"m{i}\": {i}")).collect::<Vec<_>>();
        for (n, repeat) in [(40, "m3"), (17, "m16"), (40, "m39"), (16, "m0"), (17, "m0")] {
            let mut members = names(n);
            let text = format!("{{{}}}", members.join(","));
            assert!(!super::names_a_member_twice(text.as_bytes()));
            members.push(format!("\"{repeat}\": 0"));
            let text = format!("{{{}}}", members.join(","));
            assert!(super::names_a_member_twice(text.as_bytes()), "{n} {repeat}");
        }
    }
}
