//! Step 8, reserve: before an LLM call leaves, its worst-case cost is reserved in every budget that
//! covers the agent, all or none, so concurrent calls can never overshoot; no room → a 429 shaped
//! like the provider's errors, naming the budget and window, with `Retry-After` when the window
//! resets. The reservation is settled to the real cost once the answer ends (see `record`).

use std::sync::Arc;

use std::hash::{Hash, Hasher};
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio_util::task::TaskTracker;

use time::OffsetDateTime;

use crate::budget::{
    Breakers, PriceTable, estimate, estimated_tokens, from_nano, input_tokens, to_nano,
};
use crate::config::{Budget, BudgetConfig};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::policy::Facts;
use crate::store::{Charge, Paused, Role, SpendOf, Store, StoreError};

/// The budgets and their ledger.
pub struct BudgetStep {
    config: BudgetConfig,
    store: Arc<Store>,
    /// The paused scopes as last read from the store (read once a second rather than on every
    /// request), plus those a breaker of this proxy paused since.
    paused: ArcSwap<Vec<Paused>>,
    breakers: Breakers,
    /// Where background writes run, so shutdown waits for them.
    tasks: TaskTracker,
}

/// What reserving did.
#[derive(Debug)]
pub enum Reserved {
    /// Money reserved (`None`: no budget covers the call, or its model is unpriced and allowed).
    Done(Option<Reservation>),
    /// The breaker of this budget tripped and `on_trip: hold` asks a person first.
    HoldForBreaker(String),
}

/// Money held for one request until its answer ends.
pub struct Reservation {
    /// Nano-USD reserved.
    pub nano: i64,
    /// The budgets it is held in.
    pub budgets: Vec<String>,
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

impl BudgetStep {
    /// The step of `config`. The ledger is opened even without budgets: an agent or team paused by
    /// hand (`gatehouse budget pause`) is refused at once.
    pub async fn open(config: &BudgetConfig, tasks: TaskTracker) -> Result<BudgetStep, StoreError> {
        let store = Arc::new(Store::open(&config.store, Role::Proxy).await?);
        if !config.budgets.is_empty() {
            std::thread::spawn(crate::budget::warm_up);
        }
        let paused = ArcSwap::from_pointee(store.paused_all().await?);
        Ok(BudgetStep {
            config: config.clone(),
            store,
            paused,
            breakers: Breakers::new(config.breakers.clone()),
            tasks,
        })
    }

    /// The store budgets are kept in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn covers(budget: &Budget, facts: &Facts) -> bool {
        let agent = &facts.agent;
        budget.agent.as_ref().is_none_or(|a| *a == agent.id)
            && budget
                .team
                .as_ref()
                .is_none_or(|t| agent.team.as_ref() == Some(t))
            && budget
                .env
                .as_ref()
                .is_none_or(|e| agent.env.as_ref() == Some(e))
    }

    /// Reads the paused scopes again (`gatehouse budget pause` and breakers write them to the
    /// store, possibly from another proxy) and releases expired reservations.
    pub async fn housekeeping(&self) -> Result<(), StoreError> {
        self.paused.store(Arc::new(self.store.paused_all().await?));
        self.breakers.shrink(Instant::now());
        let released = self.store.expire().await?;
        if released > 0 {
            tracing::warn!(
                released,
                "reservations of requests that never settled were released at their expiry"
            );
        }
        Ok(())
    }

    /// Refuses a request of a paused agent or team (paused by hand with `gatehouse budget pause`;
    /// the state is in the ledger, so it holds across restarts; it takes effect within a second).
    pub fn check_paused(&self, facts: &Facts) -> Result<(), ProxyError> {
        let paused = self.paused.load();
        if paused.is_empty() {
            return Ok(());
        }
        let agent = &facts.agent;
        let hit = paused.iter().find(|Paused { scope, .. }| {
            scope.strip_prefix("agent:") == Some(agent.id.as_str())
                || scope
                    .strip_prefix("team:")
                    .is_some_and(|t| agent.team.as_deref() == Some(t))
        });
        match hit {
            None => Ok(()),
            Some(Paused {
                scope,
                since,
                reason,
            }) => Err(ProxyError::new(
                ErrorKind::BudgetExceeded,
                Side::Agent,
                format!(
                    "{scope} is paused since {since}: {reason}; `gatehouse budget resume` lifts it"
                ),
            )),
        }
    }

    /// The most output tokens the call of `facts` may produce: its maximum (or the configured
    /// default) for each of its `n` choices.
    fn max_output(&self, facts: &Facts) -> u64 {
        let choices = facts.body.json["n"].as_u64().unwrap_or(1).clamp(1, 128);
        facts
            .llm
            .as_ref()
            .and_then(|l| l.max_tokens)
            .unwrap_or(self.config.default_max_output_tokens)
            .saturating_mul(choices)
    }

    /// The worst case of a call no budget covers, in nano-USD, estimated from its size alone (no
    /// tokenizer: it is only what a cut answer is recorded at).
    pub fn rough_worst_case(
        &self,
        facts: &Facts,
        model: &str,
        prices: &PriceTable,
        body_len: usize,
    ) -> Option<i64> {
        let (_, price) = prices.price(model)?;
        to_nano(estimate(
            price,
            estimated_tokens(body_len),
            self.max_output(facts),
        ))
    }

