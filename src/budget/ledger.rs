//! The budget ledger, step 8 (reserve) and the settling half of step 12. Before an LLM call leaves,
//! its worst-case cost is reserved in every budget that covers the agent, all or none, so
//! concurrent calls can never overshoot; no room → a 429 naming the budget and window, with
//! `Retry-After` when the window resets. Reservations come from this run's leases in memory
//! ([`super::leases`]): the store is written only when a lease must grow. The reservation is
//! settled to the real cost once the answer ends ([`super::settle`]), written behind it in
//! batches. Pauses (by hand or by a breaker) are read from the store once a second and checked
//! from memory ([`super::pauses`]).

use bytes::Bytes;
use std::sync::Arc;

use std::time::Instant;

use arc_swap::ArcSwap;
use tokio_util::task::TaskTracker;

use time::OffsetDateTime;

use super::leases::{Leases, LedgerEntry};
use super::reserved::{Recount, Reservation, Reserved};
use super::{
    Breakers, Budget, BudgetConfig, Counted, PriceTable, TOKENIZER_MAX_BYTES, estimate,
    estimated_tokens, from_nano, input_tokens, input_tokens_bound, to_nano,
};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::policy::Facts;
use crate::store::{Charge, NoRoom, Paused, Role, SpendOf, Store, StoreError};

/// The budgets and their ledger.
pub struct Ledger {
    config: BudgetConfig,
    pub(super) store: Arc<Store>,
    prices: Arc<PriceTable>,
    /// The paused scopes as last read from the store (read once a second rather than on every
    /// request), plus those a breaker of this proxy paused since.
    pub(super) paused: ArcSwap<Vec<Paused>>,
    pub(super) breakers: Breakers,
    /// Where background writes run, so shutdown waits for them.
    pub(super) tasks: TaskTracker,
    /// This run's leases, and the settlements written behind the answers.
    leases: Arc<Leases>,
    /// The audit offset last stored as this run's reconcile mark: an idle proxy writes no mark.
    marked: std::sync::atomic::AtomicU64,
}

/// What reserving did.
#[derive(Debug)]
enum Reserving {
    /// Money reserved (`None`: no budget covers the call, or its model is unpriced and allowed).
    Done(Option<Reservation>),
    /// The breaker of this budget tripped and `on_trip: hold` asks a person first.
    HoldForBreaker(String),
}

