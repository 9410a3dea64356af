//! One redirected connection: where the agent dialled, which name it means, who it is; then the
//! CONNECT it would have sent, judged by the handler, and the same interception (or relay) a
//! CONNECT gets. A connection that cannot be judged is closed (TLS: the proxy presents no
//! certificate for it) or answered with the refusal (plain HTTP); the audit trail holds why.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use super::super::identity::Identity;
use super::super::rewind::Rewind;
use super::super::server::{ProxyServer, closing, refuse};
use super::super::target::{Host, Target};
use super::super::{
    ClientInfo, ConnectPlan, ConnectionPermit, Handler, Refusal, TunnelInfo, intercept, relay,
};
use super::{TransparentAgents, original_destination, read_name, socket_owner};
use crate::error::{ErrorKind, ProxyError, Side};

/// A redirected connection's refusal, with what is known of it when it was refused.
struct Refused<'a> {
    identity: Option<&'a Identity>,
    target: Option<&'a Target>,
    error: ProxyError,
}

impl<H: Handler> ProxyServer<H> {
    /// Serves one connection the transparent listener accepted.
    pub(in crate::proxy) async fn serve_redirected(
        self: Arc<Self>,
        mut stream: TcpStream,
        peer: SocketAddr,
        permit: ConnectionPermit,
        agents: Arc<TransparentAgents>,
    ) {
        let _ = stream.set_nodelay(true);
        let dialled = match dialled(&stream) {
            Ok(dialled) => dialled,
            Err(error) => {
                let refused = Refused {
                    identity: None,
                    target: None,
                    error,
                };
                return self.refuse_redirected(peer, refused);
            }
        };
        let timeout = self.limits.client_header_timeout;
        let read = tokio::time::timeout(
            timeout,
            read_name(&mut stream, self.limits.max_header_bytes),
        );
        let named = tokio::select! {
            read = read => read,
            () = self.lifecycle.shutdown.cancelled() => return,
        };
        let named = match named {
            Ok(Ok(named)) => named,
            Ok(Err(e)) => {
                let error = ProxyError::bad_request(format!("redirected connection refused: {e}"));
                return self.refuse_redirected(
                    peer,
                    Refused {
                        identity: None,
                        target: None,
                        error,
                    },
                );
            }
            Err(_) => {
                tracing::info!(%peer, %dialled, "redirected connection sent no name within the header timeout; closed");
                return;
            }
        };
        let io = Rewind::new(named.bytes.clone(), stream);
        let target = match Host::parse(&named.host) {
            Ok(host) => Target {
                host,
                port: dialled.port(),
            },
            Err(reason) => {
                let error =
                    ProxyError::bad_request(format!("redirected connection refused: {reason}"));
                return self
                    .refuse_plain(
                        peer,
                        io,
                        named.tls,
                        Refused {
                            identity: None,
                            target: None,
                            error,
                        },
                    )
                    .await;
            }
        };
        let identity = match self.redirected_identity(peer, dialled, &agents).await {
            Ok(identity) => identity,
            Err(error) => {
                let refused = Refused {
                    identity: None,
                    target: Some(&target),
                    error,
                };
                return self.refuse_plain(peer, io, named.tls, refused).await;
            }
        };
        if let Err(error) = permit.0.count(&identity.agent) {
            let refused = Refused {
                identity: Some(&identity),
                target: Some(&target),
                error,
            };
            return self.refuse_plain(peer, io, named.tls, refused).await;
        }
        let mut client = ClientInfo {
            peer,
            identity,
            tunnel: None,
        };
        // 2. connect rules, exactly as for `CONNECT name:port`; the handler records its decision.
        let plan = match self.handler.connect(&client, &target).await {
            Ok(plan) => plan,
            Err(err) => return answer(io, named.tls, err, timeout).await,
        };
        if let Err(error) = self.dialled_is_named(&target, dialled, &plan).await {
            let refused = Refused {
                identity: Some(&client.identity),
                target: Some(&target),
                error,
            };
            return self.refuse_plain(peer, io, named.tls, refused).await;
        }
        tracing::debug!(%peer, agent = %client.identity.agent, %target, %dialled, "redirected connection accepted");
        client.tunnel = Some(TunnelInfo {
            target: target.clone(),
            tls: false,
        });
        match plan {
            ConnectPlan::Intercept => intercept::serve(self, io, client, permit).await,
            ConnectPlan::Relay(addrs) => {
                let _slot = permit;
                let upstream = match self.connector.connect_to(&target, &addrs).await {
                    Ok(upstream) => upstream,
                    Err(e) => {
                        tracing::warn!(%peer, %target, error = %e, "relay upstream unreachable");
                        return;
                    }
                };
                let limits = &self.limits;
                let ends = (
                    &self.lifecycle.shutdown,
                    limits.client_header_timeout,
                    limits.tunnel_idle_timeout,
                );
                let end = relay::relay_tls(io, upstream, &target, ends).await;
                self.handler.tunnel_closed(&client, &target, &end);
            }
        }
    }

