//! What step 8 holds for one LLM call until its answer ends, and the worst case an answer
//! without usage is settled at.

use bytes::Bytes;

use super::{PriceTable, estimate, input_tokens, to_nano};

/// What step 8 did for one LLM call.
#[derive(Debug, Default)]
pub struct Reserved {
    /// Money held until the answer ends (`None`: no budget covers it, or unpriced and allowed).
    pub reservation: Option<Reservation>,
    /// The call's worst case in nano-USD: what an answer without usage is settled at.
    pub worst_case_nano: Option<i64>,
    /// The budget whose tripped breaker asks a person first (`on_trip: hold`); the money is
    /// reserved already.
    pub breaker_hold: Option<String>,
}

/// Money held for one request until its answer ends.
pub struct Reservation {
    /// Nano-USD reserved.
    pub nano: i64,
    /// The budgets it is held in.
    pub budgets: Vec<String>,
    /// Their windows, in the same order.
    pub windows: Vec<String>,
    /// Set when the input was reserved at its bound (a token a byte) rather than counted: what an
    /// answer without usage is settled at is then counted from it, so the bound never bills.
    pub recount: Option<Recount>,
}

/// What an exact worst case is counted from, after the answer, only when one is needed.
pub struct Recount {
    model: String,
    body: Bytes,
    max_output: u64,
}

impl Recount {
    pub(super) fn new(model: &str, body: Bytes, max_output: u64) -> Recount {
        Recount {
            model: model.to_string(),
            body,
            max_output,
        }
    }
}

impl Reserved {
    /// What a call that ended without usage is settled at: its worst case, counted exactly now
    /// if it was reserved at the bound.
    pub(super) fn worst_case(&self, prices: &PriceTable) -> Option<i64> {
        let Some(recount) = self.reservation.as_ref().and_then(|r| r.recount.as_ref()) else {
            return self.worst_case_nano;
        };
        let (_, price) = prices.price(&recount.model)?;
        let (input, _) = input_tokens(&recount.model, &recount.body);
        let exact = to_nano(estimate(price, input, recount.max_output)).unwrap_or(i64::MAX);
        Some(exact.min(self.worst_case_nano.unwrap_or(i64::MAX)))
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Reservation({} nano-USD in {:?})",
            self.nano, self.budgets
        )
    }
}
