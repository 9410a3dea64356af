//! Resolution: from the rules that apply to one request, one verdict. The order is written down in
//! `ARCHITECTURE.md` ("Policy semantics") and golden-tested in `tests.rs`:
//!
//! 1. nothing applies → deny;
//! 2. an applying deny wins, from any scope;
//! 3. otherwise the most specific rank wins, then the higher priority, then hold over allow;
//! 4. obligations of every applying rule hold unless the verdict is deny;
//! 5. a condition that fails to evaluate applies for deny and hold, never for allow;
//! 6. monitor rules never change the verdict.

use std::cell::OnceCell;
use std::collections::HashMap;

use super::activation::{Activation, Reads};
use super::condition::ConditionError;
use super::facts::Facts;
use super::model::{Effect, MatchMiss, Mode, Obligation, Rank, Rule, Trigger};

/// Why a considered rule did or did not apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consideration {
    /// The agent is outside the rule's scope.
    OutOfScope,
    /// The cheap match failed.
    NoMatch(MatchMiss),
    /// The condition was false.
    ConditionFalse,
    /// The condition failed; for deny and hold the rule still applies.
    ConditionError(ConditionError),
    /// The rule applies.
    Applies,
}

/// One rule looked at, and what came of it.
#[derive(Debug, Clone)]
pub struct Considered {
    /// The rule's id.
    pub rule: String,
    pub rank: Rank,
    /// Why it did or did not apply.
    pub outcome: Consideration,
    /// Whether it is in monitor mode (applies, but only reported).
    pub monitor: bool,
}

/// What the rules decided for one request. A `redact` rule only adds obligations, so it is never
/// a verdict of its own; a deny carries none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward it, after these redactions.
    Allow {
        /// Redactions every applying rule asks for.
        obligations: Vec<Obligation>,
    },
    /// A person decides first; approved, it is forwarded after these redactions.
    Hold {
        /// Redactions every applying rule asks for.
        obligations: Vec<Obligation>,
    },
    /// Refuse it.
    Deny,
}

impl Verdict {
    /// The redactions it obliges (none on deny).
    pub fn obligations(&self) -> &[Obligation] {
        match self {
            Verdict::Allow { obligations } | Verdict::Hold { obligations } => obligations,
            Verdict::Deny => &[],
        }
    }
}

/// The verdict for one request, with the rules that decided it and why.
#[derive(Debug, Clone)]
pub struct Decision {
    /// What is enforced.
    pub verdict: Verdict,
    /// The rules that decided; empty when nothing applied (default deny).
    pub deciding: Vec<String>,
    /// The message of the first deciding rule, if it has one.
    pub message: Option<String>,
    /// Monitor-mode rules that applied, with the effect they would have had.
    pub monitored: Vec<(String, Effect)>,
    /// Every rule considered for this trigger (filled by [`PolicySet::explain`] only).
    pub considered: Vec<Considered>,
}

impl Decision {
    /// The effect enforced, as records and tests name it.
    pub fn effect(&self) -> Effect {
        match self.verdict {
            Verdict::Allow { .. } => Effect::Allow,
            Verdict::Hold { .. } => Effect::Hold,
            Verdict::Deny => Effect::Deny,
        }
    }

    /// The redactions to fulfil (none on deny).
    pub fn obligations(&self) -> &[Obligation] {
        self.verdict.obligations()
    }

    /// The ids of the monitor-mode rules that applied.
    pub fn monitored_ids(&self) -> Vec<String> {
        self.monitored.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Whether nothing applied and the default deny decided.
    pub fn is_default_deny(&self) -> bool {
        self.verdict == Verdict::Deny && self.deciding.is_empty()
    }
}

/// Why a set of rules cannot be used together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule id `{id}` is used twice: {first} and {second}")]
pub struct DuplicateRule {
    pub id: String,
    /// Where it was first written (`file:line`).
    pub first: String,
    /// Where it was written again.
    pub second: String,
}

/// A validated set of rules, indexed by trigger.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    by_trigger: HashMap<Trigger, Vec<Rule>>,
    /// The variables some condition reads: only those are built for a request.
    reads: Reads,
}

