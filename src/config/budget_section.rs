//! The `budget` section: the price table, budgets, breakers, rate limits and the ledger's place.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::ConfigError;
use super::compile::Compiler;
use super::raw::{RawBreakers, RawConfig};
use crate::budget::BreakerConfig;

impl Compiler<'_> {
    /// `budget.prices`: our YAML table or LiteLLM's JSON (by extension); the built-in table when
    /// not set.
    pub(super) fn prices(&self, raw: &RawConfig) -> Result<crate::budget::PriceTable, ConfigError> {
        use crate::budget::{DEFAULT_PRICES, PriceTable};
        let Some(path) = &raw.budget.prices else {
            return PriceTable::from_yaml(DEFAULT_PRICES, "<built-in prices.yaml>")
                .map_err(|e| self.invalid(None, "budget.prices", e.to_string()));
        };
        let file = self.existing_file(path, "budget.prices")?;
        let text = std::fs::read_to_string(&file)
            .map_err(|e| self.invalid(Some(&path.referenced), "budget.prices", e.to_string()))?;
        let name = file.display().to_string();
        let table = if name.ends_with(".json") {
            PriceTable::from_litellm(&text, &name)
        } else {
            PriceTable::from_yaml(&text, &name)
        };
        table.map_err(|e| self.invalid(Some(&path.referenced), "budget.prices", e.to_string()))
    }

    pub(super) fn budget(&self, raw: &RawConfig) -> Result<super::BudgetConfig, ConfigError> {
        let b = &raw.budget;
        let deny_unpriced = match &b.unpriced {
            None => true,
            Some(v) => match v.value.trim() {
                "deny" => true,
                "allow" => false,
                other => {
                    return Err(self.invalid(
                        Some(&v.referenced),
                        "budget.unpriced",
                        format!("`{other}` is not `deny` or `allow`"),
                    ));
                }
            },
        };
        let mut budgets: Vec<super::Budget> = Vec::new();
        for (i, entry) in b.budgets.iter().enumerate() {
            let key = format!("budget.budgets[{i}]");
            let id = entry.id.value.trim().to_string();
            if id.is_empty() || budgets.iter().any(|x| x.id == id) {
                return Err(self.invalid(
                    Some(&entry.id.referenced),
                    &format!("{key}.id"),
                    format!("budget id `{id}` is empty or used twice"),
                ));
            }
            let scopes = [&entry.agent, &entry.team, &entry.env]
                .iter()
                .filter(|s| s.is_some())
                .count();
            if scopes > 1 {
                return Err(self.invalid(
                    Some(&entry.id.referenced),
                    &key,
                    "a budget covers one agent, one team, one environment, or (none given) everyone",
                ));
            }
            let limit = self.usd(&entry.limit_usd, &format!("{key}.limit_usd"))?;
            let window =
                crate::budget::Window::parse(entry.window.value.trim()).ok_or_else(|| {
                    self.invalid(
                        Some(&entry.window.referenced),
                        &format!("{key}.window"),
                        format!(
                            "`{}` is not a window: execution, hour, day, month or total",
                            entry.window.value
                        ),
                    )
                })?;
            let breaker_nano = match &entry.breaker_at {
                None => None,
                Some(at) => {
                    let fraction =
                        <rust_decimal::Decimal as std::str::FromStr>::from_str(at.value.trim())
                            .ok()
                            .filter(|f| {
                                f.is_sign_positive()
                                    && !f.is_zero()
                                    && *f < rust_decimal::Decimal::ONE
                            })
                            .ok_or_else(|| {
                                self.invalid(
                                    Some(&at.referenced),
                                    &format!("{key}.breaker_at"),
                                    format!(
                                        "`{}` is not a fraction between 0 and 1, like 0.9",
                                        at.value
                                    ),
                                )
                            })?;
                    crate::budget::to_nano(crate::budget::from_nano(limit) * fraction)
                }
            };
            budgets.push(super::Budget {
                id,
                agent: entry.agent.clone(),
                team: entry.team.clone(),
                env: entry.env.clone(),
                limit_nano: limit,
                window,
                breaker_nano,
            });
        }
        let mut rate_limits = Vec::new();
        for (i, r) in b.rate_limits.iter().enumerate() {
            let key = format!("budget.rate_limits[{i}]");
            let (count, per_second) = match (&r.per_second, &r.per_minute) {
                (Some(n), None) => (n, true),
                (None, Some(n)) => (n, false),
                _ => {
                    return Err(self.invalid(
                        None,
                        &key,
                        "a rate limit needs exactly one of `per_second` or `per_minute`",
                    ));
                }
            };
            let requests = std::num::NonZeroU32::new(count.value).ok_or_else(|| {
                self.invalid(Some(&count.referenced), &key, "must be greater than 0")
            })?;
            rate_limits.push(crate::budget::RateLimit {
                agent: r.agent.clone(),
                host: r.host.as_ref().map(|h| h.trim().to_ascii_lowercase()),
                requests,
                per_second,
            });
        }
        let breakers = self.breakers(&b.breakers)?;
        let hold_on_trip = match b.on_trip.as_ref().map(|t| (t, t.value.trim())) {
            None | Some((_, "deny")) => false,
            Some((_, "hold")) => true,
            Some((t, other)) => {
                return Err(self.invalid(
                    Some(&t.referenced),
                    "budget.on_trip",
                    format!("`{other}` is not deny or hold"),
                ));
            }
        };
        let mut provider_hosts = Vec::new();
        for (i, host) in b.provider_hosts.iter().enumerate() {
            let key = format!("budget.provider_hosts[{i}]");
            provider_hosts.push(
                super::HostPattern::parse(&host.value)
                    .map_err(|e| self.invalid(Some(&host.referenced), &key, e))?,
            );
        }
        Ok(super::BudgetConfig {
            provider_hosts: super::HostPatterns(provider_hosts),
            rate_limits,
            breakers,
            hold_on_trip,
            store: self.store_location(b.store.as_ref())?,
            // Set once the upstream and approval timeouts are known (`reservation_ttl`).
            reservation_ttl_seconds: 0,
            deny_unpriced,
            default_max_output_tokens: b
                .default_max_output_tokens
                .as_ref()
                .map_or(4096, |v| v.value),
            lease_calls: b.lease_calls.as_ref().map_or(16, |v| v.value.max(1)),
            budgets,
        })
    }

    /// A positive amount in USD at `key`, as nano-USD.
    fn usd(&self, value: &Spanned<String>, key: &str) -> Result<i64, ConfigError> {
        <rust_decimal::Decimal as std::str::FromStr>::from_str(value.value.trim())
            .ok()
            .filter(|d| d.is_sign_positive() && !d.is_zero())
            .and_then(crate::budget::to_nano)
            .ok_or_else(|| {
                self.invalid(
                    Some(&value.referenced),
                    key,
                    format!("`{}` is not a positive amount in USD", value.value),
                )
            })
    }

    /// A window of at least a second at `key`.
    fn seconds(&self, value: &Spanned<u64>, key: &str) -> Result<Duration, ConfigError> {
        if value.value == 0 {
            return Err(self.invalid(Some(&value.referenced), key, "must be at least 1 second"));
        }
        Ok(Duration::from_secs(value.value))
    }

    /// `budget.breakers`: spend velocity and loops.
    fn breakers(&self, raw: &RawBreakers) -> Result<BreakerConfig, ConfigError> {
        let velocity = match &raw.velocity {
            None => None,
            Some(v) => Some((
                self.usd(&v.usd, "budget.breakers.velocity.usd")?,
                self.seconds(&v.seconds, "budget.breakers.velocity.seconds")?,
            )),
        };
        let repeats = match &raw.repeats {
            None => None,
            Some(l) => {
                if l.repeats.value < 2 {
                    return Err(self.invalid(
                        Some(&l.repeats.referenced),
                        "budget.breakers.loop.repeats",
                        "a loop is at least 2 repeats",
                    ));
                }
                Some((
                    l.repeats.value,
                    self.seconds(&l.seconds, "budget.breakers.loop.seconds")?,
                ))
            }
        };
        Ok(BreakerConfig { velocity, repeats })
    }

    /// `budget.store`: a `postgres://` URL (checked now, so a typo names its line) or a path.
    fn store_location(
        &self,
        value: Option<&Spanned<String>>,
    ) -> Result<crate::store::StoreLocation, ConfigError> {
        use crate::store::StoreLocation;
        let Some(value) = value else {
            return Ok(StoreLocation::Sqlite("data/budget.sqlite".into()));
        };
        let text = value.value.trim();
        let location = StoreLocation::parse(text);
        let bad = |why: String| self.invalid(Some(&value.referenced), "budget.store", why);
        match &location {
            StoreLocation::Postgres(url) => {
                url.parse::<tokio_postgres::Config>()
                    .map_err(|e| bad(format!("not a PostgreSQL connection string: {e}")))?;
            }
            StoreLocation::Sqlite(_) if text.is_empty() => {
                return Err(bad("empty: give a file path or a postgres:// URL".into()));
            }
            StoreLocation::Sqlite(_) if text.contains("://") || text.starts_with("postgres") => {
                return Err(bad(format!(
                    "`{text}` is neither a file path nor a postgres:// or postgresql:// URL"
                )));
            }
            StoreLocation::Sqlite(_) => {}
        }
        Ok(location)
    }

    /// `budget.reservation_ttl_seconds`: a reservation must outlive the longest call it covers
    /// (the upstream's total timeout, plus the wait of a held request, plus a minute), or it could
    /// be released while its call still runs and the budget overshoot. Defaults to exactly that.
    pub(super) fn reservation_ttl(
        &self,
        raw: &RawConfig,
        config: &mut super::Config,
    ) -> Result<(), ConfigError> {
        let needed = config
            .upstream
            .total_timeout
            .saturating_add(config.approvals.wait)
            .as_secs()
            .saturating_add(60);
        config.budget.reservation_ttl_seconds = match &raw.budget.reservation_ttl_seconds {
            None => needed,
            Some(ttl) if ttl.value >= needed && ttl.value <= 365 * 86_400 => ttl.value,
            Some(ttl) => {
                return Err(self.invalid(
                    Some(&ttl.referenced),
                    "budget.reservation_ttl_seconds",
                    format!(
                        "must be between {needed} (upstream.total_timeout + approvals.wait + 60 s, \
                         so no reservation is released while its call runs) and 31536000"
                    ),
                ));
            }
        };
        Ok(())
    }
}

