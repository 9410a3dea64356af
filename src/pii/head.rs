//! The request line and headers, as detection reads them and redaction rewrites them: the path
//! (percent-decoded), the query's names and values, and every header name and value (read
//! percent-decoded too, as the URL a `Referer` or `Link` holds is read) but `Host`
//! and the credentials a provider needs (`Authorization`, `Cookie`, `x-api-key`, ...: config names
//! them), which carry keys on purpose and are the broker's to replace.
//!
//! Redaction rewrites query names and values and header values in place. The path names the
//! resource a request acts on, and some headers frame it (`Content-Type`, `Content-Length`, ...):
//! data to redact there refuses the request, since rewriting would change what it does; so does
//! data in a header name (`X-4111111111111111`), which has no room for `[CARD]`, and data that
//! only reads once a header value is percent-decoded.

use std::borrow::Cow;

use super::known::{Known, Place, Reuse, reuse};
use super::redactor::{RedactError, Redactor};
use super::{Finding, Redaction};

/// The parts of a request besides its body.
#[derive(Debug, Clone, Copy)]
pub struct RequestHead<'a> {
    /// The path as sent (percent-encoded), without the query.
    pub path: &'a str,
    /// The query as sent, if any.
    pub query: Option<&'a str>,
    /// Every header field in order, repeated ones one by one: lower-case name and value.
    pub headers: &'a [(String, String)],
}

impl<'a> RequestHead<'a> {
    /// The path and query of `uri`, and `headers` (see [`header_fields`]).
    pub fn of(uri: &'a http::Uri, headers: &'a [(String, String)]) -> RequestHead<'a> {
        RequestHead {
            path: uri.path(),
            query: uri.query(),
            headers,
        }
    }
}

/// What redaction rewrote of a request's head: the new query when it changed, and header fields by
/// index with their new values.
type HeadRewrite = (Option<String>, Vec<(usize, String)>);

/// Headers the request is framed by: never rewritten.
const FRAMING: [&str; 11] = [
    "content-type",
    "content-length",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "expect",
    "sec-websocket-key",
    "sec-websocket-protocol",
];

impl Redactor {
    /// The header fields scanned, with their index in `headers`: all but the unscanned ones, when
    /// header scanning is on. `Host` names the destination (rules read it as `request.host`),
    /// which is not data the request carries.
    fn scanned_headers<'h>(
        &'h self,
        headers: &'h [(String, String)],
    ) -> impl Iterator<Item = (usize, &'h str, &'h str)> + 'h {
        headers
            .iter()
            .enumerate()
            .filter(|_| self.scan_headers)
            .filter(|(_, (name, _))| name != "host" && !self.unscanned_headers.contains(name))
            .map(|(i, (name, value))| (i, name.as_str(), value.as_str()))
    }

    /// Every finding in the path, the query (names and values) and the scanned headers; with
    /// `known`, what the path and the header fields held is noted there (a value with a `%` only
    /// as it is read, which is not what redaction scans).
    pub(super) fn head_findings(
        &self,
        head: &RequestHead<'_>,
        mut known: Option<&mut Known>,
    ) -> Vec<Vec<Finding>> {
        let s = &self.scanner;
        let mut scan = |text: &str, noted: bool| {
            let found = s.scan(text);
            if noted {
                super::json::keep(&mut known, (Place::Head, "", text), &found, true);
            }
            found
        };
        let mut found = vec![scan(&decoded_path(head.path), true)];
        for (_, name, value) in self.scanned_headers(head.headers) {
            found.push(scan(&name_words(name), true));
            let read = as_read(value);
            let plain = matches!(read, Cow::Borrowed(_));
            found.push(scan(&read, plain));
        }
        for (name, value) in form_urlencoded::parse(head.query.unwrap_or_default().as_bytes()) {
            found.push(s.scan(&name));
            found.push(super::json::scan_value(s, &name, &value));
        }
        found
    }

    /// The findings of `text`, a place of the head: those detection noted in `known`, or a scan.
    fn head_place(&self, text: &str, known: Option<&Known>) -> Vec<Finding> {
        match reuse(known, Place::Head, "", text) {
            Reuse::Clean => Vec::new(),
            Reuse::Findings(found) => found,
            Reuse::Rescan => self.scanner.scan(text),
        }
    }

    /// Refuses a path that holds a kind `redaction` redacts.
    pub(super) fn check_path(
        &self,
        path: &str,
        redaction: &Redaction<'_>,
        known: Option<&Known>,
    ) -> Result<(), RedactError> {
        match obliged(redaction, &self.head_place(&decoded_path(path), known)) {
            true => Err(RedactError::UnrewritablePlace("the URL path".into())),
            false => Ok(()),
        }
    }

    /// The query and header values redacted: the new query when it changed, and the header fields
    /// rewritten (by index). A framing header holding a kind to redact refuses the request.
    pub(super) fn redact_head(
        &self,
        head: &RequestHead<'_>,
        redaction: &mut Redaction<'_>,
        known: Option<&Known>,
    ) -> Result<HeadRewrite, RedactError> {
        let query = match head.query {
            Some(q) => self.redact_pairs(q.as_bytes(), redaction)?,
            None => None,
        };
        let mut headers = Vec::new();
        for (i, name, value) in self.scanned_headers(head.headers) {
            if obliged(redaction, &self.head_place(&name_words(name), known)) {
                // `[CARD]` is no header name.
                return Err(RedactError::UnrewritablePlace("a header name".into()));
            }
            // Detection noted a value as it is only when it has no `%` (see `head_findings`).
            let findings = match value.contains('%') {
                true => self.scanner.scan(value),
                false => self.head_place(value, known),
            };
            if FRAMING.contains(&name) && obliged(redaction, &findings) {
                return Err(RedactError::UnrewritablePlace(format!(
                    "the `{name}` header"
                )));
            }
            let redacted = super::redact(value, &findings, redaction)?;
            let sent = redacted.as_deref().unwrap_or(value);
            if sent.contains('%') && obliged(redaction, &self.scanner.scan(&as_read(sent))) {
                return Err(RedactError::UnrewritablePlace(format!(
                    "the `{name}` header, percent-encoded"
                )));
            }
            if let Some(redacted) = redacted {
                headers.push((i, redacted));
            }
        }
        Ok((query, headers))
    }

    /// Whether `text` (JSON read as JSON) holds a kind one of `rules` redacts.
    pub fn obliged_in(&self, rules: &[super::RedactRule], text: &str) -> bool {
        super::json::scan_value(&self.scanner, "", text)
            .iter()
            .any(|f| {
                rules
                    .iter()
                    .any(|(kinds, _)| kinds.iter().any(|k| f.kind.selected_by(k)))
            })
    }
}

