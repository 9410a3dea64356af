//! Breakers that pause a runaway agent: spend velocity (more than a set amount settled within a
//! number of seconds) and loops (the same request, by fingerprint, repeated a set number of times
//! within a number of seconds). Pure bookkeeping in memory; the caller pauses the agent in the
//! store when one trips, so the pause survives restarts and reaches every proxy of a fleet.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The configured breakers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Trip when an agent's settled spend within `.1` exceeds `.0` nano-USD.
    pub velocity: Option<(i64, Duration)>,
    /// Trip when one agent sends the same request `.0` times within `.1`.
    pub repeats: Option<(u32, Duration)>,
}

/// Recent spend and requests per agent.
#[derive(Debug, Default)]
pub struct Breakers {
    config: BreakerConfig,
    spend: Mutex<HashMap<String, VecDeque<(Instant, i64)>>>,
    seen: Mutex<HashMap<(String, u64), VecDeque<Instant>>>,
}

impl Breakers {
    /// Breakers of `config`.
    pub fn new(config: BreakerConfig) -> Breakers {
        Breakers {
            config,
            ..Breakers::default()
        }
    }

    /// Whether the loop breaker is on (requests need a fingerprint only then).
    pub fn watches_repeats(&self) -> bool {
        self.config.repeats.is_some()
    }

    /// Notes `nano` settled for `agent` at `now`; the reason to pause it when its spend within the
    /// window now exceeds the limit.
    pub fn spent(&self, agent: &str, nano: i64, now: Instant) -> Option<String> {
        let (limit, window) = self.config.velocity?;
        let mut spend = self.spend.lock().unwrap_or_else(|p| p.into_inner());
        let recent = spend.entry(agent.to_string()).or_default();
        recent.push_back((now, nano));
        while recent
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > window)
        {
            recent.pop_front();
        }
        let total: i64 = recent.iter().map(|(_, n)| n).sum();
        (total > limit).then(|| {
            recent.clear();
            format!(
                "spend-velocity breaker: ${} within {} s (limit ${})",
                super::from_nano(total).normalize(),
                window.as_secs(),
                super::from_nano(limit).normalize()
            )
        })
    }

    /// Notes a request of `agent` with `fingerprint` at `now`; the reason to pause it when the
    /// same request came the configured number of times within the window.
    pub fn requested(&self, agent: &str, fingerprint: u64, now: Instant) -> Option<String> {
        let (repeats, window) = self.config.repeats?;
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let times = seen.entry((agent.to_string(), fingerprint)).or_default();
        times.push_back(now);
        while times
            .front()
            .is_some_and(|at| now.duration_since(*at) > window)
        {
            times.pop_front();
        }
        (times.len() >= repeats as usize).then(|| {
            times.clear();
            format!(
                "loop breaker: the same request {repeats} times within {} s",
                window.as_secs()
            )
        })
    }

    /// Forgets what fell out of every window (called every second).
    pub fn shrink(&self, now: Instant) {
        if let Some((_, window)) = self.config.velocity {
            let mut spend = self.spend.lock().unwrap_or_else(|p| p.into_inner());
            spend.retain(|_, recent| {
                recent
                    .back()
                    .is_some_and(|(at, _)| now.duration_since(*at) <= window)
            });
        }
        if let Some((_, window)) = self.config.repeats {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|at| now.duration_since(*at) <= window)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velocity_trips_past_the_limit_within_the_window_only() {
        let breakers = Breakers::new(BreakerConfig {
            velocity: Some((1_000, Duration::from_secs(10))),
            repeats: None,
        });
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        // (agent, nano, at second, trips)
        let table: &[(&str, i64, u64, bool)] = &[
            ("a", 600, 0, false),
            ("b", 900, 1, false),
            ("a", 300, 5, false),
            ("a", 200, 12, false), // the first 600 fell out of the window: 500
            ("a", 600, 13, true),  // 300 + 200 + 600 = 1100
            ("a", 100, 14, false), // a trip starts counting again
        ];
        for (agent, nano, at, trips) in table {
            let tripped = breakers.spent(agent, *nano, s(*at));
            assert_eq!(
                tripped.is_some(),
                *trips,
                "{agent} {nano} at {at}: {tripped:?}"
            );
        }
        breakers.shrink(s(100));
        assert!(breakers.spend.lock().unwrap().is_empty());
    }

    #[test]
    fn the_same_request_repeated_trips_the_loop_breaker() {
        let breakers = Breakers::new(BreakerConfig {
            velocity: None,
            repeats: Some((3, Duration::from_secs(60))),
        });
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        assert!(breakers.requested("a", 7, s(0)).is_none());
        assert!(
            breakers.requested("a", 8, s(1)).is_none(),
            "another request"
        );
        assert!(breakers.requested("b", 7, s(1)).is_none(), "another agent");
        assert!(breakers.requested("a", 7, s(2)).is_none());
        let reason = breakers.requested("a", 7, s(3)).unwrap();
        assert!(reason.contains("3 times within 60 s"), "{reason}");
        assert!(
            breakers.requested("a", 8, s(100)).is_none(),
            "old ones fell out"
        );
        assert!(
            Breakers::default().spent("a", i64::MAX, s(0)).is_none(),
            "off"
        );
    }
}