impl Ledger {
    /// The ledger of `config`, pricing calls with `prices`. It is opened even without budgets: an
    /// agent or team paused by hand (`gatehouse budget pause`) is refused at once.
    pub async fn open(
        config: &BudgetConfig,
        prices: Arc<PriceTable>,
        tasks: TaskTracker,
    ) -> Result<Ledger, StoreError> {
        let store = Arc::new(Store::open(&config.store, Role::Proxy).await?);
        if !config.budgets.is_empty() {
            std::thread::spawn(crate::budget::warm_up);
        }
        let paused = ArcSwap::from_pointee(store.paused_all().await?);
        let run = crate::random::random_hex(8).map_err(|e| StoreError {
            store: config.store.display(),
            reason: format!("no run id: {e}"),
        })?;
        let leases = Arc::new(Leases::new(
            store.clone(),
            run,
            config.reservation_ttl_seconds,
            config.lease_calls,
        ));
        tokio::spawn(leases.clone().write_behind());
        Ok(Ledger {
            config: config.clone(),
            store,
            prices,
            paused,
            breakers: Breakers::new(config.breakers.clone()),
            tasks,
            leases,
            marked: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// This run's leases (see [`Leases`]).
    pub fn leases(&self) -> &Arc<Leases> {
        &self.leases
    }

    /// Writes what waits, gives every lease back and ends the run; after the last request.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.leases.close().await
    }

    /// The store budgets are kept in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// What LLM tokens cost.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// The budgets kept.
    pub fn budgets(&self) -> &[Budget] {
        &self.config.budgets
    }

    /// 8. reserve: the worst case of the LLM call to `model` described by `facts` carrying
    ///    `body`, in every budget that covers it. A breaker with `on_trip: hold` asks for a
    ///    person (`breaker_hold`) instead of refusing; the money is reserved all the same.
    pub async fn reserve_call(
        &self,
        facts: &Facts,
        model: &str,
        body: &Bytes,
    ) -> Result<Reserved, ProxyError> {
        let mut breaker_hold = None;
        let mut reserved = self.reserve(facts, model, body, false).await?;
        if let Reserving::HoldForBreaker(budget) = reserved {
            breaker_hold = Some(budget);
            reserved = self.reserve(facts, model, body, true).await?;
        }
        let reservation = match reserved {
            Reserving::Done(reservation) => reservation,
            Reserving::HoldForBreaker(_) => None,
        };
        let worst_case_nano = match &reservation {
            Some(reservation) => Some(reservation.nano),
            None => self.rough_worst_case(facts, model, body.len()),
        };
        Ok(Reserved {
            reservation,
            worst_case_nano,
            breaker_hold,
        })
    }

    fn covers(budget: &Budget, facts: &Facts) -> bool {
        let agent = &facts.agent;
        budget.covers(&agent.id, agent.team.as_deref(), agent.env.as_deref())
    }

    /// Whether any budget covers the agent of `facts`.
    fn budgeted(&self, facts: &Facts) -> bool {
        self.config.budgets.iter().any(|b| Self::covers(b, facts))
    }

    /// Reads the paused scopes again (`gatehouse budget pause` and breakers write them to the
    /// store, possibly from another proxy), renews this run's leases (reading what the rest of
    /// the fleet holds, for breakers) and counts expired reservations as spent.
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        self.paused.store(Arc::new(self.store.paused_all().await?));
        self.breakers.shrink(Instant::now());
        self.leases.tend().await?;
        let expired = self.store.expire().await?;
        if expired > 0 {
            tracing::warn!(
                expired,
                "reservations nobody settled or renewed (a proxy died and was not restarted) \
                 count as spent"
            );
        }
        Ok(())
    }

    /// Moves the point a restart reconciles this run from up to `offset` of the audit file, once
    /// every settlement queued so far is in the store. `offset` must be read before this is
    /// called: a call's settlement is queued before its outcome record is written, so every
    /// outcome before `offset` is then in the store. Without it a restart after a long run read
    /// the file from the run's first byte, and charged again every call whose settled id the
    /// store had since forgotten (they are kept a week).
    pub async fn reconciled_up_to(&self, offset: u64) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if offset <= self.marked.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.leases.flush().await?;
        self.store
            .advance_run(self.leases.run(), i64::try_from(offset).unwrap_or(i64::MAX))
            .await?;
        self.marked.fetch_max(offset, Ordering::Relaxed);
        Ok(())
    }

    /// `METHOD path` when `facts` is a request to an LLM provider's paid endpoint that recognition
    /// does not meter (batches, images, fine-tuning, assistants runs...) while a budget covers the
    /// agent: spend there would escape every budget, so rules refuse it unless one says
    /// `allow_unmetered: true`.
    pub fn unmetered(&self, facts: &Facts) -> Option<String> {
        let request = &facts.request;
        if facts.llm.is_some()
            || (crate::inspect::provider_of_host(&request.host).is_none()
                && !self.config.provider_hosts.matches(&request.host))
            || crate::inspect::free_endpoint(&request.method, &request.path)
            || !self.budgeted(facts)
        {
            return None;
        }
        Some(format!("{} {}", request.method, request.path))
    }

    /// The body of an LLM call that a budget covers and that sets no output limit, with one
    /// (`budget.default_max_output_tokens`) in the field its endpoint reads, so the reservation
    /// bounds the bill; `facts` then say so too. `None` when it needs none.
    pub fn limit_output(&self, facts: &mut Facts, path: &str, body: &[u8]) -> Option<Bytes> {
        let unlimited = facts.llm.as_ref().is_some_and(|l| l.max_tokens.is_none());
        if !unlimited || !self.budgeted(facts) {
            return None;
        }
        let llm = facts.llm.as_mut()?;
        let limit = self.config.default_max_output_tokens;
        let limited = crate::inspect::with_output_limit(&llm.provider, path, body, limit)?;
        llm.max_tokens = Some(limit);
        // Redaction rewrites the body from its parsed form: it must hold the limit too.
        facts.body.json = serde_json::from_slice(&limited).unwrap_or_default();
        Some(limited)
    }

