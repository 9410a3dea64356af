//! Leases and group-committed settlements: what keeps the store off a request's hot path.
//!
//! A proxy run holds, per budget and window, one lease: a reservation row of its own
//! (`lease:<run>:<window>`), counted in the budget's `reserved` like any reservation, so spent plus
//! reserved never exceeds the limit across a fleet. The run reserves and settles calls inside its
//! lease in memory, and writes settlements in batches ([`Store::settle_batch`]): each moves a
//! call's cost from the lease to `spent` in one transaction, once per request id. A run records
//! where its audit trail stood when it began ([`Store::begin_run`]), so the next start of the same
//! proxy charges what the file holds and the store lacks before releasing the dead run's leases
//! ([`Store::end_runs`]). A lease nobody renews and nobody reconciles expires as spent.

use super::{Backend, Charge, NoRoom, SpendOf, Store, StoreError};

/// One budget in which a run's lease gives back `give`, then grows by `want` nano-USD while the
/// budget keeps as much again free, else by exactly `min`: near the limit a lease takes only what
/// its call needs, so no proxy sits on room another one needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAsk {
    /// The budget, its window and limit.
    pub charge: Charge,
    /// Nano-USD the lease returns first (its unused part, or what the caller had claimed of it).
    pub give: i64,
    /// The least it must grow by, or nothing is granted in any budget.
    pub min: i64,
    /// What it grows by while the budget has plenty of room.
    pub want: i64,
}

/// What a lease of one budget became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leased {
    /// Nano-USD it grew by (after giving back).
    pub granted: i64,
    /// The budget's spend and reservations counted by its breaker (since its last reset),
    /// without this lease: what the rest of the fleet and the settled past hold.
    pub others: i64,
}

/// A settled call as a batch writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Request id (settled once).
    pub request: String,
    /// Nano-USD it cost.
    pub amount: i64,
    /// Whose spend it is (`None`: never sent, only its lease share returns).
    pub spend: Option<SpendOf>,
    /// The budgets and windows it was charged to.
    pub charges: Vec<(String, String)>,
}

/// A proxy run that held leases, and where its audit trail stood when it began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Run id.
    pub run: String,
    /// Byte offset in the audit file of the run's first record.
    pub offset: i64,
}

/// The reservation row id of `run`'s lease in `window`.
pub fn lease_id(run: &str, window: &str) -> String {
    format!("lease:{run}:{window}")
}

impl Store {
    /// Adjusts `run`'s leases in one transaction: each gives back, then all grow by at least their
    /// `min` (up to `want`), or none grows and only the gives apply (`NoRoom` names the first
    /// budget, by id, that lacked room). Renews the leases to `expires_at`.
    pub async fn lease(
        &self,
        run: &str,
        asks: &[LeaseAsk],
        expires_at: i64,
    ) -> Result<Result<Vec<Leased>, NoRoom>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.lease(run, asks, expires_at),
            Backend::Postgres(p) => p.lease(run, asks, expires_at).await,
        }
    }

    /// Writes `batch` in one transaction: each call not settled before moves its cost into the
    /// spend of its budgets (and of its agent, team and model), out of `run`'s leases. Returns how
    /// many were new.
    pub async fn settle_batch(
        &self,
        run: &str,
        batch: &[Settled],
        now: i64,
    ) -> Result<u64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.settle_batch(run, batch, now),
            Backend::Postgres(p) => p.settle_batch(run, batch, now).await,
        }
    }

    /// Notes that `run` starts writing the audit trail `trail` at byte `offset`.
    pub async fn begin_run(&self, run: &str, trail: &str, offset: i64) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.begin_run(run, trail, offset, super::now()),
            Backend::Postgres(p) => p.begin_run(run, trail, offset, super::now()).await,
        }
    }

    /// Notes that everything `run` wrote to its audit trail before byte `offset` is in the store:
    /// a restart reconciles it from there on.
    pub async fn advance_run(&self, run: &str, offset: i64) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.advance_run(run, offset),
            Backend::Postgres(p) => p.advance_run(run, offset).await,
        }
    }

    /// The runs that wrote `trail` and have not ended.
    pub async fn runs(&self, trail: &str) -> Result<Vec<Run>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.runs(trail),
            Backend::Postgres(p) => p.runs(trail).await,
        }
    }

    /// Ends `runs`: what their leases still hold is released (their settlements are written, or
    /// were reconciled from their audit trail), and they are forgotten.
    pub async fn end_runs(&self, runs: &[String]) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.end_runs(runs),
            Backend::Postgres(p) => p.end_runs(runs).await,
        }
    }
}
