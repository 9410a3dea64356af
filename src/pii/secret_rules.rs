//! Secret formats ported from gitleaks' default rule set.
//!
//! The patterns, entropy thresholds, allowlists and stopwords in `secret_rules.tsv` and
//! `secret_stopwords.txt` are ported from gitleaks (<https://github.com/gitleaks/gitleaks>,
//! `config/gitleaks.toml` and `cmd/generate/config/rules/stopwords.go`), MIT licence,
//! Copyright (c) 2019 Zachary Rice. `scripts/gitleaks_rules.py` regenerates both files; the
//! patterns are gitleaks' own with `\w \s \d \b` made ASCII (RE2's meaning). The last rules of the
//! table are Gatehouse's own and say so.
//!
//! Two kinds of rule, both reached through the one anchor pass (`literals.rs`):
//! - `prefix`: the secret starts at its literal anchor (or `back` bytes before it); the pattern is
//!   matched there and nowhere else.
//! - `keyed`: gitleaks' "semi-generic" rules, `[\w.-]{0,50}?(?:identifier)…operator…(secret)`:
//!   the anchor is the identifier; the pattern is matched from the start of the name holding it.
//!
//! A candidate is kept as gitleaks keeps it: the secret is the first non-empty capture group (or
//! the whole match), its Shannon entropy must exceed the rule's threshold, and neither the global
//! allowlist (placeholders, `${VAR}`, `{{ template }}`, paths) nor the rule's own allowlists (on
//! the secret, the whole match, the line; gitleaks' stopwords for the generic rule) may match.

use aho_corasick::AhoCorasick;
use regex::Regex;

use super::checksum::entropy;

const TABLE: &str = include_str!("secret_rules.tsv");
const STOPWORDS: &str = include_str!("secret_stopwords.txt");

/// One ported rule.
pub(super) struct Rule {
    /// gitleaks' rule id: the finding's validator.
    pub id: &'static str,
    /// Matched from the start of the name holding the anchor rather than at the anchor.
    keyed: bool,
    /// The secret's entropy must exceed this (0: no check).
    min_entropy: f64,
    /// The secret starts this many bytes before the anchor (prefix rules).
    back: usize,
    /// The literal anchors (lower case; the automaton ignores case, the pattern decides).
    pub anchors: Vec<&'static str>,
    regex: Regex,
    allow: Vec<Regex>,
    allow_match: Vec<Regex>,
    allow_line: Vec<Regex>,
    stopwords: bool,
}

impl Rule {
    /// Matched from the start of the name holding the anchor.
    pub(super) fn keyed(&self) -> bool {
        self.keyed
    }

    /// Whether an anchor of this rule finds nothing where it continues a word: a prefix rule
    /// whose secret starts at its anchor, which [`Rules::origin`] refuses after a letter, digit
    /// or `_` (a keyed rule's keyword, or an anchor `back` bytes into its secret, stands inside
    /// a word).
    pub(super) fn only_at_word_start(&self) -> bool {
        !self.keyed && self.back == 0
    }
}

/// The compiled table.
pub(super) struct Rules {
    pub rules: Vec<Rule>,
    global: Vec<Regex>,
    global_words: Vec<&'static str>,
    stopwords: AhoCorasick,
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| format!("{pattern}: {e}"))
}

