//! Libphonenumber's numbering plans compiled by us, and the check of an international number
//! against the plans of its country code.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, OnceLock};

use phonenumber::metadata::{DATABASE, Descriptor, Metadata};
use regex::Regex;

/// A numbering plan's general pattern and each number type's (fixed line, mobile, toll free,
/// …), with their lengths, compiled once by us: the crate's own go through a shared cache that
/// hashes each pattern's text on every use, so one of its parses costs some 20 µs. A number
/// the plan's general pattern and one type's take is valid, as the crate's `is_valid` decides.
pub(super) struct Plan {
    pub(super) general: (Regex, Vec<u16>),
    pub(super) types: Vec<(Regex, Vec<u16>)>,
    /// Bit `n` set for each length `n` (below 64) a valid number may have: those the general
    /// pattern lists (any, if none) that some type lists (any, if some type lists none). A
    /// number of another length is none of the plan's without running a pattern; a number of 64
    /// digits or more is left to the patterns.
    lengths: u64,
}

impl Plan {
    pub(super) fn of(meta: &Metadata) -> Option<Plan> {
        let d = meta.descriptors();
        let types = [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.personal_number(),
            d.voip(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .map(compiled)
        .collect::<Option<Vec<_>>>()?;
        let general = compiled(d.general())?;
        let mask = |lengths: &[u16]| {
            if lengths.is_empty() {
                return u64::MAX;
            }
            lengths
                .iter()
                .filter(|&&l| l < 64)
                .fold(0, |mask, &l| mask | 1 << l)
        };
        let lengths = mask(&general.1) & types.iter().fold(0, |any, t| any | mask(&t.1));
        Some(Plan {
            general,
            types,
            lengths,
        })
    }

    /// Whether `nsn`, a national significant number, is a valid number of the plan.
    pub(super) fn valid(&self, nsn: &str) -> bool {
        let possible = nsn.len() >= 64 || self.lengths >> nsn.len() & 1 == 1;
        possible && matches(&self.general, nsn) && self.types.iter().any(|t| matches(t, nsn))
    }
}

/// The crate keeps its compiled patterns in one LRU cache of 100 for every region; parsing and
/// formatting numbers of a few dozen regions evicts them, and each eviction is a compilation again
/// (text of numbers valid in many regions made the fuzzer spend most of its time compiling). The
/// cache is made large enough for every pattern of some hundred regions, at the first regions built.
pub(super) static CRATE_CACHE: std::sync::Once = std::sync::Once::new();
pub(super) const CRATE_CACHE_PATTERNS: usize = 4_096;

/// The plans compiled so far, by region: the configured ones at start, others (of
/// international numbers) when first needed.
static PLANS: LazyLock<Mutex<HashMap<String, Arc<Plan>>>> = LazyLock::new(Default::default);

pub(super) fn plan(meta: &Metadata) -> Option<Arc<Plan>> {
    let mut plans = PLANS.lock().ok()?;
    if let Some(plan) = plans.get(meta.id()) {
        return Some(plan.clone());
    }
    let plan = Arc::new(Plan::of(meta)?);
    plans.insert(meta.id().to_string(), plan.clone());
    Some(plan)
}

/// A descriptor's pattern compiled as the crate compiles it (whitespace ignored) and anchored at
/// the start as its `Descriptor::is_match` reads it, with its possible lengths.
fn compiled(descriptor: &Descriptor) -> Option<(Regex, Vec<u16>)> {
    let pattern = format!("^(?:{})", descriptor.national_number().as_str());
    Some((
        digit_regex(&pattern)?,
        descriptor.possible_length().to_vec(),
    ))
}

/// A pattern over ASCII digit strings, compiled without Unicode classes where it can be (a
/// Unicode `\d` is some seventy ranges; over a thousand patterns that was 50 MB).
pub(super) fn digit_regex(pattern: &str) -> Option<Regex> {
    let build = |unicode: bool| {
        regex::RegexBuilder::new(pattern)
            .ignore_whitespace(true)
            .unicode(unicode)
            .build()
            .ok()
    };
    build(false).or_else(|| build(true))
}

/// Whether `nsn` is of `lengths` (any, when none are listed) and matches `regex`.
pub(super) fn matches((regex, lengths): &(Regex, Vec<u16>), nsn: &str) -> bool {
    let length = u16::try_from(nsn.len()).unwrap_or(u16::MAX);
    (lengths.is_empty() || lengths.contains(&length)) && regex.is_match(nsn)
}

/// Whether `digits` (`+`, country code, national significant number) is a valid number of a
/// plan of its country code, by the compiled plans alone: the crate's parser is never asked here,
/// since text full of `+` numbers that are none (an agent may send megabytes of them) made it
/// spend about half a millisecond each, its regex cache evicting and compiling patterns again.
///
/// A national trunk prefix written after the country code (`+358 09 …`, `+32 02 …`) is dropped
/// first when the number is valid only without it, as libphonenumber's parser drops it.
pub(super) fn valid_international(digits: &str) -> bool {
    (2..=4).filter(|&end| end < digits.len()).any(|end| {
        let code = digits[1..end].parse::<u16>().ok();
        code.is_some_and(|code| {
            plans_of(code).iter().any(|(meta, plan)| {
                let nsn = &digits[end..];
                let trunkless = meta
                    .national_prefix()
                    .filter(|t| !t.is_empty())
                    .and_then(|t| nsn.strip_prefix(t));
                plan.get_or_init(|| self::plan(meta))
                    .as_ref()
                    .is_some_and(|p| p.valid(nsn) || trunkless.is_some_and(|n| p.valid(n)))
            })
        })
    })
}

/// The regions of a country code (as `DATABASE.by_code` lists them) with their plans, looked
/// up when the code is first read: asking the database (a `Vec` each time) and the shared map
/// of plans (a lock and a hash) for every reading of every `+` number was a tenth of its check.
/// Each plan is compiled when a number first reaches it, as before: the code's first region
/// usually answers, and compiling all twenty-five of `+1` at its first number took some 70 M
/// instructions inside that request.
type CodePlans = Vec<(&'static Metadata, OnceLock<Option<Arc<Plan>>>)>;

fn plans_of(code: u16) -> &'static [(&'static Metadata, OnceLock<Option<Arc<Plan>>>)] {
    static BY_CODE: [OnceLock<CodePlans>; 1000] = [const { OnceLock::new() }; 1000];
    BY_CODE.get(usize::from(code)).map_or(&[], |cell| {
        cell.get_or_init(|| {
            let metas = DATABASE.by_code(&code).unwrap_or_default();
            metas
                .into_iter()
                .map(|meta| (meta, OnceLock::new()))
                .collect()
        })
    })
}
