//! The per-text walk of the context words against the search it replaced: an overlapping
//! search of each number's 48-byte window on its own.

use aho_corasick::{AhoCorasick, AhoCorasickKind};

use super::*;
use crate::pii::test_rng::{Mix, Rng, mix};

/// The words, in the automaton's order.
fn words() -> Vec<&'static str> {
    PHONE_CONTEXT
        .iter()
        .chain(PHONE_WORDS)
        .copied()
        .chain(
            super::super::ids::ID_WORDS
                .iter()
                .flat_map(|w| w.iter())
                .copied(),
        )
        .chain(OTHER_CONTEXT.iter().copied())
        .collect()
}

/// The search of one window, as it was before [`Walk`].
fn reference(automaton: &AhoCorasick, b: &[u8], start: usize) -> Option<bool> {
    let words = CONTEXT_WORDS.as_ref()?;
    let window = &b[start.saturating_sub(48)..start];
    let (mut phone, mut other) = (None, None);
    for hit in automaton.find_overlapping_iter(window) {
        let is_phone = hit.pattern().as_usize() < words.phone_words;
        let prefix = hit.pattern().as_usize() < words.phone_prefixes;
        let begins = hit.start() == 0 || {
            let c = window[hit.start() - 1];
            !c.is_ascii_alphabetic() && c.is_ascii()
        };
        let ends = prefix
            || (hit.len() > 4 && !is_phone)
            || window
                .get(hit.end())
                .is_none_or(|c| !c.is_ascii_alphabetic());
        if begins && ends {
            let last = if is_phone { &mut phone } else { &mut other };
            *last = Some(last.map_or(hit.end(), |e: usize| e.max(hit.end())));
        }
    }
    match (phone, other) {
        (Some(p), Some(o)) => Some(p > o),
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (None, None) => None,
    }
}

/// Context words (in random case, cut short, run together), letters, separators, non-ASCII
/// letters, numbers.
fn text(rng: &mut Rng, words: &[&str]) -> Vec<u8> {
    let filler: &[&str] = &[
        " ",
        "  ",
        "a",
        "s",
        "x",
        ".",
        ":",
        "-",
        "\n",
        "é",
        "т",
        "ο",
        "0",
        "42",
        "+",
        "(",
        "7",
        " 030 1234567 ",
        "+49 ",
        "(0",
        "hotel",
        "taxi",
        "Belgium",
        "отель",
        "\u{200b}",
    ];
    let how = Mix {
        parts: 60,
        filler: 2,
        cut: 5,
        upper: 3,
    };
    mix(rng, words, filler, &how)
}

#[test]
fn the_walk_finds_what_a_search_of_each_window_finds() {
    let words = words();
    let automaton = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .kind(Some(AhoCorasickKind::DFA))
        .build(&words)
        .unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let (mut asked, mut said) = (0, 0);
    for round in 0..20_000 {
        let b = text(&mut rng, &words);
        // Where numbers start, in order; every third text also out of order (the walk starts
        // again) and with the same number asked twice.
        let mut starts: Vec<usize> = (0..b.len())
            .filter(|&i| b[i].is_ascii_digit() || matches!(b[i], b'+' | b'('))
            .collect();
        if round % 3 == 0 && !starts.is_empty() {
            for _ in 0..4 {
                starts.push(starts[rng.next() % starts.len()]);
            }
        }
        let mut walk = Walk::new();
        for &start in &starts {
            let want = reference(&automaton, &b, start);
            assert_eq!(
                walk.context(&b, start),
                want,
                "{:?} at {start}",
                String::from_utf8_lossy(&b)
            );
            asked += 1;
            said += usize::from(want.is_some());
        }
    }
    assert!(asked > 100_000 && said > asked / 4, "{asked} {said}");
}
