//! Any bytes: the scanner and the JSON walk finish, never panic, and report findings that lie on
//! character boundaries, in order, without overlaps.
#![no_main]

use std::sync::OnceLock;

use gatehouse::pii::{Scanner, ScannerConfig, raw_offsets, scan_json};
use libfuzzer_sys::fuzz_target;

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(&ScannerConfig::default()).expect("scanner"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let findings = scanner().scan(&text);
    let mut last_end = 0;
    for f in &findings {
        assert!(f.start < f.end && f.start >= last_end);
        assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        last_end = f.end;
    }
    if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) {
        // Every finding of a document is placed in its text, on character boundaries.
        let tokens = raw_offsets::tokens(&text).unwrap_or_default();
        for f in scan_json(scanner(), &doc) {
            if let Some(token) = raw_offsets::find(&tokens, &f.pointer, f.key) {
                let (start, end) = raw_offsets::to_raw(&text, token, f.finding.start, f.finding.end);
                assert!(start <= end && end <= text.len());
                assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
            }
        }
    }
});