impl Compiler<'_> {
    /// The agents (and `anonymous`) an `execution`-window budget covers: their execution ids must
    /// be signed by the proxy. Each must also be covered by a budget of another window, or every
    /// new execution would start with a full budget again.
    pub(super) fn counting_executions(
        &self,
        identity: &super::IdentityConfig,
        budgets: &[super::Budget],
    ) -> Result<std::collections::BTreeSet<String>, ConfigError> {
        use crate::budget::Window;
        let mut agents: Vec<(&str, Option<&str>, Option<&str>)> = identity
            .agents
            .iter()
            .map(|a| (a.id.as_str(), a.team.as_deref(), a.env.as_deref()))
            .collect();
        if identity.allow_anonymous {
            agents.push((super::ANONYMOUS_AGENT, None, None));
        }
        let mut counted = std::collections::BTreeSet::new();
        for (agent, team, env) in agents {
            let per_execution = budgets
                .iter()
                .find(|b| b.window == Window::Execution && b.covers(agent, team, env));
            let Some(per_execution) = per_execution else {
                continue;
            };
            let beside = budgets
                .iter()
                .any(|b| b.window != Window::Execution && b.covers(agent, team, env));
            if !beside {
                return Err(self.invalid(
                    None,
                    "budget.budgets",
                    format!(
                        "budget `{}` counts executions of agent `{agent}`, but no budget of \
                         another window (hour, day, month, total) covers that agent: add one, \
                         or every new execution would start with a full budget",
                        per_execution.id
                    ),
                ));
            }
            counted.insert(agent.to_string());
        }
        Ok(counted)
    }
}
