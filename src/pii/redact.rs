//! How findings are replaced: `mask` (`[EMAIL]`), `hash` (a keyed HMAC, the same person always
//! the same token, e.g. `[EMAIL:3f2a9c1b7d4e]`), `pseudonymize` (`<EMAIL_1>`, restored in the
//! response from the execution's vault).

use std::fmt;

use ring::hmac;

use super::vault::{Vault, VaultError};
use super::{Finding, Kind};

/// A redaction style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Style {
    /// `[EMAIL]`: nothing of the value survives.
    Mask,
    /// `[EMAIL:<12 hex>]`: a keyed hash, stable across requests, irreversible without the key.
    Hash,
    /// `<EMAIL_1>`: reversible; the original comes back in the response.
    Pseudonymize,
}

impl Style {
    /// The style of a policy's `style:` name.
    pub fn parse(name: &str) -> Option<Style> {
        match name {
            "mask" => Some(Style::Mask),
            "hash" => Some(Style::Hash),
            "pseudonymize" | "pseudonymise" => Some(Style::Pseudonymize),
            _ => None,
        }
    }

    /// The name policies use.
    pub fn name(self) -> &'static str {
        match self {
            Style::Mask => "mask",
            Style::Hash => "hash",
            Style::Pseudonymize => "pseudonymize",
        }
    }
}

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Replaces one finding's value; `None` leaves it as it is.
pub trait Replacer {
    /// The replacement for `value`, found as `finding`.
    fn replace(&mut self, finding: &Finding, value: &str) -> Result<Option<String>, VaultError>;
}

/// The redactions one request must undergo: which kinds in which style, with the hash key and the
/// execution's vault. When several obligations name a kind, the strongest style wins (mask over
/// hash over pseudonymize).
pub struct Redaction<'a> {
    rules: Vec<(Vec<String>, Style)>,
    hash_key: &'a hmac::Key,
    vault: &'a Vault,
    session: &'a str,
    now: std::time::Instant,
    /// How many values were replaced, by kind name.
    pub replaced: std::collections::BTreeMap<String, u64>,
    /// Whether any pseudonym was handed out (the response then needs restoring).
    pub pseudonymized: bool,
}

impl<'a> Redaction<'a> {
    /// Redactions of the kinds each `(kinds, style)` names.
    pub fn new(
        rules: Vec<(Vec<String>, Style)>,
        hash_key: &'a hmac::Key,
        vault: &'a Vault,
        session: &'a str,
        now: std::time::Instant,
    ) -> Redaction<'a> {
        Redaction {
            rules,
            hash_key,
            vault,
            session,
            now,
            replaced: Default::default(),
            pseudonymized: false,
        }
    }

    /// The style that applies to `kind`, if any obligation names it.
    pub fn style_for(&self, kind: &Kind) -> Option<Style> {
        self.rules
            .iter()
            .filter(|(kinds, _)| kinds.iter().any(|k| kind.selected_by(k)))
            .map(|(_, style)| *style)
            .min()
    }
}

impl Replacer for Redaction<'_> {
    fn replace(&mut self, finding: &Finding, value: &str) -> Result<Option<String>, VaultError> {
        let Some(style) = self.style_for(&finding.kind) else {
            return Ok(None);
        };
        let label = finding.kind.label();
        let replacement = match style {
            Style::Mask => format!("[{label}]"),
            Style::Hash => {
                // Folded first: `４１１１...` and `4111...` are one card, one token.
                let folded = super::fold::fold(value).map(|f| f.text);
                let mut message = finding.kind.name().as_bytes().to_vec();
                message.push(0);
                message.extend_from_slice(folded.as_deref().unwrap_or(value).as_bytes());
                let tag = hmac::sign(self.hash_key, &message);
                let hex = hex::encode(&tag.as_ref()[..6]);
                format!("[{label}:{hex}]")
            }
            Style::Pseudonymize => {
                self.pseudonymized = true;
                self.vault
                    .pseudonym(self.session, &finding.kind, value, self.now)?
            }
        };
        *self
            .replaced
            .entry(finding.kind.name().to_string())
            .or_insert(0) += 1;
        Ok(Some(replacement))
    }
}

/// `text` with every finding the replacer replaces swapped for its replacement.
pub fn redact(
    text: &str,
    findings: &[Finding],
    replacer: &mut impl Replacer,
) -> Result<Option<String>, VaultError> {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    let mut changed = false;
    for f in findings {
        let value = &text[f.start..f.end];
        if let Some(replacement) = replacer.replace(f, value)? {
            out.push_str(&text[last..f.start]);
            out.push_str(&replacement);
            last = f.end;
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    out.push_str(&text[last..]);
    Ok(Some(out))
}
