//! The state that outlives a request and may be shared by a fleet: the budget ledger (money spent
//! and reserved per budget and window, spend per agent, team and model), paused agents and teams,
//! and breaker resets. One interface, two back ends: an embedded SQLite file for one proxy, and
//! PostgreSQL (`store: postgres://…`) for several proxies sharing budgets. Both reserve all or
//! none atomically in the database, so no number of concurrent requests or processes can reserve
//! more than a budget's limit; settlement is idempotent by request id.

mod approvals;
mod checkpoints;
mod leases;
mod postgres;
mod sqlite;

pub use approvals::{Approval, ApprovalStatus, Decision, Held, NewHold};
pub use checkpoints::AuditCheckpoint;
pub use leases::{LeaseAsk, Leased, Run, Settled, lease_id};

#[cfg(test)]
pub(crate) mod tests;

use std::path::PathBuf;

/// Where the store lives, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file (WAL mode), owned by one proxy.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user@host:port/db`).
    Postgres(String),
}

impl StoreLocation {
    /// `postgres://` or `postgresql://` URLs name PostgreSQL; anything else is an SQLite path.
    pub fn parse(text: &str) -> StoreLocation {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            StoreLocation::Postgres(text.to_string())
        } else {
            StoreLocation::Sqlite(PathBuf::from(text))
        }
    }

    /// A name for messages: the file, or the URL without its password.
    pub fn display(&self) -> String {
        match self {
            StoreLocation::Sqlite(path) => path.display().to_string(),
            StoreLocation::Postgres(url) => postgres::without_password(url),
        }
    }
}

/// Why the store could not be used (always on Gatehouse's side: the agent did nothing wrong).
#[derive(Debug, thiserror::Error)]
#[error("store {store}: {reason}")]
pub struct StoreError {
    /// The file or the URL without its password.
    pub store: String,
    /// What went wrong.
    pub reason: String,
}

/// Who opens the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The proxy: it listens for changes other proxies make (PostgreSQL). What a crashed run
    /// left reserved is released only once its audit trail is reconciled (the ledger does that
    /// at start); what expires unreconciled counts as spent.
    Proxy,
    /// A command-line tool reading or pausing while proxies run: it releases nothing.
    Tool,
}

/// One budget a request must have room in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Budget id.
    pub budget: String,
    /// Ledger key of the current window (`day:2026-11-25`).
    pub window: String,
    /// Limit in nano-USD.
    pub limit: i64,
}

/// A budget without room for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoom {
    /// Budget id.
    pub budget: String,
    /// Window key.
    pub window: String,
    /// Nano-USD still free (limit − spent − reserved).
    pub available: i64,
}

/// What a budget holds in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// Settled spend, nano-USD.
    pub spent: i64,
    /// Held by requests in flight, nano-USD.
    pub reserved: i64,
}

/// A paused agent or team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paused {
    /// `agent:<id>` or `team:<id>`.
    pub scope: String,
    /// RFC 3339 time it was paused.
    pub since: String,
    /// Who or what paused it, and why.
    pub reason: String,
}

/// Whose spend a settled call is: kept per hour so any window can be summed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendOf {
    /// UTC hour, `2026-11-25T18`.
    pub hour: String,
    /// Agent id.
    pub agent: String,
    /// Team, or empty.
    pub team: String,
    /// Model as priced.
    pub model: String,
}

/// How `spend` groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpendBy {
    /// Per agent.
    Agent,
    /// Per team.
    Team,
    /// Per model.
    Model,
}

impl SpendBy {
    fn column(self) -> &'static str {
        match self {
            SpendBy::Agent => "agent",
            SpendBy::Team => "team",
            SpendBy::Model => "model",
        }
    }
}

/// Spend of one agent, team or model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendRow {
    /// The agent, team or model.
    pub key: String,
    /// Nano-USD.
    pub spent: i64,
    /// Calls settled.
    pub calls: i64,
}

/// Settled request ids are kept this long (settling again within it changes nothing).
const SETTLED_KEPT_SECONDS: i64 = 7 * 24 * 3600;

/// The store, on whichever back end the config names.
pub struct Store {
    backend: Backend,
    changes: tokio::sync::watch::Sender<u64>,
    /// Bumped when this process holds a new request (see [`Store::holds`]).
    holds: tokio::sync::watch::Sender<u64>,
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(Box<postgres::PgStore>),
}

