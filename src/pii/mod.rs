//! Personal data and secrets: what is found (detectors: literal anchors and digit groups →
//! shapes → validators), how it is replaced (mask, keyed hash, reversible pseudonym), and how
//! pseudonyms come back in responses. Pure: no I/O, no async; tested with plain strings.
//!
//! Findings carry a kind and byte offsets, never the value; logs and audit records hold kinds
//! and counts only.

mod anchors;
mod checksum;
mod email;
mod events;
mod fold;
mod head;
mod json;
mod kind;
mod known;
mod literals;
mod national_id;
mod numbers;
mod overlaps;
pub mod raw_offsets;
mod redact;
mod redactor;
mod secret_rules;
mod unique;
mod vault;

#[cfg(test)]
mod accuracy;
#[cfg(test)]
mod anchor_start_tests;
#[cfg(test)]
mod escape_tests;
#[cfg(test)]
mod id_tests;
#[cfg(test)]
mod places_tests;
#[cfg(test)]
mod secret_tests;
#[cfg(test)]
pub(crate) mod test_rng;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

use overlaps::resolve_overlaps;

pub use events::{EventRestorer, MAX_EVENT, event_end, event_end_from, stream_text};
pub use head::{RequestHead, header_fields, rewrite_headers};
pub use json::{JsonFinding, redact_json, scan_json};
pub use kind::{BUILTIN, GROUPS, Kind};
pub use known::Known;
pub use numbers::{DEFAULT_PHONE_REGIONS, PhoneRegions, UnknownRegion};
pub use redact::{Redaction, Replacer, Style, redact};
pub use redactor::{
    BodyParts, BodyShape, PiiConfig, RedactError, RedactRule, Redacted, Redactor, hash_key,
    session_of,
};
pub use unique::{names_a_member_twice, parse_unique};
pub use vault::{Restorer, Vault, VaultError};

/// One piece of personal data or one secret, by position: `text[start..end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What it is.
    pub kind: Kind,
    /// Byte offset of its first byte.
    pub start: usize,
    /// Byte offset after its last byte.
    pub end: usize,
    /// The check that accepted it (`card_iin_luhn`, `iban_mod97`, `dictionary`, ...).
    pub validator: &'static str,
}

impl Finding {
    /// A finding of `kind` at `start..end`.
    pub fn new(kind: Kind, start: usize, end: usize, validator: &'static str) -> Finding {
        Finding {
            kind,
            start,
            end,
            validator,
        }
    }
}

/// A word list from config: every listed word or phrase, case-insensitive, as whole words.
#[derive(Debug, Clone)]
pub struct Dictionary {
    /// The kind its findings carry.
    pub name: String,
    /// Words and phrases.
    pub words: Vec<String>,
}

/// A named regular expression from config.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The kind its findings carry.
    pub name: String,
    /// The expression (the `regex` crate: linear time).
    pub regex: Regex,
}

/// What the scanner is told beyond its built-in detectors.
#[derive(Debug, Clone, Default)]
pub struct ScannerConfig {
    /// Domain suffixes that count as real for emails (`.internal`, `corp.example`).
    pub internal_domains: Vec<String>,
    /// Word lists.
    pub dictionaries: Vec<Dictionary>,
    /// Named regexes.
    pub patterns: Vec<Pattern>,
    /// The regions whose national phone numbers (without a country code) are recognised.
    pub phone_regions: PhoneRegions,
}

/// Why a scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScannerError {
    /// A detector failed to compile.
    #[error("PII detector `{name}`: {reason}")]
    Detector {
        /// The detector.
        name: String,
        /// Why.
        reason: String,
    },
}

/// The compiled detectors. Build once, share, scan many texts.
pub struct Scanner {
    anchors: anchors::Anchors,
    internal_domains: Vec<String>,
    words: Option<(AhoCorasick, Vec<Arc<str>>)>,
    patterns: Vec<(Arc<str>, Regex)>,
    phone_regions: PhoneRegions,
}

