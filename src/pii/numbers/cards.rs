//! Payment cards: the issuer identification number (IIN) ranges and lengths of each network,
//! Luhn, and the groupings cards are printed and typed in.

use super::inline::Inline;
use super::{Cluster, check};
use crate::pii::{Finding, Kind};

/// One IIN range of a network: the first `digits` digits of a card lie in `lo..=hi`, and the
/// card has one of `lengths`.
struct Range {
    network: &'static str,
    digits: usize,
    lo: u64,
    hi: u64,
    lengths: &'static [usize],
}

const fn r(
    network: &'static str,
    digits: usize,
    lo: u64,
    hi: u64,
    lengths: &'static [usize],
) -> Range {
    Range {
        network,
        digits,
        lo,
        hi,
        lengths,
    }
}

const L16_19: &[usize] = &[16, 17, 18, 19];
const L14_19: &[usize] = &[14, 15, 16, 17, 18, 19];
const L12_19: &[usize] = &[12, 13, 14, 15, 16, 17, 18, 19];

/// The networks' published IIN ranges (ISO/IEC 7812 issuer tables as the networks document
/// them). A number may fall in the ranges of several networks (co-branding); any one is enough.
const IIN: &[Range] = &[
    r("visa", 1, 4, 4, &[13, 16, 19]),
    r("mastercard", 2, 51, 55, &[16]),
    r("mastercard", 4, 2221, 2720, &[16]),
    r("amex", 2, 34, 34, &[15]),
    r("amex", 2, 37, 37, &[15]),
    r("discover", 4, 6011, 6011, L16_19),
    r("discover", 3, 644, 649, L16_19),
    r("discover", 2, 65, 65, L16_19),
    r("discover", 6, 622_126, 622_925, L16_19),
    r("diners", 3, 300, 305, L14_19),
    r("diners", 4, 3095, 3095, L14_19),
    r("diners", 2, 36, 36, L14_19),
    r("diners", 2, 38, 39, L14_19),
    r("jcb", 4, 3528, 3589, L16_19),
    // The whole `35` block at 16 digits, as the widely published JCB pattern reads it
    // (`^(?:2131|1800|35\d{3})\d{11}$`, regular-expressions.info) and card generators follow.
    r("jcb", 2, 35, 35, &[16]),
    r("jcb", 4, 1800, 1800, &[15]),
    r("jcb", 4, 2131, 2131, &[15]),
    r("unionpay", 2, 62, 62, L16_19),
    r("unionpay", 4, 8100, 8171, L16_19),
    r("maestro", 2, 50, 50, L12_19),
    r("maestro", 2, 56, 58, L12_19),
    r("maestro", 3, 639, 639, L12_19),
    r("maestro", 4, 6304, 6304, L12_19),
    r("maestro", 2, 67, 67, L12_19),
    r("mir", 4, 2200, 2204, L16_19),
    r("rupay", 2, 60, 60, &[16]),
    r("rupay", 2, 65, 65, &[16]),
    r("rupay", 2, 81, 82, &[16]),
    r("rupay", 3, 508, 508, &[16]),
    r("rupay", 3, 353, 353, &[16]),
    r("rupay", 3, 356, 356, &[16]),
    r("troy", 4, 9792, 9792, &[16]),
    // UATP (airline cards): major industry identifier 1, 15 digits.
    r("uatp", 1, 1, 1, &[15]),
];

/// The card network whose IIN range and length fit `digits`, if any.
pub(super) fn network(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    IIN.iter()
        .find(|range| {
            len >= range.digits
                && range.lengths.contains(&len)
                && (range.lo..=range.hi).contains(&check::number(&digits[..range.digits]))
        })
        .map(|range| range.network)
}

/// The most digits a cluster holds before it is read as several numbers in a row.
pub(super) const LONGEST_RUN: usize = 40;

/// Whether digit groups of lengths `lens` are a way cards are written: ungrouped, fours with a
/// shorter last group (`4-4-4-4`, `4-4-4-4-3`, `4-4-4-3`), or the `4-6-5` of 15-digit and the
/// `4-6-4` of 14-digit cards.
pub(super) fn grouping(lens: &[usize]) -> bool {
    match lens {
        [_] | [4, 6, 5] | [4, 6, 4] => true,
        [init @ .., last] => init.iter().all(|&l| l == 4) && (1..=4).contains(last),
        [] => false,
    }
}

