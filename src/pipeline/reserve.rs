//! Step 8, reserve: before an LLM call leaves, its worst-case cost is reserved in every budget that
//! covers the agent, all or none, so concurrent calls can never overshoot; no room → a 429 shaped
//! like the provider's errors, naming the budget and window, with `Retry-After` when the window
//! resets. The reservation is settled to the real cost once the answer ends (see `record`).

use std::sync::Arc;

use arc_swap::ArcSwap;

use time::OffsetDateTime;

use crate::budget::{Charge, Ledger, LedgerError, PriceTable, estimate, from_nano, to_nano};
use crate::config::{Budget, BudgetConfig};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::policy::Facts;

/// The budgets and their ledger.
pub struct BudgetStep {
    config: BudgetConfig,
    ledger: Arc<Ledger>,
    /// The paused scopes as last read from the ledger: `(scope, since, reason)`. Read once a
    /// second rather than on every request.
    paused: ArcSwap<Vec<(String, String, String)>>,
}

/// Money held for one request until its answer ends.
pub struct Reservation {
    /// Nano-USD reserved.
    pub nano: i64,
    /// The budgets it is held in.
    pub budgets: Vec<String>,
    ledger: Arc<Ledger>,
    request: String,
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

impl Reservation {
    /// Settles to `actual` nano-USD (the estimate when the answer reported no usage); once.
    pub fn settle(&self, actual: i64) -> Result<bool, LedgerError> {
        self.ledger.settle(&self.request, actual)
    }
}

impl BudgetStep {
    /// The step of `config`. The ledger is opened even without budgets: an agent or team paused by
    /// hand (`gatehouse budget pause`) is refused at once.
    pub fn open(config: &BudgetConfig) -> Result<BudgetStep, LedgerError> {
        let ledger = Arc::new(Ledger::open_owned(&config.store)?);
        let paused = ArcSwap::from_pointee(ledger.paused_all()?);
        Ok(BudgetStep {
            config: config.clone(),
            ledger,
            paused,
        })
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

    /// Reads the paused scopes again (`gatehouse budget pause` writes them to the ledger).
    pub fn refresh_pauses(&self) -> Result<(), LedgerError> {
        self.paused.store(Arc::new(self.ledger.paused_all()?));
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
        let hit = paused.iter().find(|(scope, _, _)| {
            scope.strip_prefix("agent:") == Some(agent.id.as_str())
                || scope
                    .strip_prefix("team:")
                    .is_some_and(|t| agent.team.as_deref() == Some(t))
        });
        match hit {
            None => Ok(()),
            Some((scope, since, reason)) => Err(ProxyError::new(
                ErrorKind::BudgetExceeded,
                Side::Agent,
                format!(
                    "{scope} is paused since {since}: {reason}; `gatehouse budget resume` lifts it"
                ),
            )),
        }
    }

    /// 8. reserve the worst case of the LLM call `model` described by `facts` (`body_len` bytes).
    pub fn reserve(
        &self,
        request: &str,
        facts: &Facts,
        model: &str,
        prices: &PriceTable,
        body_len: usize,
    ) -> Result<Option<Reservation>, ProxyError> {
        let budgets: Vec<&Budget> = self
            .config
            .budgets
            .iter()
            .filter(|b| Self::covers(b, facts))
            .collect();
        if budgets.is_empty() {
            return Ok(None);
        }
        let now = OffsetDateTime::now_utc();
        let execution = facts.agent.execution.as_deref();
        for budget in &budgets {
            let Some(trip) = budget.breaker_nano else {
                continue;
            };
            let window = budget.window.key(now, execution);
            let spend = self
                .ledger
                .spend_since_reset(&budget.id, &window)
                .map_err(|e| ProxyError::internal(format!("budget could not be checked: {e}")))?;
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
            return Ok(None);
        };
        // `n` choices each produce up to the maximum.
        let choices = facts.body.json["n"].as_u64().unwrap_or(1).clamp(1, 128);
        let max_output = facts
            .llm
            .as_ref()
            .and_then(|l| l.max_tokens)
            .unwrap_or(self.config.default_max_output_tokens)
            .saturating_mul(choices);
        let worst = estimate(price, body_len, max_output);
        let nano = to_nano(worst).unwrap_or(i64::MAX);
        let charges: Vec<Charge> = budgets
            .iter()
            .map(|b| Charge {
                budget: b.id.clone(),
                window: b.window.key(now, execution),
                limit: b.limit_nano,
            })
            .collect();
        let reserved = self
            .ledger
            .reserve(request, &charges, nano)
            .map_err(|e| ProxyError::internal(format!("budget could not be checked: {e}")))?;
        match reserved {
            Ok(()) => Ok(Some(Reservation {
                nano,
                budgets: charges.into_iter().map(|c| c.budget).collect(),
                ledger: self.ledger.clone(),
                request: request.to_string(),
            })),
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
