//! Identifiers that mix letters into their digits, in the spellings people write: UK National
//! Insurance numbers with spaces or in lower case (`ab 12 34 56 c`), Spanish DNI and NIE with
//! dots, dashes or spaces (`12.345.678-Z`, `X-1234567-L`, `x1234567l`), and the Swedish and
//! Finnish numbers of people born a century ago, whose separator is `+` (`811218+9876`).

use super::{Cluster, id};
use crate::pii::Kind;

fn alnum_at(b: &[u8], i: usize) -> bool {
    b.get(i).is_some_and(u8::is_ascii_alphanumeric)
}

/// Whether nothing alphanumeric stands right before `i`.
fn starts_word(b: &[u8], i: usize) -> bool {
    i == 0 || !b[i - 1].is_ascii_alphanumeric()
}

pub(super) const NINO_WORDS: &[&str] = &["nino", "national insurance", "ni number", "ni no"];

/// A NINO whose digits start at `digits`: its two prefix letters right before them or before a
/// space; returns its span. Upper-case letters, or lower-case ones with the digits in pairs
/// (`ab 12 34 56 c`), stand alone; other spellings need the word `NINO` or `national insurance`.
pub(super) fn nino_around(b: &[u8], digits: usize) -> Option<(usize, usize)> {
    let letter = |i: usize| b[i].is_ascii_alphabetic();
    let begin = if digits >= 2 && letter(digits - 1) && letter(digits - 2) {
        digits - 2
    } else if digits >= 3 && b[digits - 1] == b' ' && letter(digits - 2) && letter(digits - 3) {
        digits - 3
    } else {
        return None;
    };
    if !starts_word(b, begin) {
        return None;
    }
    // On the stack: two-letter words before a number (`at 3pm`) get this far.
    let mut compact = [0u8; 9];
    compact[..2].copy_from_slice(&b[begin..begin + 2]);
    let mut len = 2;
    let mut i = digits;
    let mut spaces = 0;
    while len < 8 {
        let c = *b.get(i)?;
        if c.is_ascii_digit() {
            compact[len] = c;
            len += 1;
        } else if c == b' ' && len % 2 == 0 && len > 2 && b[i - 1] != b' ' {
            spaces += 1;
        } else {
            return None;
        }
        i += 1;
    }
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    compact[8] = *b.get(i)?;
    let end = i + 1;
    if !matches!(spaces, 0 | 2) || alnum_at(b, end) {
        return None;
    }
    let letters = [compact[0], compact[1], compact[8]];
    let upper = letters.iter().all(u8::is_ascii_uppercase);
    let lower = letters.iter().all(u8::is_ascii_lowercase);
    compact.make_ascii_uppercase();
    if !id::uk_nino(&compact) {
        return None;
    }
    let compact_word = end - begin == 9;
    let paired = spaces == 2;
    let named = super::named::Named::before(b, begin).any(NINO_WORDS);
    (upper || lower && (paired || compact_word) || named).then_some((begin, end))
}

/// A Spanish DNI (`12345678Z`, `12.345.678-Z`, `12 345 678 Z`) or NIE (`X1234567L`,
/// `X-1234567-L`, `y.123.456-l`) around the digit groups of `c`; returns its span.
pub(super) fn es_id(b: &[u8], c: &Cluster) -> Option<(usize, usize)> {
    let start = c.start;
    if !b[start].is_ascii_digit() {
        return None;
    }
    let nie_letter = |i: usize| b"XYZxyz".contains(&b[i]);
    let prefix = if start >= 1 && nie_letter(start - 1) && starts_word(b, start - 1) {
        Some(start - 1)
    } else if start >= 2
        && b"-. ".contains(&b[start - 1])
        && nie_letter(start - 2)
        && starts_word(b, start - 2)
        && (b[start - 1] != b' ' || b[start - 2].is_ascii_uppercase())
    {
        Some(start - 2)
    } else {
        None
    };
    if prefix.is_none() && !starts_word(b, start) {
        return None;
    }
    let (want, grouped) = if prefix.is_some() {
        (7, [1, 3, 3])
    } else {
        (8, [2, 3, 3])
    };
    let shaped = c.lens_are(&[want])
        || c.lens_are(&grouped)
            && (0..2).all(|i| matches!(&b[c.seps[i].0..c.seps[i].1], b"." | b" "))
            && b[c.seps[0].0] == b[c.seps[1].0];
    if !shaped {
        return None;
    }
    let mut i = c.end;
    match b.get(i) {
        Some(b'-') => i += 1,
        Some(b' ') if b.get(i + 1).is_some_and(u8::is_ascii_uppercase) => i += 1,
        _ => {}
    }
    let check = *b.get(i).filter(|x| x.is_ascii_alphabetic())?;
    let end = i + 1;
    if alnum_at(b, end) {
        return None;
    }
    let mut compact: Vec<u8> = prefix.map(|p| b[p]).into_iter().collect();
    compact.extend(
        c.groups()
            .iter()
            .flat_map(|&(s, e)| b[s..e].iter().copied()),
    );
    compact.push(check);
    compact.make_ascii_uppercase();
    id::es_dni(&compact).then_some((prefix.unwrap_or(start), end))
}

/// `811218+9876` (Swedish, a hundred or more years old) or `010150+123X` (Finnish, born in the
/// 1800s): six digits, `+`, and the rest; returns the kind and the span's end.
pub(super) fn plus_form(b: &[u8], c: &Cluster) -> Option<(Kind, usize, &'static str)> {
    let plain = c.count == 1 && c.digits == 6 && b[c.start].is_ascii_digit();
    if !plain || b.get(c.end) != Some(&b'+') || !starts_word(b, c.start) {
        return None;
    }
    let rest = c.end + 1;
    let tail = b.get(rest..rest + 4)?;
    if alnum_at(b, rest + 4) || !tail[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut compact = b[c.start..rest + 4].to_vec();
    compact.make_ascii_uppercase();
    if tail[3].is_ascii_digit() {
        let digits: Vec<u8> = b[c.start..c.end]
            .iter()
            .chain(tail)
            .map(|x| x - b'0')
            .collect();
        if id::se_personnummer(&digits) {
            return Some((Kind::SePersonnummer, rest + 4, "se_luhn"));
        }
    }
    id::fi_hetu(&compact).then_some((Kind::FiHetu, rest + 4, "fi_hetu_mod31"))
}