impl Store {
    /// Opens (or creates, applying migrations) the store at `location`.
    pub async fn open(location: &StoreLocation, role: Role) -> Result<Store, StoreError> {
        let changes = tokio::sync::watch::Sender::new(0);
        let backend = match location {
            StoreLocation::Sqlite(path) => Backend::Sqlite(sqlite::SqliteStore::open(path)?),
            StoreLocation::Postgres(url) => {
                let store = postgres::PgStore::open(url, role).await?;
                if role == Role::Proxy {
                    store.listen(changes.clone());
                }
                Backend::Postgres(Box::new(store))
            }
        };
        let holds = tokio::sync::watch::Sender::new(0);
        Ok(Store {
            backend,
            changes,
            holds,
        })
    }

    /// Reserves `amount` nano-USD for `request` in every budget of `charges`, or in none when one
    /// lacks room (the first such budget, by id, is returned). The reservation is released by
    /// [`Store::expire`] after `expires_at` (Unix seconds) if it was never settled.
    pub async fn reserve(
        &self,
        request: &str,
        charges: &[Charge],
        amount: i64,
        expires_at: i64,
    ) -> Result<Result<(), NoRoom>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.reserve(request, charges, amount, expires_at),
            Backend::Postgres(p) => p.reserve(request, charges, amount, expires_at).await,
        }
    }

    /// Replaces `request`'s reservations by its real cost `amount` and adds it to the spend of
    /// `spend`; a second settlement of the same request changes nothing. Returns whether this call
    /// settled it.
    pub async fn settle(
        &self,
        request: &str,
        amount: i64,
        spend: Option<&SpendOf>,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.settle(request, amount, spend, now()),
            Backend::Postgres(p) => p.settle(request, amount, spend, now()).await,
        }
    }

    /// Counts as spent the reservations and leases nobody settled or renewed by their expiry (a
    /// process that died and was not restarted to reconcile its audit trail: whatever it
    /// answered may have been billed), and forgets settled ids older than a week. Returns how many
    /// reservations expired.
    pub async fn expire(&self) -> Result<u64, StoreError> {
        let now = now();
        match &self.backend {
            Backend::Sqlite(s) => s.expire(now, now - SETTLED_KEPT_SECONDS),
            Backend::Postgres(p) => p.expire(now, now - SETTLED_KEPT_SECONDS).await,
        }
    }

    /// Pauses `scope` (`agent:<id>` or `team:<id>`): its calls are refused until resumed.
    pub async fn pause(&self, scope: &str, since: &str, reason: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.pause(scope, since, reason),
            Backend::Postgres(p) => p.pause(scope, since, reason).await,
        }
    }

    /// Resumes `scope`; returns whether it was paused.
    pub async fn resume(&self, scope: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.resume(scope),
            Backend::Postgres(p) => p.resume(scope).await,
        }
    }

    /// Every paused scope.
    pub async fn paused_all(&self) -> Result<Vec<Paused>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.paused_all(),
            Backend::Postgres(p) => p.paused_all().await,
        }
    }

    /// Resets the breaker of `budget` in `window`: it trips again only once spend grows past the
    /// trip point counted from what is spent now.
    pub async fn reset_breaker(&self, budget: &str, window: &str) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.reset_breaker(budget, window),
            Backend::Postgres(p) => p.reset_breaker(budget, window).await,
        }
    }

    /// Spend (settled and reserved) in `window` counted since the breaker was last reset.
    pub async fn spend_since_reset(&self, budget: &str, window: &str) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.spend_since_reset(budget, window),
            Backend::Postgres(p) => p.spend_since_reset(budget, window).await,
        }
    }

    /// The balance of `budget` in `window`.
    pub async fn balance(&self, budget: &str, window: &str) -> Result<Balance, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.balance(budget, window),
            Backend::Postgres(p) => p.balance(budget, window).await,
        }
    }

    /// Settled spend grouped `by` agent, team or model, over the hours starting with
    /// `hour_prefix` (`2026-11-25` for a day, `2026-11` for a month, empty for all), largest
    /// first.
    pub async fn spend(&self, by: SpendBy, hour_prefix: &str) -> Result<Vec<SpendRow>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.spend(by, hour_prefix),
            Backend::Postgres(p) => p.spend(by, hour_prefix).await,
        }
    }
}

/// Why a hold cannot be queued, given the pending approvals of its agent and in all.
fn approvals_full(agent: i64, total: i64, hold: &NewHold) -> Option<String> {
    if agent >= hold.max_per_agent {
        return Some(format!(
            "agent {} already has {agent} requests waiting for approval (the most it may have)",
            hold.agent
        ));
    }
    (total >= hold.max_total)
        .then(|| format!("{total} requests already wait for approval (the most the queue holds)"))
}

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
