//! IBANs among the words of a text: compact or grouped, by country length and mod 97; and the
//! runs shaped as one whose check fails, so their digit groups are read as nothing else.

use super::check;

/// An IBAN starting at `start` (`DE89 3704 0044 …` or compact): country length and mod 97.
pub(super) fn iban_at(b: &[u8], start: usize) -> Option<usize> {
    let head = b.get(start..start + 4)?;
    if !(head[0].is_ascii_uppercase()
        && head[1].is_ascii_uppercase()
        && head[2].is_ascii_digit()
        && head[3].is_ascii_digit())
    {
        return None;
    }
    let len = check::iban_length(&head[..2])?;
    let mut compact = Vec::with_capacity(len);
    let mut i = start;
    // Grouped by spaces or by hyphens (`AL47-2121-…`), one of them throughout.
    let mut separator = None;
    while compact.len() < len && i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() || c.is_ascii_uppercase() {
            compact.push(c);
            i += 1;
        } else if (c == b' ' || c == b'-')
            && *separator.get_or_insert(c) == c
            && b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric())
        {
            i += 1;
        } else {
            break;
        }
    }
    let bounded = b.get(i).is_none_or(|c| !c.is_ascii_alphanumeric());
    (compact.len() == len && bounded && check::iban_mod97(&compact)).then_some(i)
}

/// Where a run shaped as a grouped IBAN starting at `start` ends (`XX00` and at least two more
/// groups of four letters or digits, the last one shorter, a space (or two) or a hyphen between
/// them),
/// whether or not its check digits hold.
pub(super) fn iban_shaped(b: &[u8], start: usize) -> Option<usize> {
    let head = b.get(start..start + 4)?;
    let head_shaped = head[..2].iter().all(u8::is_ascii_uppercase)
        && head[2..].iter().all(u8::is_ascii_digit)
        && check::iban_length(&head[..2]).is_some();
    let separator = *b.get(start + 4)?;
    if !head_shaped || !matches!(separator, b' ' | b'-') {
        return None;
    }
    let mut i = start + 4;
    let mut groups = 0;
    while b.get(i) == Some(&separator) {
        // Spaces typed twice (`2210  014`) still part groups of one run.
        let gap = if separator == b' ' && b.get(i + 1) == Some(&b' ') {
            2
        } else {
            1
        };
        let len = b[i + gap..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
            .count();
        if len == 0 || len > 4 || b.get(i + gap + len).is_some_and(u8::is_ascii_alphanumeric) {
            break;
        }
        i += gap + len;
        groups += 1;
        if len < 4 {
            break;
        }
    }
    (groups >= 2).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::super::addresses::tests::found;
    use crate::pii::Kind;

    #[test]
    fn ibans_grouped_by_spaces_or_hyphens_are_found_and_failed_ones_hide_nothing() {
        // The ECBS examples of the UK and Germany.
        for iban in [
            "GB29 NWBK 6016 1331 9268 19",
            "GB29-NWBK-6016-1331-9268-19",
            "DE89-3704-0044-0532-0130-00",
            "DE89370400440532013000",
        ] {
            assert_eq!(
                found(&format!("IBAN {iban}.")),
                vec![(Kind::Iban, iban.into())]
            );
        }
        for text in [
            "IBAN GB29-NWBK 6016-1331-9268-19",
            "IBAN DE88 3704 0044 0532 0130 00",
            "IBAN DE88-3704-0044-0532-0130-00",
            "IBAN DE88 3704  0044 0532 0130 00",
        ] {
            assert!(
                found(text).iter().all(|(kind, _)| *kind != Kind::Phone),
                "{text}: {:?}",
                found(text)
            );
        }
        assert!(found("IBAN DE88 3704 0044 0532 0130 00").is_empty());
    }
}
