//! Any bytes, written again as JSON text by `gatehouse::json_text` (the redacted body, stream
//! events, JSON inside strings): exactly the bytes `serde_json` writes, for the document the
//! bytes parse to, and for the bytes themselves (when UTF-8) as one string.
#![no_main]

use gatehouse::json_text;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = serde_json::from_slice::<Value>(data) {
        let theirs = serde_json::to_vec(&doc).expect("a Value serialises");
        assert_eq!(json_text::to_vec(&doc), theirs);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let doc = Value::String(text.to_string());
        assert_eq!(json_text::to_string(&doc), serde_json::to_string(&doc).expect("a string"));
    }
});