    /// The most output tokens the call of `facts` may produce: its maximum (or the configured
    /// default) for each of its choices (`n`, Gemini's `candidateCount`).
    fn max_output(&self, facts: &Facts) -> u64 {
        let json = &facts.body.json;
        // Providers' parsers take `"8"` and `8.0` too: so does the reservation.
        let count = |v: &serde_json::Value| {
            v.as_u64()
                .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f.ceil() as u64))
                .or_else(|| {
                    v.as_str()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .map(|f| f.max(0.0).ceil() as u64)
                })
        };
        let gemini = ["generationConfig", "generation_config"]
            .iter()
            .flat_map(|config| ["candidateCount", "candidate_count"].map(|n| &json[config][n]));
        let choices = std::iter::once(&json["n"])
            .chain(gemini)
            .filter_map(count)
            .max()
            .unwrap_or(1)
            .clamp(1, 128);
        facts
            .llm
            .as_ref()
            .and_then(|l| l.max_tokens)
            .unwrap_or(self.config.default_max_output_tokens)
            .saturating_mul(choices)
    }

    /// The worst case of a call no budget covers, in nano-USD, estimated from its size alone (no
    /// tokenizer: it is only what a cut answer is recorded at).
    fn rough_worst_case(&self, facts: &Facts, model: &str, body_len: usize) -> Option<i64> {
        let (_, price) = self.prices.price(model)?;
        to_nano(estimate(
            price,
            estimated_tokens(body_len),
            self.max_output(facts),
        ))
    }

    /// Records what a metered call cost, once per request id: its reservation (if any) gives way
    /// to `amount` nano-USD at once in memory, and the velocity breaker counts it; the spend of
    /// its budgets, agent, team and model is written with the next batch (within a few
    /// milliseconds, never on the answer's path). Returns what the call's outcome record carries
    /// so a batch lost to a crash is charged from the audit file at the next start (`None`:
    /// nothing to write).
    pub fn settle(
        &self,
        request: &str,
        amount: i64,
        spend: Option<SpendOf>,
        reservation: Option<&Reservation>,
    ) -> Option<LedgerEntry> {
        if let Some(agent) = spend.as_ref().map(|s| s.agent.clone())
            && let Some(reason) = self.breakers.spent(&agent, amount, Instant::now())
        {
            self.trip(format!("agent:{agent}"), reason);
        }
        let charged: Vec<(String, String)> = reservation
            .map(|r| {
                r.budgets
                    .iter()
                    .cloned()
                    .zip(r.windows.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        let entry = LedgerEntry {
            run: self.leases.run().to_string(),
            nano: amount,
            hour: spend.as_ref().map(|s| s.hour.clone()),
            spend: spend.map(|s| (s.agent, s.team, s.model)),
            charged,
        };
        let settled = entry.settled(request);
        self.leases
            .settle(settled, reservation.map_or(0, |r| r.nano));
        (amount != 0 || entry.spend.is_some()).then_some(entry)
    }

    /// `nano` taken from the leases of every budget of `charges`, or from none.
    async fn reserve_nano(
        &self,
        charges: &[Charge],
        nano: i64,
    ) -> Result<Result<(), NoRoom>, ProxyError> {
        self.leases
            .reserve(charges, nano)
            .await
            .map_err(|e| ProxyError::internal(format!("budget could not be checked: {e}")))
    }

    /// The worst case of the LLM call `model` described by `facts` carrying `body`, reserved.
    ///
    /// A tripped breaker refuses the call, or (with `on_trip: hold`) asks for a person first;
    /// `breakers_approved` reserves past it.
    async fn reserve(
        &self,
        facts: &Facts,
        model: &str,
        body: &Bytes,
        breakers_approved: bool,
    ) -> Result<Reserving, ProxyError> {
        let budgets: Vec<&Budget> = self
            .config
            .budgets
            .iter()
            .filter(|b| Self::covers(b, facts))
            .collect();
        if budgets.is_empty() {
            return Ok(Reserving::Done(None));
        }
        let now = OffsetDateTime::now_utc();
        let execution = facts.agent.execution.as_deref();
        for budget in budgets.iter().filter(|_| !breakers_approved) {
            let Some(trip) = budget.breaker_nano else {
                continue;
            };
            let window = budget.window.key(now, execution);
            let charge = Charge {
                budget: budget.id.clone(),
                window: window.clone(),
                limit: budget.limit_nano,
            };
            let checked =
                |e: StoreError| ProxyError::internal(format!("budget could not be checked: {e}"));
            let mut spend = self
                .leases
                .breaker_count(&charge, false)
                .await
                .map_err(checked)?;
            if spend >= trip {
                // Before refusing: a person may have reset it since the last read.
                spend = self
                    .leases
                    .breaker_count(&charge, true)
                    .await
                    .map_err(checked)?;
            }
            if spend >= trip && self.config.hold_on_trip {
                return Ok(Reserving::HoldForBreaker(budget.id.clone()));
            }
            if spend >= trip {
                return Err(ProxyError::new(
                    ErrorKind::BudgetExceeded,
                    Side::Agent,
                    format!(
                        "the breaker of budget `{}` ({window}) tripped at ${} of ${}; calls wait \
                         for the window to reset or for `gatehouse budget resume --budget {}`",
                        budget.id,
                        from_nano(trip).normalize(),
                        from_nano(budget.limit_nano).normalize(),
                        budget.id
                    ),
                )
                .with_retry_after(
                    budget
                        .window
                        .seconds_left(now)
                        .and_then(|s| u32::try_from(s).ok()),
                ));
            }
        }
        let Some((_, price)) = self.prices.price(model) else {
            if self.config.deny_unpriced {
                return Err(ProxyError::new(
                    ErrorKind::Forbidden,
                    Side::Agent,
                    format!(
                        "model `{model}` has no price, so budget {} cannot be kept; add it to the \
                         price table or set budget.unpriced: allow",
                        budgets[0].id
                    ),
                ));
            }
            return Ok(Reserving::Done(None));
        };
        let max_output = self.max_output(facts);
        let charges: Vec<Charge> = budgets
            .iter()
            .map(|b| Charge {
                budget: b.id.clone(),
                window: b.window.key(now, execution),
                limit: b.limit_nano,
            })
            .collect();
        let worst_of = |input| {
            let worst = estimate(price, input, max_output);
            (to_nano(worst).unwrap_or(i64::MAX), worst)
        };
        // The bound costs nothing and fits while a budget has room; only when it does not is the
        // body encoded, so a call is refused only if its exact worst case does not fit.
        let (bound, counted) = input_tokens_bound(model, body);
        let (mut nano, mut worst) = worst_of(bound);
        let mut reserved = self.reserve_nano(&charges, nano).await?;
        let mut recounted = false;
        if reserved.is_err() && counted == Counted::Bound {
            let (exact, _) = input_tokens(model, body);
            recounted = true;
            if exact < bound {
                (nano, worst) = worst_of(exact);
                reserved = self.reserve_nano(&charges, nano).await?;
            }
        }
        match reserved {
            Ok(()) => Ok(Reserving::Done(Some(Reservation {
                nano,
                budgets: charges.iter().map(|c| c.budget.clone()).collect(),
                windows: charges.into_iter().map(|c| c.window).collect(),
                // A body over the tokenizer's cap is counted at the bound anyway.
                recount: (counted == Counted::Bound
                    && !recounted
                    && body.len() <= TOKENIZER_MAX_BYTES)
                    .then(|| Recount::new(model, body.clone(), max_output)),
            }))),
            Err(no_room) => {
                let budget = budgets.iter().find(|b| b.id == no_room.budget);
                Err(ProxyError::new(
                    ErrorKind::BudgetExceeded,
                    Side::Agent,
                    format!(
                        "budget `{}` ({}) has ${} left; this call may cost up to ${} \
                         ({max_output} output tokens at most)",
                        no_room.budget,
                        no_room.window,
                        from_nano(no_room.available).round_dp(6).normalize(),
                        worst.round_dp(6).normalize(),
                    ),
                )
                .with_retry_after(
                    budget
                        .and_then(|b| b.window.seconds_left(now))
                        .and_then(|s| u32::try_from(s).ok()),
                ))
            }
        }
    }
}
