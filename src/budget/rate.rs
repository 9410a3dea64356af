//! Rate limits (GCRA, the `governor` crate): requests per second or per minute for each agent, or
//! for each agent and host. Each limit keeps a bucket per agent, so one busy agent never slows
//! another.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// One configured limit.
#[derive(Debug, Clone)]
pub struct RateLimit {
    /// Only this agent (every agent, each with its own bucket, when unset).
    pub agent: Option<String>,
    /// Only requests to this host (counted per agent and host).
    pub host: Option<String>,
    /// Requests allowed.
    pub requests: NonZeroU32,
    /// Per second (else per minute).
    pub per_second: bool,
}

impl RateLimit {
    fn describe(&self) -> String {
        let unit = if self.per_second { "second" } else { "minute" };
        let mut what = format!("{} requests per {unit}", self.requests);
        if let Some(host) = &self.host {
            what.push_str(&format!(" to {host}"));
        }
        what
    }
}

/// A request over a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// The limit, in words.
    pub limit: String,
    /// When a request would pass again.
    pub retry_after: Duration,
}

/// The limiters of every configured limit.
pub struct RateLimits {
    limits: Vec<(RateLimit, DefaultKeyedRateLimiter<String>)>,
    clock: DefaultClock,
}

impl RateLimits {
    /// Limiters for `limits`.
    pub fn new(limits: &[RateLimit]) -> RateLimits {
        RateLimits {
            limits: limits
                .iter()
                .map(|l| {
                    let quota = if l.per_second {
                        Quota::per_second(l.requests)
                    } else {
                        Quota::per_minute(l.requests)
                    };
                    (l.clone(), DefaultKeyedRateLimiter::keyed(quota))
                })
                .collect(),
            clock: DefaultClock::default(),
        }
    }

    /// Whether any limit is configured.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Counts a request of `agent` to `host` against every limit that covers it.
    pub fn check(&self, agent: &str, host: &str) -> Result<(), Limited> {
        for (limit, limiter) in &self.limits {
            if limit.agent.as_deref().is_some_and(|a| a != agent)
                || limit.host.as_deref().is_some_and(|h| h != host)
            {
                continue;
            }
            let key = match &limit.host {
                Some(host) => format!("{agent}\u{0}{host}"),
                None => agent.to_string(),
            };
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(Limited {
                    limit: limit.describe(),
                    retry_after: not_until.wait_time_from(self.clock.now()),
                });
            }
        }
        Ok(())
    }

    /// Forgets buckets that are full again, so memory follows the agents active lately.
    pub fn shrink(&self) {
        for (_, limiter) in &self.limits {
            limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_agent_has_its_own_bucket_and_host_limits_count_per_host() {
        let three = NonZeroU32::new(3).expect("nonzero");
        let one = NonZeroU32::new(1).expect("nonzero");
        let limits = RateLimits::new(&[
            RateLimit {
                agent: None,
                host: None,
                requests: three,
                per_second: false,
            },
            RateLimit {
                agent: Some("bot".into()),
                host: Some("api.openai.com".into()),
                requests: one,
                per_second: false,
            },
        ]);
        for _ in 0..3 {
            assert!(limits.check("other", "example.com").is_ok());
        }
        let limited = limits.check("other", "example.com").unwrap_err();
        assert_eq!(limited.limit, "3 requests per minute");
        assert!(limited.retry_after > Duration::from_secs(1));
        assert!(limits.check("bot", "api.openai.com").is_ok());
        let per_host = limits.check("bot", "api.openai.com").unwrap_err();
        assert_eq!(per_host.limit, "1 requests per minute to api.openai.com");
        assert!(
            limits.check("bot", "example.com").is_ok(),
            "another host, another bucket"
        );
    }
}
