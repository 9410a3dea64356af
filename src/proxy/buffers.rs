//! The budget of buffered bytes: request bodies are read whole to be inspected and answers whole
//! to be judged, so what one agent sends (one h2 connection with many streams of large bodies)
//! could otherwise ask the proxy for gigabytes. Every whole read takes a [`Reservation`] from a
//! global budget and from its agent's; the bytes stay reserved while the proxy holds them and
//! are given back when the reservation drops. Over the agent's budget the request is refused with
//! 429, over the global budget with 503, both with `Retry-After`: never an out-of-memory kill.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use crate::body::BodyError;
use crate::error::{ErrorKind, ProxyError, Side};

/// Seconds an agent refused for want of buffer room is told to wait.
const RETRY_AFTER_SECONDS: u32 = 1;

/// How many bytes may be buffered at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferLimits {
    /// Across all agents.
    pub total: u64,
    /// For one agent.
    pub per_agent: u64,
}

/// Why a reservation could not grow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverBudget {
    /// The agent holds its whole share.
    #[error(
        "agent `{agent}` has {limit} bytes of request and answer bodies buffered in the proxy \
         already (limits.max_buffered_bytes_per_agent); retry when its other calls finished"
    )]
    Agent {
        /// The agent.
        agent: String,
        /// Its budget in bytes.
        limit: u64,
    },
    /// The proxy holds as much as it may for everyone.
    #[error(
        "the proxy has {limit} bytes of bodies buffered for all agents (limits.max_buffered_bytes); \
         retry shortly"
    )]
    Global {
        /// The global budget in bytes.
        limit: u64,
    },
}

impl From<OverBudget> for ProxyError {
    /// The agent's own excess is its side (429); a full proxy is ours (503).
    fn from(e: OverBudget) -> Self {
        let (kind, side) = match e {
            OverBudget::Agent { .. } => (ErrorKind::RateLimited, Side::Agent),
            OverBudget::Global { .. } => (ErrorKind::Unavailable, Side::Internal),
        };
        ProxyError::new(kind, side, e.to_string()).with_retry_after(Some(RETRY_AFTER_SECONDS))
    }
}

#[derive(Debug, Default)]
struct Held {
    total: u64,
    agents: HashMap<Arc<str>, u64>,
}

/// The buffered-bytes budget, shared by every connection.
#[derive(Debug)]
pub struct Buffers {
    limits: BufferLimits,
    held: Mutex<Held>,
}

impl Buffers {
    /// A budget with nothing held.
    pub fn new(limits: BufferLimits) -> Arc<Buffers> {
        Arc::new(Buffers {
            limits,
            held: Mutex::new(Held::default()),
        })
    }

    /// An empty reservation for `agent`, grown as bytes are read.
    pub fn reserve(self: &Arc<Self>, agent: &str) -> Reservation {
        Reservation {
            buffers: self.clone(),
            agent: agent.into(),
            bytes: 0,
        }
    }

    /// Bytes held now, across all agents and for `agent`.
    pub fn held(&self, agent: &str) -> (u64, u64) {
        let held = self.lock();
        (held.total, held.agents.get(agent).copied().unwrap_or(0))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, agent: &Arc<str>, bytes: u64) -> Result<(), OverBudget> {
        let mut held = self.lock();
        let mine = held.agents.get(agent).copied().unwrap_or(0);
        if mine.saturating_add(bytes) > self.limits.per_agent {
            return Err(OverBudget::Agent {
                agent: agent.to_string(),
                limit: self.limits.per_agent,
            });
        }
        if held.total.saturating_add(bytes) > self.limits.total {
            return Err(OverBudget::Global {
                limit: self.limits.total,
            });
        }
        held.total += bytes;
        *held.agents.entry(agent.clone()).or_insert(0) += bytes;
        Ok(())
    }

    fn give_back(&self, agent: &Arc<str>, bytes: u64) {
        let mut held = self.lock();
        held.total = held.total.saturating_sub(bytes);
        if let Some(mine) = held.agents.get_mut(agent) {
            *mine = mine.saturating_sub(bytes);
            if *mine == 0 {
                held.agents.remove(agent);
            }
        }
    }
}