impl Scanner {
    /// Compiles the built-in detectors and those of `config`.
    pub fn new(config: &ScannerConfig) -> Result<Scanner, ScannerError> {
        let anchors = anchors::Anchors::new().map_err(|reason| ScannerError::Detector {
            name: "built-in".into(),
            reason,
        })?;
        let mut literals = Vec::new();
        let mut kinds = Vec::new();
        for dictionary in &config.dictionaries {
            let name: Arc<str> = Arc::from(dictionary.name.as_str());
            for word in dictionary.words.iter().filter(|w| !w.trim().is_empty()) {
                literals.push(word.trim().to_string());
                kinds.push(name.clone());
            }
        }
        let words = if literals.is_empty() {
            None
        } else {
            let automaton = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&literals)
                .map_err(|e| ScannerError::Detector {
                    name: "dictionaries".into(),
                    reason: e.to_string(),
                })?;
            Some((automaton, kinds))
        };
        Ok(Scanner {
            anchors,
            internal_domains: config
                .internal_domains
                .iter()
                .map(|d| {
                    let d = d.trim_start_matches('.').to_ascii_lowercase();
                    format!(".{d}")
                })
                .collect(),
            words,
            patterns: config
                .patterns
                .iter()
                .map(|p| (Arc::from(p.name.as_str()), p.regex.clone()))
                .collect(),
            phone_regions: config.phone_regions.clone(),
        })
    }

    /// Every finding in `text`, overlaps resolved, in order of position. Text in compatibility
    /// forms (fullwidth digits, invisible characters in between) is read as a model reads it;
    /// each finding's offsets are those of the original characters.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let Some(folded) = fold::fold(text) else {
            return self.scan_plain(text);
        };
        let found = self
            .scan_plain(&folded.text)
            .into_iter()
            .map(|f| {
                let (start, end) = folded.original(f.start, f.end);
                Finding { start, end, ..f }
            })
            .collect();
        resolve_overlaps(found)
    }

    fn scan_plain(&self, text: &str) -> Vec<Finding> {
        let mut found = Vec::new();
        self.anchors.scan(text, &self.internal_domains, &mut found);
        numbers::scan(text, &self.phone_regions, &mut found);
        self.custom(text, &mut found);
        resolve_overlaps(found)
    }

    /// The findings of a value whose field name is known (a JSON key, a form field): those of the
    /// value, and those the credential-named rules find when the value is read as the member
    /// `"name": "value"` (`"api_key": "…"`), as gitleaks reads it in a JSON file.
    pub fn scan_field(&self, name: &str, value: &str) -> Vec<Finding> {
        let named = self.anchors.field(name, value);
        if named.is_empty() {
            return self.scan(value);
        }
        let mut found = self.scan(value);
        found.extend(named);
        resolve_overlaps(found)
    }

    fn custom(&self, text: &str, out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        if let Some((automaton, kinds)) = &self.words {
            for hit in automaton.find_iter(text) {
                let whole = hit
                    .start()
                    .checked_sub(1)
                    .is_none_or(|i| !b[i].is_ascii_alphanumeric())
                    && b.get(hit.end()).is_none_or(|c| !c.is_ascii_alphanumeric());
                if whole && text.is_char_boundary(hit.start()) && text.is_char_boundary(hit.end()) {
                    let kind = Kind::Custom(kinds[hit.pattern().as_usize()].clone());
                    out.push(Finding::new(kind, hit.start(), hit.end(), "dictionary"));
                }
            }
        }
        for (name, regex) in &self.patterns {
            for m in regex.find_iter(text).filter(|m| !m.is_empty()) {
                out.push(Finding::new(
                    Kind::Custom(name.clone()),
                    m.start(),
                    m.end(),
                    "pattern",
                ));
            }
        }
    }
}

/// Findings counted by kind name: what logs and audit records hold instead of values.
pub fn count_by_kind<'a>(findings: impl IntoIterator<Item = &'a Finding>) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for f in findings {
        *counts.entry(f.kind.name().to_string()).or_insert(0) += 1;
    }
    counts
}
