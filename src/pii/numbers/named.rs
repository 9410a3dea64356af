//! The words that name an identifier near a number (`SSN`, `BSN`, `pesel`, `national insurance`):
//! read in the text around the number, lower-cased, where they begin a word.

use std::cell::OnceCell;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind};

use super::ids::ID_WORDS;
use super::lettered::NINO_WORDS;

/// How far before a number its naming word may stand, in bytes.
const WINDOW: usize = 48;

/// How far after a number its naming word may stand (`199109242397 är mitt pnr`), in bytes.
const AFTER: usize = 24;

/// Every word [`Named::any`] is asked about: those of [`ID_WORDS`] and [`NINO_WORDS`], each once,
/// in one automaton. The window is read once a number, not once a word (a searcher set up for
/// every word of every number was a tenth of the scan of dense text).
struct Naming {
    automaton: AhoCorasick,
    words: Vec<&'static str>,
}

/// More words than this and the automaton is not built (the words are searched one by one).
const MAX_WORDS: usize = 128;

static NAMING: LazyLock<Option<Naming>> = LazyLock::new(|| {
    let mut words: Vec<&'static str> = Vec::new();
    for &word in ID_WORDS.iter().flat_map(|w| w.iter()).chain(NINO_WORDS) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.len() > MAX_WORDS || words.iter().any(|w| w.is_empty()) {
        return None;
    }
    let automaton = AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .build(&words)
        .ok()?;
    Some(Naming { automaton, words })
});

/// The text just before a number (and after it, for [`Named::around`]), lower-cased, and the
/// naming words found in it. Text of ASCII only (nearly all of it) is kept on the stack: one
/// allocation and one Unicode case mapping per number were a tenth of the scan of dense text.
pub(super) struct Named {
    window: Window,
    /// The words of [`NAMING`] that begin a word in the window (and end one, when short).
    found: OnceCell<Vec<&'static str>>,
}

/// The lower-cased window: inline when ASCII (`len` bytes of `bytes`), else a `String`.
enum Window {
    Ascii {
        bytes: [u8; WINDOW + 1 + AFTER],
        len: usize,
    },
    Text(String),
}

impl Named {
    pub(super) fn before(b: &[u8], start: usize) -> Named {
        let from = start.saturating_sub(WINDOW);
        let mut named = Named {
            window: Window::Ascii {
                bytes: [0; WINDOW + 1 + AFTER],
                len: 0,
            },
            found: OnceCell::new(),
        };
        named.push(&b[from..start]);
        named
    }

    /// The words before the number at `start..end` and those after it in the same clause (up to
    /// a digit or a punctuation mark that ends a clause): "… is my SIN", "… är mitt pnr".
    pub(super) fn around(b: &[u8], start: usize, end: usize) -> Named {
        let mut named = Named::before(b, start);
        let tail = &b[end..b.len().min(end + AFTER)];
        let clause = tail
            .iter()
            .position(|&c| c.is_ascii_digit() || b".,;:!?\n(".contains(&c))
            .unwrap_or(tail.len());
        named.push(b"\n");
        named.push(&tail[..clause]);
        named
    }

    /// Appends `part` lower-cased, as `String::from_utf8_lossy(part).to_lowercase()` would.
    fn push(&mut self, part: &[u8]) {
        if let Window::Ascii { bytes, len } = &mut self.window
            && part.is_ascii()
            && *len + part.len() <= bytes.len()
        {
            bytes[*len..*len + part.len()].copy_from_slice(part);
            bytes[*len..*len + part.len()].make_ascii_lowercase();
            *len += part.len();
            return;
        }
        let lower = String::from_utf8_lossy(part).to_lowercase();
        match &mut self.window {
            Window::Text(text) => text.push_str(&lower),
            Window::Ascii { bytes, len } => {
                let mut text = String::from_utf8_lossy(&bytes[..*len]).into_owned();
                text.push_str(&lower);
                self.window = Window::Text(text);
            }
        }
    }

    fn text(&self) -> &str {
        match &self.window {
            Window::Ascii { bytes, len } => std::str::from_utf8(&bytes[..*len]).unwrap_or_default(),
            Window::Text(text) => text,
        }
    }

    /// Whether one of `words` (lower-case; words of [`ID_WORDS`] or [`NINO_WORDS`], which the
    /// automaton holds: asking whether each word is one of them cost more than the search)
    /// starts a word here; a word of four characters or fewer must end one too (`sin` is not
    /// `since`, `tin` not `tiny`).
    pub(super) fn any(&self, words: &[&str]) -> bool {
        let Some(naming) = NAMING.as_ref() else {
            return words.iter().any(|word| self.names(word));
        };
        let found = self.found.get_or_init(|| {
            let w = self.text();
            // Each word's occurrences as `str::match_indices` gives them: leftmost first, none
            // overlapping the last one taken (the walk reports a word's in order of start).
            let mut next = [0usize; MAX_WORDS];
            let mut found: Vec<&'static str> = Vec::new();
            for hit in naming.automaton.find_overlapping_iter(w) {
                let p = hit.pattern().as_usize();
                if hit.start() < next[p] {
                    continue;
                }
                next[p] = hit.end();
                let word = naming.words[p];
                if begins_word(w, hit.start(), word) && !found.contains(&word) {
                    found.push(word);
                }
            }
            found
        });
        debug_assert!(
            words.iter().all(|word| naming.words.contains(word)),
            "a naming word outside ID_WORDS and NINO_WORDS: {words:?}"
        );
        words.iter().any(|word| found.contains(word))
    }

