//! The agent-facing listener: accepts connections within the connection limit, speaks HTTP/1.1
//! to the agent, authenticates it, and dispatches CONNECT and absolute-form requests.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Limits;
use super::body::{ProxyBody, empty};
use super::connector::GuardedConnector;
use super::conns::{AgentConnections, ConnectionSlot};
use super::identity::Agents;
use super::identity::Identity;
use super::target::Target;
use super::tls::LeafCache;
use super::{
    ClientInfo, ConnectPlan, ConnectionPermit, Handler, Lifecycle, Refusal, TunnelInfo, intercept,
    relay,
};
use crate::error::{ErrorKind, ProxyError, Recorded, Side};

/// Connections over the limit that are told so (503) at the same time; beyond this they are
/// simply closed, so a flood cannot hold file descriptors through the refusals.
const MAX_PENDING_REFUSALS: usize = 64;

/// The proxy's listener and everything a connection needs.
pub struct ProxyServer<H> {
    pub(super) handler: Arc<H>,
    pub(super) agents: Arc<Agents>,
    pub(super) leaves: Arc<LeafCache>,
    pub(super) connector: GuardedConnector,
    pub(super) limits: Limits,
    pub(super) lifecycle: Lifecycle,
    /// Connection slots, shared by every listener (forward and transparent).
    permits: Arc<Semaphore>,
    /// Each agent's share of them.
    per_agent: Arc<AgentConnections>,
}

/// What a listener's connections speak.
#[derive(Clone)]
enum Listening {
    /// The forward proxy: HTTP/1.1 with CONNECT and absolute-form requests.
    Forward,
    /// Connections nftables/iptables redirected here (see [`super::transparent`]).
    Transparent(Arc<super::transparent::TransparentAgents>),
}

