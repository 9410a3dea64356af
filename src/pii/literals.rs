//! Every occurrence of the anchor literals in a text, ASCII case ignored, overlapping, in the
//! order an overlapping Aho-Corasick walk reports them (by end, the longer first): what
//! `anchors.rs` acts on.
//!
//! Most of a text starts no literal, but the literals begin with nearly every letter (gitleaks'
//! keywords: `key`, `api`, `token`, …), so no byte class is rare enough for `memchr`, and the
//! 241 literals are too many for a packed (Teddy) searcher. A walk over a full DFA cost two
//! thirds of the scan of plain prose (its table is larger than the L1 cache). Instead each
//! position's next three bytes, case folded, are hashed into a 64 KiB table holding the first
//! three bytes of every literal (and every continuation of a two-byte one), a byte to a hash:
//! one load of the bytes, one multiply and one load of the table a position, sixteen positions
//! to a branch (a bit set in place of the table cost a variable shift a position, a third more
//! time). Where a byte is set, the same of four bytes in a bit set (unless a literal of two or
//! three bytes begins there) and then the literals that begin with those two bytes are compared;
//! a one-byte literal (`@`) is found with `memchr`.

/// Bits of the hash of four bytes: a set of 2^18 bits (32 KiB).
const HASH_BITS: u32 = 18;
const HASH_WORDS: usize = 1 << (HASH_BITS - 6);
/// Bits of the hash of three bytes: a table of 2^16 bytes (64 KiB), a byte to a hash, so that a
/// position is tested with one load and no variable shift.
const START_BITS: u32 = 16;

/// Whether a byte continues a word for the literals found only where one begins.
fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A literal found: `text[start..end]`, literal number `literal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Hit {
    pub start: usize,
    pub end: usize,
    pub literal: usize,
}

impl Hit {
    fn order(&self) -> (usize, usize) {
        (self.end, self.start)
    }
}

/// The compiled literal set.
pub(super) struct Literals {
    /// The literals, lower case.
    literals: Vec<Box<[u8]>>,
    /// By literal: its first four bytes (fewer when shorter) with [`FOLD`], and the mask of the
    /// bytes it has, so most literals of a group are dismissed by one comparison of words.
    heads: Vec<(u32, u32)>,
    /// Byte `hash(fold(first three bytes))` is 1 for every literal of three bytes or more, and
    /// for every continuation of each two-byte literal.
    /// (A fixed-size array: an index shifted down to [`START_BITS`] bits needs no bounds check.)
    starts: Box<[u8; 1 << START_BITS]>,
    /// The same of the first four bytes of every literal of four bytes or more.
    quads: Box<[u64; HASH_WORDS]>,
    /// By the folded first two bytes: whether a literal of two or three bytes begins so (the
    /// four bytes at a candidate then say nothing).
    short_pairs: Box<[u64; 1024]>,
    /// By the folded first two bytes: 1 + the index in `groups` of the literals beginning so.
    pairs: Box<[u16; 1 << 16]>,
    /// The literals that begin with one pair of (folded) bytes.
    groups: Vec<Vec<usize>>,
    /// One-byte literals: each byte that is one (both cases), with its literal.
    singles: Vec<(u8, usize)>,
    /// By literal: reported only where it begins a word (see [`Literals::find`]).
    word_start: Vec<bool>,
    /// By the folded first two bytes: whether every literal beginning so is one of those, so
    /// a position inside a word is dismissed before any table of the comparison is read.
    word_start_pairs: Box<[u64; 1024]>,
}

/// ASCII letters to lower case, four or eight at a time; a few punctuation pairs (`@` and
/// `` ` ``, `[` and `{`, `_` and DEL) fold together too, which only adds candidates that the
/// comparison then drops.
const FOLD: u64 = 0x2020_2020_2020_2020;

fn pair_key(a: u8, b: u8) -> usize {
    usize::from(a | 0x20) | usize::from(b | 0x20) << 8
}

/// The multiplier of the hash.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The hash of the (folded) bytes in the low `bytes` bytes of `key`, of `bits` bits: the
/// product of those bytes shifted to the top of the word, which is that of the whole key by the
/// multiplier shifted as far (the bytes above drop out of the product): no shift per position.
fn hash_of(key: u64, bytes: u32, bits: u32) -> usize {
    ((key | FOLD).wrapping_mul(MULTIPLIER << (64 - 8 * bytes)) >> (64 - bits)) as usize
}

