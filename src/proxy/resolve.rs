//! Resolution with the network guard built in: the proxy looks names up itself, keeps only the
//! addresses the guard admits, and pins them for a short time, so every later step (connect
//! rules, geo, the connection itself) sees the same checked address. There is no second lookup
//! at connect time, so DNS rebinding cannot slip a private address in.

use crate::error::{ErrorKind, Failure, ProxyError, Side};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::guard::{AddressGuard, Refusal};
use super::target::{Host, Target};

/// Addresses that passed the guard, in the order the resolver returned them.
pub type Pinned = Arc<[SocketAddr]>;

/// Why a destination cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// Every address of the destination is refused by the guard.
    #[error("destination {target} refused: {refusal}")]
    Refused {
        /// The destination.
        target: String,
        /// Why (the first refused address).
        refusal: Refusal,
    },
    /// The name did not resolve.
    #[error("cannot resolve {target}: {reason}")]
    Lookup {
        /// The destination.
        target: String,
        /// Resolver error text.
        reason: String,
        /// Whether the name server gave no answer in time (rather than an error).
        timed_out: bool,
    },
}

const PIN_CACHE_ENTRIES: usize = 4096;

/// Resolves destinations through the guard and pins the result.
pub struct Resolver {
    guard: AddressGuard,
    ttl: Duration,
    lookup_timeout: Duration,
    pins: Mutex<LruCache<Target, (Instant, Pinned)>>,
}

impl Resolver {
    /// A resolver admitting what `guard` admits; results stay pinned for `ttl`; a lookup taking
    /// longer than `lookup_timeout` fails.
    pub fn new(guard: AddressGuard, ttl: Duration, lookup_timeout: Duration) -> Self {
        let capacity = NonZeroUsize::new(PIN_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN);
        Self {
            guard,
            ttl,
            lookup_timeout,
            pins: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The checked addresses for `target`: from the pin cache, or resolved and checked now.
    pub async fn resolve(&self, target: &Target) -> Result<Pinned, ResolveError> {
        if let Host::Ip(ip) = target.host {
            return self.admit(target, vec![SocketAddr::new(ip, target.port)]);
        }
        if let Some(pinned) = self.cached(target) {
            return Ok(pinned);
        }
        let name = target.host.as_string();
        let lookup = tokio::net::lookup_host((name.as_str(), target.port));
        let found: Vec<SocketAddr> = match tokio::time::timeout(self.lookup_timeout, lookup).await {
            Ok(Ok(addrs)) => addrs.collect(),
            Ok(Err(e)) => {
                return Err(ResolveError::Lookup {
                    target: target.to_string(),
                    reason: e.to_string(),
                    timed_out: false,
                });
            }
            Err(_) => {
                return Err(ResolveError::Lookup {
                    target: target.to_string(),
                    reason: format!("no answer within {:?}", self.lookup_timeout),
                    timed_out: true,
                });
            }
        };
        let pinned = self.admit(target, found)?;
        if let Ok(mut pins) = self.pins.lock() {
            pins.put(target.clone(), (Instant::now(), pinned.clone()));
        }
        Ok(pinned)
    }

    fn cached(&self, target: &Target) -> Option<Pinned> {
        let mut pins = self.pins.lock().ok()?;
        match pins.get(target) {
            Some((at, pinned)) if at.elapsed() < self.ttl => Some(pinned.clone()),
            Some(_) => {
                pins.pop(target);
                None
            }
            None => None,
        }
    }

    fn admit(&self, target: &Target, found: Vec<SocketAddr>) -> Result<Pinned, ResolveError> {
        let mut first_refusal = None;
        let mut admitted = Vec::with_capacity(found.len());
        for addr in found {
            match self.guard.check(addr) {
                Ok(()) => admitted.push(addr),
                Err(refusal) => {
                    first_refusal.get_or_insert(refusal);
                }
            }
        }
        match (admitted.is_empty(), first_refusal) {
            (false, _) => Ok(admitted.into()),
            (true, Some(refusal)) => Err(ResolveError::Refused {
                target: target.to_string(),
                refusal,
            }),
            (true, None) => Err(ResolveError::Lookup {
                target: target.to_string(),
                reason: "no addresses".to_string(),
                timed_out: false,
            }),
        }
    }
}

impl From<ResolveError> for ProxyError {
    /// A destination the guard refuses is the agent's doing; one that does not resolve is the
    /// upstream's.
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Refused { .. } => {
                ProxyError::new(ErrorKind::Forbidden, Side::Agent, e.to_string())
                    .with_failure(Failure::DestinationProhibited)
            }
            ResolveError::Lookup { timed_out, .. } => {
                let failure = match timed_out {
                    true => Failure::DnsTimeout,
                    false => Failure::DnsError,
                };
                ProxyError::new(ErrorKind::BadGateway, Side::Upstream, e.to_string())
                    .with_failure(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> Target {
        Target::from_authority(&s.parse().unwrap(), None).unwrap()
    }

    #[tokio::test]
    async fn localhost_is_refused_unless_allowed_and_then_pinned_to_allowed_addresses() {
        let strict = Resolver::new(
            AddressGuard::default(),
            Duration::from_secs(30),
            Duration::from_secs(5),
        );
        let err = strict.resolve(&target("localhost:443")).await.unwrap_err();
        assert!(matches!(err, ResolveError::Refused { .. }), "{err}");

        let open = Resolver::new(
            AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]),
            Duration::from_secs(30),
            Duration::from_secs(5),
        );
        let pinned = open.resolve(&target("localhost:443")).await.unwrap();
        assert!(
            pinned.iter().all(|a| a.ip().is_loopback() && a.is_ipv4()),
            "{pinned:?}"
        );
        let again = open.resolve(&target("localhost:443")).await.unwrap();
        assert!(
            Arc::ptr_eq(&pinned, &again),
            "second lookup must come from the pin"
        );
    }

    #[tokio::test]
    async fn ip_literals_are_checked_without_lookup() {
        let strict = Resolver::new(
            AddressGuard::default(),
            Duration::from_secs(30),
            Duration::from_secs(5),
        );
        let err = strict
            .resolve(&target("169.254.169.254:80"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("link-local"), "{err}");
        let ok = strict.resolve(&target("8.8.8.8:443")).await.unwrap();
        assert_eq!(&ok[..], &["8.8.8.8:443".parse::<SocketAddr>().unwrap()]);
    }
}
