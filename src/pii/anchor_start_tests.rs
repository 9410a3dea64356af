//! The anchors found only where they begin a word ([`Literals::find`]'s word-start literals)
//! give the findings the search of every literal everywhere gave.
//!
//! [`Literals::find`]: super::literals::Literals::find

use super::anchors::{Anchors, literals};
use super::test_rng::Rng;

/// Anchor literals in random case, glued to word bytes or separators before them, followed by
/// random key-like tails of the lengths key formats have, assignment operators and prose.
fn text(rng: &mut Rng, literals: &[String]) -> String {
    const BEFORE: &[&str] = &[
        "", "", " ", "a", "Z", "0", "_", "-", ".", "\"", "=", "\n", "my", "x_", "é", "/",
    ];
    const AFTER: &[&str] = &[
        "",
        " ",
        "=",
        ": ",
        "\"",
        "_",
        "-",
        ".",
        "@example.com",
        " at example dot com",
        "\n",
    ];
    const TAIL: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    let mut out = String::new();
    for _ in 0..rng.next() % 12 {
        out.push_str(BEFORE[rng.next() % BEFORE.len()]);
        let literal = &literals[rng.next() % literals.len()];
        out.extend(literal.chars().map(|c| {
            if rng.next().is_multiple_of(3) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        }));
        if rng.next().is_multiple_of(4) {
            out.push_str(AFTER[rng.next() % AFTER.len()]);
        }
        let tail = [0, 8, 16, 20, 24, 32, 36, 40, 48, 59, 64, 72][rng.next() % 12];
        let alphabet = if rng.next().is_multiple_of(2) {
            &TAIL[..62]
        } else {
            TAIL
        };
        out.extend((0..tail).map(|_| char::from(alphabet[rng.next() % alphabet.len()])));
        out.push_str(AFTER[rng.next() % AFTER.len()]);
    }
    out
}

#[test]
fn word_start_anchors_give_the_findings_every_anchor_gave() {
    let literals = literals().unwrap();
    let restricted = Anchors::new().unwrap();
    let everywhere = Anchors::reporting_everywhere().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut findings = 0;
    for _ in 0..30_000 {
        let text = text(&mut rng, &literals);
        let (mut got, mut want) = (Vec::new(), Vec::new());
        restricted.scan(&text, &[], &mut got);
        everywhere.scan(&text, &[], &mut want);
        assert_eq!(got, want, "{text:?}");
        findings += want.len();
        let cut = (0..=text.len().min(40))
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        let (name, value) = text.split_at(cut);
        assert_eq!(
            restricted.field(name, value),
            everywhere.field(name, value),
            "{name:?} {value:?}"
        );
    }
    assert!(findings > 10_000, "{findings}");
}
