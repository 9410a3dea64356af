//! The literal search against an overlapping walk over a full DFA of every literal.

use super::*;
use crate::pii::test_rng::{Mix, Rng, mix};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// The straightforward way: an overlapping walk over a full DFA of every literal.
fn automaton(literals: &[String]) -> AhoCorasick {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::DFA))
        .build(literals)
        .unwrap()
}

fn reference(automaton: &AhoCorasick, text: &[u8]) -> Vec<Hit> {
    automaton
        .find_overlapping_iter(text)
        .map(|m| Hit {
            start: m.start(),
            end: m.end(),
            literal: m.pattern().as_usize(),
        })
        .collect()
}

/// `set` finds `want` in `text`, or the text is shown.
fn assert_finds(set: &Literals, text: &[u8], want: &[Hit]) {
    assert_eq!(set.find(text), want, "{:?}", String::from_utf8_lossy(text));
}

/// Texts made of the literals themselves (in random case, cut short, run together),
/// pieces of prose, punctuation, digits and non-ASCII characters.
fn texts(literals: &[String], count: usize) -> Vec<Vec<u8>> {
    let filler: &[&[u8]] = &[
        b" ",
        b"a",
        b"e",
        b"s",
        b".",
        b"-",
        b"_",
        b"@",
        b"`",
        b"{",
        b"[",
        b"~",
        b"0",
        b"9",
        b"\n",
        b"the key is ",
        b"api_token=",
        b"\xc3\xa9",
        b"\xe2\x80\x8b",
        b"\x00",
        b"\x7f",
        b"\xff",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    (0..count)
        .map(|_| {
            let how = Mix {
                parts: 40,
                filler: 3,
                cut: 4,
                upper: 2,
            };
            mix(&mut rng, literals, filler, &how)
        })
        .collect()
}

#[test]
fn every_occurrence_is_found_in_the_order_of_an_overlapping_walk() {
    let literals = super::super::anchors::literals().unwrap();
    let set = Literals::new(&literals, &vec![false; literals.len()]).unwrap();
    let automaton = automaton(&literals);
    let mut found = 0;
    for text in texts(&literals, 20_000) {
        let want = reference(&automaton, &text);
        assert_finds(&set, &text, &want);
        found += want.len();
    }
    assert!(found > 100_000, "{found}");
}

/// With some literals marked word-start (half of them, at random, so that some first pairs
/// are all marked and some mixed), every occurrence is found but theirs inside a word.
#[test]
fn word_start_literals_are_found_where_they_begin_a_word() {
    let literals = super::super::anchors::literals().unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let marks: Vec<bool> = literals
        .iter()
        .map(|l| l == "s." || l == "@" || rng.next().is_multiple_of(2))
        .collect();
    let set = Literals::new(&literals, &marks).unwrap();
    let automaton = automaton(&literals);
    let (mut found, mut left_out) = (0, 0);
    for text in texts(&literals, 20_000) {
        let all = reference(&automaton, &text);
        let want: Vec<Hit> = all
            .iter()
            .copied()
            .filter(|h| !(marks[h.literal] && h.start > 0 && is_word(text[h.start - 1])))
            .collect();
        assert_finds(&set, &text, &want);
        found += want.len();
        left_out += all.len() - want.len();
    }
    assert!(found > 50_000 && left_out > 10_000, "{found} {left_out}");
}

#[test]
fn short_texts_and_texts_ending_in_a_literal() {
    let literals: Vec<String> = ["@", "ey", "s.", "key", "x", "a3-", "-----begin"]
        .into_iter()
        .map(String::from)
        .collect();
    let set = Literals::new(&literals, &vec![false; literals.len()]).unwrap();
    let automaton = automaton(&literals);
    for text in [
        "",
        "@",
        "e",
        "ey",
        "EY",
        "s.",
        "x",
        "X@",
        "key",
        "kEy",
        "a@ey",
        "xkey",
        "zzs.",
        "-----BEGIN",
        "k-----begin",
        "@@@",
        "skey.",
    ] {
        assert_eq!(
            set.find(text.as_bytes()),
            reference(&automaton, text.as_bytes()),
            "{text:?}"
        );
    }
}