    /// The agent of a redirected connection: the OS user owning its end (looked up in the
    /// proxy's own namespace), else its source address, mapped by `agents`.
    async fn redirected_identity(
        &self,
        peer: SocketAddr,
        dialled: SocketAddr,
        agents: &TransparentAgents,
    ) -> Result<Identity, ProxyError> {
        let owner = tokio::task::spawn_blocking(move || socket_owner(peer, dialled)).await;
        let owner = match owner {
            Ok(Ok(owner)) => owner,
            Ok(Err(e)) => return Err(ProxyError::internal(format!("the socket table: {e}"))),
            Err(e) => return Err(ProxyError::internal(format!("the socket table: {e}"))),
        };
        let own = nix::unistd::geteuid().as_raw();
        let agent = agents
            .agent_for(owner, own, canonical(peer.ip()))
            .map_err(|unknown| {
                ProxyError::new(ErrorKind::Forbidden, Side::Agent, unknown.to_string())
            })?;
        self.agents.identity_of(agent).ok_or_else(|| {
            ProxyError::internal(format!(
                "transparent agent `{agent}` is not a declared agent"
            ))
        })
    }

    /// The name the agent sent must lead where it dialled: the address it connected to must be
    /// one of the checked addresses the proxy itself resolves for the name (the pin every later
    /// step uses). Otherwise a name the rules admit would carry traffic meant for another address
    /// (the agent dials the address it wants, and names one the rules like).
    async fn dialled_is_named(
        &self,
        target: &Target,
        dialled: SocketAddr,
        plan: &ConnectPlan,
    ) -> Result<(), ProxyError> {
        let pinned = match plan {
            ConnectPlan::Relay(pinned) => pinned.clone(),
            ConnectPlan::Intercept => self.connector.resolve(target).await?,
        };
        let ip = canonical(dialled.ip());
        if pinned.iter().any(|addr| canonical(addr.ip()) == ip) {
            return Ok(());
        }
        let resolved: Vec<String> = pinned.iter().map(|a| a.ip().to_string()).collect();
        Err(ProxyError::new(
            ErrorKind::Misdirected,
            Side::Agent,
            format!(
                "`{target}` resolves to {} for the proxy, not to {ip}, the address the agent \
                 dialled: a redirected connection is served only at its name's own addresses",
                resolved.join(", ")
            ),
        ))
    }

    /// Logs and records a refusal of a redirected connection. Every one is in the audit trail,
    /// the agent's connection share and our own failures included: nothing else would show that
    /// a connection the firewall sent here was turned away.
    fn refuse_redirected(&self, peer: SocketAddr, refused: Refused<'_>) {
        self.handler.refused(&Refusal {
            peer,
            identity: refused.identity,
            method: "CONNECT",
            target: refused.target,
            path: "",
            error: &refused.error,
        });
        let _ = refuse(peer, &refused.error);
    }

    /// Records a refusal, then answers it on plain HTTP (TLS connections are closed).
    async fn refuse_plain<IO>(&self, peer: SocketAddr, io: IO, tls: bool, refused: Refused<'_>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let error = refused.error.clone();
        self.refuse_redirected(peer, refused);
        answer(io, tls, error, self.limits.client_header_timeout).await;
    }
}

/// The original destination, which must not be this listener itself (a connection made straight
/// to it was redirected by nothing, and names nowhere).
fn dialled(stream: &TcpStream) -> Result<SocketAddr, ProxyError> {
    let refused = |why: String| {
        ProxyError::new(
            ErrorKind::Forbidden,
            Side::Agent,
            format!(
                "{why}: the transparent listener serves only connections a REDIRECT or DNAT rule \
                 sent (use the forward proxy listener otherwise)"
            ),
        )
    };
    match (original_destination(stream), stream.local_addr()) {
        (Ok(dialled), Ok(local)) if dialled != local => Ok(dialled),
        (Ok(_), _) => Err(refused(
            "connected straight to the transparent listener".into(),
        )),
        (Err(e), _) => Err(refused(format!("no original destination ({e})"))),
    }
}

/// Answers a refused plain-HTTP connection with `err` (one response, then close); a TLS one is
/// closed without a handshake.
async fn answer<IO>(io: IO, tls: bool, err: ProxyError, timeout: std::time::Duration)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if tls {
        return;
    }
    let service = service_fn(move |_req| {
        let response = closing(err.to_response());
        async move { Ok::<_, Infallible>(response) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), service);
    let _ = tokio::time::timeout(timeout, conn).await;
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
