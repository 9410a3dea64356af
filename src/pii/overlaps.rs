//! Overlapping findings resolved: of findings that overlap, the most specific kind is kept, then
//! the longest, then the first; a finding overlapping one kept is dropped.
//!
//! Findings that do not overlap anything are most of them, even in text dense with personal
//! data, and a choice among overlapping ones never reaches past the run of findings that
//! overlap one another in a chain: so each such run is resolved on its own (most of them hold one
//! or two findings), which chooses exactly as resolving all of them at once does.

use std::collections::BTreeMap;

use super::Finding;

/// Runs longer than this are resolved with an ordered map rather than by comparing each
/// candidate with every finding kept.
const SMALL_RUN: usize = 32;

/// `found` without overlaps, in order of position.
pub(super) fn resolve_overlaps(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by_key(|f| (f.start, f.end));
    if found.windows(2).all(|w| w[0].end <= w[1].start) {
        return found;
    }
    if found.iter().any(|f| f.start >= f.end) {
        // An empty finding would take the key of another at its position below; never produced
        // by the detectors, it is resolved the one way that handles it.
        return by_priority(found);
    }
    let mut kept = Vec::with_capacity(found.len());
    let mut run: Vec<Finding> = Vec::new();
    let mut reach = 0;
    for f in found {
        if !run.is_empty() && f.start >= reach {
            settle(&mut run, &mut kept);
        }
        reach = if run.is_empty() {
            f.end
        } else {
            reach.max(f.end)
        };
        run.push(f);
    }
    settle(&mut run, &mut kept);
    kept
}

/// The findings kept of one run of overlapping findings (ordered by start, then end), added to
/// `kept` in order of position.
fn settle(run: &mut Vec<Finding>, kept: &mut Vec<Finding>) {
    if run.len() == 1 {
        kept.append(run);
        return;
    }
    if run.len() > SMALL_RUN {
        kept.extend(by_priority(std::mem::take(run)));
        return;
    }
    run.sort_by(priority);
    let from = kept.len();
    for f in run.drain(..) {
        if kept[from..]
            .iter()
            .all(|k| k.end <= f.start || f.end <= k.start)
        {
            kept.push(f);
        }
    }
    kept[from..].sort_by_key(|f| f.start);
}

/// The most specific first, then the longest, then the first (a stable sort keeps ties in
/// order).
fn priority(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.kind
        .specificity()
        .cmp(&a.kind.specificity())
        .then((b.end - b.start).cmp(&(a.end - a.start)))
        .then(a.start.cmp(&b.start))
}

/// Every finding (ordered by start, then end) by priority into an ordered map of those kept.
fn by_priority(mut found: Vec<Finding>) -> Vec<Finding> {
    found.sort_by(priority);
    // Kept findings never overlap, so only the one starting last before a candidate's end can
    // overlap it.
    let mut kept: BTreeMap<usize, Finding> = BTreeMap::new();
    for f in found {
        let overlaps = kept
            .range(..f.end)
            .next_back()
            .is_some_and(|(_, k)| k.end > f.start);
        if !overlaps {
            kept.insert(f.start, f);
        }
    }
    kept.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pii::Kind;

    /// The way it was done before runs: sort everything by priority, one ordered map.
    fn reference(mut found: Vec<Finding>) -> Vec<Finding> {
        found.sort_by_key(|f| (f.start, f.end));
        if found.windows(2).all(|w| w[0].end <= w[1].start) {
            return found;
        }
        by_priority(found)
    }

    #[test]
    fn runs_resolve_as_the_whole_list_does() {
        let kinds = [
            (Kind::Secret, "a"),
            (Kind::Phone, "b"),
            (Kind::Phone, "c"),
            (Kind::CreditCard, "d"),
            (Kind::Email, "e"),
            (Kind::UsSsn, "f"),
        ];
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as usize
        };
        for case in 0..50_000 {
            let count = next() % if case % 100 == 0 { 200 } else { 12 };
            let span = 1 + next() % 80;
            let empty_allowed = case % 7 == 0;
            let found: Vec<Finding> = (0..count)
                .map(|_| {
                    let start = next() % span;
                    let len = next() % 12 + usize::from(!empty_allowed);
                    let (kind, validator) = kinds[next() % kinds.len()].clone();
                    Finding::new(kind, start, start + len, validator)
                })
                .collect();
            assert_eq!(
                resolve_overlaps(found.clone()),
                reference(found.clone()),
                "{found:?}"
            );
        }
    }
}