impl PolicySet {
    /// Indexes `rules`; ids must be unique.
    pub fn new(rules: Vec<Rule>) -> Result<PolicySet, DuplicateRule> {
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut by_trigger: HashMap<Trigger, Vec<Rule>> = HashMap::new();
        for rule in rules {
            let at = format!("{}:{}", rule.origin.file, rule.origin.line);
            if let Some(first) = seen.insert(rule.id.clone(), at.clone()) {
                return Err(DuplicateRule {
                    id: rule.id,
                    first,
                    second: at,
                });
            }
            by_trigger.entry(rule.trigger).or_default().push(rule);
        }
        let reads = by_trigger
            .values()
            .flatten()
            .filter_map(|r| r.condition.as_ref())
            .fold(Reads::default(), |all, c| all.union(c.reads()));
        Ok(PolicySet { by_trigger, reads })
    }

    /// Whether a rule of `trigger` reads `destination`: when none does, the trigger can be judged
    /// before the destination is resolved (a refused host is then never looked up).
    pub fn reads_destination(&self, trigger: Trigger) -> bool {
        self.by_trigger.get(&trigger).is_some_and(|rules| {
            rules
                .iter()
                .any(|r| r.condition.as_ref().is_some_and(|c| c.reads_destination()))
        })
    }

    /// Whether the rules could still admit `facts` once their destination is known: no enforced
    /// deny that does not read `destination` applies, and some enforced allow or hold either
    /// applies without reading it or reads it and is not false without it (`destination` left
    /// undeclared: CEL is false there only when the destination could not make it true). When
    /// not, the verdict is deny wherever the name resolves, so the proxy refuses without looking
    /// it up: a name made of a secret never reaches the attacker's name server.
    pub fn may_admit_once_located(&self, facts: &Facts) -> bool {
        let of = |trigger: Trigger| self.by_trigger.get(&trigger).map_or(&[][..], Vec::as_slice);
        let activation = OnceCell::new();
        let unlocated = OnceCell::new();
        let unlocated_reads = self.reads.without("destination");
        let mut may_admit = false;
        for rule in facts.triggers().into_iter().flat_map(of) {
            if rule.mode == Mode::Monitor || rule.effect == Effect::Redact {
                continue;
            }
            let admits = matches!(rule.effect, Effect::Allow | Effect::Hold);
            let reads_destination = rule
                .condition
                .as_ref()
                .is_some_and(|c| c.reads_destination());
            if reads_destination {
                let reachable = matches!(
                    consider(rule, facts, &unlocated, unlocated_reads, false),
                    Consideration::Applies | Consideration::ConditionError(_)
                );
                may_admit |= reachable && admits;
                continue;
            }
            let applies =
                super::prune::applies(rule, &consider(rule, facts, &activation, self.reads, false));
            if applies && rule.effect == Effect::Deny {
                return false;
            }
            may_admit |= applies && admits;
        }
        may_admit
    }

