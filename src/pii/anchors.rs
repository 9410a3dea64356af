//! Candidates found by literal anchors: `@` and its obfuscations for emails, key prefixes for
//! secrets, `0x` and `bc1` for wallets, credential keywords for the generic rule. One
//! Aho-Corasick pass finds every anchor; a regex anchored at the hit gives the shape; a
//! validator decides.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

use super::checksum::entropy;
use super::{Finding, Kind};

/// What an anchor starts.
#[derive(Debug, Clone, Copy)]
enum Anchor {
    At,
    ObfuscatedAt,
    Secret(usize),
    Keyword,
    Pem,
}

/// A secret format: its anchor literals, its shape, and an extra check.
struct SecretShape {
    name: &'static str,
    prefixes: &'static [&'static str],
    shape: &'static str,
    check: fn(&str) -> bool,
}

fn always(_: &str) -> bool {
    true
}

/// Random enough to be a key rather than prose with dashes.
fn random_enough(s: &str) -> bool {
    s.bytes().any(|c| c.is_ascii_digit()) && entropy(s) >= 3.5
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

const SECRETS: &[SecretShape] = &[
    SecretShape {
        name: "anthropic_key",
        prefixes: &["sk-ant-"],
        shape: r"^sk-ant-[a-z0-9]+-[A-Za-z0-9_\-]{20,300}",
        check: always,
    },
    SecretShape {
        name: "openai_key",
        prefixes: &["sk-"],
        shape: r"^sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,300}",
        check: random_enough,
    },
    SecretShape {
        name: "google_api_key",
        prefixes: &["AIza"],
        shape: r"^AIza[0-9A-Za-z_\-]{35}",
        check: always,
    },
    SecretShape {
        name: "aws_access_key",
        prefixes: &["AKIA", "ASIA", "ABIA", "ACCA"],
        shape: r"^A(?:KIA|SIA|BIA|CCA)[A-Z2-7]{16}",
        check: always,
    },
    SecretShape {
        name: "github_token",
        prefixes: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        shape: r"^(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
        check: always,
    },
    SecretShape {
        name: "gitlab_token",
        prefixes: &["glpat-"],
        shape: r"^glpat-[A-Za-z0-9_\-]{20,255}",
        check: always,
    },
    SecretShape {
        name: "slack_token",
        prefixes: &["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-", "xapp-"],
        shape: r"^(?:xox[abprs]-[A-Za-z0-9\-]{10,255}|xapp-[0-9]-[A-Za-z0-9\-]{10,255})",
        check: random_enough,
    },
    SecretShape {
        name: "stripe_key",
        prefixes: &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        shape: r"^[rs]k_(?:live|test)_[A-Za-z0-9]{20,255}",
        check: always,
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
        shape: r"^bc1[02-9ac-hj-np-z]{11,71}",
        check: super::checksum::btc_bech32_str,
    },
];

/// Words after which a value is a credential when it looks random.
pub(super) const KEYWORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "private_key",
    "client_secret",
    "auth_token",
    "credentials",
];

/// The compiled anchors.
pub(super) struct Anchors {
    automaton: AhoCorasick,
    anchors: Vec<(Anchor, &'static str)>,
    shapes: Vec<Regex>,
    assignment: Regex,
    pem_begin: Regex,
    pem_end: Regex,
}

impl Anchors {
    pub(super) fn new() -> Result<Anchors, String> {
        let mut anchors: Vec<(Anchor, &'static str)> = vec![(Anchor::At, "@")];
        for obfuscated in ["[at]", "(at)", "{at}", " at "] {
            anchors.push((Anchor::ObfuscatedAt, obfuscated));
        }
        for (i, secret) in SECRETS.iter().enumerate() {
            for prefix in secret.prefixes {
                anchors.push((Anchor::Secret(i), prefix));
            }
        }
        for keyword in KEYWORDS {
            anchors.push((Anchor::Keyword, keyword));
        }
        anchors.push((Anchor::Pem, "-----BEGIN "));
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(anchors.iter().map(|(_, literal)| literal))
            .map_err(|e| e.to_string())?;
        let compile = |pattern: &str| Regex::new(pattern).map_err(|e| e.to_string());
        Ok(Anchors {
            automaton,
            anchors,
            shapes: SECRETS
                .iter()
                .map(|s| compile(s.shape))
                .collect::<Result<_, _>>()?,
            assignment: compile(
                r#"^["']?[ \t]{0,3}(?::=|=>|:|=)[ \t]{0,3}["']?([A-Za-z0-9_\-+/=.~!@#$%^&*]{8,256})"#,
            )?,
            pem_begin: compile(r"^-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----")?,
            pem_end: compile(r"-----END ([A-Z0-9]+ )*PRIVATE KEY-----")?,
        })
    }

    /// Every anchored finding in `text`.
    pub(super) fn scan(&self, text: &str, internal: &[String], out: &mut Vec<Finding>) {
        let b = text.as_bytes();
        for hit in self.automaton.find_iter(text) {
            let (anchor, literal) = self.anchors[hit.pattern().as_usize()];
            let (start, end) = (hit.start(), hit.end());
            let exact = &b[start..end] == literal.as_bytes();
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
                Anchor::Secret(i) if exact || literal == "0x" => {
                    self.secret(text, start, i, out);
                }
                Anchor::Keyword => {
                    if let Some(f) = self.assigned(text, end) {
                        out.push(f);
                    }
                }
                Anchor::Pem if exact => {
                    if let Some(f) = self.pem(text, start) {
                        out.push(f);
                    }
                }
                _ => {}
            }
        }
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

    /// `password = "…"`, `api_key: …`: the value, when it looks like a credential.
    fn assigned(&self, text: &str, keyword_end: usize) -> Option<Finding> {
        let caps = self.assignment.captures(&text[keyword_end..])?;
        let value = caps.get(1)?;
        credential_value(value.as_str()).then(|| {
            Finding::new(
                Kind::Secret,
                keyword_end + value.start(),
                keyword_end + value.end(),
                "keyword_entropy",
            )
        })
    }

    fn pem(&self, text: &str, start: usize) -> Option<Finding> {
        let begin = self.pem_begin.find(&text[start..])?;
        let body_start = start + begin.end();
        let window_end = (body_start + 65_536).min(text.len());
        let window = text
            .get(body_start..window_end)
            .unwrap_or(&text[body_start..]);
        let end = self.pem_end.find(window)?;
        Some(Finding::new(
            Kind::Secret,
            start,
            body_start + end.end(),
            "pem_private_key",
        ))
    }
}

/// A value that a credential keyword names: long and random enough, not a plain word or number.
pub(super) fn credential_value(value: &str) -> bool {
    let mixed = value.bytes().any(|c| c.is_ascii_digit())
        || value.bytes().any(|c| c.is_ascii_uppercase())
        || value.bytes().any(|c| !c.is_ascii_alphanumeric());
    value.len() >= 8 && !value.bytes().all(|c| c.is_ascii_digit()) && mixed && entropy(value) >= 3.0
}
