//! Connection slots: every client connection holds one of the global limit from the moment it
//! is accepted, and one of its agent's share from the moment the agent is known (the first
//! authenticated request or CONNECT on it). An agent past its share is refused with 429, so one
//! agent cannot take every connection the proxy has.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedSemaphorePermit;

use crate::error::{ErrorKind, ProxyError, Side};

/// Seconds an agent refused for want of a connection slot is told to wait.
const RETRY_AFTER_SECONDS: u32 = 1;

/// How many client connections each agent holds.
#[derive(Debug)]
pub struct AgentConnections {
    cap: usize,
    held: Mutex<HashMap<Arc<str>, usize>>,
}

impl AgentConnections {
    /// At most `cap` connections per agent.
    pub fn new(cap: usize) -> Arc<AgentConnections> {
        Arc::new(AgentConnections {
            cap,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Connections `agent` holds now.
    pub fn held(&self, agent: &str) -> usize {
        self.lock().get(agent).copied().unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, usize>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(self: &Arc<Self>, agent: &str) -> Result<AgentConnection, ProxyError> {
        let mut held = self.lock();
        let count = held.entry(Arc::from(agent)).or_insert(0);
        if *count >= self.cap {
            let cap = self.cap;
            if *count == 0 {
                held.remove(agent);
            }
            return Err(ProxyError::new(
                ErrorKind::RateLimited,
                Side::Agent,
                format!(
                    "agent `{agent}` holds {cap} connections to the proxy already \
                     (limits.max_connections_per_agent); close one or retry later"
                ),
            )
            .with_retry_after(Some(RETRY_AFTER_SECONDS)));
        }
        *count += 1;
        Ok(AgentConnection {
            registry: self.clone(),
            agent: Arc::from(agent),
        })
    }
}

/// One connection counted in its agent's share; uncounted when dropped.
#[derive(Debug)]
struct AgentConnection {
    registry: Arc<AgentConnections>,
    agent: Arc<str>,
}

impl Drop for AgentConnection {
    fn drop(&mut self) {
        let mut held = self.registry.lock();
        if let Some(count) = held.get_mut(&self.agent) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.agent);
            }
        }
    }
}

/// What one client connection holds: its slot in the global limit, and its slot in the share of
/// every agent that spoke on it (an HTTP/1.1 connection may carry requests of several).
#[derive(Debug)]
pub struct ConnectionSlot {
    _global: OwnedSemaphorePermit,
    registry: Arc<AgentConnections>,
    agents: Mutex<Vec<AgentConnection>>,
}

impl ConnectionSlot {
    /// A connection holding `global`, counted per agent in `registry`.
    pub fn new(global: OwnedSemaphorePermit, registry: Arc<AgentConnections>) -> ConnectionSlot {
        ConnectionSlot {
            _global: global,
            registry,
            agents: Mutex::new(Vec::new()),
        }
    }

    /// Counts this connection in `agent`'s share (once); refuses with 429 past the share.
    pub fn count(&self, agent: &str) -> Result<(), ProxyError> {
        let mut agents = self.agents.lock().unwrap_or_else(|p| p.into_inner());
        if agents.iter().any(|a| &*a.agent == agent) {
            return Ok(());
        }
        agents.push(self.registry.admit(agent)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    fn slot(registry: &Arc<AgentConnections>) -> ConnectionSlot {
        let permit = Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap();
        ConnectionSlot::new(permit, registry.clone())
    }

    #[test]
    fn an_agent_holds_at_most_its_share_and_gets_it_back_on_close() {
        let registry = AgentConnections::new(2);
        let (one, two, three) = (slot(&registry), slot(&registry), slot(&registry));
        one.count("a").unwrap();
        one.count("a").unwrap();
        two.count("a").unwrap();
        let refused = three.count("a").unwrap_err();
        assert_eq!(refused.status(), 429);
        assert!(refused.reason.contains("max_connections_per_agent"));
        three.count("b").unwrap();
        assert_eq!(registry.held("a"), 2);
        drop(one);
        assert_eq!(registry.held("a"), 1);
        three.count("a").unwrap();
        drop((two, three));
        assert_eq!(registry.held("a"), 0);
        assert_eq!(registry.held("b"), 0);
    }
}
