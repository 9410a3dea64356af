//! The fixed-seed random source and the text mixer of the scanner's randomized tests, which
//! compare a fast search with a plain one on many made-up texts.

/// xorshift64: cheap and reproducible, enough to choose the pieces of test texts.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub(crate) fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

/// How [`mix`] draws a text: fewer than `parts` pieces, one in `filler` of them a filler, one in
/// `cut` of the words cut short, one in `upper` of a word's bytes upper-cased.
pub(crate) struct Mix {
    pub parts: usize,
    pub filler: usize,
    pub cut: usize,
    pub upper: usize,
}

/// A text of `words` (cut short and in random case now and then) run together with `fillers`.
pub(crate) fn mix<W: AsRef<[u8]>, F: AsRef<[u8]>>(
    rng: &mut Rng,
    words: &[W],
    fillers: &[F],
    how: &Mix,
) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..rng.next() % how.parts {
        if rng.next().is_multiple_of(how.filler) {
            out.extend_from_slice(fillers[rng.next() % fillers.len()].as_ref());
            continue;
        }
        let word = words[rng.next() % words.len()].as_ref();
        let cut = if rng.next().is_multiple_of(how.cut) {
            rng.next() % word.len()
        } else {
            word.len()
        };
        out.extend(word[..cut].iter().map(|&c| {
            if rng.next().is_multiple_of(how.upper) {
                c.to_ascii_uppercase()
            } else {
                c
            }
        }));
    }
    out
}
