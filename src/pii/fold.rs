//! Text as a model reads it, for detection: Unicode compatibility forms folded (NFKC: fullwidth
//! `４１１１` and `ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ`, circled and superscript digits, ligatures) and
//! invisible characters left out (zero-width spaces and joiners, soft hyphens, bidi controls,
//! variation selectors, the byte-order mark, NUL and other C0 controls but tab and line breaks),
//! and so are combining marks (`j̲a̲n̲e̲`, `4̶1̶1̶1̶`: a reader sees the letters and digits beneath).
//! Dashes and the minus sign read as `-`, ideographic full stops as `.` (IDNA maps them so in
//! domain names): `4111–1111–1111–1111` and `jane@example。com` are what they look like.
//! A finding in the folded text maps back to the bytes of the original it came from, so a
//! redaction replaces the original characters, whatever form they took.

use unicode_normalization::UnicodeNormalization;

/// A text folded for detection, and the way back to the original's byte offsets.
pub(super) struct Folded {
    /// The folded text.
    pub text: String,
    /// One entry per original character that did not fold to itself, plus the runs in between:
    /// `(folded start, original start, original end, identity)`; sorted by folded start.
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    folded: usize,
    folded_end: usize,
    original: usize,
    original_end: usize,
    /// Bytes map one to one (a run of characters that fold to themselves).
    identity: bool,
}

/// Whether `c` stays as it is under folding (checked before the slower path).
fn plain(c: char) -> bool {
    (c.is_ascii() && !c.is_ascii_control()) || matches!(c, '\t' | '\n' | '\r')
}

/// Characters a reader does not see: Unicode's default-ignorable code points and the C0/C1
/// controls other than tab and line breaks.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}'
        | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}'
        | '\u{ffa0}' | '\u{fff0}'..='\u{fff8}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e0fff}')
}

/// Characters left out of the folded text: the invisible ones and combining marks, which
/// NFKC keeps when they do not compose with the character before them.
fn unseen(c: char) -> bool {
    invisible(c) || unicode_normalization::char::is_combining_mark(c)
}

/// Punctuation NFKC leaves as it is that a reader takes for ASCII's.
fn alike(c: char) -> char {
    match c {
        '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe58}' | '\u{fe63}' => '-',
        '\u{3002}' => '.',
        _ => c,
    }
}

/// Whether `c`, not ASCII, stays as it is under folding: most letters of most scripts (`é`,
/// `ß`, `ж`), so text in another language than English is not copied for nothing.
fn stable(c: char) -> bool {
    use unicode_normalization::{IsNormalized, is_nfkc_quick};
    !c.is_ascii()
        && !unseen(c)
        && alike(c) == c
        && is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes
}

/// The first byte of `b` that is not printable ASCII, tab or a line break; eight at a time.
fn first_unusual(b: &[u8]) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let usual = |x: u8| (0x20..0x7f).contains(&x) || matches!(x, b'\t' | b'\n' | b'\r');
    let mut chunks = b.chunks_exact(8);
    let mut at = 0;
    for chunk in chunks.by_ref() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte with its high bit set, below 0x20, or equal to 0x7f: look at them one by one.
        let below_space = w.wrapping_sub(LOW * 0x20) & !w;
        let del = (w ^ (LOW * 0x7f)).wrapping_sub(LOW) & !(w ^ (LOW * 0x7f));
        if (w | below_space | del) & HIGH != 0
            && let Some(i) = chunk.iter().position(|&x| !usual(x))
        {
            return Some(at + i);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&x| !usual(x))
        .map(|i| at + i)
}

/// `text` folded, or `None` when folding leaves it as it is (the common case: plain text).
pub(super) fn fold(text: &str) -> Option<Folded> {
    // Bytes first: a text that is plain ASCII (most are) is left at once, and so is one whose
    // other characters all stay as they are.
    let first = first_unusual(text.as_bytes())?;
    if text[first..].chars().all(|c| plain(c) || stable(c)) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut segments = Vec::new();
    out.push_str(&text[..first]);
    let mut run: Option<(usize, usize)> = (first > 0).then_some((0, 0));
    let close =
        |run: &mut Option<(usize, usize)>, segments: &mut Vec<Segment>, at: usize, out: &str| {
            if let Some((folded, original)) = run.take() {
                segments.push(Segment {
                    folded,
                    folded_end: out.len(),
                    original,
                    original_end: at,
                    identity: true,
                });
            }
        };
    for (i, c) in text[first..].char_indices().map(|(i, c)| (i + first, c)) {
        if plain(c) || stable(c) {
            if run.is_none() {
                run = Some((out.len(), i));
            }
            out.push(c);
            continue;
        }
        close(&mut run, &mut segments, i, &out);
        let folded = out.len();
        if !unseen(c) {
            let read = std::iter::once(c).nfkc().filter(|c| !unseen(*c));
            out.extend(read.map(alike));
        }
        segments.push(Segment {
            folded,
            folded_end: out.len(),
            original: i,
            original_end: i + c.len_utf8(),
            identity: false,
        });
    }
    close(&mut run, &mut segments, text.len(), &out);
    Some(Folded {
        text: out,
        segments,
    })
}