    /// Every rule, in no particular order.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.by_trigger.values().flatten()
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.by_trigger.values().map(Vec::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decides on `facts` for their trigger. `considered` stays empty; see [`PolicySet::explain`].
    /// Only the conditions that can change the decision are evaluated (see `prune`).
    pub fn evaluate(&self, facts: &Facts) -> Decision {
        self.evaluate_with(facts, Evaluation::Pruned)
    }

    /// Decides like [`PolicySet::evaluate`] and lists every rule considered and why it did or did
    /// not apply.
    pub fn explain(&self, facts: &Facts) -> Decision {
        self.evaluate_with(facts, Evaluation::Explain)
    }

    /// Decides like [`PolicySet::evaluate`], evaluating every condition with the `cel`
    /// interpreter: the oracle the pruned, directly evaluated decision is tested against.
    #[cfg(test)]
    pub(super) fn evaluate_fully(&self, facts: &Facts) -> Decision {
        self.evaluate_with(facts, Evaluation::Interpreted)
    }

    fn evaluate_with(&self, facts: &Facts, how: Evaluation) -> Decision {
        // Every trigger the request fires judges it together: an LLM call is an HTTP request too,
        // and a request that carries an LLM call, a tool call and SQL answers to all their rules.
        let of = |trigger: Trigger| self.by_trigger.get(&trigger).map_or(&[][..], Vec::as_slice);
        let rules: Vec<&Rule> = facts.triggers().into_iter().flat_map(of).collect();
        // Built on the first condition that needs it: many requests are decided by matches alone.
        let activation = OnceCell::new();
        // The answer side (and a WebSocket's messages, once a rule allowed the socket): what no
        // rule refuses passes.
        let response_side = matches!(
            facts.trigger,
            Trigger::HttpResponse | Trigger::LlmResponse | Trigger::WebsocketMessage
        );
        let explain = how == Evaluation::Explain;
        let mut considered = Vec::with_capacity(if explain { rules.len() } else { 0 });
        let (applying, monitored) = if how == Evaluation::Pruned {
            super::prune::applying(&rules, facts, &activation, self.reads, response_side)
        } else {
            let mut applying: Vec<&Rule> = Vec::new();
            let mut monitored = Vec::new();
            for rule in rules {
                let outcome = consider(rule, facts, &activation, self.reads, how.interprets());
                let applies = super::prune::applies(rule, &outcome);
                let monitor = rule.mode == Mode::Monitor;
                if applies && monitor {
                    monitored.push((rule.id.clone(), rule.effect));
                } else if applies {
                    applying.push(rule);
                }
                if explain {
                    considered.push(Considered {
                        rule: rule.id.clone(),
                        rank: rule.scope.rank(),
                        outcome,
                        monitor,
                    });
                }
            }
            (applying, monitored)
        };
        let verdict = decide(&applying, monitored, considered, response_side);
        if response_side || facts.trigger == Trigger::Connect {
            return verdict;
        }
        let verdict = if facts.body.inspected {
            verdict
        } else {
            only_if_said(verdict, &applying, |r| r.allow_uninspected)
        };
        let verdict = match (&facts.unmetered, facts.request.websocket) {
            // A socket to a provider (Realtime) is never metered: no rule lets it spend.
            (Some(_), true) => only_if_said(verdict, &applying, |_| false),
            (Some(_), false) => only_if_said(verdict, &applying, |r| r.allow_unmetered),
            (None, _) => verdict,
        };
        if facts.request.websocket {
            return only_if_said(verdict, &applying, |r| r.allow_websocket);
        }
        verdict
    }

    /// Whether a rule of `triggers` could apply to `facts`: its scope covers the agent and its
    /// match accepts the request (conditions are not run). Responses are only held back for
    /// judging when one could.
    pub fn may_apply(&self, triggers: &[Trigger], facts: &Facts) -> bool {
        triggers
            .iter()
            .filter_map(|t| self.by_trigger.get(t))
            .flatten()
            .any(|r| r.scope.covers(&facts.agent) && r.matcher.check(&facts.request).is_ok())
    }
}

/// How a decision is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Evaluation {
    /// Only the conditions that can change it are evaluated.
    Pruned,
    /// Every condition is evaluated, and every rule's outcome listed.
    Explain,
    /// Every condition is evaluated by the `cel` interpreter (the tests' oracle).
    #[cfg(test)]
    Interpreted,
}

impl Evaluation {
    /// Whether conditions are evaluated by the `cel` interpreter alone.
    fn interprets(self) -> bool {
        #[cfg(test)]
        if self == Evaluation::Interpreted {
            return true;
        }
        false
    }
}

