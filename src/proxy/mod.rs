//! Sockets and protocols only: the listener, CONNECT, interception, raw tunnels, the upstream
//! client and body types. This module knows nothing of policy or personal data; it hands every
//! decision to a [`Handler`] (the pipeline).

pub mod body;
pub mod buffers;
mod connector;
pub mod conns;
mod counted;
pub mod executions;
pub mod guard;
pub mod headers;
pub mod identity;
mod intercept;
mod limits;
pub mod outgoing;
mod relay;
pub mod resolve;
mod rewind;
mod server;
pub mod target;
pub mod tls;
pub mod transparent;
pub mod upstream;
pub mod websocket;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use connector::{ConnectError, GuardedConnector};
pub use limits::Limits;
pub use server::{ProxyServer, Slots, drive, next_connection};

use crate::error::ProxyError;
use body::ProxyBody;
use identity::Identity;
use resolve::Pinned;
use target::Target;

/// Who is on the other end of a client connection, and the tunnel it opened, if any.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    /// The client's socket address.
    pub peer: SocketAddr,
    /// The authenticated agent.
    pub identity: Identity,
    /// Set for requests that arrive inside a CONNECT tunnel.
    pub tunnel: Option<TunnelInfo>,
}

/// The CONNECT tunnel a request arrived in.
#[derive(Debug, Clone)]
pub struct TunnelInfo {
    /// The CONNECT target.
    pub target: Target,
    /// Whether the agent spoke TLS inside the tunnel (intercepted).
    pub tls: bool,
}

/// What to do with an accepted CONNECT.
#[derive(Debug, Clone)]
pub enum ConnectPlan {
    /// Terminate the agent's TLS and hand each inner request to the handler.
    Intercept,
    /// Relay bytes untouched to these checked addresses (pinned-certificate clients).
    Relay(Pinned),
}

/// A refusal the proxy made before a request reached the handler (wrong credentials, a request
/// line or head it cannot serve, a Host or SNI that does not name the tunnel's target, a tunnel
/// that is neither TLS nor HTTP): handed to [`Handler::refused`] so the audit trail holds it.
#[derive(Debug)]
pub struct Refusal<'a> {
    /// The client's socket address.
    pub peer: SocketAddr,
    /// The agent, once authenticated (`None` for a 407, or a head refused before it was read).
    pub identity: Option<&'a Identity>,
    /// The method as sent (empty when the head was never read).
    pub method: &'a str,
    /// The destination, when known.
    pub target: Option<&'a Target>,
    /// The path (recorded as its shape).
    pub path: &'a str,
    /// What the agent is told.
    pub error: &'a ProxyError,
}

impl<'a> Refusal<'a> {
    /// A refusal of `req`, which an authenticated agent sent on `client`'s connection (inside
    /// its tunnel, when there is one).
    pub fn of_request<B>(
        client: &'a ClientInfo,
        req: &'a http::Request<B>,
        error: &'a ProxyError,
    ) -> Refusal<'a> {
        Refusal {
            peer: client.peer,
            identity: Some(&client.identity),
            method: req.method().as_str(),
            target: client.tunnel.as_ref().map(|t| &t.target),
            path: req.uri().path(),
            error,
        }
    }
}

/// How a relayed tunnel (not intercepted) ended, for its outcome record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelEnd {
    /// Bytes from the agent to the upstream.
    pub bytes_up: u64,
    /// Bytes from the upstream to the agent.
    pub bytes_down: u64,
    /// `closed`, `error`, `shutdown`, or `refused: <why>` when the ClientHello was refused.
    pub outcome: String,
    /// Milliseconds from the tunnel's start to its end.
    pub elapsed_ms: u64,
}

/// The seam between sockets and decisions. The pipeline implements it.
pub trait Handler: Send + Sync + 'static {
    /// Records a refusal the proxy made on its own before the handler saw the request; returns
    /// the decision id the record holds (`None` when it could not be written), which the
    /// refusal's `Proxy-Status` names.
    fn refused(&self, refusal: &Refusal<'_>) -> Option<String>;

    /// Records how a relayed tunnel to `target` ended.
    fn tunnel_closed(&self, client: &ClientInfo, target: &Target, end: &TunnelEnd);

    /// Decides on a CONNECT before any TLS work: refuse it, relay it, or intercept it.
    fn connect(
        &self,
        client: &ClientInfo,
        target: &Target,
    ) -> impl Future<Output = Result<ConnectPlan, ProxyError>> + Send;

    /// Handles one HTTP request (absolute-form, or from inside an intercepted tunnel with its URI
    /// already made absolute) and produces the response the agent receives.
    fn request(
        &self,
        client: Arc<ClientInfo>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<ProxyBody>> + Send;
}

/// One slot of the connection limit (and of its agents' shares). Travels in request extensions so
/// that whatever outlives the HTTP exchange (a WebSocket relay) keeps holding the client
/// connection's slot.
#[derive(Debug, Clone)]
pub struct ConnectionPermit(pub Arc<conns::ConnectionSlot>);

/// Shutdown plumbing shared by every task the proxy spawns.
#[derive(Clone, Default)]
pub struct Lifecycle {
    /// Cancelled when shutdown starts: stop accepting, finish in-flight requests.
    pub shutdown: CancellationToken,
    /// Cancelled when the grace period is over: whatever still runs is cut.
    pub abort: CancellationToken,
    /// Every connection and relay task.
    pub tasks: TaskTracker,
}

impl Lifecycle {
    /// Spawns a tracked task that is cut when the grace period ends.
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let abort = self.abort.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = abort.cancelled() => {}
            }
        });
    }
}
