//! What clients may make the proxy hold: connections, head and body sizes, buffered bytes,
//! timeouts; and the HTTP/1.1 server every agent-facing listener builds from them.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;

/// Limits on what clients may make the proxy hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Concurrent client connections.
    pub max_connections: usize,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Largest request body forwarded.
    pub max_request_body_bytes: u64,
    /// Bytes of bodies read whole (requests inspected, answers judged) held at once, all agents.
    pub max_buffered_bytes: u64,
    /// The same, for one agent.
    pub max_buffered_bytes_per_agent: u64,
    /// Client connections one agent may hold, counted from its first authenticated request.
    pub max_connections_per_agent: usize,
    /// Concurrent streams an HTTP/2 agent may open on one intercepted connection.
    pub max_concurrent_streams: u32,
    /// A relayed tunnel or WebSocket silent both ways this long is closed.
    pub tunnel_idle_timeout: Duration,
    /// Time a client has to send a body the proxy reads whole.
    pub client_body_timeout: Duration,
    /// Time a client has to send a complete request head.
    pub client_header_timeout: Duration,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
}

impl Limits {
    /// An HTTP/1.1 server for an agent's connection: a complete head within
    /// `client_header_timeout`, no larger than `max_header_bytes`.
    pub fn http1_server(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.client_header_timeout)
            .max_buf_size(self.max_header_bytes);
        builder
    }
}
