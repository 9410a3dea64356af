//! Email addresses: a local part, an `@` (or `[at]`, `(at)`, ` at `), and a domain whose labels are
//! valid and whose suffix is real (the public suffix list) or one of the configured internal ones.

use super::{Finding, Kind};

const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 253;

fn local_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"._%+-'".contains(&c)
}

/// The start of the local part ending just before `end`, if it is a valid one.
fn local_start(b: &[u8], end: usize) -> Option<usize> {
    let mut start = end;
    while start > 0 && local_char(b[start - 1]) && end - start < MAX_LOCAL {
        start -= 1;
    }
    while start < end && matches!(b[start], b'.' | b'\'' | b'-') {
        start += 1;
    }
    let local = &b[start..end];
    let valid = !local.is_empty()
        && !local.ends_with(b".")
        && !local.windows(2).any(|w| w == b"..")
        && start
            .checked_sub(1)
            .is_none_or(|i| !b[i].is_ascii_alphanumeric());
    valid.then_some(start)
}

/// Whether `domain` (lower-case, dot-separated) is a deliverable name.
pub(super) fn valid_domain(domain: &str, internal: &[String]) -> bool {
    if domain.len() > MAX_DOMAIN || !domain.contains('.') {
        return false;
    }
    let labels_ok = domain.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    });
    if !labels_ok {
        return false;
    }
    if internal
        .iter()
        .any(|suffix| domain.ends_with(suffix.as_str()) && domain.len() > suffix.len())
    {
        return true;
    }
    let tld = domain.rsplit('.').next().unwrap_or_default();
    if tld.bytes().all(|c| c.is_ascii_digit()) {
        return false;
    }
    psl::suffix(domain.as_bytes()).is_some_and(|s| s.is_known())
        && psl::domain(domain.as_bytes()).is_some()
}

/// `name@domain.tld` around the `@` at `at`.
pub(super) fn plain(text: &str, at: usize, internal: &[String]) -> Option<Finding> {
    let b = text.as_bytes();
    let start = local_start(b, at)?;
    let mut end = at + 1;
    while end < b.len()
        && (b[end].is_ascii_alphanumeric() || b[end] == b'.' || b[end] == b'-')
        && end - at <= MAX_DOMAIN
    {
        end += 1;
    }
    while end > at + 1 && matches!(b[end - 1], b'.' | b'-') {
        end -= 1;
    }
    let domain = text[at + 1..end].to_ascii_lowercase();
    valid_domain(&domain, internal).then(|| Finding::new(Kind::Email, start, end, "email_domain"))
}

/// Separators an obfuscated address writes instead of `.`, longest first.
const DOTS: &[&str] = &[
    " [dot] ", " (dot) ", " {dot} ", "[dot]", "(dot)", "{dot}", " dot ", ".",
];

/// `name [at] domain [dot] com` (also `(at)`, ` at `, `{at}`), anchored at the at-word
/// `start..end`.
pub(super) fn obfuscated(
    text: &str,
    start: usize,
    end: usize,
    internal: &[String],
) -> Option<Finding> {
    let b = text.as_bytes();
    let bracketed = b[start] != b' ';
    let local_end = if bracketed && start > 0 && b[start - 1] == b' ' {
        start - 1
    } else {
        start
    };
    let local = local_start(b, local_end)?;
    let mut i = if bracketed && b.get(end) == Some(&b' ') {
        end + 1
    } else {
        end
    };
    // The first label waits outside the vector: most at-words (` at 3pm`) have one label.
    let mut first: Option<&str> = None;
    let mut labels: Vec<&str> = Vec::new();
    let mut obfuscated_dot = false;
    let mut finish = i;
    loop {
        let label_start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') && i - label_start < 63
        {
            i += 1;
        }
        if i == label_start {
            break;
        }
        let label = &text[label_start..i];
        if first.is_none() {
            first = Some(label);
        } else {
            if labels.is_empty() {
                labels.extend(first);
            }
            labels.push(label);
        }
        finish = i;
        let rest = &text[i..];
        // Every separator begins with one of these bytes: most labels end in none of them.
        if !matches!(b.get(i), Some(b' ' | b'[' | b'(' | b'{' | b'.')) {
            break;
        }
        let Some(dot) = DOTS.iter().find(|d| {
            rest.get(..d.len())
                .is_some_and(|r| r.eq_ignore_ascii_case(d))
        }) else {
            break;
        };
        let after = i + dot.len();
        if !b.get(after).is_some_and(u8::is_ascii_alphanumeric) {
            break;
        }
        obfuscated_dot |= *dot != ".";
        i = after;
    }
    if labels.len() < 2 || (!bracketed && !obfuscated_dot) {
        return None;
    }
    let domain = labels.join(".").to_ascii_lowercase();
    valid_domain(&domain, internal)
        .then(|| Finding::new(Kind::Email, local, finish, "email_obfuscated"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_dot_begins_with_a_byte_tested_first() {
        assert!(
            super::DOTS
                .iter()
                .all(|d| matches!(d.as_bytes()[0], b' ' | b'[' | b'(' | b'{' | b'.'))
        );
    }
}
