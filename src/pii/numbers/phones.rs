//! Phone numbers, validated against libphonenumber's metadata (the `phonenumber` crate): an
//! international number (`+`, `00`) in any grouping when it is a valid number of its country, a
//! national number when it is a valid number of one of the configured regions and is written
//! the way numbers are (ambiguous ones need a word like "phone" nearby).

use std::sync::Arc;

use phonenumber::metadata::{DATABASE, Metadata};
use phonenumber::{Mode, PhoneNumber, Type, country::Id};

use super::inline::Inline;
use super::phone_context::Walk;
use super::phone_formats::{TrunkFormat, trunk_needed};
use super::phone_plans::{CRATE_CACHE, CRATE_CACHE_PATTERNS, Plan, plan, valid_international};
use super::{Cluster, MAX_GROUPS};
use crate::pii::{Finding, Kind};

/// The regions whose national numbers are recognised unless configured otherwise: the EU, the
/// rest of the EEA (Norway, Iceland, Liechtenstein), the United Kingdom, the US and Canada.
pub const DEFAULT_PHONE_REGIONS: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "NO", "IS", "LI", "GB", "US",
    "CA",
];

/// A region code that is not one libphonenumber has a numbering plan for.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a phone region: use an ISO 3166-1 alpha-2 code with a numbering plan (DE, GB, US)"
)]
pub struct UnknownRegion(pub String);

/// The regions whose national numbers (written without a country code) count as phones.
#[derive(Clone)]
pub struct PhoneRegions {
    regions: Vec<Region>,
}

#[derive(Clone)]
struct Region {
    id: Id,
    meta: &'static Metadata,
    /// Whether the plan writes national numbers with the trunk prefix (`030 …` in Germany), as
    /// opposed to without one (Italy, Spain), or with it optional (North America, Liechtenstein).
    trunk_written: bool,
    /// The plan's formats, for numbers written without a trunk prefix where others have one
    /// (Ireland's `1800 …` beside `01 …`).
    formats: Arc<Vec<TrunkFormat>>,
    /// The plan's patterns, compiled once.
    plan: Arc<Plan>,
}

impl std::fmt::Debug for PhoneRegions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.regions.iter().map(|r| r.meta.id()))
            .finish()
    }
}

impl Default for PhoneRegions {
    fn default() -> Self {
        // Every default code has a plan in the embedded metadata; a test holds this.
        PhoneRegions::new(DEFAULT_PHONE_REGIONS).unwrap_or(PhoneRegions {
            regions: Vec::new(),
        })
    }
}

impl PhoneRegions {
    /// The regions of `codes` (case-insensitive), or the first code without a numbering plan.
    pub fn new<S: AsRef<str>>(codes: &[S]) -> Result<PhoneRegions, UnknownRegion> {
        CRATE_CACHE.call_once(|| {
            if let Ok(mut cache) = DATABASE.cache().lock() {
                *cache = regex_cache::RegexCache::new(CRATE_CACHE_PATTERNS);
            }
        });
        let mut regions: Vec<Region> = Vec::new();
        for code in codes {
            let upper = code.as_ref().trim().to_ascii_uppercase();
            let unknown = || UnknownRegion(code.as_ref().to_string());
            let id: Id = upper.parse().map_err(|_| unknown())?;
            let meta = DATABASE.by_id(upper.as_str()).ok_or_else(unknown)?;
            let formats = TrunkFormat::of(meta);
            let trunk_written = formats.iter().any(|f| f.written);
            let plan = plan(meta).ok_or_else(unknown)?;
            if !regions.iter().any(|r| r.id == id) {
                regions.push(Region {
                    id,
                    meta,
                    trunk_written,
                    formats: Arc::new(formats),
                    plan,
                });
            }
        }
        Ok(PhoneRegions { regions })
    }

    /// The region codes, in configured order.
    pub fn codes(&self) -> Vec<&str> {
        self.regions.iter().map(|r| r.meta.id()).collect()
    }

    /// The configured regions `digits` (a national number, trunk prefix included) is a valid
    /// number of, by their compiled plans.
    fn national<'a>(&'a self, digits: &'a str) -> impl Iterator<Item = &'a Region> + 'a {
        self.regions
            .iter()
            .filter(move |r| match r.meta.national_prefix() {
                Some(trunk) if digits.starts_with(trunk) => r.plan.valid(&digits[trunk.len()..]),
                Some(_) if r.trunk_written => {
                    r.plan.valid(digits) && !trunk_needed(&r.formats, digits)
                }
                _ => r.plan.valid(digits),
            })
    }
}

