//! The settling half of step 12: once an LLM call's answer ended, what it cost (from the usage it
//! reported, or the worst case when it reported none), recorded once per request in the ledger,
//! its reservation giving way to the real amount. A call never handed to the upstream cost
//! exactly nothing and is no one's spend.

use std::time::SystemTime;

use super::Reserved;
use super::leases::LedgerEntry;
use super::ledger::Ledger;
use super::{Cost, CostStatus, Usage, cost_of, to_nano};
use crate::store::SpendOf;

/// How a metered call ended, as its settlement needs it.
pub struct CallEnd<'a> {
    /// The request id (settled once).
    pub request: &'a str,
    /// The model the agent asked for.
    pub model: &'a str,
    /// Who spent it.
    pub agent: &'a str,
    /// Their team.
    pub team: Option<&'a str>,
    /// The usage the answer reported, if it did.
    pub usage: Option<Usage>,
    /// Whether the answer reached its final event, so the usage is what the provider bills.
    pub complete: bool,
    /// Whether the call never reached the upstream (refused, held, abandoned before, or its
    /// connection failed before any answer).
    pub never_sent: bool,
    /// What step 8 reserved for it.
    pub reserved: &'a Reserved,
}

/// What settling a call did.
pub struct Settlement {
    /// What it cost, and how sure that is.
    pub cost: Cost,
    /// Its reservation, when budgets covered it, and what it was settled at.
    pub budget: Option<BudgetSettlement>,
    /// What the ledger writes behind the answer: the outcome record carries it, so the next
    /// start charges it if the proxy dies first.
    pub ledger: Option<LedgerEntry>,
}

/// A reservation and what it was settled at.
pub struct BudgetSettlement {
    /// The budgets it was held in.
    pub budgets: Vec<String>,
    /// Nano-USD reserved before forwarding.
    pub reserved_nano: i64,
    /// Nano-USD settled.
    pub settled_nano: i64,
    /// `actual` (reported usage), `estimate` (the worst case) or `not_sent`.
    pub settled_as: &'static str,
}

impl Ledger {
    /// Settles the call that ended as `call`: prices it, records the spend and replaces its
    /// reservation by the amount. A call without reported usage (a cut stream, a timeout) is
    /// settled at the worst case estimated before it left: the provider may well bill it.
    pub fn settle_call(&self, call: &CallEnd<'_>) -> Settlement {
        let reservation = call.reserved.reservation.as_ref();
        // Counted only for a call that may be settled at it: most answers report their usage.
        let worst = if call.never_sent {
            Some(0)
        } else if call.usage.is_none() || !call.complete {
            call.reserved.worst_case(self.prices())
        } else {
            call.reserved.worst_case_nano
        };
        let mut cost = cost_of(self.prices(), call.model, call.usage, worst);
        if !call.complete && !call.never_sent && cost.status == CostStatus::Exact {
            // A stream cut before its last event: the provider bills what it generated, which
            // may be far beyond the usage seen so far. The worst case stands unless more was seen.
            let seen = cost.usd.unwrap_or_default();
            let worst = worst.map(super::from_nano).unwrap_or_default();
            cost.usd = Some(seen.max(worst));
            cost.status = CostStatus::Estimated;
        }
        if call.never_sent && cost.usage.is_none() && cost.priced_as.is_some() {
            // Never made: it cost exactly nothing.
            cost.usd = Some(rust_decimal::Decimal::ZERO);
            cost.status = CostStatus::Exact;
        }
        let mut ledger = None;
        let settled = cost.usd.and_then(to_nano).map(|amount| {
            // A call never sent is no one's spend; its reservation (if any) is released.
            let spend = (!call.never_sent).then(|| SpendOf {
                hour: hour_of(SystemTime::now()),
                agent: call.agent.to_string(),
                team: call.team.unwrap_or_default().to_string(),
                model: cost
                    .priced_as
                    .clone()
                    .unwrap_or_else(|| call.model.to_string()),
            });
            if spend.is_some() || reservation.is_some() {
                ledger = self.settle(call.request, amount, spend, reservation);
            }
            (amount, cost.status)
        });
        let budget = reservation.map(|reservation| {
            let (settled_nano, settled_as) = match settled {
                _ if call.never_sent => (0, "not_sent"),
                Some((amount, CostStatus::Exact)) => (amount, "actual"),
                Some((amount, _)) => (amount, "estimate"),
                None => {
                    // Not priced after all: the reservation is released at what it held.
                    ledger = self.settle(call.request, reservation.nano, None, Some(reservation));
                    (reservation.nano, "estimate")
                }
            };
            BudgetSettlement {
                budgets: reservation.budgets.clone(),
                reserved_nano: reservation.nano,
                settled_nano,
                settled_as,
            }
        });
        Settlement {
            cost,
            budget,
            ledger,
        }
    }
}

/// The UTC hour of `at` (`2026-11-25T18`), the finest grain spend is kept at.
fn hour_of(at: SystemTime) -> String {
    let text = humantime::format_rfc3339_seconds(at).to_string();
    text.get(..13).unwrap_or(&text).to_string()
}
