//! Candidates that start with a digit (or `+`, `(` before one) and addresses with colons: the
//! numbers in a text are few, so each one is cut into digit groups once and every numeric kind
//! (cards, IBANs, national identifiers, phones, IPs) is checked against those groups.

mod addresses;
mod cards;
mod iban;
mod ids;
mod inline;
mod lettered;
mod named;
mod numeric;
mod phone_context;
mod phone_extension;
mod phone_formats;
mod phone_plans;
mod phones;

pub use phones::{DEFAULT_PHONE_REGIONS, PhoneRegions, UnknownRegion};

use addresses::{colon, lettered_mac, mac_around};
use iban::{iban_at, iban_shaped};
use inline::Inline;
use phone_context::Walk;

use super::checksum as check;
use super::national_id as id;
use super::{Finding, Kind};

/// Separator characters allowed between digit groups (at most two in a row: `) `).
const SEPARATORS: &[u8] = b" -./()";

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Scans `text` for every digit-led kind.
pub(super) fn scan(text: &str, regions: &PhoneRegions, out: &mut Vec<Finding>) {
    let b = text.as_bytes();
    let mut i = next_start(b, 0);
    if i >= b.len() {
        // Most short texts (a header, a member's name) hold nothing that starts a number, and
        // the cluster is a kilobyte to clear.
        return;
    }
    let mut cluster = Cluster::empty();
    let mut walk = Walk::new();
    while let Some(&c) = b.get(i) {
        i = match c {
            b'0'..=b'9' => candidate(text, i, regions, (&mut cluster, &mut walk), out).max(i + 1),
            b'+' | b'(' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                candidate(text, i, regions, (&mut cluster, &mut walk), out).max(i + 1)
            }
            b':' => colon(text, i, out).max(i + 1),
            // `next_start` stops at a `-` or `.` only between hex digits.
            b'-' | b'.' => lettered_mac(b, i, out).max(i + 1),
            _ => i + 1,
        };
        i = next_start(b, i);
    }
}

/// The first byte at or after `from` that may start a candidate (a digit, `+`, `(`, `:`, or a `-`
/// or `.` between hex digits, which may follow the first group of a MAC address written in hex
/// letters only), or the length: eight bytes at a time, since most of a text is letters and
/// spaces. A `-`, `.` or `/` the range test flags but that is no such separator is passed over
/// inside the loop: returning to the caller at each full stop of prose cost it 4 %. A run of
/// them (a row of dots) is passed over a byte at a time: flag by flag it cost the bench's
/// request, which ends in 700 dots, 14 K instructions.
fn next_start(b: &[u8], from: usize) -> usize {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let starts = |at: usize| starts_at(b, at);
    let equal = |w: u64, c: u8| {
        let x = w ^ (LOW * u64::from(c));
        x.wrapping_sub(LOW) & !x & HIGH
    };
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let seven = w & !HIGH;
        // 0x2d..=0x3a: `-`, `.`, `/`, digits and `:`, flagged exactly (no carry crosses a byte;
        // bytes of non-ASCII characters are left out): one range costs less than two bytes more.
        let at_least = seven + LOW * (0x80 - 0x2d);
        let above = seven + LOW * (0x7f - 0x3a);
        let ranged = at_least & !above & !w & HIGH;
        // The lowest flagged `+` or `(` is a true one (a borrow only flags bytes above a match),
        // and only exactly flagged `-./` are passed over below it.
        let mut hits = ranged | equal(w, b'+') | equal(w, b'(');
        let mut next = i + 8;
        while hits != 0 {
            let at = i + (hits.trailing_zeros() / 8) as usize;
            if starts(at) {
                return at;
            }
            // A run of `-./` (a row of dots or dashes): none after the first follows a hex
            // digit, so the run is passed over a byte at a time, not a flag at a time.
            if is_separator(b[at]) && b.get(at + 1).copied().is_some_and(is_separator) {
                next = at + 2;
                while b.get(next).copied().is_some_and(is_separator) {
                    next += 1;
                }
                break;
            }
            hits &= hits - 1;
        }
        i = next;
    }
    (i..b.len()).find(|&at| starts(at)).unwrap_or(b.len())
}

