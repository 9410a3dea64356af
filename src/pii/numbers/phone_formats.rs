//! Which national numbers a plan writes with its trunk prefix: libphonenumber formats each
//! number by the first of the plan's formats that takes it, and that format's rule says whether
//! the trunk prefix is written (`$NP$FG`: Germany's `030 …`) or not (`$FG`: Ireland's `1800 …`).

use phonenumber::metadata::Metadata;
use regex::Regex;

use super::phone_plans::digit_regex;

/// One format of a plan, compiled: the numbers it formats (its last leading-digits pattern and
/// its whole pattern) and whether it writes them with the trunk prefix.
pub(super) struct TrunkFormat {
    leading: Option<Regex>,
    pattern: Regex,
    pub(super) written: bool,
}

impl TrunkFormat {
    /// The formats of `meta` whose patterns compile; a trunk prefix is written where a format's
    /// rule names it (`$NP$FG`, `($NP$FG)`) or spells it and does not call it optional.
    pub(super) fn of(meta: &Metadata) -> Vec<TrunkFormat> {
        let trunk = meta.national_prefix().unwrap_or_default();
        let anchored = |p: &str, whole: bool| {
            let end = if whole { "$" } else { "" };
            digit_regex(&format!("^(?:{p}){end}"))
        };
        meta.formats()
            .iter()
            .filter_map(|f| {
                Some(TrunkFormat {
                    leading: match f.leading_digits().last() {
                        Some(l) => Some(anchored(l.as_str(), false)?),
                        None => None,
                    },
                    pattern: anchored(f.pattern().as_str(), true)?,
                    written: !trunk.is_empty()
                        && !f.is_national_prefix_optional()
                        && f.national_prefix()
                            .is_some_and(|rule| rule.contains("$NP") || rule.contains(trunk)),
                })
            })
            .collect()
    }
}

/// Whether the plan of `formats` writes the valid national significant number `nsn` with its
/// trunk prefix: as the format libphonenumber would format it with says, or as most do if none.
pub(super) fn trunk_needed(formats: &[TrunkFormat], nsn: &str) -> bool {
    formats
        .iter()
        .find(|f| f.leading.as_ref().is_none_or(|l| l.is_match(nsn)) && f.pattern.is_match(nsn))
        .is_none_or(|f| f.written)
}
