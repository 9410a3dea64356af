//! What the ledger holds, as people read it: spend per agent, team or model, each budget's limit,
//! spend, reservations, what is left and its breaker, in the current window, and what is paused.
//! `gatehouse spend` prints it; the admin API serves it.

use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;

use super::{Budget, Window, from_nano};
use crate::store::{SpendBy, Store, StoreError};

/// Why a report could not be made or a breaker reset.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// What was asked for does not exist.
    #[error("{0}")]
    Request(String),
}

/// Spend, budgets, breakers and pauses as of now.
#[derive(Debug, Clone, Serialize)]
pub struct SpendReport {
    /// The window spend is summed over (`day`).
    pub window: String,
    /// What spend is grouped by (`agent`, `team`, `model`).
    pub by: String,
    /// Spend per agent, team or model, largest first.
    pub spend: Vec<SpendLine>,
    /// Every configured budget in its current window.
    pub budgets: Vec<BudgetLine>,
    /// Paused agents and teams.
    pub paused: Vec<PausedLine>,
}

/// Spend of one agent, team or model.
#[derive(Debug, Clone, Serialize)]
pub struct SpendLine {
    /// The agent, team (`-` for none) or model.
    pub key: String,
    /// USD, exact decimal.
    pub spent_usd: String,
    /// Calls settled.
    pub calls: i64,
}

/// One budget in its current window.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetLine {
    /// Budget id.
    pub id: String,
    /// Who it covers (`agent a1`, `team t`, `env prod`, `everyone`).
    pub covers: String,
    /// Window key (`day:2026-11-25`).
    pub window: String,
    pub limit_usd: String,
    /// Settled spend, USD.
    pub spent_usd: String,
    /// Held by calls in flight, USD.
    pub reserved_usd: String,
    /// Left, USD.
    pub remaining_usd: String,
    /// `none` (no breaker), `closed`, or `tripped`.
    pub breaker: &'static str,
}

/// A paused agent or team.
#[derive(Debug, Clone, Serialize)]
pub struct PausedLine {
    /// `agent:<id>` or `team:<id>`.
    pub scope: String,
    /// Since when.
    pub since: String,
    /// Why.
    pub reason: String,
}

fn usd(nano: i64) -> String {
    from_nano(nano).normalize().to_string()
}

fn covers(b: &Budget) -> String {
    match (&b.agent, &b.team, &b.env) {
        (Some(a), _, _) => format!("agent {a}"),
        (_, Some(t), _) => format!("team {t}"),
        (_, _, Some(e)) => format!("env {e}"),
        _ => "everyone".to_string(),
    }
}

/// The report of `store` for `budgets`, spend grouped `by` over `window`.
pub async fn spend_report(
    budgets: &[Budget],
    store: &Store,
    by: SpendBy,
    window: Window,
) -> Result<SpendReport, ReportError> {
    let now = OffsetDateTime::now_utc();
    let prefix = window.hour_prefix(now).ok_or_else(|| {
        ReportError::Request("spend is summed over hour, day, month or total".into())
    })?;
    let spend = store
        .spend(by, &prefix)
        .await?
        .into_iter()
        .map(|row| SpendLine {
            key: if row.key.is_empty() {
                "-".into()
            } else {
                row.key
            },
            spent_usd: usd(row.spent),
            calls: row.calls,
        })
        .collect();
    let mut lines = Vec::new();
    for b in budgets {
        let key = b.window.key(now, None);
        let balance = store.balance(&b.id, &key).await?;
        let breaker = match b.breaker_nano {
            None => "none",
            Some(trip) if store.spend_since_reset(&b.id, &key).await? >= trip => "tripped",
            Some(_) => "closed",
        };
        lines.push(BudgetLine {
            id: b.id.clone(),
            covers: covers(b),
            window: key,
            limit_usd: usd(b.limit_nano),
            spent_usd: usd(balance.spent),
            reserved_usd: usd(balance.reserved),
            remaining_usd: usd((b.limit_nano - balance.spent - balance.reserved).max(0)),
            breaker,
        });
    }
    let paused = store
        .paused_all()
        .await?
        .into_iter()
        .map(|p| PausedLine {
            scope: p.scope,
            since: p.since,
            reason: p.reason,
        })
        .collect();
    Ok(SpendReport {
        window: window.name().to_string(),
        by: match by {
            SpendBy::Agent => "agent",
            SpendBy::Team => "team",
            SpendBy::Model => "model",
        }
        .to_string(),
        spend,
        budgets: lines,
        paused,
    })
}

impl SpendReport {
    /// The spend table, then the budgets and pauses.
    pub fn render(&self) -> String {
        let mut out = format!("spend this {} by {}\n", self.window, self.by);
        if self.spend.is_empty() {
            out.push_str("  (none)\n");
        }
        for line in &self.spend {
            let _ = writeln!(
                out,
                "  {:<32} ${:<14} {} calls",
                line.key, line.spent_usd, line.calls
            );
        }
        out.push_str(&self.render_budgets());
        out
    }

    /// The budgets (limit, spent, reserved, left, breaker) and pauses.
    pub fn render_budgets(&self) -> String {
        let mut out = String::new();
        for b in &self.budgets {
            let _ = writeln!(
                out,
                "{}  {}  {}  limit ${}  spent ${}  reserved ${}  left ${}  breaker {}",
                b.id,
                b.covers,
                b.window,
                b.limit_usd,
                b.spent_usd,
                b.reserved_usd,
                b.remaining_usd,
                b.breaker
            );
        }
        for p in &self.paused {
            let _ = writeln!(out, "paused  {}  since {}: {}", p.scope, p.since, p.reason);
        }
        if self.budgets.is_empty() && self.paused.is_empty() {
            out.push_str("no budgets and nothing paused\n");
        }
        out
    }
}

/// Resets the breaker of budget `id` in its current window.
pub async fn reset_breaker(budgets: &[Budget], store: &Store, id: &str) -> Result<(), ReportError> {
    let budget = budgets
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ReportError::Request(format!("no budget `{id}` in the config")))?;
    let window = budget.window.key(OffsetDateTime::now_utc(), None);
    store.reset_breaker(id, &window).await?;
    Ok(())
}