    /// Records what a metered call cost, once per request id: its reservation (if any) gives way
    /// to `amount` nano-USD, the spend of the agent, team and model grows by it, and the velocity
    /// breaker counts it. On SQLite this is done before returning; on PostgreSQL in the
    /// background, so a slow database never holds up the end of a response.
    pub fn settle(&self, request: &str, amount: i64, spend: Option<SpendOf>) {
        if let Some(agent) = spend.as_ref().map(|s| s.agent.clone())
            && let Some(reason) = self.breakers.spent(&agent, amount, Instant::now())
        {
            self.trip(format!("agent:{agent}"), reason);
        }
        if let Some(done) = self.store.settle_embedded(request, amount, spend.as_ref()) {
            if let Err(e) = done {
                settlement_failed(request, &e);
            }
            return;
        }
        let store = self.store.clone();
        let request = request.to_string();
        self.tasks.spawn(async move {
            if let Err(e) = store.settle(&request, amount, spend.as_ref()).await {
                settlement_failed(&request, &e);
            }
        });
    }

    /// The loop breaker: refuses (and pauses the agent) when the same request came as many times
    /// as configured within its window.
    pub fn check_repeats(&self, facts: &Facts, body: &[u8]) -> Result<(), ProxyError> {
        if !self.breakers.watches_repeats() {
            return Ok(());
        }
        let r = &facts.request;
        let mut hasher = std::hash::DefaultHasher::new();
        (&r.method, &r.host, r.port, &r.path, &r.query, body).hash(&mut hasher);
        let agent = &facts.agent.id;
        match self
            .breakers
            .requested(agent, hasher.finish(), Instant::now())
        {
            None => Ok(()),
            Some(reason) => {
                let scope = format!("agent:{agent}");
                self.trip(scope.clone(), reason.clone());
                Err(ProxyError::new(
                    ErrorKind::BudgetExceeded,
                    Side::Agent,
                    format!("{reason}: {scope} is paused; `gatehouse budget resume` lifts it"),
                ))
            }
        }
    }

    /// Pauses `scope` at once in this proxy and, through the store, for every proxy and across
    /// restarts.
    fn trip(&self, scope: String, reason: String) {
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        tracing::warn!(%scope, %reason, "breaker tripped; paused until resumed");
        let paused = Paused {
            scope: scope.clone(),
            since: since.clone(),
            reason: reason.clone(),
        };
        self.paused.rcu(|now| {
            let mut next = Vec::clone(now);
            next.push(paused.clone());
            next
        });
        let store = self.store.clone();
        self.tasks.spawn(async move {
            if let Err(e) = store.pause(&scope, &since, &reason).await {
                tracing::error!(error = %e, %scope, "breaker pause could not be stored");
            }
        });
    }

    /// 8. reserve the worst case of the LLM call `model` described by `facts` carrying `body`.
    ///
    /// A tripped breaker refuses the call, or (with `on_trip: hold`) asks for a person first;
    /// once they approved, `breakers_approved` lets it through.
    pub async fn reserve(
        &self,
        request: &str,
        facts: &Facts,
        model: &str,
        prices: &PriceTable,
        body: &[u8],
        breakers_approved: bool,
    ) -> Result<Reserved, ProxyError> {
        let budgets: Vec<&Budget> = self
            .config
            .budgets
            .iter()
            .filter(|b| Self::covers(b, facts))
            .collect();
        if budgets.is_empty() {
            return Ok(Reserved::Done(None));
        }
        let now = OffsetDateTime::now_utc();
        let execution = facts.agent.execution.as_deref();
        for budget in budgets.iter().filter(|_| !breakers_approved) {
            let Some(trip) = budget.breaker_nano else {
                continue;
            };
            let window = budget.window.key(now, execution);
            let spend = self
                .store
                .spend_since_reset(&budget.id, &window)
                .await
                .map_err(|e| ProxyError::internal(format!("budget could not be checked: {e}")))?;
            if spend >= trip && self.config.hold_on_trip {
                return Ok(Reserved::HoldForBreaker(budget.id.clone()));
            }
            if spend >= trip {
                let mut err = ProxyError::new(
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
                );
                err.retry_after = budget
                    .window
                    .seconds_left(now)
                    .and_then(|s| u32::try_from(s).ok());
                return Err(err);
            }
        }
        let Some((_, price)) = prices.price(model) else {
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
            return Ok(Reserved::Done(None));
        };
        let max_output = self.max_output(facts);
        let (input, _) = input_tokens(model, body);
        let worst = estimate(price, input, max_output);
        let nano = to_nano(worst).unwrap_or(i64::MAX);
        let charges: Vec<Charge> = budgets
            .iter()
            .map(|b| Charge {
                budget: b.id.clone(),
                window: b.window.key(now, execution),
                limit: b.limit_nano,
            })
            .collect();
        let expires_at = now
            .unix_timestamp()
            .saturating_add(i64::try_from(self.config.reservation_ttl_seconds).unwrap_or(i64::MAX));
        let reserved = self
            .store
            .reserve(request, &charges, nano, expires_at)
            .await
            .map_err(|e| ProxyError::internal(format!("budget could not be checked: {e}")))?;
        match reserved {
            Ok(()) => Ok(Reserved::Done(Some(Reservation {
                nano,
                budgets: charges.into_iter().map(|c| c.budget).collect(),
            }))),
            Err(no_room) => {
                let budget = budgets.iter().find(|b| b.id == no_room.budget);
                let mut err = ProxyError::new(
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
                );
                err.retry_after = budget
                    .and_then(|b| b.window.seconds_left(now))
                    .and_then(|s| u32::try_from(s).ok());
                Err(err)
            }
        }
    }
}

fn settlement_failed(request: &str, e: &StoreError) {
    tracing::error!(error = %e, request, "budget settlement failed; the reservation is released at its expiry");
}