impl Folded {
    /// The original byte range of the folded range `start..end` (`start < end`), widened to whole
    /// original characters.
    pub(super) fn original(&self, start: usize, end: usize) -> (usize, usize) {
        (self.map(start, false), self.map(end - 1, true))
    }

    /// The original offset of the folded byte at `at`: its own start, or (`after`) the end of the
    /// original character it belongs to.
    fn map(&self, at: usize, after: bool) -> usize {
        // The last segment starting at or before `at` that is not empty holds it.
        let i = self
            .segments
            .partition_point(|s| s.folded <= at)
            .saturating_sub(1);
        let mut i = i;
        while i > 0 && self.segments[i].folded_end <= at {
            i -= 1;
        }
        let Some(s) = self.segments.get(i) else {
            return 0;
        };
        match (s.identity, after) {
            (true, false) => s.original + (at - s.folded),
            (true, true) => s.original + (at - s.folded) + 1,
            (false, false) => s.original,
            (false, true) => s.original_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("plain ascii text", None),
            ("line\tbreaks\r\nstay", None),
            ("４１１１ １１１１", Some("4111 1111")),
            ("ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ", Some("jane@example.com")),
            ("ja\u{200b}ne@exa\u{ad}mple.com", Some("jane@example.com")),
            ("j\0a\0n\0e\0", Some("jane")),
            ("①②③", Some("123")),
            ("\u{feff}x", Some("x")),
            ("caf\u{e9} stra\u{df}e \u{436}", None),
            ("caf\u{e9} ４", Some("caf\u{e9} 4")),
            ("caf\u{e9}\x7f", Some("caf\u{e9}")),
            // Marks a reader sees past: `j̲a̲n̲e̲`, `4̶1̶1̶1̶`.
            ("j\u{332}a\u{332}ne@example.com", Some("jane@example.com")),
            ("4\u{336}1\u{336}11", Some("4111")),
            ("ju\u{308}rgen", Some("jurgen")),
            // Punctuation read as ASCII's that NFKC leaves as it is.
            ("4111\u{2013}1111\u{2011}1111", Some("4111-1111-1111")),
            ("４１１１−１１１１", Some("4111-1111")),
            ("jane@example\u{3002}com", Some("jane@example.com")),
        ];
        for (text, want) in cases {
            let got = fold(text).map(|f| f.text);
            assert_eq!(got.as_deref(), *want, "{text:?}");
        }
    }

    #[test]
    fn the_first_unusual_byte_is_found_at_every_position() {
        for len in 0..20 {
            assert_eq!(first_unusual(&vec![b'a'; len]), None);
            assert_eq!(first_unusual(&vec![b'\n'; len]), None);
            for at in 0..len {
                for odd in [0u8, 0x1f, 0x7f, 0x80, 0xc3, 0xff, b'\x0b'] {
                    let mut text = vec![b'~'; len];
                    text[at] = odd;
                    assert_eq!(first_unusual(&text), Some(at), "{len} {at} {odd}");
                }
            }
        }
    }

    #[test]
    fn folded_ranges_map_back_to_whole_original_characters() {
        let text = "card ４１１１ and ja\u{200b}ne@example.com.";
        let folded = fold(text).unwrap();
        let card = folded.text.find("4111").unwrap();
        let (s, e) = folded.original(card, card + 4);
        assert_eq!(&text[s..e], "４１１１");
        let mail = folded.text.find("jane").unwrap();
        let (s, e) = folded.original(mail, mail + "jane@example.com".len());
        assert_eq!(&text[s..e], "ja\u{200b}ne@example.com");
        let (s, e) = folded.original(0, 4);
        assert_eq!(&text[s..e], "card");
        let tail = folded.text.len();
        let (s, e) = folded.original(tail - 1, tail);
        assert_eq!(&text[s..e], ".");
    }
}