/// The hash of `bytes` bytes (four: the set of first four bytes) into [`HASH_BITS`] bits.
fn hash(key: u64, bytes: u32) -> usize {
    hash_of(key, bytes, HASH_BITS)
}

/// The hash of three bytes, into the table of [`START_BITS`] bits.
fn start_hash(key: u64) -> usize {
    hash_of(key, 3, START_BITS)
}

/// The first three bytes at `j` of a chunk, and the one after them, which [`start_hash`]
/// ignores: one load a position.
fn key_at(chunk: &[u8; CHUNK + 3], j: usize) -> u64 {
    u64::from(u32::from_le_bytes([
        chunk[j],
        chunk[j + 1],
        chunk[j + 2],
        chunk[j + 3],
    ]))
}

/// Positions tested to a branch.
const CHUNK: usize = 16;

fn set(bits: &mut [u64; HASH_WORDS], h: usize) {
    bits[h >> 6] |= 1 << (h & 63);
}

fn test(bits: &[u64; HASH_WORDS], h: usize) -> u32 {
    (bits[h >> 6] >> (h & 63)) as u32 & 1
}

/// The folded first four bytes of a literal and the mask of those it has (see `heads`).
fn head_of(literal: &[u8]) -> (u32, u32) {
    let n = literal.len().min(4);
    let mask = u32::MAX >> (8 * (4 - n));
    // The key's bytes past the literal's end are zero; the mask drops what FOLD set in them.
    ((key_of(&literal[..n]) | FOLD) as u32 & mask, mask)
}

fn key_of(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(word)
}

impl Literals {
    /// The set of `literals` (lower case, not empty; at most 65,535 distinct first pairs), of
    /// which those marked in `word_start` are found only where they begin a word.
    pub(super) fn new(literals: &[String], word_start: &[bool]) -> Result<Literals, String> {
        if word_start.len() != literals.len() {
            return Err("a word-start mark for every anchor literal".into());
        }
        let mut starts = Box::new([0u8; 1 << START_BITS]);
        let mut quads = Box::new([0u64; HASH_WORDS]);
        let mut short_pairs = Box::new([0u64; 1024]);
        let mut pairs = Box::new([0u16; 1 << 16]);
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut singles = Vec::new();
        for (id, literal) in literals.iter().enumerate() {
            let l = literal.as_bytes();
            match *l {
                [] => return Err("an empty anchor literal".into()),
                [c] => {
                    singles.push((c.to_ascii_lowercase(), id));
                    if c.is_ascii_alphabetic() {
                        singles.push((c.to_ascii_uppercase(), id));
                    }
                    continue;
                }
                [a, b] => (0..=255).for_each(|c| starts[start_hash(key_of(&[a, b, c]))] = 1),
                _ => starts[start_hash(key_of(&l[..3]))] = 1,
            }
            if l.len() >= 4 {
                set(&mut quads, hash(key_of(&l[..4]), 4));
            }
            let key = pair_key(l[0], l[1]);
            if l.len() <= 3 {
                short_pairs[key >> 6] |= 1 << (key & 63);
            }
            if pairs[key] == 0 {
                groups.push(Vec::new());
                pairs[key] = u16::try_from(groups.len()).map_err(|e| e.to_string())?;
            }
            groups[usize::from(pairs[key]) - 1].push(id);
        }
        let mut word_start_pairs = Box::new([0u64; 1024]);
        for (key, &group) in pairs.iter().enumerate() {
            let all = usize::from(group)
                .checked_sub(1)
                .is_some_and(|g| groups[g].iter().all(|&id| word_start[id]));
            if all {
                word_start_pairs[key >> 6] |= 1 << (key & 63);
            }
        }
        Ok(Literals {
            heads: literals.iter().map(|l| head_of(l.as_bytes())).collect(),
            literals: literals
                .iter()
                .map(|l| l.to_ascii_lowercase().into_bytes().into_boxed_slice())
                .collect(),
            starts,
            quads,
            short_pairs,
            pairs,
            groups,
            singles,
            word_start: word_start.to_vec(),
            word_start_pairs,
        })
    }

