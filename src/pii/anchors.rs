//! Candidates found by literal anchors: `@` and its obfuscations for emails, key prefixes for
//! secrets, `0x` and `bc1` for wallets, credential keywords for the generic rule. One pass
//! (`literals.rs`) finds every anchor; a regex anchored at the hit gives the shape; a validator
//! decides.

use std::collections::HashMap;

use regex::Regex;

use super::checksum::entropy;
use super::literals::Literals;
use super::secret_rules::{Rules, aws_secrets_near};
use super::{Finding, Kind};

/// What an anchor starts.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    At,
    ObfuscatedAt,
    Secret(usize),
    Rule(usize),
    Pem,
}

/// A secret format: its anchor literals, its shape, and an extra check.
struct SecretShape {
    name: &'static str,
    prefixes: &'static [&'static str],
    shape: &'static str,
    check: fn(&str) -> bool,
}

/// Random enough to be a key rather than prose with dashes or a placeholder: a digit, entropy,
/// and no alphabet walk (`abcde`, `12345`, `lmnop`), which a random key all but never holds.
fn random_enough(s: &str) -> bool {
    s.bytes().any(|c| c.is_ascii_digit()) && entropy(s) >= 3.5 && !alphabet_walk(s)
}

/// Five characters in a row each one after the last (`abcde`, `34567`).
fn alphabet_walk(s: &str) -> bool {
    let mut run = 1;
    for w in s.as_bytes().windows(2) {
        run = if w[0].is_ascii_alphanumeric() && w[1] == w[0] + 1 {
            run + 1
        } else {
            1
        };
        if run >= 5 {
            return true;
        }
    }
    false
}

/// A JWT's header is base64url JSON naming an algorithm.
fn jwt_header(s: &str) -> bool {
    use base64::Engine;
    let header = s.split('.').next().unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|v| v.get("alg").is_some() || v.get("typ").is_some())
}

fn eth(s: &str) -> bool {
    s.len() == 42
}

/// Shapes of our own, looser than gitleaks' (which `secret_rules` ports): any length of
/// OpenAI and Anthropic key, a JWT whose header decodes, wallets.
const SECRETS: &[SecretShape] = &[
    SecretShape {
        name: "anthropic_key",
        prefixes: &["sk-ant-"],
        shape: r"^sk-ant-[a-z0-9]+-[A-Za-z0-9_\-]{20,300}",
        check: random_enough,
    },
    SecretShape {
        name: "openai_key",
        prefixes: &["sk-"],
        shape: r"^sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,300}",
        check: random_enough,
    },
    SecretShape {
        name: "jwt",
        prefixes: &["eyJ"],
        shape: r"^eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{10,}",
        check: jwt_header,
    },
    SecretShape {
        name: "eth_address",
        prefixes: &["0x"],
        shape: r"^0x[0-9a-fA-F]{40}",
        check: eth,
    },
    SecretShape {
        name: "btc_bech32",
        prefixes: &["bc1"],
        shape: r"^(?:bc1[02-9ac-hj-np-z]{11,71}|BC1[02-9AC-HJ-NP-Z]{11,71})",
        check: super::checksum::btc_bech32_str,
    },
];

/// The compiled anchors.
pub(super) struct Anchors {
    literals: Literals,
    /// What each distinct literal starts (several rules share `key`, `sk_live`, ...).
    targets: Vec<Vec<Anchor>>,
    shapes: Vec<Regex>,
    rules: Rules,
    aws_id: Option<usize>,
    pem_begin: Regex,
    pem_end: Regex,
}

/// How much of a field's name the credential-named rules read: its last bytes. A keyed rule
/// matches at most 50 name bytes before its keyword, the keyword, 20 bytes after it and the
/// operator, all at the name's end (the value follows it); reading the whole name for every value
/// of an array under a long name was quadratic in the body.
const FIELD_TAIL: usize = 256;

/// The part of a field's name the credential-named rules can read (see [`FIELD_TAIL`]).
pub(super) fn field_tail(name: &str) -> &str {
    let mut start = name.len().saturating_sub(FIELD_TAIL);
    while !name.is_char_boundary(start) {
        start += 1;
    }
    &name[start..]
}

/// The least a private key's body holds before its `KEY-----` (gitleaks' `[\s\S-]{64,}?`).
const PEM_MIN_BODY: usize = 64;
/// How far a private key's end is looked for.
const PEM_WINDOW: usize = 65_536;