/// Whether the byte at `at` may start a candidate: what [`next_start`] finds, a byte at a time.
fn starts_at(b: &[u8], at: usize) -> bool {
    match b[at] {
        b'-' | b'.' => mac_separator(b, at),
        b'/' => false,
        c => matches!(c, b'0'..=b':' | b'+' | b'('),
    }
}

/// `-`, `.` or `/`: bytes the start filter flags that start nothing after one another.
fn is_separator(c: u8) -> bool {
    matches!(c, b'-' | b'.' | b'/')
}

/// Whether the `-` or `.` at `at` stands between hex digits, as a MAC address's separators do.
fn mac_separator(b: &[u8], at: usize) -> bool {
    at > 0 && b[at - 1].is_ascii_hexdigit() && b.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
}

/// Most digit groups one cluster holds; longer runs are not an identifier of any kind.
const MAX_GROUPS: usize = 24;

/// A run of digit groups joined by short separators, kept on the stack: most numbers in a text
/// are short and are dismissed without allocating.
struct Cluster {
    start: usize,
    end: usize,
    plus: bool,
    /// Byte ranges of the digit groups (`count` of them).
    groups: [(usize, usize); MAX_GROUPS],
    /// The separators between consecutive groups (`count - 1` of them).
    seps: [(usize, usize); MAX_GROUPS],
    /// The lengths of the groups (`count` of them).
    lens: [usize; MAX_GROUPS],
    count: usize,
    digits: usize,
}

impl Cluster {
    /// A cluster holding nothing, to be filled by [`Cluster::parse`].
    fn empty() -> Cluster {
        Cluster {
            start: 0,
            end: 0,
            plus: false,
            groups: [(0, 0); MAX_GROUPS],
            seps: [(0, 0); MAX_GROUPS],
            lens: [0; MAX_GROUPS],
            count: 0,
            digits: 0,
        }
    }

    /// The cluster starting at `start`, parsed into `c` (one cluster is reused for every
    /// candidate of a text: zeroing both arrays for each number cost more than reading it).
    /// Only the entries the last cluster used and this one does not are cleared afterwards, so
    /// `c` ends as a new one would.
    fn parse(c: &mut Cluster, b: &[u8], start: usize) {
        let used = c.count;
        let plus = b[start] == b'+';
        let mut i = if plus || b[start] == b'(' {
            start + 1
        } else {
            start
        };
        c.start = start;
        c.end = i;
        c.plus = plus;
        c.count = 0;
        c.digits = 0;
        loop {
            let group_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            c.groups[c.count] = (group_start, i);
            c.lens[c.count] = i - group_start;
            c.count += 1;
            c.digits += i - group_start;
            let mut j = i;
            while j < b.len() && j - i < 2 && SEPARATORS.contains(&b[j]) {
                j += 1;
            }
            if j > i && b.get(j).is_some_and(u8::is_ascii_digit) && c.count < MAX_GROUPS {
                c.seps[c.count - 1] = (i, j);
                i = j;
            } else {
                break;
            }
        }
        c.end = i;
        for k in c.count..used {
            c.groups[k] = (0, 0);
            c.lens[k] = 0;
        }
        for k in c.count - 1..used {
            c.seps[k] = (0, 0);
        }
    }

    fn groups(&self) -> &[(usize, usize)] {
        &self.groups[..self.count]
    }

    fn seps(&self) -> &[(usize, usize)] {
        &self.seps[..self.count.saturating_sub(1)]
    }

    /// The values of the digits of groups `from..=to`, of which there are at most
    /// [`cards::LONGEST_RUN`] (a longer cluster is read only for cards, of 19 at most).
    fn digits(&self, b: &[u8], from: usize, to: usize) -> Inline<{ cards::LONGEST_RUN }> {
        let mut digits = Inline::new();
        for &(s, e) in &self.groups[from..=to] {
            digits.extend_values(&b[s..e]);
        }
        digits
    }

    /// Whether the digit groups have exactly the lengths `lens` (without allocating).
    fn lens_are(&self, lens: &[usize]) -> bool {
        self.count == lens.len()
            && self
                .groups()
                .iter()
                .zip(lens)
                .all(|(&(s, e), &len)| e - s == len)
    }

    /// The lengths of the digit groups.
    fn lens(&self) -> &[usize] {
        &self.lens[..self.count]
    }