    /// Every occurrence in `text`, ordered by end, then by start, except those of a literal
    /// marked word-start that continue a word (the byte before is a letter, a digit or `_`):
    /// the occurrences an overlapping Aho-Corasick walk reports, less those.
    pub(super) fn find(&self, text: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        // Sixteen positions at a time; one branch for the sixteen.
        let mut i = 0;
        while let Some(chunk) = text
            .get(i..i + CHUNK + 3)
            .and_then(|c| <&[u8; CHUNK + 3]>::try_from(c).ok())
        {
            let mut found = 0;
            for j in 0..CHUNK {
                found |= u32::from(self.starts[start_hash(key_at(chunk, j))]) << j;
            }
            while found != 0 {
                let j = found.trailing_zeros() as usize;
                found &= found - 1;
                self.compare(text, i + j, &mut hits);
            }
            i += CHUNK;
        }
        while let Some(window) = text.get(i..i + 3) {
            if self.starts[start_hash(key_of(window))] != 0 {
                self.compare(text, i, &mut hits);
            }
            i += 1;
        }
        if i + 1 < text.len() {
            self.compare(text, i, &mut hits);
        }
        if self.singles.is_empty() {
            return hits;
        }
        let mut singles: Vec<Hit> = Vec::new();
        for &(byte, literal) in &self.singles {
            singles.extend(
                memchr::memchr_iter(byte, text)
                    .filter(|&start| !self.inside_word(text, start, literal))
                    .map(|start| Hit {
                        start,
                        end: start + 1,
                        literal,
                    }),
            );
        }
        if singles.is_empty() {
            return hits;
        }
        singles.sort_unstable_by_key(Hit::order);
        merge(hits, singles)
    }

    /// Whether an occurrence of `literal` at `start` is one [`Literals::find`] leaves out.
    fn inside_word(&self, text: &[u8], start: usize, literal: usize) -> bool {
        self.word_start[literal] && start > 0 && is_word(text[start - 1])
    }

    /// The literals of two bytes or more that start at `i`, added to `hits` in order.
    fn compare(&self, text: &[u8], i: usize, hits: &mut Vec<Hit>) {
        let pair = pair_key(text[i], text[i + 1]);
        let inside = i > 0 && is_word(text[i - 1]);
        if inside && self.word_start_pairs[pair >> 6] >> (pair & 63) & 1 == 1 {
            return;
        }
        // Most candidates are dismissed by their fourth byte, before the larger pair table.
        if self.short_pairs[pair >> 6] >> (pair & 63) & 1 == 0 {
            let Some(quad) = text.get(i..i + 4) else {
                return;
            };
            if test(&self.quads, hash(key_of(quad), 4)) == 0 {
                return;
            }
        }
        let Some(group) = usize::from(self.pairs[pair])
            .checked_sub(1)
            .map(|g| &self.groups[g])
        else {
            return;
        };
        let head = key_of(&text[i..text.len().min(i + 4)]) as u32 | FOLD as u32;
        for &literal in group {
            let (want, mask) = self.heads[literal];
            if head & mask != want || (inside && self.word_start[literal]) {
                continue;
            }
            let l = &self.literals[literal];
            let end = i + l.len();
            if text.get(i..end).is_some_and(|t| t.eq_ignore_ascii_case(l)) {
                let hit = Hit {
                    start: i,
                    end,
                    literal,
                };
                // Hits arrive by start; a later start may end first (a shorter literal).
                let mut at = hits.len();
                while at > 0 && hits[at - 1].order() > hit.order() {
                    at -= 1;
                }
                hits.insert(at, hit);
            }
        }
    }
}

/// Two lists in `Hit::order` merged into one.
fn merge(a: Vec<Hit>, b: Vec<Hit>) -> Vec<Hit> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x.order() <= y.order() => a.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => a.next(),
            (None, _) => b.next(),
        };
        let Some(next) = next else {
            return out;
        };
        out.push(next);
    }
}

#[cfg(test)]
#[path = "literals_tests.rs"]
mod tests;
