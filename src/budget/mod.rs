//! Money and pace: what each LLM call costs (read from the provider's own answer, priced in decimal),
//! the ledger whose budgets reserve before a call and settle after it (kept in `store`), the
//! pause cache, breakers, and rate limits.

mod answer;
mod answer_doc;
mod breakers;
mod leases;
mod ledger;
mod meter;
mod pauses;
mod prices;
mod rate;
mod reconcile;
mod report;
mod reserved;
mod settings;
mod settle;
mod tokens;
mod usage;
mod window;

#[cfg(test)]
mod ledger_tests;
#[cfg(test)]
mod tests;

use rust_decimal::Decimal;

pub use crate::inspect::Dialect;
pub use answer::AnswerFacts;
pub use breakers::{BreakerConfig, Breakers};
pub use leases::{BATCH_INTERVAL, Leases, LedgerEntry};
pub use ledger::Ledger;
pub use meter::Meter;
pub use prices::{DEFAULT_PRICES, Price, PriceError, PriceTable};
pub use rate::{Limited, RateLimit, RateLimits};
pub use reconcile::Reconciled;
pub use report::{
    BudgetLine, PausedLine, ReportError, SpendLine, SpendReport, reset_breaker, spend_report,
};
pub use reserved::{Reservation, Reserved};
pub use settings::{Budget, BudgetConfig};
pub use settle::{BudgetSettlement, CallEnd, Settlement};
pub use tokens::{
    Counted, TOKENIZER_MAX_BYTES, estimated_tokens, input_tokens, input_tokens_bound, warm_up,
};
pub use usage::{Usage, read_usage};
pub use window::Window;

/// How sure a cost is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostStatus {
    /// From the usage the provider reported and a known price.
    Exact,
    /// The model has no price.
    Unpriced,
    /// The answer reported no usage (a cut stream, a timeout): the worst case estimated before
    /// the call.
    Estimated,
}

impl CostStatus {
    /// The name records use.
    pub fn name(self) -> &'static str {
        match self {
            CostStatus::Exact => "exact",
            CostStatus::Unpriced => "unpriced",
            CostStatus::Estimated => "estimated",
        }
    }
}

/// The metered cost of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cost {
    /// Tokens, when reported.
    pub usage: Option<Usage>,
    /// USD, when priced.
    pub usd: Option<Decimal>,
    /// How sure it is.
    pub status: CostStatus,
    /// The name the model was priced under.
    pub priced_as: Option<String>,
}

/// The cost of a call to `model` that reported `usage`; without usage, the worst case `estimate`
/// (nano-USD) made before the call.
pub fn cost_of(
    prices: &PriceTable,
    model: &str,
    usage: Option<Usage>,
    estimate: Option<i64>,
) -> Cost {
    let price = prices.price(model);
    match (usage, price) {
        (Some(usage), Some((name, price))) => Cost {
            usage: Some(usage),
            usd: Some(usage.cost(price)),
            status: CostStatus::Exact,
            priced_as: Some(name.to_string()),
        },
        (usage, None) => Cost {
            usage,
            usd: None,
            status: CostStatus::Unpriced,
            priced_as: None,
        },
        (None, Some((name, _))) => Cost {
            usage: None,
            usd: estimate.map(from_nano),
            status: CostStatus::Estimated,
            priced_as: Some(name.to_string()),
        },
    }
}

/// USD as nano-USD (rounded up: a reservation never holds less than the cost), if it fits.
pub fn to_nano(usd: Decimal) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    (usd * Decimal::from(1_000_000_000)).ceil().to_i64()
}

/// Nano-USD as USD.
pub fn from_nano(nano: i64) -> Decimal {
    Decimal::from(nano) / Decimal::from(1_000_000_000)
}

/// The worst-case cost of a call before it is made: its input tokens (see [`input_tokens`]) plus
/// the most output it may produce.
pub fn estimate(price: &Price, input_tokens: u64, max_output_tokens: u64) -> Decimal {
    let usage = Usage {
        input: input_tokens,
        output: max_output_tokens,
        ..Usage::default()
    };
    usage.cost(price)
}
