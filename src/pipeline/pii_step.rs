//! Steps 5 (detect) and 10 (redact) seen from the pipeline: what personal data the request
//! carries, for the rules to read, and the redactions the verdict obliges, applied to the bytes
//! that are forwarded. Kinds and counts reach logs and the audit trail; values never do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use ring::hmac;
use serde_json::Value;

use crate::config::PiiConfig;
use crate::error::{ErrorKind, ProxyError, Side};
use crate::pii::{self, Redaction, Replacer, Scanner, ScannerError, Style, Vault};
use crate::policy::{BodyFacts, Facts, Obligation};

/// The scanner, the hash key and the pseudonym vault, built once.
pub struct PiiStep {
    scanner: Scanner,
    hash_key: hmac::Key,
    vault: Vault,
    scan_headers: bool,
}

/// How the body of a request is shaped, for redaction.
pub enum BodyShape<'a> {
    /// A JSON document (already parsed).
    Json(&'a mut Value),
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data`: scanned, not rewritten.
    Multipart,
    /// UTF-8 text of any other type.
    Text,
    /// Bytes that are not UTF-8: scanned as far as they read as text, not rewritten.
    Opaque,
}

/// What redaction did to a request.
pub struct Redacted {
    /// The body to forward, when it changed.
    pub body: Option<Bytes>,
    /// The query to forward, when it changed.
    pub query: Option<String>,
    /// Values replaced, by kind.
    pub replaced: BTreeMap<String, u64>,
    /// Whether pseudonyms were handed out (the response must be restored).
    pub pseudonymized: bool,
}

impl PiiStep {
    /// Builds the detectors of `config`; without a configured hash key, `hash` redactions use a
    /// random key of this process (stable across requests, not across restarts).
    pub fn new(config: &PiiConfig) -> Result<PiiStep, ScannerError> {
        let hash_key = hash_key(config)?;
        Ok(PiiStep {
            scanner: Scanner::new(&config.scanner)?,
            hash_key,
            vault: Vault::new(
                config.vault_max_executions,
                config.vault_max_values,
                config.vault_idle,
            ),
            scan_headers: config.scan_headers,
        })
    }

    /// The scanner, for tools that show what it finds.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// 5. detect: findings counted by kind in the string values of a JSON body, form fields, text
    ///    parts, a text body (`raw_text`), the query, and headers when configured.
    pub fn detect(&self, facts: &Facts, raw_text: Option<&str>) -> BTreeMap<String, u64> {
        let s = &self.scanner;
        let mut counts = self.detect_body(&facts.body, raw_text);
        let mut add = |found: Vec<pii::Finding>| {
            for (kind, n) in pii::count_by_kind(&found) {
                *counts.entry(kind).or_insert(0) += n;
            }
        };
        for (name, value) in &facts.request.query {
            add(s.scan_field(name, value));
        }
        if self.scan_headers {
            for (name, value) in &facts.request.headers {
                add(s.scan_field(name, value));
            }
        }
        counts
    }

    /// Findings counted by kind in a body (request or response): JSON string values, form
    /// fields, text parts, or the whole text (`raw_text`).
    pub fn detect_body(&self, body: &BodyFacts, raw_text: Option<&str>) -> BTreeMap<String, u64> {
        let s = &self.scanner;
        let mut counts = BTreeMap::new();
        let mut add = |found: Vec<pii::Finding>| {
            for (kind, n) in pii::count_by_kind(&found) {
                *counts.entry(kind).or_insert(0) += n;
            }
        };
        for f in pii::scan_json(s, &body.json) {
            add(vec![f.finding]);
        }
        for (name, value) in &body.form {
            add(s.scan_field(name, value));
        }
        // Form values may also stand among the text parts; each is counted once.
        for text in body
            .text
            .iter()
            .filter(|t| !body.form.values().any(|v| v == *t))
        {
            add(s.scan(text));
        }
        if let Some(text) = raw_text {
            add(s.scan(text));
        }
        counts
    }

    /// 10. redact: applies the obligations to the body and the query. A body whose findings
    ///     cannot be rewritten (multipart) is refused rather than forwarded unredacted.
    pub fn redact(
        &self,
        obligations: &[Obligation],
        session: &str,
        body: (&Bytes, BodyShape<'_>),
        query: Option<&str>,
    ) -> Result<Redacted, ProxyError> {
        let rules: Vec<(Vec<String>, Style)> = obligations
            .iter()
            .map(|Obligation::Redact { kinds, style }| (kinds.clone(), *style))
            .collect();
        let mut redaction =
            Redaction::new(rules, &self.hash_key, &self.vault, session, Instant::now());
        let refused =
            |e: pii::VaultError| ProxyError::new(ErrorKind::Forbidden, Side::Agent, e.to_string());
        let (bytes, shape) = body;
        let new_body = match shape {
            BodyShape::Json(value) => {
                let changed =
                    pii::redact_json(&self.scanner, value, &mut redaction).map_err(refused)?;
                (changed > 0)
                    .then(|| serde_json::to_vec(value).map(Bytes::from))
                    .transpose()
                    .map_err(|e| ProxyError::internal(format!("redacted JSON: {e}")))?
            }
            BodyShape::Form => self
                .redact_pairs(bytes, &mut redaction)
                .map_err(refused)?
                .map(Bytes::from),
            BodyShape::Text => {
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                let findings = self.scanner.scan(text);
                pii::redact(text, &findings, &mut redaction)
                    .map_err(refused)?
                    .map(Bytes::from)
            }
            BodyShape::Multipart | BodyShape::Opaque => {
                let text = String::from_utf8_lossy(bytes);
                let selected = self
                    .scanner
                    .scan(&text)
                    .iter()
                    .any(|f| redaction.style_for(&f.kind).is_some());
                if selected {
                    let what = if matches!(shape, BodyShape::Multipart) {
                        "a multipart body"
                    } else {
                        "a body that is not valid UTF-8"
                    };
                    return Err(ProxyError::new(
                        ErrorKind::Forbidden,
                        Side::Agent,
                        format!(
                            "the policy requires redacting personal data in {what}, which this \
                             proxy cannot rewrite; the request was not forwarded unredacted"
                        ),
                    ));
                }
                None
            }
        };
        let new_query = match query {
            Some(q) => self
                .redact_pairs(q.as_bytes(), &mut redaction)
                .map_err(refused)?,
            None => None,
        };
        Ok(Redacted {
            body: new_body,
            query: new_query,
            replaced: redaction.replaced.clone(),
            pseudonymized: redaction.pseudonymized,
        })
    }

    /// `a=1&b=2` with each value redacted; `None` when nothing changed.
    fn redact_pairs(
        &self,
        encoded: &[u8],
        redaction: &mut impl Replacer,
    ) -> Result<Option<String>, pii::VaultError> {
        let mut changed = false;
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(encoded) {
            let findings = self.scanner.scan_field(&name, &value);
            match pii::redact(&value, &findings, redaction)? {
                Some(redacted) => {
                    changed = true;
                    out.append_pair(&name, &redacted);
                }
                None => {
                    out.append_pair(&name, &value);
                }
            }
        }
        Ok(changed.then(|| out.finish()))
    }

    /// Refuses a request whose path, or (when scanned) headers, hold a kind `obligations` redact:
    /// those are forwarded as they are, so the request must not go.
    pub fn check_unrewritable(
        &self,
        obligations: &[Obligation],
        facts: &Facts,
        path: &str,
    ) -> Result<(), ProxyError> {
        let decoded_path = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        let mut places: Vec<(&str, String)> = vec![("path", decoded_path.into_owned())];
        if self.scan_headers {
            places.extend(
                facts
                    .request
                    .headers
                    .iter()
                    .map(|(name, value)| ("a header", format!("{name}: {value}"))),
            );
        }
        match places
            .iter()
            .find(|(_, text)| self.obliged_in(obligations, text))
        {
            None => Ok(()),
            Some((place, _)) => Err(ProxyError::new(
                ErrorKind::Forbidden,
                Side::Agent,
                format!(
                    "the policy requires redacting personal data found in {place}, which this \
                     proxy does not rewrite; the request was not forwarded unredacted"
                ),
            )),
        }
    }

    /// Whether `text` holds a kind one of `obligations` redacts.
    pub fn obliged_in(&self, obligations: &[Obligation], text: &str) -> bool {
        self.scanner.scan(text).iter().any(|f| {
            obligations
                .iter()
                .any(|Obligation::Redact { kinds, .. }| kinds.iter().any(|k| f.kind.selected_by(k)))
        })
    }

    /// Forgets sessions idle for longer than the vault keeps them.
    /// `text` with every finding masked (`[EMAIL]`), whatever the policies oblige: what a
    /// reviewer may see of a held request.
    pub fn preview(&self, text: &str) -> String {
        struct MaskAll;
        impl crate::pii::Replacer for MaskAll {
            fn replace(
                &mut self,
                finding: &crate::pii::Finding,
                _value: &str,
            ) -> Result<Option<String>, crate::pii::VaultError> {
                Ok(Some(format!("[{}]", finding.kind.label())))
            }
        }
        let findings = self.scanner.scan(text);
        match crate::pii::redact(text, &findings, &mut MaskAll) {
            Ok(Some(masked)) => masked,
            Ok(None) => text.to_string(),
            Err(_) => "[preview withheld]".to_string(),
        }
    }

    pub fn forget_idle(&self) {
        self.vault.sweep(Instant::now());
    }

    /// The pseudonyms of `session` now, to restore the answer of a request just redacted.
    pub fn pseudonyms(&self, session: &str) -> Option<Arc<HashMap<String, String>>> {
        self.vault.names(session)
    }
}

/// The shape of a body as redaction sees it, decided before the JSON moves into the facts.
pub(super) enum RawShape {
    /// Parsed JSON.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/*`.
    Multipart,
    /// UTF-8 text.
    Text,
    /// Anything else.
    Opaque,
}

