//! The fields of a trail line the index keeps in columns, read without building the line's whole
//! tree: strings borrowed from the text where they hold no escape, everything else skipped. A
//! field of another type than the proxy writes reads as absent, as it did when lines were read
//! into a `Value`, so one odd line cannot stop a catch-up (and with it the proxy's start).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A line's indexed fields.
#[derive(serde::Deserialize)]
pub(super) struct Row<'a> {
    /// Whether the line has a `record` member (outcomes, ends and runs, which are not indexed),
    /// whatever its value.
    #[serde(default, deserialize_with = "present")]
    pub record: bool,
    #[serde(borrow, default, deserialize_with = "text")]
    pub time: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub decision: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub request: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub agent: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub team: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub env: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub trigger: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub host: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub effect: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "text")]
    pub country: Option<Cow<'a, str>>,
    /// The deciding rules: the strings of the list (none when it is not a list).
    #[serde(borrow, default, deserialize_with = "texts")]
    pub rules: Vec<Cow<'a, str>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    d.deserialize_any(Text)
}

fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Cow<'de, str>>, D::Error> {
    d.deserialize_any(Texts)
}

/// A string, or `None` for any other value (which is read through and dropped).
struct Text;

/// One entry of a list read by [`Texts`].
struct Entry<'de>(Option<Cow<'de, str>>);

impl<'de> Deserialize<'de> for Entry<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entry<'de>, D::Error> {
        d.deserialize_any(Text).map(Entry)
    }
}

/// Skips what is not a string.
macro_rules! none_for {
    ($($name:ident($ty:ty)),*) => {$(
        fn $name<E>(self, _: $ty) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
    )*};
}

impl<'de> Visitor<'de> for Text {
    type Value = Option<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Borrowed(text)))
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(Cow::Owned(text.to_string())))
    }

    none_for!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64)
    );

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// The strings of a list, or none for any other value.
struct Texts;

impl<'de> Visitor<'de> for Texts {
    type Value = Vec<Cow<'de, str>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Entry(entry)) = seq.next_element::<Entry<'de>>()? {
            out.extend(entry);
        }
        Ok(out)
    }

    none_for!(
        visit_bool(bool),
        visit_i64(i64),
        visit_u64(u64),
        visit_f64(f64),
        visit_str(&str)
    );

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_other_types_read_as_absent_table() {
        let table: [(&str, bool, Option<&str>, &[&str]); 6] = [
            (
                r#"{"time":"t","rules":["a","b"]}"#,
                false,
                Some("t"),
                &["a", "b"],
            ),
            (r#"{"time":5,"rules":"a"}"#, false, None, &[]),
            (
                r#"{"time":{"x":[1]},"rules":[1,"a",null,{"y":2}]}"#,
                false,
                None,
                &["a"],
            ),
            (r#"{"record":"outcome","time":"t"}"#, true, Some("t"), &[]),
            (r#"{"record":null}"#, true, None, &[]),
            (
                r#"{"time":"a\"b\u0041","other":[[{}]]}"#,
                false,
                Some("a\"bA"),
                &[],
            ),
        ];
        for (line, record, time, rules) in table {
            let row: Row<'_> = serde_json::from_str(line).unwrap();
            assert_eq!(row.record, record, "{line}");
            assert_eq!(row.time.as_deref(), time, "{line}");
            assert_eq!(row.rules, rules.to_vec(), "{line}");
        }
    }
}