/// Every run of groups in `c` with 12–19 digits, one separator (space or hyphen), a card
/// grouping, a network's IIN range and length, and a valid Luhn digit. In a run of more groups
/// than any one number has (several numbers in a row), a grouped card must stand apart from its
/// neighbours: another separator, or none, on each side, or a card already read just before it
/// (`4012-8888-8888-1881 4012 8888 8888 1881`: the second's first space follows the first card).
pub(super) fn cards(text: &str, c: &Cluster, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let lens = c.lens();
    let long = c.digits > LONGEST_RUN;
    // Bit `g`: a card found ends with group `g`.
    let mut card_ends = 0u32;
    let apart = |from: usize, to: usize, card_ends: u32| {
        if from == to {
            return true;
        }
        let inner = c.sep(text, from);
        (from == 0 || c.sep(text, from - 1) != inner || card_ends >> (from - 1) & 1 == 1)
            && (to == c.count - 1 || c.sep(text, to) != inner)
    };
    for from in 0..c.count {
        let mut count = 0;
        // The digits of groups `from..=to`, a group appended as `to` moves on.
        let mut digits = Inline::<19>::new();
        for to in from..c.count {
            count += lens[to];
            if count > 19 {
                break;
            }
            let (s, e) = c.groups[to];
            digits.extend_values(&b[s..e]);
            if count < 12
                || !grouping(&lens[from..=to])
                || !c.consistent(text, from, to, &[" ", "-"])
                || long && !apart(from, to, card_ends)
            {
                continue;
            }
            if network(&digits).is_some() && check::luhn(&digits) {
                card_ends |= 1 << to;
                out.push(Finding::new(
                    Kind::CreditCard,
                    c.groups[from].0,
                    c.groups[to].1,
                    "card_iin_luhn",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::{Scanner, ScannerConfig};

    /// `prefix` padded with a fixed digit pattern to `len - 1` digits, then its Luhn digit.
    fn card(prefix: &str, len: usize) -> String {
        let mut body: String = prefix.to_string();
        let filler = b"7301948265";
        let mut i = 0;
        while body.len() < len - 1 {
            body.push(char::from(filler[i % filler.len()]));
            i += 1;
        }
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|n| check::luhn(&n.bytes().map(|c| c - b'0').collect::<Vec<_>>()))
            .expect("one digit fits")
    }

    fn group(number: &str, lens: &[usize], sep: &str) -> String {
        let mut parts = Vec::new();
        let mut at = 0;
        for l in lens {
            parts.push(&number[at..at + l]);
            at += l;
        }
        parts.join(sep)
    }

    fn cards_in(text: &str) -> Vec<String> {
        Scanner::new(&ScannerConfig::default())
            .expect("scanner")
            .scan(text)
            .into_iter()
            .filter(|f| f.kind == Kind::CreditCard)
            .map(|f| text[f.start..f.end].to_string())
            .collect()
    }

    #[test]
    fn every_network_and_length_is_found() {
        let table: &[(&str, &str, &[usize])] = &[
            ("visa", "4", &[13, 16, 19]),
            ("mastercard", "51", &[16]),
            ("mastercard", "55", &[16]),
            ("mastercard", "2221", &[16]),
            ("mastercard", "2720", &[16]),
            ("amex", "34", &[15]),
            ("amex", "37", &[15]),
            ("discover", "6011", &[16, 17, 18, 19]),
            ("discover", "644", &[16, 19]),
            ("discover", "622126", &[16]),
            ("diners", "300", &[14, 16, 19]),
            ("diners", "3095", &[14]),
            ("diners", "36", &[14]),
            ("diners", "38", &[16]),
            ("jcb", "3528", &[16, 17, 18, 19]),
            ("jcb", "3589", &[16]),
            ("jcb", "3500", &[16]),
            ("jcb", "3599", &[16]),
            ("uatp", "1", &[15]),
            ("jcb", "1800", &[15]),
            ("jcb", "2131", &[15]),
            ("unionpay", "62", &[16, 17, 18, 19]),
            ("unionpay", "8171", &[16]),
            ("maestro", "5018", &[12, 13, 15, 19]),
            ("maestro", "6304", &[12, 16]),
            ("maestro", "6759", &[18]),
            ("mir", "2200", &[16]),
            ("mir", "2204", &[19]),
            ("rupay", "60", &[16]),
            ("rupay", "508", &[16]),
            ("troy", "9792", &[16]),
        ];
        let mut failures = Vec::new();
        for (name, prefix, lengths) in table {
            for &len in *lengths {
                let number = card(prefix, len);
                let digits: Vec<u8> = number.bytes().map(|c| c - b'0').collect();
                if network(&digits).is_none() {
                    failures.push(format!("{name} {len}: no network"));
                }
                if cards_in(&format!("paid with {number} today")) != vec![number.clone()] {
                    failures.push(format!("{name} {len}: not found ungrouped"));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn out_of_range_lengths_and_prefixes_are_not_cards() {
        let cases = [
            card("4", 14),
            card("51", 19),
            card("34", 16),
            card("2721", 16),
            card("1800", 16),
            card("9791", 16),
            card("7", 16),
            card("3590", 17),
            card("1", 16),
        ];
        for number in cases {
            assert!(cards_in(&format!("ref {number}")).is_empty(), "{number}");
        }
        let visa = card("4", 16);
        let last = visa.as_bytes()[15] - b'0';
        let wrong = format!("{}{}", &visa[..15], (last + 1) % 10);
        assert!(cards_in(&wrong).is_empty());
    }

    #[test]
    fn groupings_as_cards_are_written_are_found_and_others_not() {
        let v16 = card("4", 16);
        let v19 = card("4", 19);
        let amex = card("37", 15);
        let diners = card("36", 14);
        let maestro = card("6304", 12);
        let found: Vec<(String, &[usize], &str)> = vec![
            (v16.clone(), &[4, 4, 4, 4], " "),
            (v16.clone(), &[4, 4, 4, 4], "-"),
            (v19.clone(), &[4, 4, 4, 4, 3], " "),
            (amex.clone(), &[4, 6, 5], " "),
            (diners.clone(), &[4, 6, 4], " "),
            (maestro.clone(), &[4, 4, 4], "-"),
        ];
        for (number, lens, sep) in found {
            let text = group(&number, lens, sep);
            assert_eq!(cards_in(&format!("card {text} ok")), vec![text.clone()]);
        }
        let not_found: Vec<String> = vec![
            group(&v16, &[3, 5, 4, 4], " "),
            group(&v16, &[8, 8], " "),
            group(&amex, &[5, 5, 5], " "),
            format!(
                "{} {}-{}-{}",
                &v16[..4],
                &v16[4..8],
                &v16[8..12],
                &v16[12..]
            ),
        ];
        for text in not_found {
            assert!(cards_in(&format!("card {text} ok")).is_empty(), "{text}");
        }
    }

    #[test]
    fn cards_in_a_row_are_read_where_they_stand_apart() {
        let visa = card("4", 16);
        let master = card("5412", 16);
        let hyphened = group(&master, &[4, 4, 4, 4], "-");
        // More than forty digits in one run: three cards in a row, the first two set apart.
        let spaced = group(&visa, &[4, 4, 4, 4], " ");
        let text = format!("{visa} {hyphened} {spaced}");
        assert_eq!(
            cards_in(&text),
            vec![visa.clone(), hyphened.clone(), spaced]
        );
        // A run of fours after a card is read only where it holds exactly a card.
        let longer = format!(
            "{visa} {hyphened} {} 1234",
            group(&visa, &[4, 4, 4, 4], " ")
        );
        assert_eq!(cards_in(&longer), vec![visa.clone(), hyphened.clone()]);
        // Fours in a long run of fours: where a card would start is unknowable.
        let fours = format!(
            "{} 1234 5678 9012 3456 7890 1234 5678",
            group(&visa, &[4, 4, 4, 4], " ")
        );
        assert!(cards_in(&fours).is_empty(), "{fours}");
    }
}