/// Phone numbers in the digit groups of `c`: an international one from its start, else the
/// longest national one from its start or from a group that opens with a trunk `0` or `(`.
pub(super) fn phones(
    text: &str,
    c: &Cluster,
    regions: &PhoneRegions,
    walk: &mut Walk,
    out: &mut Vec<Finding>,
) {
    let b = text.as_bytes();
    if text[..c.start].ends_with(['$', '€', '£', '#']) {
        return;
    }
    // A date leads a timestamp (`2023-03-29 11:50`); one digit repeated is a placeholder.
    let date_led = !c.plus && c.count >= 3 && c.lens()[..3] == [4, 2, 2] && date(text, c, 0, 2);
    let (s, _) = c.groups[0];
    let repeated = (0..c.count).all(|g| {
        let (gs, ge) = c.groups[g];
        b[gs..ge].iter().all(|&d| d == b[s])
    });
    if date_led || repeated {
        return;
    }
    let ctx = walk.context(b, c.start);
    if let Some(end) = international(text, c, ctx) {
        out.push(Finding::new(
            Kind::Phone,
            c.start,
            end,
            "libphonenumber_intl",
        ));
        return;
    }
    if c.plus || ctx == Some(false) {
        return;
    }
    for from in 0..c.count {
        let (s, _) = c.groups[from];
        let opens = from == 0 || b[s] == b'0' || b[s - 1] == b'(';
        if !opens || (from > 0 && c.sep(text, from - 1).contains('.')) {
            continue;
        }
        let start = if from == 0 {
            c.start
        } else {
            s - usize::from(b[s - 1] == b'(')
        };
        let phone_ctx = from == 0 && ctx == Some(true);
        for to in (from..c.count).rev() {
            // Groups left over after a number make it part of a longer run of digits: only a
            // phone word nearby says the number ends there.
            let whole = to == c.count - 1;
            if (whole || phone_ctx) && national(text, c, (from, to), regions, phone_ctx) {
                out.push(Finding::new(
                    Kind::Phone,
                    start,
                    c.groups[to].1,
                    "libphonenumber_national",
                ));
                return;
            }
        }
    }
}

/// Where an international number starting the cluster ends: `+` then the country code, or the
/// `00` prefix (then grouped, or next to a phone word); any grouping, a `(0)` trunk skipped.
fn international(text: &str, c: &Cluster, ctx: Option<bool>) -> Option<usize> {
    let b = text.as_bytes();
    let first = &b[c.groups[0].0..c.groups[0].1];
    let double_zero = !c.plus
        && first.len() >= 3
        && first.starts_with(b"00")
        && first[2] != b'0'
        && b[c.start] != b'('
        && (c.count > 1 || ctx == Some(true))
        && ctx != Some(false);
    if !c.plus && !double_zero {
        return None;
    }
    // `+` and at most `cards::LONGEST_RUN` digits (a longer cluster is read for cards only).
    let mut digits = Inline::<48>::new();
    digits.push(b'+');
    let mut ends = [(0, 0); MAX_GROUPS];
    let mut groups = 0;
    for (i, &(s, e)) in c.groups().iter().enumerate() {
        let trunk = i > 0
            && &b[s..e] == b"0"
            && c.sep(text, i - 1).ends_with('(')
            && c.seps()
                .get(i)
                .is_some_and(|_| c.sep(text, i).starts_with(')'));
        if trunk {
            continue;
        }
        let group = &b[s..e];
        digits.extend(if i == 0 && double_zero {
            &group[2..]
        } else {
            group
        });
        ends[groups] = (digits.len(), e);
        groups += 1;
    }
    let digits = digits.as_str();
    ends[..groups]
        .iter()
        .rev()
        .filter(|(len, _)| (8..=16).contains(len))
        .find(|(len, _)| valid_international(&digits[..*len]))
        .map(|&(_, end)| end)
}

/// Whether groups `from..=to` are a national number of a configured region written as numbers
/// are: a phone word nearby, or a form no other kind of number takes ([`unambiguous`]).
fn national(
    text: &str,
    c: &Cluster,
    (from, to): (usize, usize),
    regions: &PhoneRegions,
    phone_ctx: bool,
) -> bool {
    let lens = &c.lens()[from..=to];
    let count: usize = lens.iter().sum();
    if !(6..=14).contains(&count) || !separators(text, c, from, to) {
        return false;
    }
    let mut inline = Inline::<14>::new();
    for &(s, e) in &c.groups[from..=to] {
        inline.extend(&text.as_bytes()[s..e]);
    }
    let digits = inline.as_str();
    if digits.starts_with("00") || date(text, c, from, to) {
        return false;
    }
    let mut valid = regions.national(digits);
    if phone_ctx {
        return valid.next().is_some();
    }
    if !plain(text, c, from, to) {
        return false;
    }
    // An area code in parentheses with its trunk prefix (`(0463) 09782 735`) is how phone
    // numbers alone are written, wherever the plan would split it.
    let (s, _) = c.groups[from];
    let paren = s > 0 && text.as_bytes()[s - 1] == b'(' && to > from;
    // The parsed number is needed only to see how the plan formats it.
    valid.any(|r| {
        let trunk = r
            .meta
            .national_prefix()
            .is_some_and(|t| digits.starts_with(t));
        paren && trunk
            || phonenumber::parse(Some(r.id), digits)
                .is_ok_and(|number| unambiguous(lens, digits, r.meta, &number))
    })
}

