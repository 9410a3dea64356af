//! A record as the JSON bytes of its trail line, bounded while it is written: every string cut
//! to [`MAX_STRING`] bytes (a `reason` to [`MAX_REASON`]) and every list to [`MAX_ITEMS`]
//! entries, marked as [`bound`](super::bound) marks them. Writing the record straight from its
//! struct, instead of building a `serde_json::Value` to bound and print, was about a twentieth of
//! the proxy's CPU under load: a tree of maps per record, built, walked, printed and dropped.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter};

use super::bound::{MAX_ITEMS, MAX_REASON, MAX_STRING};

/// `record` as compact JSON, every string and list bounded.
pub fn encode(record: &impl Serialize) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Bounding::default());
    record.serialize(&mut serializer)?;
    Ok(out)
}

/// The string being written: how much of it is out and how much it holds.
struct Text {
    max: usize,
    written: usize,
    total: usize,
}

/// A list being written: how many entries it has had.
struct List {
    entries: usize,
}

/// Compact JSON that bounds strings and lists as it writes them.
#[derive(Default)]
struct Bounding {
    /// The limit of the value being written: that of the member it is in (`reason` or another),
    /// kept through lists; [`MAX_STRING`] at the top.
    limits: Vec<usize>,
    /// Open lists, innermost last.
    lists: Vec<List>,
    /// While entries past [`MAX_ITEMS`] of the list at this depth are being written: nothing is.
    dropping: Option<usize>,
    /// The string being written, when it is a value (keys are written whole).
    text: Option<Text>,
    /// Set between a key's start and end: the key's text, to know a `reason`.
    key: Option<String>,
    /// The last key written.
    last_key: String,
    /// Objects open: 1 inside the record's own.
    depth: usize,
}

/// The record's members the seal writes: a record naming one itself would hold it twice, and
/// readers disagree on which of the two counts.
const SEALED: [&str; 4] = ["chain", "prev", "hash", "mac"];

impl Bounding {
    fn limit(&self) -> usize {
        self.limits.last().copied().unwrap_or(MAX_STRING)
    }

    fn silent(&self) -> bool {
        self.dropping.is_some()
    }
}

/// Methods that write a scalar: nothing while entries are dropped, else as compact JSON.
macro_rules! scalars {
    ($($name:ident($ty:ty)),* $(,)?) => {$(
        fn $name<W: ?Sized + Write>(&mut self, writer: &mut W, value: $ty) -> io::Result<()> {
            if self.silent() {
                return Ok(());
            }
            CompactFormatter.$name(writer, value)
        }
    )*};
}

impl Formatter for Bounding {
    scalars!(
        write_bool(bool),
        write_i8(i8),
        write_i16(i16),
        write_i32(i32),
        write_i64(i64),
        write_i128(i128),
        write_u8(u8),
        write_u16(u16),
        write_u32(u32),
        write_u64(u64),
        write_u128(u128),
        write_f32(f32),
        write_f64(f64),
        write_number_str(&str),
        write_raw_fragment(&str),
    );