/// The anchor literals (lower case, each once) and what each one starts.
fn table(rules: &Rules) -> (Vec<String>, Vec<Vec<Anchor>>) {
    let mut literals: Vec<String> = Vec::new();
    let mut targets: Vec<Vec<Anchor>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut add = |literal: &str, anchor: Anchor| {
        let key = literal.to_ascii_lowercase();
        let i = *index.entry(key.clone()).or_insert_with(|| {
            literals.push(key);
            targets.push(Vec::new());
            targets.len() - 1
        });
        targets[i].push(anchor);
    };
    add("@", Anchor::At);
    for obfuscated in ["[at]", "(at)", "{at}", " at "] {
        add(obfuscated, Anchor::ObfuscatedAt);
    }
    for (i, secret) in SECRETS.iter().enumerate() {
        for prefix in secret.prefixes {
            add(prefix, Anchor::Secret(i));
        }
    }
    for (i, rule) in rules.rules.iter().enumerate() {
        for anchor in &rule.anchors {
            add(anchor, Anchor::Rule(i));
        }
    }
    add("-----begin", Anchor::Pem);
    (literals, targets)
}

/// The anchor literals, for the tests of `literals.rs`.
#[cfg(test)]
pub(super) fn literals() -> Result<Vec<String>, String> {
    Ok(table(&Rules::new()?).0)
}

/// Whether every anchor a literal starts acts only where the literal begins a word (the byte
/// before it is none of `[A-Za-z0-9_]`), so that [`Literals::find`] need not report it inside
/// one. Per target: [`Anchors::secret`] returns at once after such a byte (our own key shapes,
/// wallets: `sk-`, `eyJ`, `0x`, `bc1`); [`Rules::origin`] refuses it for a prefix rule whose
/// secret starts at the anchor ([`super::secret_rules::Rule::only_at_word_start`]), before the
/// rule reads or records anything. Every other target (`@` and the at-words, keyed rules'
/// keywords, anchors inside their secret, `-----BEGIN`) acts anywhere, and a literal with one
/// of them is reported everywhere.
fn only_at_word_start(rules: &Rules, targets: &[Vec<Anchor>]) -> Vec<bool> {
    targets
        .iter()
        .map(|anchors| {
            anchors.iter().all(|anchor| match *anchor {
                Anchor::Secret(_) => true,
                Anchor::Rule(i) => rules.rules[i].only_at_word_start(),
                Anchor::At | Anchor::ObfuscatedAt | Anchor::Pem => false,
            })
        })
        .collect()
}

impl Anchors {
    pub(super) fn new() -> Result<Anchors, String> {
        Anchors::build(true)
    }

    /// The anchors with every literal reported everywhere, as before word starts were used: the
    /// reference the restricted search is tested against.
    #[cfg(test)]
    pub(super) fn reporting_everywhere() -> Result<Anchors, String> {
        Anchors::build(false)
    }

    fn build(word_starts: bool) -> Result<Anchors, String> {
        let rules = Rules::new()?;
        let (literals, targets) = table(&rules);
        let restricted = if word_starts {
            only_at_word_start(&rules, &targets)
        } else {
            vec![false; literals.len()]
        };
        let literals = Literals::new(&literals, &restricted)?;
        let compile = |pattern: &str| Regex::new(pattern).map_err(|e| e.to_string());
        Ok(Anchors {
            literals,
            targets,
            shapes: SECRETS
                .iter()
                .map(|s| compile(s.shape))
                .collect::<Result<_, _>>()?,
            aws_id: rules.rules.iter().position(|r| r.id == "aws-access-token"),
            rules,
            pem_begin: compile(r"^(?i)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----")?,
            pem_end: compile(r"(?i)KEY(?: BLOCK)?-----")?,
        })
    }

    /// Every anchored finding in `text`.
    pub(super) fn scan(&self, text: &str, internal: &[String], out: &mut Vec<Finding>) {
        let mut seen: Vec<(usize, usize)> = Vec::new();
        for hit in self.literals.find(text.as_bytes()) {
            let (start, end) = (hit.start, hit.end);
            for &anchor in &self.targets[hit.literal] {
                match anchor {
                    Anchor::At => {
                        if let Some(f) = super::email::plain(text, start, internal) {
                            out.push(f);
                        }
                    }
                    Anchor::ObfuscatedAt => {
                        if let Some(f) = super::email::obfuscated(text, start, end, internal) {
                            out.push(f);
                        }
                    }
                    Anchor::Secret(i) => self.secret(text, start, i, out),
                    Anchor::Rule(i) => self.rule(text, start, i, &mut seen, out),
                    Anchor::Pem => {
                        if let Some(f) = self.pem(text, start) {
                            out.push(f);
                        }
                    }
                }
            }
        }
    }