/// The next connection `listener` accepts, or `None` once shutdown starts; a failed accept (out of
/// file descriptors, say) is logged and tried again after 50 ms.
pub async fn next_connection(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    what: &str,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok(pair) => return Some(pair),
            Err(e) => {
                tracing::warn!(error = %e, "{what} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The connection slots of every way in (forward, transparent, the gateway) and each agent's
/// share of them: one budget, so a second listener doubles no agent's share.
pub type Slots = (Arc<Semaphore>, Arc<AgentConnections>);

impl<H: Handler> ProxyServer<H> {
    /// The connection slots this server's listeners take from, for another way in to share.
    pub fn slots(&self) -> Slots {
        (self.permits.clone(), self.per_agent.clone())
    }

    /// Assembles a server; nothing listens until [`ProxyServer::serve`].
    pub fn new(
        handler: Arc<H>,
        agents: Arc<Agents>,
        leaves: Arc<LeafCache>,
        connector: GuardedConnector,
        limits: Limits,
        lifecycle: Lifecycle,
    ) -> Arc<Self> {
        Arc::new(Self {
            handler,
            agents,
            leaves,
            connector,
            permits: Arc::new(Semaphore::new(limits.max_connections)),
            per_agent: AgentConnections::new(limits.max_connections_per_agent),
            limits,
            lifecycle,
        })
    }

    /// Accepts forward-proxy connections until shutdown starts.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        self.accept(listener, Listening::Forward).await;
    }

    /// Accepts redirected connections (the transparent listener) until shutdown starts; their
    /// agents are known by `agents`.
    pub async fn serve_transparent(
        self: Arc<Self>,
        listener: TcpListener,
        agents: Arc<super::transparent::TransparentAgents>,
    ) {
        self.accept(listener, Listening::Transparent(agents)).await;
    }

    async fn accept(self: Arc<Self>, listener: TcpListener, listening: Listening) {
        let permits = self.permits.clone();
        let per_agent = self.per_agent.clone();
        let refusals = Arc::new(Semaphore::new(MAX_PENDING_REFUSALS));
        let shutdown = self.lifecycle.shutdown.clone();
        while let Some((stream, peer)) = next_connection(&listener, &shutdown, "proxy").await {
            match permits.clone().try_acquire_owned() {
                Ok(permit) => {
                    let this = self.clone();
                    let slot =
                        ConnectionPermit(Arc::new(ConnectionSlot::new(permit, per_agent.clone())));
                    let listening = listening.clone();
                    self.lifecycle.spawn(async move {
                        match listening {
                            Listening::Forward => this.serve_client(stream, peer, slot).await,
                            Listening::Transparent(agents) => {
                                this.serve_redirected(stream, peer, slot, agents).await
                            }
                        }
                    });
                }
                Err(_) => {
                    tracing::warn!(%peer, limit = self.limits.max_connections, "connection limit reached; refusing");
                    // A redirected connection may speak TLS: an HTTP answer would be noise.
                    if matches!(listening, Listening::Transparent(_)) {
                        continue;
                    }
                    if let Ok(slot) = refusals.clone().try_acquire_owned() {
                        self.lifecycle.spawn(async move {
                            refuse_overloaded(stream).await;
                            drop(slot);
                        });
                    }
                }
            }
        }
        tracing::info!("listener closed; draining in-flight requests");
    }

    async fn serve_client(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        permit: ConnectionPermit,
    ) {
        let _ = stream.set_nodelay(true);
        let this = self.clone();
        let service = service_fn(move |req| {
            let this = this.clone();
            let permit = permit.clone();
            async move { Ok::<_, Infallible>(this.dispatch(peer, permit, req).await) }
        });
        let conn = self
            .limits
            .http1_server()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        if let Err(e) = drive(conn, &self.lifecycle.shutdown, |c| c.graceful_shutdown()).await {
            self.client_error(peer, None, None, &e);
        }
    }

    /// Logs a refused request once, puts it in the audit trail when the proxy refused it on its
    /// own (see [`ProxyError::is_own_refusal`]), and builds the response.
    pub(super) fn refuse(&self, refusal: Refusal<'_>) -> Response<ProxyBody> {
        let recorded = match refusal.error.is_own_refusal() {
            true => self.handler.refused(&refusal),
            false => None,
        };
        match recorded {
            Some(id) => refuse(
                refusal.peer,
                &refusal.error.clone().recorded_as(Recorded::Decision(id)),
            ),
            None => refuse(refusal.peer, refusal.error),
        }
    }

    /// A connection hyper ended with an error: a head it refused (431 over the header limit,
    /// 400 unparseable) is in the audit trail like any other refusal; the rest is logged.
    pub(super) fn client_error(
        &self,
        peer: SocketAddr,
        identity: Option<&Identity>,
        target: Option<&Target>,
        err: &hyper::Error,
    ) {
        log_client_error(peer, err);
        let Some(error) = ProxyError::of_rejected_head(err) else {
            return;
        };
        let refusal = Refusal {
            peer,
            identity,
            method: "",
            target,
            path: "",
            error: &error,
        };
        self.handler.refused(&refusal);
    }

    async fn dispatch(
        self: Arc<Self>,
        peer: SocketAddr,
        permit: ConnectionPermit,
        req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        if let Err(reason) = super::headers::check_head(req.method(), req.headers()) {
            return closing(self.refuse(Refusal {
                peer,
                identity: None,
                method: req.method().as_str(),
                target: None,
                path: req.uri().path(),
                error: &ProxyError::bad_request(reason),
            }));
        }
        if req.method() != Method::CONNECT
            && (req.uri().scheme().is_none() || req.uri().authority().is_none())
        {
            let err = ProxyError::bad_request(
                "this is a proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port",
            );
            return closing(self.refuse(Refusal {
                peer,
                identity: None,
                method: req.method().as_str(),
                target: None,
                path: req.uri().path(),
                error: &err,
            }));
        }
        let identity = match self
            .agents
            .authenticate(req.headers().get(header::PROXY_AUTHORIZATION))
        {
            Ok(identity) => identity,
            Err(e) => {
                let err = ProxyError::new(
                    ErrorKind::ProxyAuthRequired,
                    Side::Agent,
                    e.public_message(),
                );
                let authority = req
                    .uri()
                    .authority()
                    .map(|a| Target::from_authority(a, None));
                let target = authority.and_then(Result::ok);
                return closing(self.refuse(Refusal {
                    peer,
                    identity: None,
                    method: req.method().as_str(),
                    target: target.as_ref(),
                    path: req.uri().path(),
                    error: &err,
                }));
            }
        };
        // The agent is known: the connection now counts in its share. Refused before it counts
        // (no agent, or past its share), the connection is closed: kept alive, it would hold a
        // slot of the global limit in no agent's share.
        if let Err(err) = permit.0.count(&identity.agent) {
            // Not a refusal `is_own_refusal` names (a 429 inside the steps is the request's
            // outcome record), but this one never reaches the steps: recorded here.
            let recorded = self.handler.refused(&Refusal {
                peer,
                identity: Some(&identity),
                method: req.method().as_str(),
                target: None,
                path: req.uri().path(),
                error: &err,
            });
            let err = match recorded {
                Some(id) => err.recorded_as(Recorded::Decision(id)),
                None => err,
            };
            return closing(refuse(peer, &err));
        }
        if req.method() == Method::CONNECT {
            let client = ClientInfo {
                peer,
                identity,
                tunnel: None,
            };
            return self.connect(client, permit, req).await;
        }
        let client = Arc::new(ClientInfo {
            peer,
            identity,
            tunnel: None,
        });
        let mut req = req;
        req.extensions_mut().insert(permit);
        self.handler.request(client, req).await
    }

    async fn connect(
        self: Arc<Self>,
        mut client: ClientInfo,
        permit: ConnectionPermit,
        mut req: Request<Incoming>,
    ) -> Response<ProxyBody> {
        let peer = client.peer;
        let target = match req.uri().authority() {
            Some(authority) => Target::from_authority(authority, None)
                .map_err(|reason| format!("bad CONNECT target: {reason}")),
            None => Err("CONNECT needs host:port".to_string()),
        };
        let target = match target {
            Ok(target) => target,
            Err(reason) => {
                let err = ProxyError::bad_request(reason);
                return self.refuse(Refusal {
                    peer,
                    identity: Some(&client.identity),
                    method: "CONNECT",
                    target: None,
                    path: "",
                    error: &err,
                });
            }
        };
        let plan = match self.handler.connect(&client, &target).await {
            Ok(plan) => plan,
            // The handler recorded its decision; log nothing twice.
            Err(err) => return err.to_response(),
        };
        let upstream = match &plan {
            ConnectPlan::Intercept => None,
            ConnectPlan::Relay(addrs) => match self.connector.connect_to(&target, addrs).await {
                Ok(stream) => Some(stream),
                Err(e) => return refuse(peer, &ProxyError::from(e)),
            },
        };
        tracing::debug!(%peer, agent = %client.identity.agent, %target, relay = upstream.is_some(), "CONNECT accepted");
        let on_upgrade = hyper::upgrade::on(&mut req);
        client.tunnel = Some(TunnelInfo {
            target: target.clone(),
            tls: false,
        });
        let this = self.clone();
        self.lifecycle.spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => TokioIo::new(upgraded),
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "CONNECT upgrade failed");
                    return;
                }
            };
            match upstream {
                Some(stream) => {
                    let _slot = permit;
                    let limits = &this.limits;
                    let ends = (
                        &this.lifecycle.shutdown,
                        limits.client_header_timeout,
                        limits.tunnel_idle_timeout,
                    );
                    let end = relay::relay_tls(upgraded, stream, &target, ends).await;
                    this.handler.tunnel_closed(&client, &target, &end);
                }
                None => intercept::serve(this, upgraded, client, permit).await,
            }
        });
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::OK;
        response
    }
}