    fn write_null<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.silent() {
            return Ok(());
        }
        writer.write_all(b"null")
    }

    fn begin_string<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.silent() {
            return Ok(());
        }
        if self.key.is_none() {
            self.text = Some(Text {
                max: self.limit(),
                written: 0,
                total: 0,
            });
        }
        writer.write_all(b"\"")
    }

    fn end_string<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        if self.silent() {
            return Ok(());
        }
        if let Some(text) = self.text.take()
            && text.total > text.max
        {
            write!(writer, "…[cut, {} bytes]", text.total)?;
        }
        writer.write_all(b"\"")
    }

    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if self.silent() {
            return Ok(());
        }
        if let Some(key) = &mut self.key {
            key.push_str(fragment);
            return writer.write_all(fragment.as_bytes());
        }
        let Some(text) = &mut self.text else {
            return writer.write_all(fragment.as_bytes());
        };
        text.total += fragment.len();
        let room = text.max.saturating_sub(text.written);
        let mut end = room.min(fragment.len());
        while !fragment.is_char_boundary(end) {
            end -= 1;
        }
        // Once a character did not fit, nothing after it is written either.
        text.written = if end < fragment.len() {
            text.max
        } else {
            text.written + end
        };
        writer.write_all(&fragment.as_bytes()[..end])
    }

    fn write_char_escape<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        if self.silent() {
            return Ok(());
        }
        if let Some(key) = &mut self.key {
            key.push('\u{fffd}');
        } else if let Some(text) = &mut self.text {
            // Every escaped character (a quote, a backslash, a control character) is one byte.
            text.total += 1;
            if text.written >= text.max {
                return Ok(());
            }
            text.written += 1;
        }
        CompactFormatter.write_char_escape(writer, escape)
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.lists.push(List { entries: 0 });
        if self.silent() {
            return Ok(());
        }
        writer.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        let depth = self.lists.len();
        let list = self.lists.pop();
        if self.dropping == Some(depth) {
            self.dropping = None;
            let more = list.map_or(0, |l| l.entries.saturating_sub(MAX_ITEMS));
            write!(writer, ",\"…[{more} more]\"")?;
        }
        if self.silent() {
            return Ok(());
        }
        writer.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        let depth = self.lists.len();
        if let Some(list) = self.lists.last_mut() {
            list.entries += 1;
            if list.entries > MAX_ITEMS && self.dropping.is_none() {
                self.dropping = Some(depth);
            }
        }
        if self.silent() {
            return Ok(());
        }
        CompactFormatter.begin_array_value(writer, first)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth += 1;
        if self.silent() {
            return Ok(());
        }
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth = self.depth.saturating_sub(1);
        if self.silent() {
            return Ok(());
        }
        writer.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if self.silent() {
            return Ok(());
        }
        self.key = Some(std::mem::take(&mut self.last_key));
        if let Some(key) = &mut self.key {
            key.clear();
        }
        CompactFormatter.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        if let Some(key) = self.key.take() {
            self.last_key = key;
        }
        if self.depth == 1 && SEALED.contains(&self.last_key.as_str()) {
            return Err(io::Error::other(format!(
                "a record may not name `{}`: the seal writes it",
                self.last_key
            )));
        }
        Ok(())
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        let limit = if self.last_key == "reason" {
            MAX_REASON
        } else {
            MAX_STRING
        };
        self.limits.push(limit);
        if self.silent() {
            return Ok(());
        }
        CompactFormatter.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.limits.pop();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// What the Value-based bound makes of `value`, printed: the reference this writer matches.
    fn reference(value: &Value) -> Value {
        let mut bounded = value.clone();
        super::super::bound::bound(&mut bounded);
        bounded
    }

    #[test]
    fn bounds_as_the_value_walk_does_table() {
        let long = "x".repeat(300);
        let table = [
            json!({"a": "short", "n": 1, "f": 1.5, "t": true, "z": null}),
            json!({"model": long}),
            json!({"reason": "r".repeat(2000), "other": "o".repeat(2000)}),
            json!({"reason": {"nested": "n".repeat(600)}}),
            json!({"reason": ["q".repeat(1500)]}),
            json!({"tool": "é".repeat(200)}),
            json!({"path": format!("{}\"\\\n{}", "p".repeat(250), "s".repeat(20))}),
            json!({"path": format!("{}\"\"\"\"\"\"\"\"\"\"", "p".repeat(250))}),
            json!({"tables": (0..1000).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            json!({"tables": (0..64).collect::<Vec<_>>()}),
            json!({"tables": (0..65).collect::<Vec<_>>()}),
            json!({"deep": (0..70).map(|i| json!({"k": [i, "v".repeat(300)]})).collect::<Vec<_>>()}),
            json!({"lists": (0..70).map(|_| (0..70).collect::<Vec<_>>()).collect::<Vec<_>>()}),
            json!({"after": [[1, 2], (0..80).collect::<Vec<_>>()], "then": "t".repeat(257)}),
            json!({"kinds": {"email": 2, "phone": 1}, "empty": {}, "none": []}),
            json!("top".repeat(100)),
        ];
        for value in table {
            let written: Value = serde_json::from_slice(&encode(&value).unwrap()).unwrap();
            assert_eq!(written, reference(&value), "{value}");
        }
    }

    #[test]
    fn a_record_naming_what_the_seal_writes_is_refused() {
        for name in SEALED {
            assert!(encode(&json!({"a": 1, name: "x"})).is_err(), "{name}");
            assert!(encode(&json!({"nested": {name: "x"}, "list": [{name: 1}]})).is_ok());
        }
    }

    #[test]
    fn a_huge_value_costs_its_bound_not_its_size() {
        let huge = json!({"llm": {"model": "m".repeat(8 << 20)}, "rules": vec!["r"; 100_000]});
        assert!(encode(&huge).unwrap().len() < 4096);
    }
}