pub(super) fn body_shape(body: &BodyFacts, decoded: &Bytes) -> RawShape {
    let content_type = body.content_type.as_str();
    if !body.json.is_null() {
        RawShape::Json
    } else if content_type == "application/x-www-form-urlencoded" {
        RawShape::Form
    } else if content_type.starts_with("multipart/") {
        RawShape::Multipart
    } else if !decoded.is_empty() && std::str::from_utf8(decoded).is_ok() {
        RawShape::Text
    } else {
        RawShape::Opaque
    }
}

impl RawShape {
    /// The shape redaction works on, with the parsed JSON when there is one.
    pub(super) fn with_json(self, json: &mut serde_json::Value) -> BodyShape<'_> {
        match self {
            RawShape::Json => BodyShape::Json(json),
            RawShape::Form => BodyShape::Form,
            RawShape::Multipart => BodyShape::Multipart,
            RawShape::Text => BodyShape::Text,
            RawShape::Opaque => BodyShape::Opaque,
        }
    }
}

/// The key of the `hash` style: the configured one, or a random key of this process.
pub fn hash_key(config: &PiiConfig) -> Result<hmac::Key, ScannerError> {
    match &config.hash_key {
        Some(key) => Ok(hmac::Key::new(hmac::HMAC_SHA256, key.expose().as_bytes())),
        None => {
            let rng = ring::rand::SystemRandom::new();
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).map_err(|_| ScannerError::Detector {
                name: "hash".into(),
                reason: "no random source for the hash key".into(),
            })
        }
    }
}

/// The vault session of a request: one per agent and execution.
pub fn session_of(agent: &str, execution: Option<&str>) -> String {
    format!("{agent}/{}", execution.unwrap_or("-"))
}
