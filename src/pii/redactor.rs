//! Steps 5 (detect) and 10 (redact) for whole requests and answers: what personal data a body,
//! a query and headers carry, counted by kind for the rules, and the redactions a verdict obliges,
//! applied by the shape of the body (JSON stays valid, form fields stay fields). Kinds and counts
//! reach logs and the audit trail; values never do.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ring::hmac;
use serde_json::Value;

use super::head::RequestHead;
use super::json::{redact_value, scan_value};
use super::known::Known;
use super::{
    Finding, Redaction, Replacer, Scanner, ScannerConfig, ScannerError, Style, Vault, VaultError,
};
use crate::secret::Secret;

/// The `pii` section: custom detectors, the hash key, the pseudonym vault's bounds.
#[derive(Debug, Clone)]
pub struct PiiConfig {
    /// Built-in detectors plus the configured dictionaries and patterns.
    pub scanner: ScannerConfig,
    /// Key of the `hash` style; a random per-process key when not configured.
    pub hash_key: Option<Secret>,
    /// Whether header values are scanned (paths, queries, bodies and forms always are).
    pub scan_headers: bool,
    /// Lower-case names of the headers never scanned: the credentials a provider needs
    /// (`authorization`, `cookie`, `x-api-key`, ...), which redaction must not rewrite.
    pub unscanned_headers: Vec<String>,
    /// Most executions whose pseudonyms are kept at once.
    pub vault_max_executions: usize,
    /// Most values one execution may pseudonymize.
    pub vault_max_values: usize,
    /// An execution idle this long has its pseudonyms forgotten.
    pub vault_idle: Duration,
}

impl PiiConfig {
    /// Names of the configured detectors (dictionaries and patterns).
    pub fn custom_kinds(&self) -> Vec<String> {
        let dictionaries = self.scanner.dictionaries.iter().map(|d| d.name.clone());
        let patterns = self.scanner.patterns.iter().map(|p| p.name.clone());
        dictionaries.chain(patterns).collect()
    }
}

/// Which kinds to redact, and how: one entry per obligation of the verdict.
pub type RedactRule = (Vec<String>, Style);

/// A body as inspection read it: the parts the scanner looks at.
pub struct BodyParts<'a> {
    /// `Content-Type` without parameters, lower-case.
    pub content_type: &'a str,
    /// The body as JSON (`null` when it is not JSON).
    pub json: &'a Value,
    /// Form fields.
    pub form: &'a BTreeMap<String, String>,
    /// Text content (a `text/*` body, multipart text parts, the text of an event stream).
    pub text: &'a [String],
    /// The decoded bytes.
    pub decoded: &'a [u8],
    /// The headers of multipart parts (field names, file names): scanned, not rewritten.
    pub part_heads: &'a [String],
    /// For each of `text`, the byte range of `decoded` it stands in as it is, when it does: a
    /// multipart part redaction may rewrite.
    pub part_spans: &'a [Option<(usize, usize)>],
}