    fn sep<'t>(&self, text: &'t str, i: usize) -> &'t str {
        let (s, e) = self.seps[i];
        &text[s..e]
    }

    /// Whether every separator from group `from` to group `to` is the same, and one of `allowed`.
    fn consistent(&self, text: &str, from: usize, to: usize, allowed: &[&str]) -> bool {
        if from >= to {
            return true;
        }
        let first = self.sep(text, from);
        allowed.contains(&first) && (from + 1..to).all(|i| self.sep(text, i) == first)
    }
}

/// The fewest digits any digit-led kind has (a short phone number); IPv4 is the exception.
const MIN_DIGITS: usize = 7;

/// One candidate at `start`; returns where scanning continues.
fn candidate(
    text: &str,
    start: usize,
    regions: &PhoneRegions,
    (cluster, walk): (&mut Cluster, &mut Walk),
    out: &mut Vec<Finding>,
) -> usize {
    let b = text.as_bytes();
    if let Some((begin, end)) = mac_around(b, start) {
        out.push(Finding::new(Kind::MacAddress, begin, end, "mac"));
        return end;
    }
    if b[start].is_ascii_digit()
        && let Some((begin, end)) = lettered::nino_around(b, start)
    {
        out.push(Finding::new(Kind::UkNino, begin, end, "uk_nino_prefix"));
        return end;
    }
    Cluster::parse(cluster, b, start);
    let cluster = &*cluster;
    if let Some((begin, end)) = lettered::es_id(b, cluster) {
        out.push(Finding::new(Kind::EsDni, begin, end, "es_dni_mod23"));
        return end;
    }
    let before = start.checked_sub(1).map(|i| b[i]);
    if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
        return word(text, start, start, out);
    }
    if before.is_some_and(|c| b"-./_".contains(&c))
        && start >= 2
        && b[start - 2].is_ascii_alphanumeric()
    {
        // Part of a larger token (a UUID, a version, a path): not a number of its own.
        return skip_token(b, start);
    }
    let corsican_department =
        matches!(b.get(cluster.end), Some(b'A' | b'B')) && b[cluster.end - 1] == b'2';
    if let Some(end) = corsican_department
        .then(|| corsican_nir(b, start))
        .flatten()
    {
        out.push(Finding::new(Kind::FrNir, start, end, "fr_nir_mod97"));
        return end;
    }
    if let Some((kind, end, validator)) = lettered::plus_form(b, cluster) {
        out.push(Finding::new(kind, start, end, validator));
        return end;
    }
    let extension = phone_extension::extension(b, cluster.end);
    if extension.is_none() && b.get(cluster.end).is_some_and(|&c| is_word(c)) {
        return word(text, start, cluster.end, out);
    }
    if b.get(cluster.end).is_some_and(|&c| b"-/".contains(&c))
        && b.get(cluster.end + 1)
            .is_some_and(|&c| c.is_ascii_alphanumeric())
    {
        return skip_token(b, cluster.end);
    }
    // Four groups or more may be an IPv4 address with or without its prefix length.
    if cluster.digits >= MIN_DIGITS || cluster.count >= 4 {
        let before = out.len();
        numeric::numeric(text, cluster, regions, walk, out);
        if let Some(end) = extension {
            if phone_extension::attach(&mut out[before..], cluster.end, end) {
                return end;
            }
            return skip_token(b, cluster.end);
        }
    }
    cluster.end
}

/// A NIR born in Corsica (department `2A` or `2B`), compact or spaced; its key is computed with
/// `19` and `18` in place of the letters.
fn corsican_nir(b: &[u8], start: usize) -> Option<usize> {
    let mut compact = Vec::with_capacity(15);
    let mut i = start;
    while compact.len() < 15 && i < b.len() {
        let c = b[i];
        let letter_slot = compact.len() == 6 && compact.last() == Some(&b'2');
        if c.is_ascii_digit() || (letter_slot && (c == b'A' || c == b'B')) {
            compact.push(c);
            i += 1;
        } else if c == b' '
            && compact.len() < 15
            && b.get(i + 1).is_some_and(u8::is_ascii_alphanumeric)
        {
            i += 1;
        } else {
            break;
        }
    }
    let corsican = compact.len() == 15 && matches!(compact[6], b'A' | b'B');
    if !corsican || b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    let mut digits: Vec<u8> = compact.iter().map(|c| c.wrapping_sub(b'0')).collect();
    (digits[5], digits[6]) = if compact[6] == b'A' { (1, 9) } else { (1, 8) };
    id::fr_nir(&digits).then_some(i)
}