/// Bytes one read holds in the budget; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    buffers: Arc<Buffers>,
    agent: Arc<str>,
    bytes: u64,
}

impl Reservation {
    /// Grows the reservation to at least `bytes`; fails, holding what it held, when a budget has
    /// no room.
    pub fn ensure(&mut self, bytes: u64) -> Result<(), OverBudget> {
        if bytes <= self.bytes {
            return Ok(());
        }
        self.buffers.take(&self.agent, bytes - self.bytes)?;
        self.bytes = bytes;
        Ok(())
    }

    /// Grows the reservation by a copy of `decoded` bytes, when there is one (a body that came
    /// encoded is held twice: as it came and decoded; a JSON body once more, parsed).
    pub fn add_decoded(&mut self, decoded: Option<usize>) -> Result<(), OverBudget> {
        let extra = decoded.map_or(0, |d| d as u64);
        self.ensure(self.bytes.saturating_add(extra))
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.buffers.give_back(&self.agent, self.bytes);
        }
    }
}

/// A body that holds a reservation until it has been sent (or dropped): the bytes it carries stay
/// counted while they are in memory.
pub struct Holding<B> {
    inner: B,
    reservation: Option<Reservation>,
}

impl<B> Holding<B> {
    /// `inner`, holding `reservation`.
    pub fn new(inner: B, reservation: Reservation) -> Holding<B> {
        Holding {
            inner,
            reservation: Some(reservation),
        }
    }
}

impl<B> Body for Holding<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = &polled {
            self.reservation = None;
        }
        polled.map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_is_held_to_its_share_and_everyone_to_the_total() {
        let buffers = Buffers::new(BufferLimits {
            total: 100,
            per_agent: 60,
        });
        let mut a = buffers.reserve("a");
        a.ensure(60).unwrap();
        let mut more = buffers.reserve("a");
        assert!(matches!(more.ensure(1), Err(OverBudget::Agent { .. })));
        let mut b = buffers.reserve("b");
        b.ensure(40).unwrap();
        let mut c = buffers.reserve("c");
        assert!(matches!(c.ensure(1), Err(OverBudget::Global { .. })));
        assert_eq!(buffers.held("a"), (100, 60));
        drop(a);
        c.ensure(50).unwrap();
        assert_eq!(buffers.held("a"), (90, 0));
        drop((b, c, more));
        assert_eq!(buffers.held("b"), (0, 0));
    }

    #[test]
    fn a_failed_growth_keeps_what_was_held_and_ensure_never_shrinks() {
        let buffers = Buffers::new(BufferLimits {
            total: 100,
            per_agent: 100,
        });
        let mut a = buffers.reserve("a");
        a.ensure(30).unwrap();
        assert!(a.ensure(101).is_err());
        assert_eq!(a.bytes(), 30);
        a.ensure(10).unwrap();
        assert_eq!(buffers.held("a"), (30, 30));
    }

    #[tokio::test]
    async fn a_holding_body_gives_its_bytes_back_once_sent_or_dropped() {
        use http_body_util::BodyExt;
        let buffers = Buffers::new(BufferLimits {
            total: 100,
            per_agent: 100,
        });
        let mut held = buffers.reserve("a");
        held.ensure(5).unwrap();
        let body = Holding::new(crate::body::full("hello"), held);
        assert_eq!(buffers.held("a"), (5, 5));
        let sent = body.collect().await.unwrap().to_bytes();
        assert_eq!(sent, "hello");
        assert_eq!(buffers.held("a"), (0, 0));
        let mut held = buffers.reserve("a");
        held.ensure(7).unwrap();
        drop(Holding::new(crate::body::full("bye"), held));
        assert_eq!(buffers.held("a"), (0, 0));
    }

    #[test]
    fn refusals_map_to_429_for_the_agent_and_503_for_the_proxy() {
        let agent = ProxyError::from(OverBudget::Agent {
            agent: "a".into(),
            limit: 1,
        });
        assert_eq!(agent.status(), 429);
        assert_eq!(agent.retry_after, Some(RETRY_AFTER_SECONDS));
        let global = ProxyError::from(OverBudget::Global { limit: 1 });
        assert_eq!(global.status(), 503);
        assert!(global.reason.contains("limits.max_buffered_bytes"));
    }
}