    /// Whether `word` starts a word here, searched on its own.
    fn names(&self, word: &str) -> bool {
        let w = self.text();
        occurrences(w, word).any(|i| begins_word(w, i, word))
    }
}

/// Whether `word`, found at `i` in `w`, begins a word there; a word of four characters or fewer
/// must end one too.
fn begins_word(w: &str, i: usize, word: &str) -> bool {
    let starts = w[..i]
        .chars()
        .next_back()
        .is_none_or(|c| !c.is_alphanumeric());
    let short = word.chars().count() <= 4;
    let ends = !short
        || w[i + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphabetic());
    starts && ends
}

/// Where `word` (not empty) occurs in `w`: leftmost first and not overlapping, the positions
/// `str::match_indices` gives, without its searcher's set-up for every word of every number (a
/// byte match of a UTF-8 word in UTF-8 text falls on character boundaries).
fn occurrences<'a>(w: &'a str, word: &'a str) -> impl Iterator<Item = usize> + 'a {
    let (text, word) = (w.as_bytes(), word.as_bytes());
    let mut from = 0;
    std::iter::from_fn(move || {
        let &first = word.first()?;
        while from + word.len() <= text.len() {
            let at = from + memchr::memchr(first, &text[from..=text.len() - word.len()])?;
            if text[at..].starts_with(word) {
                from = at + word.len();
                return Some(at);
            }
            from = at + 1;
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::{ID_WORDS, NAMING, NINO_WORDS, Named, occurrences};

    /// The way `Named` read its window before it was kept on the stack.
    fn reference(b: &[u8], start: usize, end: usize, words: &[&str]) -> bool {
        let from = start.saturating_sub(super::WINDOW);
        let mut w = String::from_utf8_lossy(&b[from..start]).to_lowercase();
        let tail = &b[end..b.len().min(end + super::AFTER)];
        let clause = tail
            .iter()
            .position(|&c| c.is_ascii_digit() || b".,;:!?\n(".contains(&c))
            .unwrap_or(tail.len());
        w.push('\n');
        w.push_str(&String::from_utf8_lossy(&tail[..clause]).to_lowercase());
        words.iter().any(|word| {
            w.match_indices(word).any(|(i, _)| {
                let starts = w[..i]
                    .chars()
                    .next_back()
                    .is_none_or(|c| !c.is_alphanumeric());
                let ends = word.chars().count() > 4
                    || w[i + word.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !c.is_alphabetic());
                starts && ends
            })
        })
    }

    #[test]
    fn the_words_are_found_as_match_indices_finds_them_in_a_lowercased_copy() {
        let pieces: &[&str] = &[
            " ",
            "sin",
            "SIN",
            "Sin",
            "since",
            "tin",
            "tax id",
            "TAX ID",
            "nhs",
            "ssn",
            "bsn",
            "pesel",
            "rč",
            "RČ",
            "r.č.",
            "αμκα",
            "ΑΜΚΑ",
            "İ",
            "ẞ",
            "é",
            "ß",
            "\n",
            ".",
            ":",
            "-",
            "12",
            "x",
            "nifnif",
            "nasnas",
            "sinsin",
            "\u{fffd}",
            "adóazonosító",
            "ADÓAZONOSÍTÓ",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        let mut agreed = [0usize; 2];
        for _ in 0..20_000 {
            let mut text = String::new();
            for _ in 0..next() % 30 {
                text.push_str(pieces[next() % pieces.len()]);
            }
            let b = text.as_bytes();
            // Any byte offsets, even inside a character (the window's edges cut through some).
            let start = next() % (b.len() + 1);
            let end = start + next() % (b.len() - start + 1);
            for &words in ID_WORDS.iter().chain(&[NINO_WORDS]) {
                let want = reference(b, start, end, words);
                assert_eq!(Named::around(b, start, end).any(words), want, "{text:?}");
                agreed[usize::from(want)] += 1;
            }
        }
        assert!(agreed[1] > 1_000, "{agreed:?}");
    }

    #[test]
    fn occurrences_are_those_of_match_indices() {
        for (text, word) in [
            ("aaaa", "aa"),
            ("nasnasnas", "nasnas"),
            ("", "a"),
            ("a", "a"),
            ("xrč rčrč", "rč"),
            ("ab", "abc"),
        ] {
            let want: Vec<usize> = text.match_indices(word).map(|(i, _)| i).collect();
            assert_eq!(occurrences(text, word).collect::<Vec<_>>(), want, "{text}");
        }
        assert!(
            ID_WORDS
                .iter()
                .flat_map(|w| w.iter())
                .all(|w| !w.is_empty())
        );
        let naming = NAMING.as_ref().expect("the automaton of naming words");
        for word in ID_WORDS.iter().flat_map(|w| w.iter()).chain(NINO_WORDS) {
            assert!(naming.words.contains(word), "{word}");
        }
    }
}
