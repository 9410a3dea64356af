//! The rules that apply to a request, as far as the decision can tell them apart: a condition is
//! evaluated only when its result can change what is returned. What a [`Decision`] carries is
//! the verdict, the deciding rules, the first deciding message, the obligations and the monitor
//! rules that applied, and by `resolve`'s order:
//!
//! - every monitor rule that applies is reported, so each one's condition is evaluated;
//! - an applying deny decides together with every other applying deny, so every deny's condition
//!   is evaluated, first; when one applies, the allows, holds and redactions cannot change the
//!   decision and are not evaluated;
//! - otherwise, once an allow or hold applies, a rule of a lower key (rank, priority, hold over
//!   allow) can no longer decide, and is evaluated only when it carries obligations (those of
//!   every applying rule hold); the rules without a condition are looked at first, as they cost
//!   no evaluation and set the bar for the others;
//! - `redact` rules only add obligations, which only matter when something decides (or on the
//!   response side, where a request no rule refuses passes with them).
//!
//! [`Decision`]: super::resolve::Decision

use std::cell::OnceCell;

use super::activation::{Activation, Reads};
use super::facts::Facts;
use super::model::{Effect, Mode, Rank, Rule};
use super::resolve::{Consideration, consider};

/// The key that orders rules competing to decide: the higher wins.
pub(super) fn key(rule: &Rule) -> (Rank, i32, bool) {
    (
        rule.scope.rank(),
        rule.priority,
        rule.effect == Effect::Hold,
    )
}

/// Whether an outcome makes `rule` apply: a condition that failed applies for deny and hold.
pub(super) fn applies(rule: &Rule, outcome: &Consideration) -> bool {
    match outcome {
        Consideration::Applies => true,
        Consideration::ConditionError(_) => rule.effect != Effect::Allow,
        _ => false,
    }
}

/// The enforced rules of `rules` that apply, and the monitor rules that apply with their effect,
/// each in the order of `rules`; enforced rules whose conditions cannot change the decision are
/// left out (see the module's documentation).
pub(super) fn applying<'r>(
    rules: &[&'r Rule],
    facts: &Facts,
    activation: &OnceCell<Activation>,
    reads: Reads,
    response_side: bool,
) -> (Vec<&'r Rule>, Vec<(String, Effect)>) {
    let judge = |rule: &Rule| applies(rule, &consider(rule, facts, activation, reads, false));
    let mut applied = vec![false; rules.len()];
    let enforced = |i: &usize| rules[*i].mode == Mode::Enforce;
    let mut denied = false;
    for (i, rule) in rules.iter().enumerate() {
        if rule.mode == Mode::Monitor || rule.effect == Effect::Deny {
            applied[i] = judge(rule);
            denied |= applied[i] && rule.mode == Mode::Enforce && rule.effect == Effect::Deny;
        }
    }
    if !denied {
        let deciders = || {
            (0..rules.len())
                .filter(enforced)
                .filter(|i| matches!(rules[*i].effect, Effect::Allow | Effect::Hold))
        };
        // The unconditional ones first (a scope and a match: no evaluation), then the others,
        // each skipped when a rule of a higher key already applies and it has no obligations.
        let mut best = None;
        for conditional in [false, true] {
            for i in deciders().filter(|i| rules[*i].condition.is_some() == conditional) {
                let rule = rules[i];
                if best.is_some_and(|best| key(rule) < best) && rule.obligations.is_empty() {
                    continue;
                }
                applied[i] = judge(rule);
                if applied[i] {
                    best = best.max(Some(key(rule)));
                }
            }
        }
        if best.is_some() || response_side {
            for i in (0..rules.len()).filter(enforced) {
                if rules[i].effect == Effect::Redact {
                    applied[i] = judge(rules[i]);
                }
            }
        }
    }
    let mut enforced_rules = Vec::new();
    let mut monitored = Vec::new();
    for (rule, applied) in rules.iter().zip(applied) {
        match (applied, rule.mode) {
            (false, _) => {}
            (true, Mode::Monitor) => monitored.push((rule.id.clone(), rule.effect)),
            (true, Mode::Enforce) => enforced_rules.push(*rule),
        }
    }
    (enforced_rules, monitored)
}