fn skip_token(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (is_word(b[i]) || b"-./".contains(&b[i])) {
        i += 1;
    }
    i
}

/// An alphanumeric word holding digits: the identifiers that mix letters and digits.
fn word(text: &str, digit_start: usize, cluster_end: usize, out: &mut Vec<Finding>) -> usize {
    let b = text.as_bytes();
    let mut ws = digit_start;
    while ws > 0 && b[ws - 1].is_ascii_alphanumeric() {
        ws -= 1;
    }
    let mut we = cluster_end.max(digit_start);
    while we < b.len() && b[we].is_ascii_alphanumeric() {
        we += 1;
    }
    if ws > 0 && b"-./_".contains(&b[ws - 1]) && ws >= 2 && b[ws - 2].is_ascii_alphanumeric() {
        return skip_token(b, we);
    }
    if b.get(we).is_some_and(|&c| c == b'_') {
        return skip_token(b, we);
    }
    let span = &b[ws..we];
    if let Some(end) = iban_at(b, ws) {
        out.push(Finding::new(Kind::Iban, ws, end, "iban_mod97"));
        return end;
    }
    if let Some(end) = iban_shaped(b, ws) {
        // An account number that fails its check: its groups are none of the other kinds.
        return end;
    }
    // Identifiers with letters are read in either case (`rssmra85t10a562s`, `131052-308t`).
    // Only the lengths a lettered identifier has are copied (hashes and UUIDs are not).
    let upper = if matches!(span.len(), 8 | 9 | 11 | 16) {
        span.to_ascii_uppercase()
    } else {
        Vec::new()
    };
    let pps = || {
        upper[..7].iter().all(u8::is_ascii_digit)
            && named::Named::before(b, ws).any(ids::PPS_WORDS)
            && id::ie_pps(&upper)
    };
    let finding = match span.len() {
        16 if id::it_fiscal_code(&upper) && it_fiscal_shape(&upper) => {
            Some((Kind::ItFiscalCode, "it_cf_check"))
        }
        9 if id::uk_nino(&upper) => Some((Kind::UkNino, "uk_nino_prefix")),
        9 if id::es_dni(&upper) => Some((Kind::EsDni, "es_dni_mod23")),
        8 | 9 if pps() => Some((Kind::IePps, "ie_pps_mod23")),
        // The nine-character form's second letter (`A`, `B`, `H`; `W`, `T`, `X` before 2013)
        // makes it stand alone.
        9 if upper[..7].iter().all(u8::is_ascii_digit) && id::ie_pps(&upper) => {
            Some((Kind::IePps, "ie_pps_mod23"))
        }
        11 if id::fi_hetu(&upper) => Some((Kind::FiHetu, "fi_hetu_mod31")),
        11 if upper.starts_with(b"PT") && pt_nif(&upper[2..]) => {
            Some((Kind::PtNif, "pt_nif_mod11"))
        }
        25..=35 if matches!(span[0], b'1' | b'3') && check::btc_base58(span) => {
            Some((Kind::CryptoWallet, "btc_base58check"))
        }
        _ => None,
    };
    if let Some((kind, validator)) = finding {
        out.push(Finding::new(kind, ws, we, validator));
    }
    we
}

/// A NIF after its `PT` prefix (the VAT form, `PT123456789`).
fn pt_nif(rest: &[u8]) -> bool {
    check::digit_values(std::str::from_utf8(rest).unwrap_or("x")).is_some_and(|d| id::pt_nif(&d))
}

/// Letters where a codice fiscale has letters (omocodia letters may stand for digits).
fn it_fiscal_shape(cf: &[u8]) -> bool {
    const DIGITISH: &[u8] = b"0123456789LMNPQRSTUV";
    let letter = |i: usize| cf[i].is_ascii_uppercase();
    let digitish = |i: usize| DIGITISH.contains(&cf[i]);
    (0..6).all(letter)
        && [6, 7, 9, 10, 12, 13, 14].into_iter().all(digitish)
        && b"ABCDEHLMPRST".contains(&cf[8])
        && letter(11)
        && letter(15)
        && cf.iter().any(u8::is_ascii_digit)
}

#[cfg(test)]
#[path = "start_tests.rs"]
mod tests;