/// Drives a hyper connection; when shutdown starts, calls `graceful` so in-flight requests finish
/// and the connection closes.
pub async fn drive<C, E>(
    conn: C,
    shutdown: &CancellationToken,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    let mut conn = pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        () = shutdown.cancelled() => {
            graceful(conn.as_mut());
            conn.await
        }
    }
}

/// Logs a refused request once, with its reason, and builds the response.
pub(super) fn refuse(peer: SocketAddr, err: &ProxyError) -> Response<ProxyBody> {
    tracing::warn!(%peer, status = err.status().as_u16(), side = err.side.as_str(), reason = %err.reason, "request refused");
    err.to_response()
}

/// `response`, closing the connection it goes out on.
pub(super) fn closing(mut response: Response<ProxyBody>) -> Response<ProxyBody> {
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

/// Logs a connection-level protocol error from the agent's side (malformed request, oversized
/// headers, slow client); hyper has already answered 400/431/408 where it still could.
pub(super) fn log_client_error(peer: SocketAddr, err: &dyn std::error::Error) {
    tracing::info!(%peer, error = %err, "client connection ended with an error");
}

async fn refuse_overloaded(mut stream: TcpStream) {
    let body = r#"{"error":{"code":"unavailable","side":"internal","message":"connection limit reached"}}"#;
    let status = ProxyError::new(
        ErrorKind::Unavailable,
        Side::Internal,
        "connection limit reached",
    )
    .proxy_status();
    let status = String::from_utf8_lossy(status.as_bytes());
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nproxy-status: {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        stream.write_all(response.as_bytes()),
    )
    .await;
    let _ = stream.shutdown().await;
}
