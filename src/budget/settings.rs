//! The budgets as config states them, validated: who each covers, how much, for how long, and
//! how reservations are made.

/// The `budget` section beyond prices.
#[derive(Debug, Clone)]
pub struct BudgetConfig {
    /// The ledger: an SQLite file, or PostgreSQL shared by a fleet.
    pub store: crate::store::StoreLocation,
    /// How long a reservation is held for a request that never settles (its process died)
    /// before it is released; longer than the longest call.
    pub reservation_ttl_seconds: u64,
    /// Whether a call to a model without a price is refused when a budget applies.
    pub deny_unpriced: bool,
    /// Output tokens assumed when a call sets no maximum.
    pub default_max_output_tokens: u64,
    /// `budget.lease_calls`: a proxy's lease of a budget grows by room for this many calls like
    /// the one that needs it (at most a quarter of the limit; near the limit, by what the call
    /// needs alone). 1 leases call by call: one store transaction per call, as fair as it gets
    /// across a fleet.
    pub lease_calls: u64,
    pub budgets: Vec<Budget>,
    /// Hosts of LLM providers besides the built-in ones (a self-hosted or regional endpoint):
    /// their endpoints that the proxy does not meter are refused under a budget.
    pub provider_hosts: crate::policy::HostPatterns,
    /// Requests per second or minute, per agent (and host).
    pub rate_limits: Vec<super::RateLimit>,
    /// A tripped budget breaker holds calls for a person (`on_trip: hold`) instead of refusing
    /// them.
    pub hold_on_trip: bool,
    /// Spend-velocity and loop breakers.
    pub breakers: super::BreakerConfig,
}

/// One budget: who it covers, how much, for how long.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Id (ledger key, records, errors).
    pub id: String,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only this team (all its agents together).
    pub team: Option<String>,
    /// Only this environment.
    pub env: Option<String>,
    /// The limit, in nano-USD.
    pub limit_nano: i64,
    /// How long the money lasts.
    pub window: super::Window,
    /// Spend (settled and reserved) in nano-USD at which the breaker trips: new calls of the
    /// scope are refused until the window resets or `gatehouse budget resume --budget` resets it.
    pub breaker_nano: Option<i64>,
}

impl Budget {
    /// Whether this budget covers the agent `agent` of `team` in `env`.
    pub fn covers(&self, agent: &str, team: Option<&str>, env: Option<&str>) -> bool {
        self.agent.as_deref().is_none_or(|a| a == agent)
            && self.team.as_deref().is_none_or(|t| Some(t) == team)
            && self.env.as_deref().is_none_or(|e| Some(e) == env)
    }
}