/// Whether `rule` applies to `facts`: scope, then match, then condition (evaluated against the
/// activation, built on first use; with `interpret`, by the `cel` interpreter alone).
pub(super) fn consider(
    rule: &Rule,
    facts: &Facts,
    activation: &OnceCell<Activation>,
    reads: Reads,
    interpret: bool,
) -> Consideration {
    if !rule.scope.covers(&facts.agent) {
        return Consideration::OutOfScope;
    }
    if let Err(miss) = rule.matcher.check(&facts.request) {
        return Consideration::NoMatch(miss);
    }
    let Some(condition) = &rule.condition else {
        return Consideration::Applies;
    };
    let activation = activation.get_or_init(|| Activation::new(facts, reads));
    let result = if interpret {
        condition.interpret(activation)
    } else {
        condition.eval(activation)
    };
    match result {
        Ok(true) => Consideration::Applies,
        Ok(false) => Consideration::ConditionFalse,
        Err(e) => Consideration::ConditionError(e),
    }
}

/// The verdict of the applying rules. A request no rule allows is denied; a response is already
/// the answer to an allowed request, so it passes unless a rule refuses or holds it.
fn decide(
    applying: &[&Rule],
    monitored: Vec<(String, Effect)>,
    considered: Vec<Considered>,
    response_side: bool,
) -> Decision {
    let denies: Vec<&&Rule> = applying
        .iter()
        .filter(|r| r.effect == Effect::Deny)
        .collect();
    // `redact` rules only add obligations; the others decide.
    let deciders: Vec<&Rule> = applying
        .iter()
        .copied()
        .filter(|r| r.effect != Effect::Redact)
        .collect();
    if deciders.is_empty() && denies.is_empty() && response_side {
        return Decision {
            verdict: Verdict::Allow {
                obligations: obligations_of(applying),
            },
            deciding: Vec::new(),
            message: None,
            monitored,
            considered,
        };
    }
    if deciders.is_empty() || !denies.is_empty() {
        return Decision {
            verdict: Verdict::Deny,
            deciding: denies.iter().map(|r| r.id.clone()).collect(),
            message: denies.iter().find_map(|r| r.message.clone()),
            monitored,
            considered,
        };
    }
    let key = super::prune::key;
    let best = deciders.iter().map(|r| key(r)).max();
    let deciding: Vec<&&Rule> = deciders.iter().filter(|r| Some(key(r)) == best).collect();
    let obligations = obligations_of(applying);
    let verdict = match deciding.first().map(|r| r.effect) {
        Some(Effect::Allow) => Verdict::Allow { obligations },
        Some(Effect::Hold) => Verdict::Hold { obligations },
        // Deciders are neither `redact` nor (with no deny applying) `deny`.
        _ => Verdict::Deny,
    };
    Decision {
        verdict,
        deciding: deciding.iter().map(|r| r.id.clone()).collect(),
        message: deciding.iter().find_map(|r| r.message.clone()),
        monitored,
        considered,
    }
}

/// The obligations of every applying rule, each once.
fn obligations_of(applying: &[&Rule]) -> Vec<Obligation> {
    let mut obligations: Vec<Obligation> = Vec::new();
    for obligation in applying.iter().flat_map(|r| r.obligations.iter()) {
        if !obligations.contains(obligation) {
            obligations.push(obligation.clone());
        }
    }
    obligations
}

/// A request whose body could not be inspected (or that goes to a provider endpoint the proxy
/// cannot meter while a budget applies) is allowed only by a deciding rule that says so
/// (`allow_uninspected: true`, `allow_unmetered: true`); any other allow becomes a deny with no
/// deciding rule.
fn only_if_said(verdict: Decision, applying: &[&Rule], said: fn(&Rule) -> bool) -> Decision {
    let permitted = verdict.effect() != Effect::Allow
        || applying
            .iter()
            .any(|r| said(r) && verdict.deciding.contains(&r.id));
    if permitted {
        return verdict;
    }
    Decision {
        verdict: Verdict::Deny,
        deciding: Vec::new(),
        message: None,
        ..verdict
    }
}
