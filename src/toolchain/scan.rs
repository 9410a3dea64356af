//! `gatehouse scan`: what the detectors find in a text or JSON document, or the document
//! redacted, so a policy author can try a detector before trusting it.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::ToolError;
use crate::config::Config;
use crate::pii::{self, Redaction, Scanner, Style, Vault, raw_offsets};

/// Findings of `input` as JSON lines, or `input` redacted in `style` (every kind; `hash` with the
/// config's key, so tokens match the proxy's).
///
/// Text input: `start` and `end` are byte offsets in the input. JSON input (an object or array):
/// each finding also names the string's JSON `pointer`, and its offsets are in that string's
/// decoded value (JSON escapes such as `\u0040` are decoded before scanning); `key: true` marks a
/// finding in the name of the member the pointer names. Every finding also has `raw_start` and
/// `raw_end`: its bytes in the input itself, escapes included, so a tool can place it without
/// parsing the JSON again.
pub fn scan(config: &Config, input: &str, style: Option<Style>) -> Result<String, ToolError> {
    let scanner = Scanner::new(&config.pii.scanner)?;
    let document = serde_json::from_str::<Value>(input)
        .ok()
        .filter(|v| v.is_object() || v.is_array());
    match style {
        None => Ok(findings(&scanner, input, document.as_ref())),
        Some(style) => redacted(config, &scanner, input, document, style),
    }
}

fn findings(scanner: &Scanner, input: &str, document: Option<&Value>) -> String {
    let mut out = String::new();
    let tokens = document
        .and_then(|_| raw_offsets::tokens(input))
        .unwrap_or_default();
    let index = raw_offsets::index(&tokens);
    let line = |f: &pii::Finding, pointer: Option<&str>, key: bool| {
        let (raw_start, raw_end) = match pointer {
            None => (f.start, f.end),
            Some(pointer) => match index.get(&(pointer, key)) {
                // A string holding JSON or quoted strings has its findings' offsets in those:
                // the whole string is given.
                Some(token) if holds_strings(&input[token.start..token.end]) => {
                    (token.start, token.end)
                }
                Some(token) => raw_offsets::to_raw(input, token, f.start, f.end),
                None => (0, input.len()),
            },
        };
        let mut record = json!({
            "kind": f.kind.name(),
            "start": f.start,
            "end": f.end,
            "raw_start": raw_start,
            "raw_end": raw_end,
            "validator": f.validator,
        });
        if let Some(pointer) = pointer {
            record["pointer"] = json!(pointer);
        }
        if key {
            record["key"] = json!(true);
        }
        record.to_string()
    };
    match document {
        Some(doc) => {
            for f in pii::scan_json(scanner, doc) {
                let _ = writeln!(out, "{}", line(&f.finding, Some(&f.pointer), f.key));
            }
        }
        None => {
            for f in scanner.scan(input) {
                let _ = writeln!(out, "{}", line(&f, None, false));
            }
        }
    }
    out
}

/// Whether a string's raw bytes may hold JSON or quoted strings, whose findings are placed in
/// them rather than in the string (see `pii::scan_json`).
fn holds_strings(raw: &str) -> bool {
    let decoded: String = serde_json::from_str(&format!("\"{raw}\"")).unwrap_or_default();
    decoded.trim_start().starts_with(['{', '[', '"']) || decoded.contains('"')
}

fn redacted(
    config: &Config,
    scanner: &Scanner,
    input: &str,
    document: Option<Value>,
    style: Style,
) -> Result<String, ToolError> {
    let key = crate::pii::hash_key(&config.pii)?;
    let vault = Vault::new(1, usize::MAX, Duration::from_secs(60));
    let rules = vec![(vec!["any".to_string()], style)];
    let mut redaction = Redaction::new(rules, &key, &vault, "scan", Instant::now());
    let failed = |e: pii::VaultError| ToolError::Request(e.to_string());
    match document {
        Some(mut doc) => {
            pii::redact_json(scanner, &mut doc, &mut redaction).map_err(failed)?;
            Ok(format!("{doc}\n"))
        }
        None => {
            let found = scanner.scan(input);
            Ok(pii::redact(input, &found, &mut redaction)
                .map_err(failed)?
                .unwrap_or_else(|| input.to_string()))
        }
    }
}
