//! `gatehouse budget`: spend per budget in its current window, and pausing or resuming an agent or
//! a team by hand (the proxy reads the ledger on every request, so it takes effect at once).

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::ToolError;
use crate::budget::{Ledger, from_nano};
use crate::config::Config;

/// Each budget's limit, spend and reservations in its current window, and what is paused.
pub fn budget_status(config: &Config) -> Result<String, ToolError> {
    let ledger = Ledger::open(&config.budget.store)?;
    let now = OffsetDateTime::now_utc();
    let mut out = String::new();
    for b in &config.budget.budgets {
        let window = b.window.key(now, None);
        let balance = ledger.balance(&b.id, &window)?;
        let covers = match (&b.agent, &b.team, &b.env) {
            (Some(a), _, _) => format!("agent {a}"),
            (_, Some(t), _) => format!("team {t}"),
            (_, _, Some(e)) => format!("env {e}"),
            _ => "everyone".to_string(),
        };
        let _ = writeln!(
            out,
            "{}  {covers}  {window}  limit ${}  spent ${}  reserved ${}  left ${}",
            b.id,
            from_nano(b.limit_nano).normalize(),
            from_nano(balance.spent).normalize(),
            from_nano(balance.reserved).normalize(),
            from_nano((b.limit_nano - balance.spent - balance.reserved).max(0)).normalize(),
        );
    }
    for (scope, since, reason) in ledger.paused_all()? {
        let _ = writeln!(out, "paused  {scope}  since {since}: {reason}");
    }
    if out.is_empty() {
        out.push_str("no budgets and nothing paused\n");
    }
    Ok(out)
}

/// Pauses `scope` (`agent:<id>` or `team:<id>`).
pub fn pause(config: &Config, scope: &str, reason: &str) -> Result<(), ToolError> {
    let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    Ledger::open(&config.budget.store)?.pause(scope, &since, reason)?;
    Ok(())
}

/// Resumes `scope`; whether it was paused.
pub fn resume(config: &Config, scope: &str) -> Result<bool, ToolError> {
    Ok(Ledger::open(&config.budget.store)?.resume(scope)?)
}

/// Resets the breaker of budget `id` in its current window.
pub fn reset_breaker(config: &Config, id: &str) -> Result<(), ToolError> {
    let budget = config
        .budget
        .budgets
        .iter()
        .find(|b| b.id == id)
        .ok_or_else(|| ToolError::Request(format!("no budget `{id}` in the config")))?;
    let window = budget.window.key(OffsetDateTime::now_utc(), None);
    Ledger::open(&config.budget.store)?.reset_breaker(id, &window)?;
    Ok(())
}
