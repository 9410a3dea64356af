//! The digit scan's start filter against a byte-by-byte search.

use super::{next_start, starts_at};
use crate::pii::test_rng::Rng;

/// Runs of dots, dashes and slashes, between and beside hex digits and the other starts, at
/// every offset of the eight-byte words: the first start after every position is the one a
/// byte-by-byte search finds.
#[test]
fn runs_of_separators_are_passed_over_as_a_byte_by_byte_search_does() {
    let alphabet = b"aF9g -./+(:,.-.";
    let plain = |b: &[u8], from: usize| {
        (from..b.len())
            .find(|&at| starts_at(b, at))
            .unwrap_or(b.len())
    };
    let mut rng = Rng(0x005e_ed0f_d075);
    for _ in 0..20_000 {
        let len = rng.next() % 48;
        let text: Vec<u8> = (0..len)
            .map(|_| alphabet[rng.next() % alphabet.len()])
            .collect();
        for from in 0..=len {
            assert_eq!(
                next_start(&text, from),
                plain(&text, from),
                "{:?} from {from}",
                String::from_utf8_lossy(&text)
            );
        }
    }
}

#[test]
fn the_next_start_is_found_at_every_position_past_every_other_byte() {
    let others: Vec<u8> = (0..=255u8)
        .filter(|c| !c.is_ascii_digit() && !b"+(:".contains(c))
        .collect();
    for len in 0..20 {
        for &other in &others {
            assert_eq!(next_start(&vec![other; len], 0), len, "{other}");
        }
        for at in 0..len {
            for start in [b'0', b'5', b'9', b'+', b'(', b':'] {
                let mut text = vec![b','; len];
                text[at] = start;
                if at + 1 < len {
                    text[at + 1] = b';';
                }
                assert_eq!(next_start(&text, 0), at, "{len} {at} {start}");
                assert_eq!(next_start(&text, at + 1), len, "{len} {at} {start}");
            }
            // A `-` or `.` starts one only between hex digits; `/` never.
            if at == 0 || at + 1 == len {
                continue;
            }
            for (sep, before, after, starts) in [
                (b'-', b'a', b'F', true),
                (b'.', b'9', b'c', true),
                (b'-', b'g', b'a', false),
                (b'.', b'a', b' ', false),
                (b'/', b'a', b'b', false),
            ] {
                let mut text = vec![b','; len];
                (text[at - 1], text[at], text[at + 1]) = (before, sep, after);
                let want = match (before.is_ascii_digit(), starts) {
                    (true, _) => at - 1,
                    (false, true) => at,
                    (false, false) => len,
                };
                assert_eq!(next_start(&text, 0), want, "{len} {at} {}", sep as char);
            }
        }
    }
}
