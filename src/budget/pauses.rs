//! Pauses and breakers in the request's path: a paused agent or team is refused from memory (the
//! store is read once a second), the loop breaker counts repeated requests, and a tripped breaker
//! pauses its scope here at once and, through the store, for the fleet and across restarts.

use std::hash::{Hash, Hasher};
use std::time::Instant;

use super::ledger::Ledger;
use crate::error::{ErrorKind, ProxyError, Side};
use crate::policy::Facts;
use crate::store::Paused;

impl Ledger {
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
    pub(super) fn trip(&self, scope: String, reason: String) {
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
}
