//! The numeric kinds one cluster of digit groups can be: IPv4 addresses, cards, IBANs and
//! national identifiers by their validators, phones by libphonenumber's plans ([`phones`]).

use super::Cluster;
use super::phone_context::Walk;
use super::phones::{self, PhoneRegions};
use crate::pii::{Finding, Kind};

/// Every numeric kind the digit groups of `c` can be.
pub(super) fn numeric(
    text: &str,
    c: &Cluster,
    regions: &PhoneRegions,
    walk: &mut Walk,
    out: &mut Vec<Finding>,
) {
    if c.digits > super::cards::LONGEST_RUN {
        // Several numbers in a row: only cards standing apart are read in it.
        if !c.plus {
            super::cards::cards(text, c, out);
        }
        return;
    }
    let b = text.as_bytes();
    let lens = c.lens();
    let last = c.count - 1;
    let all = c.digits(b, 0, last);
    if !c.plus && ipv4(text, c, out) {
        return;
    }
    let date_like = lens.len() == 3
        && matches!(
            lens,
            [4, 2, 2] | [2, 2, 4] | [2, 2, 2] | [1, 2, 4] | [2, 1, 4]
        )
        && c.consistent(text, 0, last, &["-", ".", "/"]);
    if date_like {
        return;
    }
    let before = out.len();
    if !c.plus {
        out.extend(super::ids::national_ids(text, c, &all, lens, walk));
    }
    phones::phones(text, c, regions, walk, out);
    // A card number hidden in part of a longer identifier that validated whole is a coincidence
    // of Luhn, not a card.
    let whole_identifier = out[before..].iter().any(|f| f.kind != Kind::Phone);
    if !c.plus && !whole_identifier {
        super::cards::cards(text, c, out);
    }
}

/// IPv4 addresses: four dot-joined groups of at most 255, alone or within a longer run of numbers
/// (`10.1.2.3 2024-01-15`). Returns whether the whole cluster is one.
fn ipv4(text: &str, c: &Cluster, out: &mut Vec<Finding>) -> bool {
    if c.count < 4 {
        return false;
    }
    let b = text.as_bytes();
    let dot = |i: usize| c.sep(text, i) == ".";
    for from in 0..=c.count - 4 {
        let bounded = (from == 0 || !dot(from - 1)) && (from + 3 == c.count - 1 || !dot(from + 3));
        let octets = (from..from + 4).all(|i| {
            let (s, e) = c.groups[i];
            e - s <= 3
                && b[s..e]
                    .iter()
                    .fold(0u32, |n, x| n * 10 + u32::from(x - b'0'))
                    <= 255
        });
        if bounded && octets && (from..from + 3).all(dot) {
            out.push(Finding::new(
                Kind::IpAddress,
                c.groups[from].0,
                c.groups[from + 3].1,
                "ipv4",
            ));
            if c.count == 4 {
                return true;
            }
        }
    }
    false
}