/// A header name as words (`x-4111111111111111` → `x 4111111111111111`): a number joined to a
/// word by `-` reads as part of a token otherwise.
fn name_words(name: &str) -> String {
    name.replace('-', " ")
}

/// Whether one of `findings` is of a kind `redaction` redacts.
fn obliged(redaction: &Redaction<'_>, findings: &[Finding]) -> bool {
    findings
        .iter()
        .any(|f| redaction.style_for(&f.kind).is_some())
}

/// The path as a server reads it: percent-decoded (bytes that are not UTF-8 as U+FFFD).
fn decoded_path(path: &str) -> String {
    percent_encoding::percent_decode_str(path)
        .decode_utf8_lossy()
        .into_owned()
}

/// A header value as a reader of the URL or form it may hold reads it: percent-decoded when it
/// has escapes (`jane%40example.com`).
fn as_read(value: &str) -> std::borrow::Cow<'_, str> {
    match value.contains('%') {
        true => decoded_path(value).into(),
        false => value.into(),
    }
}

/// The fields of `headers` as [`RequestHead::headers`] holds them, in order. A value that is not
/// UTF-8 is read as Latin-1, as HTTP's readers read such bytes (`4111\xA01111...` has no-break
/// spaces, not U+FFFD).
pub fn header_fields(headers: &http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let bytes = value.as_bytes();
            let value = match std::str::from_utf8(bytes) {
                Ok(text) => text.to_string(),
                Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

/// `headers` with the fields at the given indexes (in [`header_fields`] order) rewritten. A value
/// that was not visible ASCII (the scanner read it as UTF-8 or Latin-1) cannot be rewritten
/// faithfully.
pub fn rewrite_headers(
    headers: &http::HeaderMap,
    replaced: &[(usize, String)],
) -> Result<http::HeaderMap, RedactError> {
    let refused = || RedactError::UnrewritablePlace("a header value that is not ASCII".into());
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (i, (name, value)) in headers.iter().enumerate() {
        let value = match replaced.iter().find(|(at, _)| *at == i) {
            Some((_, new)) if value.to_str().is_ok() => {
                http::HeaderValue::from_str(new).map_err(|_| refused())?
            }
            Some(_) => return Err(refused()),
            None => value.clone(),
        };
        out.append(name.clone(), value);
    }
    Ok(out)
}
