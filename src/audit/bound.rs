//! Recorded strings are bounded: whatever the agent controls (model, tool and table names, SQL
//! shapes, paths, hosts, reasons that quote a header) would otherwise go into the trail at the
//! size the agent chose, and `{"model": "<8 MB>"}` would write megabytes of audit per request.
//! Every string of every record is cut to [`MAX_STRING`] bytes on a char boundary (a reason to
//! [`MAX_REASON`]) and marked, and every list to [`MAX_ITEMS`] entries.

use serde_json::Value;

/// The most bytes of a recorded string.
pub const MAX_STRING: usize = 256;
/// The most bytes of a recorded reason (it names rules and quotes what was refused).
pub const MAX_REASON: usize = 1024;
/// The most entries of a recorded list (tables, columns, rules).
pub const MAX_ITEMS: usize = 64;

/// `text` cut to `max` bytes on a char boundary, marked `…[cut, N bytes]` when it was longer.
pub fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…[cut, {} bytes]", &text[..end], text.len())
}

/// Bounds every string and list in `value`, in place.
pub fn bound(value: &mut Value) {
    bound_as(value, MAX_STRING);
}

fn bound_as(value: &mut Value, max: usize) {
    match value {
        Value::String(text) if text.len() > max => *text = bounded(text, max),
        Value::Array(items) => {
            if items.len() > MAX_ITEMS {
                let more = items.len() - MAX_ITEMS;
                items.truncate(MAX_ITEMS);
                items.push(Value::String(format!("…[{more} more]")));
            }
            items.iter_mut().for_each(|item| bound_as(item, max));
        }
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                let max = if key == "reason" {
                    MAX_REASON
                } else {
                    MAX_STRING
                };
                bound_as(field, max);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_cut_on_char_boundaries_and_marked_table() {
        let table: [(&str, usize, &str); 4] = [
            ("short", 8, "short"),
            ("exactly8", 8, "exactly8"),
            ("123456789", 8, "12345678…[cut, 9 bytes]"),
            // `é` is two bytes: a cut at 8 would split it.
            ("1234567é", 8, "1234567…[cut, 9 bytes]"),
        ];
        for (text, max, expected) in table {
            assert_eq!(bounded(text, max), expected, "{text}");
        }
    }

    #[test]
    fn every_string_and_list_of_a_record_is_bounded() {
        let huge = "m".repeat(8 << 20);
        let mut record = serde_json::json!({
            "llm": {"model": huge, "provider": "openai"},
            "data": {"tables": (0..1000).map(|i| format!("t{i}")).collect::<Vec<_>>()},
            "reason": "r".repeat(2000),
            "tool": "é".repeat(200),
        });
        bound(&mut record);
        let text = record.to_string();
        assert!(text.len() < 4096, "{} bytes", text.len());
        assert!(
            record["llm"]["model"]
                .as_str()
                .unwrap()
                .ends_with("…[cut, 8388608 bytes]")
        );
        assert_eq!(record["llm"]["provider"], "openai");
        assert_eq!(record["data"]["tables"].as_array().unwrap().len(), 65);
        assert_eq!(record["data"]["tables"][64], "…[936 more]");
        assert!(
            record["reason"]
                .as_str()
                .unwrap()
                .starts_with(&"r".repeat(1024))
        );
        assert!(
            record["tool"]
                .as_str()
                .unwrap()
                .starts_with(&"é".repeat(128))
        );
    }
}