/// How a body is shaped, for redaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// A JSON document.
    Json,
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/*`: parts that stand in the body as they are rewritten, others refused.
    Multipart,
    /// UTF-8 text of any other type.
    Text,
    /// Bytes that are not UTF-8: scanned as far as they read as text, not rewritten.
    Opaque,
}

impl BodyShape {
    /// The shape of `body`: a declared form is one, even when it parses as JSON too (the upstream
    /// reads its fields, `{"x": "&to=jane%40example.com&"}` has one named `to`).
    pub fn of(body: &BodyParts<'_>) -> BodyShape {
        if body.content_type == "application/x-www-form-urlencoded" {
            BodyShape::Form
        } else if body.content_type.starts_with("multipart/") {
            BodyShape::Multipart
        } else if !body.json.is_null() {
            BodyShape::Json
        } else if !body.decoded.is_empty() && std::str::from_utf8(body.decoded).is_ok() {
            BodyShape::Text
        } else {
            BodyShape::Opaque
        }
    }
}

/// Why obliged redactions could not be carried out; the request or answer is then not forwarded.
#[derive(Debug, thiserror::Error)]
pub enum RedactError {
    /// The pseudonym vault refused (bounds reached).
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Data to redact sits in a body this proxy cannot rewrite.
    #[error(
        "the policy requires redacting personal data in {0}, which this proxy cannot rewrite; \
         the request was not forwarded unredacted"
    )]
    UnrewritableBody(&'static str),
    /// Data to redact sits in the path or a header the proxy does not rewrite.
    #[error(
        "the policy requires redacting personal data found in {0}, which this proxy does not \
         rewrite; the request was not forwarded unredacted"
    )]
    UnrewritablePlace(String),
}

/// What redaction did.
pub struct Redacted {
    /// The body to forward, when it changed.
    pub body: Option<Bytes>,
    /// The query to forward, when it changed.
    pub query: Option<String>,
    /// Header fields rewritten: the index in [`RequestHead::headers`] and the new value.
    pub headers: Vec<(usize, String)>,
    /// Values replaced, by kind.
    pub replaced: BTreeMap<String, u64>,
    /// Whether pseudonyms were handed out (the answer must be restored).
    pub pseudonymized: bool,
}

/// The scanner, the hash key and the pseudonym vault, built once.
pub struct Redactor {
    pub(super) scanner: Scanner,
    hash_key: hmac::Key,
    vault: Vault,
    pub(super) scan_headers: bool,
    pub(super) unscanned_headers: Vec<String>,
}

impl Redactor {
    /// Builds the detectors of `config`; without a configured hash key, `hash` redactions use a
    /// random key of this process (stable across requests, not across restarts).
    pub fn new(config: &PiiConfig) -> Result<Redactor, ScannerError> {
        Ok(Redactor {
            scanner: Scanner::new(&config.scanner)?,
            hash_key: hash_key(config)?,
            vault: Vault::new(
                config.vault_max_executions,
                config.vault_max_values,
                config.vault_idle,
            ),
            scan_headers: config.scan_headers,
            unscanned_headers: config.unscanned_headers.clone(),
        })
    }

    /// The scanner, for tools that show what it finds.
    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// 5. detect: findings counted by kind in a request's body, its path, its query (names and
    ///    values) and its headers (but the credentials, when header scanning is on). A body that
    ///    is neither JSON, form nor text parts is scanned whole (bytes that are not UTF-8 read as
    ///    U+FFFD).
    pub fn detect_request(
        &self,
        body: &BodyParts<'_>,
        head: &RequestHead<'_>,
    ) -> BTreeMap<String, u64> {
        self.detect_request_noting(body, head, None)
    }

    /// [`Redactor::detect_request`], and what it found where in a JSON body, so
    /// [`Redactor::redact_known`] does not scan it again.
    pub fn detect_noting(
        &self,
        body: &BodyParts<'_>,
        head: &RequestHead<'_>,
    ) -> (BTreeMap<String, u64>, Known) {
        let mut known = Known::default();
        let counts = self.detect_request_noting(body, head, Some(&mut known));
        (counts, known)
    }

    pub(super) fn detect_request_noting(
        &self,
        body: &BodyParts<'_>,
        head: &RequestHead<'_>,
        mut known: Option<&mut Known>,
    ) -> BTreeMap<String, u64> {
        let shape = BodyShape::of(body);
        let whole = matches!(shape, BodyShape::Text | BodyShape::Opaque)
            && body.text.is_empty()
            && !body.decoded.is_empty();
        let mut counts = BTreeMap::new();
        for findings in self.body_findings(body, whole, known.as_deref_mut()) {
            add(&mut counts, findings);
        }
        for findings in self.head_findings(head, known) {
            add(&mut counts, findings);
        }
        counts
    }

    /// Findings counted by kind in an answer's body; an answer that is neither JSON, form nor
    /// text is scanned whole.
    pub fn detect_answer(&self, body: &BodyParts<'_>) -> BTreeMap<String, u64> {
        let plain = body.json.is_null() && body.form.is_empty() && body.text.is_empty();
        let mut counts = BTreeMap::new();
        for findings in self.body_findings(body, plain && !body.decoded.is_empty(), None) {
            add(&mut counts, findings);
        }
        counts
    }

    /// Every finding in a body, place by place: JSON members (names and values), form fields
    /// (names and values), multipart part headers, text parts, or the whole text.
    fn body_findings(
        &self,
        body: &BodyParts<'_>,
        whole: bool,
        known: Option<&mut Known>,
    ) -> Vec<Vec<Finding>> {
        let s = &self.scanner;
        let mut found = vec![super::json::scan_json_noting(s, body.json, known)];
        if BodyShape::of(body) == BodyShape::Form {
            for (name, value) in form_urlencoded::parse(body.decoded) {
                found.push(s.scan(&name));
                found.push(scan_value(s, &name, &value));
            }
        } else {
            for (name, value) in body.form {
                found.push(scan_value(s, name, value));
            }
            // Multipart values also stand among the text parts; each is counted once.
            for text in body
                .text
                .iter()
                .filter(|t| !body.form.values().any(|v| v == *t))
            {
                found.push(scan_value(s, "", text));
            }
            for head in body.part_heads {
                found.push(s.scan(head));
            }
        }
        if whole {
            found.push(scan_value(s, "", &String::from_utf8_lossy(body.decoded)));
        }
        found
    }

    /// 10. redact: applies `rules` to a body of `shape` (with its parsed `json`) and, for a
    ///     request, to its `head`: query names and values and header values are rewritten; a body
    ///     or a place whose findings cannot be rewritten (an encoded multipart part, not UTF-8,
    ///     the path, a header the request is framed by) is refused rather than forwarded
    ///     unredacted.
    pub fn redact(
        &self,
        rules: Vec<RedactRule>,
        session: &str,
        body: (&BodyParts<'_>, BodyShape, &mut Value),
        head: Option<&RequestHead<'_>>,
    ) -> Result<Redacted, RedactError> {
        self.redact_known(rules, session, body, head, None)
    }

    /// [`Redactor::redact`] of a request whose detection noted in `known` where its JSON body
    /// held findings: only those places are scanned again.
    pub fn redact_known(
        &self,
        rules: Vec<RedactRule>,
        session: &str,
        (body, shape, json): (&BodyParts<'_>, BodyShape, &mut Value),
        head: Option<&RequestHead<'_>>,
        known: Option<&Known>,
    ) -> Result<Redacted, RedactError> {
        let mut redaction =
            Redaction::new(rules, &self.hash_key, &self.vault, session, Instant::now());
        if let Some(head) = head {
            self.check_path(head.path, &redaction, known)?;
        }
        let bytes = body.decoded;
        let body = match shape {
            BodyShape::Json => {
                let changed =
                    super::json::redact_json_known(&self.scanner, json, &mut redaction, known)?;
                // Redacted values are placeholders of about the length of what they replace.
                let room = bytes.len() + bytes.len() / 8;
                (changed > 0).then(|| Bytes::from(crate::json_text::to_vec_sized(json, room)))
            }
            BodyShape::Form => self.redact_pairs(bytes, &mut redaction)?.map(Bytes::from),
            BodyShape::Text => {
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                redact_value(&self.scanner, "", text, &mut redaction)?.map(Bytes::from)
            }
            BodyShape::Multipart => self.redact_parts(body, &mut redaction)?,
            BodyShape::Opaque => {
                let selected = self
                    .body_findings(body, true, None)
                    .iter()
                    .flatten()
                    .any(|f| redaction.style_for(&f.kind).is_some());
                if selected {
                    return Err(RedactError::UnrewritableBody(
                        "a body that is not valid UTF-8",
                    ));
                }
                None
            }
        };
        let (query, headers) = match head {
            Some(head) => self.redact_head(head, &mut redaction, known)?,
            None => (None, Vec::new()),
        };
        Ok(Redacted {
            body,
            query,
            headers,
            replaced: redaction.replaced.clone(),
            pseudonymized: redaction.pseudonymized,
        })
    }

    /// A multipart body with its parts redacted where they stand; `None` when nothing changed. A
    /// part in a transfer encoding or another charset, or part headers, holding something to
    /// redact refuse the request: those are not rewritten.
    fn redact_parts(
        &self,
        body: &BodyParts<'_>,
        redaction: &mut Redaction<'_>,
    ) -> Result<Option<Bytes>, RedactError> {
        let obliged = |found: &[Finding], r: &Redaction<'_>| {
            found.iter().any(|f| r.style_for(&f.kind).is_some())
        };
        if body
            .part_heads
            .iter()
            .any(|head| obliged(&self.scanner.scan(head), redaction))
        {
            return Err(RedactError::UnrewritableBody(
                "the headers of a multipart part, or a part in a transfer encoding as sent",
            ));
        }
        let mut edits = Vec::new();
        for (i, text) in body.text.iter().enumerate() {
            // Named as detection names it: a field that appears once.
            let name = body.form.iter().find(|(_, v)| *v == text).map(|(n, _)| n);
            let name = name.map_or("", String::as_str);
            let Some(redacted) = redact_value(&self.scanner, name, text, redaction)? else {
                continue;
            };
            // `\r\n--` could begin a delimiter the masked text did not have.
            match body.part_spans.get(i).copied().flatten() {
                Some(span) if !redacted.contains("\r\n--") => edits.push((span, redacted)),
                _ => {
                    return Err(RedactError::UnrewritableBody(
                        "a multipart part in a transfer encoding or another charset",
                    ));
                }
            }
        }
        edits.sort_by_key(|((start, _), _)| *start);
        let mut out = Vec::with_capacity(body.decoded.len());
        let mut last = 0;
        for ((start, end), text) in &edits {
            out.extend_from_slice(&body.decoded[last..*start]);
            out.extend_from_slice(text.as_bytes());
            last = *end;
        }
        out.extend_from_slice(&body.decoded[last..]);
        // Whatever the parts missed (an answer whose parts did not parse) must not pass either.
        if obliged(
            &self.scanner.scan(&String::from_utf8_lossy(&out)),
            redaction,
        ) {
            return Err(RedactError::UnrewritableBody("a multipart body"));
        }
        Ok((!edits.is_empty()).then(|| Bytes::from(out)))
    }

    /// `a=1&b=2` with each name and value redacted; `None` when nothing changed.
    pub(super) fn redact_pairs(
        &self,
        encoded: &[u8],
        redaction: &mut impl Replacer,
    ) -> Result<Option<String>, VaultError> {
        let mut changed = false;
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(encoded) {
            let new_value = redact_value(&self.scanner, &name, &value, redaction)?;
            let findings = self.scanner.scan(&name);
            let new_name = super::redact(&name, &findings, redaction)?;
            changed |= new_value.is_some() || new_name.is_some();
            out.append_pair(
                new_name.as_deref().unwrap_or(&name),
                new_value.as_deref().unwrap_or(&value),
            );
        }
        Ok(changed.then(|| out.finish()))
    }

    /// `text` with every finding masked (`[EMAIL]`), whatever the policies oblige: what a
    /// reviewer may see of a held request.
    pub fn preview(&self, text: &str) -> String {
        struct MaskAll;
        impl Replacer for MaskAll {
            fn replace(
                &mut self,
                finding: &Finding,
                _value: &str,
            ) -> Result<Option<String>, VaultError> {
                Ok(Some(format!("[{}]", finding.kind.label())))
            }
        }
        let findings = self.scanner.scan(text);
        match super::redact(text, &findings, &mut MaskAll) {
            Ok(Some(masked)) => masked,
            Ok(None) => text.to_string(),
            Err(_) => "[preview withheld]".to_string(),
        }
    }

    /// Forgets sessions idle for longer than the vault keeps them.
    pub fn forget_idle(&self) {
        self.vault.sweep(Instant::now());
    }

    /// The pseudonyms of `session` now, to restore the answer of a request just redacted.
    pub fn pseudonyms(&self, session: &str) -> Option<Arc<HashMap<String, String>>> {
        self.vault.names(session)
    }
}

pub(super) fn add(counts: &mut BTreeMap<String, u64>, found: Vec<Finding>) {
    for (kind, n) in super::count_by_kind(&found) {
        *counts.entry(kind).or_insert(0) += n;
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
