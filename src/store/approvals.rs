//! Held requests waiting for a person: each is an approval bound to the request's fingerprint
//! (agent, method, URL, body hash), kept in the store so it survives restarts and can be decided
//! through any proxy of a fleet. An approval is used once; a pending one expires (and then counts
//! as denied). Changes wake waiting requests through [`Store::changes`]: at once in this process,
//! through LISTEN/NOTIFY from other processes on PostgreSQL, and by a poll as a backstop.

use serde::Serialize;

use super::{Backend, Store, StoreError};

/// Where an approval stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a person.
    Pending,
    /// Approved; the next request with its fingerprint proceeds (once).
    Approved,
    /// Denied, with a reason.
    Denied,
    /// Nobody decided in time: counts as denied.
    Expired,
    /// Approved and used by a request.
    Used,
}

impl ApprovalStatus {
    /// The name the store and the API use.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Used => "used",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::Used,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }
}

/// One held request's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Approval {
    /// `apv_…`.
    pub id: String,
    /// Hex SHA-256 of agent, method, URL and body.
    pub fingerprint: String,
    /// The agent that sent it.
    pub agent: String,
    /// What a reviewer sees (JSON: method, URL, rule, reason, a redacted body preview).
    pub summary: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which a pending approval counts as denied.
    pub expires_at: i64,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// Who decided.
    pub reviewer: Option<String>,
    /// Why (shown to the agent on a denial).
    pub reason: Option<String>,
    /// When it was decided, Unix seconds.
    pub decided_at: Option<i64>,
}

/// A request to hold.
#[derive(Debug, Clone)]
pub struct NewHold {
    /// The id to give a new approval.
    pub id: String,
    /// The request's fingerprint.
    pub fingerprint: String,
    pub agent: String,
    /// What a reviewer sees.
    pub summary: String,
    /// Unix seconds now.
    pub now: i64,
    /// When a new approval expires.
    pub expires_at: i64,
    /// Pending approvals one agent may have.
    pub max_per_agent: i64,
    /// Pending approvals in all.
    pub max_total: i64,
}

/// What holding a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// A live approval with the same fingerprint existed (a retry): the request waits on it.
    Attached(Approval),
    /// A new pending approval.
    Created(Approval),
    /// The queue is full: the request is refused with this reason.
    Full(String),
}

/// A decision a reviewer makes.
#[derive(Debug, Clone)]
pub struct Decision<'a> {
    /// The approval.
    pub id: &'a str,
    /// Approve or deny.
    pub approve: bool,
    /// Who decides.
    pub reviewer: &'a str,
    /// Why.
    pub reason: &'a str,
    /// Unix seconds now.
    pub now: i64,
    /// An approval stays usable until then (the agent's retry may come later).
    pub usable_until: i64,
}

impl Store {
    /// Holds a request: attaches to the live approval of its fingerprint, or creates one when the
    /// queues have room.
    pub async fn hold(&self, hold: &NewHold) -> Result<Held, StoreError> {
        let held = match &self.backend {
            Backend::Sqlite(s) => s.hold(hold)?,
            Backend::Postgres(p) => p.hold(hold).await?,
        };
        if matches!(held, Held::Created(_)) {
            self.holds.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(held)
    }

    /// The approval `id`, if it exists.
    pub async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.approval(id),
            Backend::Postgres(p) => p.approval(id).await,
        }
    }

    /// Decides a pending approval; `Err` with why when it is not pending (decided, expired, or
    /// unknown).
    pub async fn decide(
        &self,
        decision: &Decision<'_>,
    ) -> Result<Result<Approval, String>, StoreError> {
        let decided = match &self.backend {
            Backend::Sqlite(s) => s.decide(decision)?,
            Backend::Postgres(p) => p.decide(decision).await?,
        };
        self.changed();
        Ok(decided)
    }

    /// Uses an approved approval; true for the one caller that got it.
    pub async fn consume(&self, id: &str) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.consume(id),
            Backend::Postgres(p) => p.consume(id).await,
        }
    }

    /// Approvals with `status`, newest first, at most `limit`.
    pub async fn approvals(
        &self,
        status: ApprovalStatus,
        limit: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.approvals(status, limit),
            Backend::Postgres(p) => p.approvals(status, limit).await,
        }
    }

    /// Marks pending approvals past their expiry as expired (denied); returns how many.
    pub async fn expire_approvals(&self, now: i64) -> Result<u64, StoreError> {
        let expired = match &self.backend {
            Backend::Sqlite(s) => s.expire_approvals(now)?,
            Backend::Postgres(p) => p.expire_approvals(now).await?,
        };
        if expired > 0 {
            self.changed();
        }
        Ok(expired)
    }

    /// A receiver that changes whenever an approval may have changed (decided here, notified by
    /// another process, or expired). Subscribe before reading an approval, so no change is missed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// A receiver that changes whenever this process holds a new request (a live view shows it;
    /// the requests waiting on [`Store::changes`] are not woken for it).
    pub fn holds(&self) -> tokio::sync::watch::Receiver<u64> {
        self.holds.subscribe()
    }

    /// Wakes whoever waits on [`Store::changes`].
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// The columns every back end selects, in this order.
pub(super) const COLUMNS: &str =
    "id, fingerprint, agent, summary, created_at, expires_at, status, reviewer, reason, decided_at";
