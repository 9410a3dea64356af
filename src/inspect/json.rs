//! JSON that servers read differently: an object that repeats a key. `serde_json` keeps the last
//! value, and so do most servers, but some keep the first (lookups that stop at the first match,
//! Werkzeug-style multi-dicts) and some refuse: `{"sql": "DELETE FROM users", "sql": "SELECT 1"}`
//! would be judged as the select and run as the delete. Such a body cannot be judged.

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// Whether `body` is JSON in which some object, at any depth, repeats a key (escapes decoded:
/// `"sql"` and `"\u0073ql"` are the same key).
pub fn repeats_a_key(body: &[u8]) -> bool {
    serde_json::from_slice::<Unique>(body).is_err_and(|e| e.is_data())
}

/// A JSON value whose objects never repeat a key.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Unique, D::Error> {
        deserializer.deserialize_any(UniqueVisitor)
    }
}

struct UniqueVisitor;

impl<'de> Visitor<'de> for UniqueVisitor {
    type Value = Unique;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value whose objects never repeat a key")
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
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(de::Error::custom("an object repeats a key"));
            }
            map.next_value::<Unique>()?;
        }
        Ok(Unique)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_table() {
        let repeated = [
            r#"{"sql": "DELETE FROM users", "sql": "SELECT 1"}"#,
            r#"{"sql": "DELETE FROM users", "\u0073ql": "SELECT 1"}"#,
            r#"{"params": {"arguments": {"query": "a", "query": "b"}}}"#,
            r#"[{"a": 1}, {"b": 2, "b": 3}]"#,
        ];
        for body in repeated {
            assert!(repeats_a_key(body.as_bytes()), "{body}");
        }
        let unique = [
            r#"{"sql": "SELECT 1", "query": "SELECT 1"}"#,
            r#"{"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 2}]}"#,
            r#"{"n": 1.5, "t": true, "z": null, "s": "\ud83d\ude00"}"#,
            "not json at all",
            "{\"truncated\": ",
        ];
        for body in unique {
            assert!(!repeats_a_key(body.as_bytes()), "{body}");
        }
    }
}
