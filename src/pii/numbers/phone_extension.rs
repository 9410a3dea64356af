//! Phone extensions written after a number: `x123`, ` ext. 123`, `, extension 4567`, the labels
//! libphonenumber's parser reads (`x`, `ext`, `extn`, `extension`). The extension belongs to
//! the phone finding it follows.

use crate::pii::{Finding, Kind};

/// Labels, longest first so `extension` is not read as `ext`.
const LABELS: &[&[u8]] = &[b"extension", b"extn", b"ext", b"x"];

/// Most digits an extension has (libphonenumber reads up to 7 after a bare `x`).
const MAX_DIGITS: usize = 7;

/// Where an extension starting at `at` (right after a number's last digit) ends, if one does.
pub(super) fn extension(b: &[u8], at: usize) -> Option<usize> {
    let mut i = at;
    if b.get(i) == Some(&b',') {
        i += 1;
    }
    if b.get(i) == Some(&b' ') {
        i += 1;
    }
    let rest = b.get(i..)?;
    // Every label begins with `e` or `x`: most numbers are followed by neither.
    if !matches!(rest.first(), Some(b'e' | b'E' | b'x' | b'X')) {
        return None;
    }
    let label = LABELS
        .iter()
        .find(|l| rest.len() >= l.len() && rest[..l.len()].eq_ignore_ascii_case(l))?;
    i += label.len();
    if label.len() > 1 && b.get(i) == Some(&b'.') {
        i += 1;
    }
    if b.get(i).is_some_and(|&c| c == b' ' || c == b':') && label.len() > 1 {
        i += 1;
        if b.get(i) == Some(&b' ') {
            i += 1;
        }
    } else if b.get(i) == Some(&b' ') && i > at + 1 {
        // ` x 123` (a spaced `x` after a spaced number).
        i += 1;
    }
    let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    let end = i + digits;
    let bounded = b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
    ((1..=MAX_DIGITS).contains(&digits) && bounded).then_some(end)
}

/// Extends the phone finding among `found` that ends at `number_end` to `extension_end`;
/// returns whether there was one.
pub(super) fn attach(found: &mut [Finding], number_end: usize, extension_end: usize) -> bool {
    let phone = found
        .iter_mut()
        .find(|f| f.kind == Kind::Phone && f.end == number_end);
    if let Some(phone) = phone {
        phone.end = extension_end;
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use crate::pii::{Kind, Scanner, ScannerConfig};

    #[test]
    fn every_label_begins_with_the_letters_tested_first() {
        assert!(super::LABELS.iter().all(|l| matches!(l[0], b'e' | b'x')));
    }

    fn phones_in(text: &str) -> Vec<String> {
        Scanner::new(&ScannerConfig::default())
            .expect("scanner")
            .scan(text)
            .into_iter()
            .filter(|f| f.kind == Kind::Phone)
            .map(|f| text[f.start..f.end].to_string())
            .collect()
    }

    #[test]
    fn extensions_belong_to_the_number_before_them() {
        // A US number in the ways extensions are written, and a German one with its extension.
        let cases = [
            ("call (212) 555-2671x204", "(212) 555-2671x204"),
            ("call 212-555-2671x12", "212-555-2671x12"),
            ("desk +1-212-555-2671x8891 today", "+1-212-555-2671x8891"),
            ("desk +1 212 555 2671 ext. 31", "+1 212 555 2671 ext. 31"),
            ("desk 212.555.2671 ext 7", "212.555.2671 ext 7"),
            (
                "desk (212) 555-2671, extension 4567.",
                "(212) 555-2671, extension 4567",
            ),
            ("desk (212) 555-2671 x 12", "(212) 555-2671 x 12"),
            ("Büro +49 30 12345678 Ext. 221", "+49 30 12345678 Ext. 221"),
        ];
        let mut failures = Vec::new();
        for (text, want) in cases {
            let got = phones_in(text);
            if got != vec![want.to_string()] {
                failures.push(format!("{text:?} gave {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn what_only_looks_like_an_extension_is_left_out() {
        let cases = [
            ("desk 212-555-2671 x12345678", "212-555-2671"),
            ("desk 212-555-2671 extra 5", "212-555-2671"),
        ];
        for (text, want) in cases {
            assert_eq!(phones_in(text), vec![want.to_string()], "{text}");
        }
        assert!(phones_in("desk 212-555-2671xyz").is_empty());
        assert!(phones_in("size 1234x5678 px").is_empty());
        assert!(phones_in("build 2024x1").is_empty());
    }
}