/// Whether the groups are a date (`2024-01-15`, `15.01.2024`, `15/01/24`): never a phone.
fn date(text: &str, c: &Cluster, from: usize, to: usize) -> bool {
    let lens = &c.lens()[from..=to];
    matches!(
        lens,
        [4, 2, 2] | [2, 2, 4] | [2, 2, 2] | [1, 2, 4] | [2, 1, 4] | [1, 1, 4]
    ) && c.consistent(text, from, to, &["-", ".", "/"])
}

/// Separators as phone numbers have them: after a `(` area code a `)`, otherwise a space,
/// hyphen, dot or slash after the first group; no parenthesis or slash later on.
fn separators(text: &str, c: &Cluster, from: usize, to: usize) -> bool {
    let b = text.as_bytes();
    let s = c.groups[from].0;
    let paren = s > 0 && b[s - 1] == b'(';
    let close = (from..to).find(|&i| c.sep(text, i).contains(')'));
    // The groups inside `(…)`: `(030)`, `(06 1)`, `(0-312)`.
    let inner = match (paren, close) {
        (true, Some(k)) => k,
        (false, None) => from,
        _ => return false,
    };
    (from..to).all(|i| {
        let sep = c.sep(text, i);
        if i < inner {
            matches!(sep, " " | "-")
        } else if i == inner && paren {
            sep.starts_with(')') && !sep[1..].contains(['(', ')', '/'])
        } else if i == from {
            matches!(sep, " " | "-" | "." | "/" | " -" | "- ")
        } else {
            matches!(sep, " " | "-" | ".")
        }
    })
}

/// Whether the groups look like nothing but a phone number: one separator after the first
/// group, not a decimal (`1234.56`) and not led by a year (`2024-00123`).
fn plain(text: &str, c: &Cluster, from: usize, to: usize) -> bool {
    let b = text.as_bytes();
    let (s, e) = c.groups[from];
    let year = e - s == 4 && (b[s..e].starts_with(b"19") || b[s..e].starts_with(b"20"));
    let decimal = to == from + 1 && c.sep(text, from) == ".";
    let first = (from..to)
        .find(|&i| c.sep(text, i).contains(')'))
        .unwrap_or(from);
    let rest_consistent = to <= first + 1 || c.consistent(text, first + 1, to, &[" ", "-", "."]);
    !year && !decimal && rest_consistent
}

/// Whether a valid national number, written in groups of `lens`, is one without a phone word
/// nearby: grouped as the region's plan formats it (the area code or mobile prefix split where
/// the plan splits it, the rest in groups of two or more), or ungrouped but a mobile number
/// with its trunk prefix (mobile ranges are narrow; order and tracking numbers do not start
/// with a trunk `0`).
fn unambiguous(lens: &[usize], digits: &str, meta: &Metadata, number: &PhoneNumber) -> bool {
    let trunk = meta.national_prefix().filter(|t| digits.starts_with(*t));
    if lens.len() == 1 {
        return trunk.is_some()
            && digits.len() >= 10
            && number.number_type(&DATABASE) == Type::Mobile;
    }
    let formatted = number.format().mode(Mode::National).to_string();
    let plan: Vec<usize> = formatted
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .map(str::len)
        .collect();
    let plan_digits: usize = plan.iter().sum();
    // The plan's format may leave out a trunk prefix the text has (`1 415 555 0132`).
    let lens = match trunk {
        Some(t) if plan_digits + t.len() == digits.len() && lens[0] == t.len() => &lens[1..],
        _ => lens,
    };
    let rest = lens.get(1..).unwrap_or_default();
    // Besides the plan's own grouping: the area code split where the plan splits it and the
    // rest whole, in pairs, or in groups of three and four.
    let rest_grouped = rest.len() <= 1
        || rest.iter().all(|&l| l == 2)
        || rest.iter().all(|&l| (3..=4).contains(&l));
    !lens.is_empty()
        && !plan.is_empty()
        && (lens == plan.as_slice() || lens[0] == plan[0] && rest_grouped)
}

#[cfg(test)]
#[path = "phones_tests.rs"]
mod tests;
