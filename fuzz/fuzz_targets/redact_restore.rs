//! Any text: pseudonymizing every finding and restoring the result, fed to the restorer in chunks
//! whose sizes the input chooses, gives back the text exactly (texts that already hold
//! placeholder-like strings are skipped: the restorer would rightly restore them too).
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gatehouse::pii::{Redaction, Scanner, ScannerConfig, Style, Vault, redact};
use libfuzzer_sys::fuzz_target;

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| Scanner::new(&ScannerConfig::default()).expect("scanner"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    if text.contains('<') || text.contains("\\u003") {
        return;
    }
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"fuzz");
    let vault = Vault::new(2, usize::MAX, Duration::from_secs(60));
    let rules = vec![(vec!["any".to_string()], Style::Pseudonymize)];
    let mut redaction = Redaction::new(rules, &key, &vault, "fuzz", Instant::now());
    let findings = scanner().scan(&text);
    let redacted = redact(&text, &findings, &mut redaction)
        .expect("vault has room")
        .unwrap_or_else(|| text.to_string());
    let Some(mut restorer) = vault.restorer("fuzz", false) else {
        assert!(findings.is_empty());
        return;
    };
    let step = usize::from(chunk % 16) + 1;
    let mut out = Vec::new();
    for piece in redacted.as_bytes().chunks(step) {
        out.extend(restorer.push(piece));
    }
    out.extend(restorer.finish());
    assert_eq!(out, text.as_bytes());
});