fn field(fields: &[&'static str], i: usize, line: &str) -> Result<&'static str, String> {
    fields
        .get(i)
        .copied()
        .ok_or_else(|| format!("secret_rules.tsv: short line {line:?}"))
}

impl Rules {
    pub(super) fn new() -> Result<Rules, String> {
        let mut rules: Vec<Rule> = Vec::new();
        let mut global = Vec::new();
        let mut global_words = Vec::new();
        for line in TABLE.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&'static str> = line.split('\t').collect();
            let kind = field(&fields, 0, line)?;
            let id = field(&fields, 1, line)?;
            if kind == "prefix" || kind == "keyed" {
                let number = |i: usize| -> Result<f64, String> {
                    field(&fields, i, line)?
                        .parse::<f64>()
                        .map_err(|e| format!("{id}: {e}"))
                };
                rules.push(Rule {
                    id,
                    keyed: kind == "keyed",
                    min_entropy: number(2)?,
                    back: number(3)? as usize,
                    anchors: field(&fields, 4, line)?.split(' ').collect(),
                    regex: compile(&format!("^(?:{})", field(&fields, 5, line)?))?,
                    allow: Vec::new(),
                    allow_match: Vec::new(),
                    allow_line: Vec::new(),
                    stopwords: false,
                });
                continue;
            }
            if id == "*" {
                match kind {
                    "allow" => global.push(compile(field(&fields, 2, line)?)?),
                    "stopword" => global_words.push(field(&fields, 2, line)?),
                    _ => return Err(format!("secret_rules.tsv: unknown line {line:?}")),
                }
                continue;
            }
            let rule = rules
                .iter_mut()
                .rev()
                .find(|r| r.id == id)
                .ok_or_else(|| format!("secret_rules.tsv: allowlist before rule {id}"))?;
            match kind {
                "allow" => rule.allow.push(compile(field(&fields, 2, line)?)?),
                "allow_match" => rule.allow_match.push(compile(field(&fields, 2, line)?)?),
                "allow_line" => rule.allow_line.push(compile(field(&fields, 2, line)?)?),
                "stopwords" => rule.stopwords = true,
                _ => return Err(format!("secret_rules.tsv: unknown line {line:?}")),
            }
        }
        let words = STOPWORDS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(str::split_whitespace);
        let stopwords = AhoCorasick::new(words).map_err(|e| e.to_string())?;
        Ok(Rules {
            rules,
            global,
            global_words,
            stopwords,
        })
    }

    /// Where rule `i`'s pattern starts for an anchor at `hit`: at the anchor (less `back`) for a
    /// prefix rule, which must not continue a word; at the start of the name (at most 50 bytes of
    /// `[\w.-]` before the anchor) for a keyed rule.
    pub(super) fn origin(&self, i: usize, text: &str, hit: usize) -> Option<usize> {
        let rule = &self.rules[i];
        let b = text.as_bytes();
        if rule.keyed {
            let mut start = hit;
            while start > 0 && hit - start < 50 && is_name_byte(b[start - 1]) {
                start -= 1;
            }
            return Some(start);
        }
        let start = hit.checked_sub(rule.back)?;
        let continues_word =
            start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_');
        (!continues_word && text.is_char_boundary(start)).then_some(start)
    }

    /// The secret rule `i` finds with its pattern matched at `origin`, if gitleaks would keep it.
    pub(super) fn secret_at(&self, i: usize, text: &str, origin: usize) -> Option<(usize, usize)> {
        let rule = &self.rules[i];
        let caps = rule.regex.captures(&text[origin..])?;
        let whole = caps.get(0)?;
        let secret = caps
            .iter()
            .skip(1)
            .flatten()
            .find(|m| !m.is_empty())
            .unwrap_or(whole);
        let value = secret.as_str();
        if rule.min_entropy > 0.0 && entropy(value) <= rule.min_entropy {
            return None;
        }
        if self.globally_allowed(value) || rule.allow.iter().any(|r| r.is_match(value)) {
            return None;
        }
        if rule.allow_match.iter().any(|r| r.is_match(whole.as_str())) {
            return None;
        }
        if !rule.allow_line.is_empty() {
            let (start, end) = (origin + whole.start(), origin + whole.end());
            let line_start = text[..start].rfind('\n').map_or(0, |n| n + 1);
            let line_end = text[end..].find('\n').map_or(text.len(), |n| end + n);
            if rule
                .allow_line
                .iter()
                .any(|r| r.is_match(&text[line_start..line_end]))
            {
                return None;
            }
        }
        if rule.stopwords && self.stopwords.is_match(&value.to_ascii_lowercase()) {
            return None;
        }
        Some((origin + secret.start(), origin + secret.end()))
    }

    /// gitleaks' global allowlist: placeholders, variable references, templates, paths.
    pub(super) fn globally_allowed(&self, value: &str) -> bool {
        let lower = value.to_ascii_lowercase();
        self.global.iter().any(|r| r.is_match(value))
            || self.global_words.iter().any(|w| lower.contains(w))
    }
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

fn is_base64_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'/' | b'+' | b'=')
}

/// How far from an AWS access key id its secret access key is looked for.
const AWS_PAIR_WINDOW: usize = 300;

/// AWS secret access keys near the access key id at `id_start..id_end`: a token of exactly 40
/// base64 characters with upper and lower case and a digit, random (entropy above 4), within
/// [`AWS_PAIR_WINDOW`] bytes; never AWS's documented `…EXAMPLEKEY`.
pub(super) fn aws_secrets_near(
    rules: &Rules,
    text: &str,
    id_start: usize,
    id_end: usize,
) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut from = id_start.saturating_sub(AWS_PAIR_WINDOW);
    let mut to = (id_end + AWS_PAIR_WINDOW).min(text.len());
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    while !text.is_char_boundary(to) {
        to += 1;
    }
    let mut found = Vec::new();
    let mut i = from;
    while i < to {
        if !is_base64_byte(b[i]) || b[i] == b'=' {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && is_base64_byte(b[i]) && b[i] != b'=' {
            i += 1;
        }
        let token = &text[start..i];
        let bounded = start == 0 || !is_base64_byte(b[start - 1]);
        let ends = i == b.len() || !is_base64_byte(b[i]);
        if bounded
            && ends
            && token.len() == 40
            && token.bytes().any(|c| c.is_ascii_uppercase())
            && token.bytes().any(|c| c.is_ascii_lowercase())
            && token.bytes().any(|c| c.is_ascii_digit())
            && entropy(token) > 4.0
            && !token.contains("EXAMPLE")
            && !rules.globally_allowed(token)
        {
            found.push((start, i));
        }
    }
    found
}
