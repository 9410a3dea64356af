//! `gatehouse spend` and `gatehouse budget` on the store of a config: the ledger's report, pausing
//! or resuming an agent or a team by hand (proxies read pauses from the store every second), and
//! resetting a breaker.

use super::ToolError;
use crate::budget::{SpendReport, Window};
use crate::config::Config;
use crate::store::{Role, SpendBy, Store};

/// The report of `store` for `config`'s budgets, spend grouped `by` over `window`.
pub async fn spend_report(
    config: &Config,
    store: &Store,
    by: SpendBy,
    window: Window,
) -> Result<SpendReport, ToolError> {
    Ok(crate::budget::spend_report(&config.budget.budgets, store, by, window).await?)
}

/// Resets the breaker of budget `id` in its current window.
pub async fn reset_breaker(config: &Config, store: &Store, id: &str) -> Result<(), ToolError> {
    Ok(crate::budget::reset_breaker(&config.budget.budgets, store, id).await?)
}

/// Opens the store of `config` as a tool (it releases nothing proxies hold).
pub async fn open_store(config: &Config) -> Result<Store, ToolError> {
    Ok(Store::open(&config.budget.store, Role::Tool).await?)
}

/// Pauses `scope` (`agent:<id>` or `team:<id>`).
pub async fn pause(store: &Store, scope: &str, reason: &str) -> Result<(), ToolError> {
    let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    store.pause(scope, &since, reason).await?;
    Ok(())
}