    /// Findings of the credential-named rules (gitleaks' keyed rules) for a value whose field
    /// name is known, read as the JSON member `"name": "value"` they were written for.
    pub(super) fn field(&self, name: &str, value: &str) -> Vec<Finding> {
        let name = field_tail(name);
        let plain = |s: &str| !s.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\');
        if name.is_empty() || !plain(name) || !plain(value) {
            return Vec::new();
        }
        // The keywords are looked for in the name alone (a hit at its start begins a word, as
        // after the member's opening quote); the member is written only for a keyed rule's.
        let keyed = |i: usize| self.rules.rules[i].keyed();
        let hits: Vec<(usize, usize)> = self
            .literals
            .find(name.as_bytes())
            .iter()
            .flat_map(|hit| {
                self.targets[hit.literal]
                    .iter()
                    .filter_map(|&anchor| match anchor {
                        Anchor::Rule(i) if keyed(i) => Some((hit.start + 1, i)),
                        _ => None,
                    })
            })
            .collect();
        if hits.is_empty() {
            return Vec::new();
        }
        let mut member = String::with_capacity(name.len() + value.len() + 6);
        for part in ["\"", name, "\": \"", value, "\""] {
            member.push_str(part);
        }
        let offset = name.len() + 5;
        let mut found = Vec::new();
        let mut seen = Vec::new();
        for (start, i) in hits {
            self.rule(&member, start, i, &mut seen, &mut found);
        }
        found
            .into_iter()
            .filter(|f| f.start >= offset && f.end <= offset + value.len())
            .map(|f| Finding::new(f.kind, f.start - offset, f.end - offset, f.validator))
            .collect()
    }

    fn secret(&self, text: &str, start: usize, i: usize, out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            return;
        }
        let Some(m) = self.shapes[i].find(&text[start..]) else {
            return;
        };
        let end = start + m.end();
        if b.get(end).is_some_and(|c| c.is_ascii_alphanumeric()) || !(SECRETS[i].check)(m.as_str())
        {
            return;
        }
        let kind = if SECRETS[i].prefixes == ["0x"] || SECRETS[i].prefixes == ["bc1"] {
            Kind::CryptoWallet
        } else {
            Kind::Secret
        };
        out.push(Finding::new(kind, start, end, SECRETS[i].name));
    }

    /// A ported gitleaks rule at the anchor `hit`; a keyed rule is tried once per name.
    fn rule(
        &self,
        text: &str,
        hit: usize,
        i: usize,
        seen: &mut Vec<(usize, usize)>,
        out: &mut Vec<Finding>,
    ) {
        let Some(origin) = self.rules.origin(i, text, hit) else {
            return;
        };
        if self.rules.rules[i].keyed() {
            if seen.iter().rev().take(16).any(|&s| s == (i, origin)) {
                return;
            }
            seen.push((i, origin));
        }
        let Some((start, end)) = self.rules.secret_at(i, text, origin) else {
            return;
        };
        let id = self.rules.rules[i].id;
        out.push(Finding::new(Kind::Secret, start, end, id));
        if Some(i) == self.aws_id {
            for (s, e) in aws_secrets_near(&self.rules, text, start, end) {
                out.push(Finding::new(Kind::Secret, s, e, "aws-secret-access-key"));
            }
        }
    }

    /// A private key block (gitleaks' `private-key`): a `BEGIN … PRIVATE KEY` header, at least
    /// 64 characters, then the first `KEY-----` (within 64 KiB).
    fn pem(&self, text: &str, start: usize) -> Option<Finding> {
        let begin = self.pem_begin.find(&text[start..])?;
        let mut body = start + begin.end() + PEM_MIN_BODY;
        while body < text.len() && !text.is_char_boundary(body) {
            body += 1;
        }
        let mut window_end = (body + PEM_WINDOW).min(text.len());
        while !text.is_char_boundary(window_end) {
            window_end += 1;
        }
        let end = self.pem_end.find(text.get(body..window_end)?)?;
        Some(Finding::new(
            Kind::Secret,
            start,
            body + end.end(),
            "pem_private_key",
        ))
    }
}
