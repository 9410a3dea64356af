//! Forwarding: a pooled upstream client (h2 when the upstream offers it, else HTTP/1.1) over
//! guard-checked connections, TLS verified against real roots, with connect, response, idle and
//! total timeouts. Bodies stream both ways; WebSocket upgrades are spliced.

use std::error::Error as StdError;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, Version, header};
use hyper::upgrade::OnUpgrade;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::time::Instant;

use super::body::{DeadlineBody, ProxyBody, boxed};
use super::connector::{ConnectError, GuardedConnector};
use super::headers::{is_websocket_upgrade, strip_hop_by_hop, upgrade_is_websocket};
use super::resolve::ResolveError;
use super::tls::{RootsError, client_config};
use super::websocket::GateSlot;
use super::{ConnectionPermit, Lifecycle};
use crate::error::{ErrorKind, Failure, ProxyError, Side};

type PooledClient = Client<HttpsConnector<GuardedConnector>, ProxyBody>;

/// Why forwarding failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The network guard refused the destination.
    #[error(transparent)]
    Refused(ResolveError),
    /// The upstream could not be reached (refused, unroutable, not in time), as the failure says.
    #[error("{0}")]
    Connect(String, Failure),
    /// The upstream's certificate did not verify, or its TLS failed, as the failure says.
    #[error("upstream TLS failed: {0}")]
    Tls(String, Failure),
    /// No answer in time.
    #[error("{0}")]
    Timeout(String),
    /// The agent's request body broke off.
    #[error("request body from the agent failed: {0}")]
    RequestBody(String),
    /// The upstream broke the protocol or closed early.
    #[error("upstream failed: {0}")]
    Protocol(String),
}

impl From<UpstreamError> for ProxyError {
    fn from(err: UpstreamError) -> Self {
        let (kind, side, failure) = match &err {
            UpstreamError::Refused(resolve) => return resolve.clone().into(),
            UpstreamError::Connect(_, Failure::ConnectionTimeout) => (
                ErrorKind::GatewayTimeout,
                Side::Upstream,
                Some(Failure::ConnectionTimeout),
            ),
            UpstreamError::Connect(_, failure) | UpstreamError::Tls(_, failure) => {
                (ErrorKind::BadGateway, Side::Upstream, Some(*failure))
            }
            UpstreamError::Protocol(_) => (
                ErrorKind::BadGateway,
                Side::Upstream,
                Some(Failure::Protocol),
            ),
            UpstreamError::Timeout(_) => (
                ErrorKind::GatewayTimeout,
                Side::Upstream,
                Some(Failure::ResponseTimeout),
            ),
            UpstreamError::RequestBody(_) => (ErrorKind::BadRequest, Side::Agent, None),
        };
        let error = ProxyError::new(kind, side, err.to_string());
        match failure {
            Some(failure) => error.with_failure(failure),
            None => error,
        }
    }
}

/// The address the upstream connection that answered is really connected to, in the response's
/// extensions.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamPeer(pub std::net::SocketAddr);

/// HTTP/2 agents may split `Cookie` into several fields; an HTTP/1.1 upstream must get one
/// (RFC 9113 §8.2.3), and one is equally valid over HTTP/2.
fn join_cookies(headers: &mut http::HeaderMap) {
    let cookies: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if cookies.len() < 2 {
        return;
    }
    let joined = cookies.join("; ");
    if let Ok(value) = http::HeaderValue::from_str(&joined) {
        headers.insert(header::COOKIE, value);
    }
}

/// The pooled upstream client.
pub struct Upstream {
    client: PooledClient,
    /// HTTP/1.1 only, for requests that upgrade (WebSocket) and so need an h1 connection.
    h1_client: PooledClient,
    config: UpstreamConfig,
    lifecycle: Lifecycle,
}

impl Upstream {
    /// Builds the clients.
    pub fn new(
        config: &UpstreamConfig,
        connector: GuardedConnector,
        lifecycle: Lifecycle,
    ) -> Result<Arc<Self>, RootsError> {
        let tls = client_config(&config.extra_ca_files)?;
        let https_any = HttpsConnectorBuilder::new()
            .with_tls_config(tls.clone())
            .https_or_http()
            .enable_all_versions()
            .wrap_connector(connector.clone());
        let https_h1 = HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let build = |https| {
            Client::builder(TokioExecutor::new())
                .timer(TokioTimer::new())
                .pool_timer(TokioTimer::new())
                .pool_idle_timeout(config.pool_idle_timeout)
                .pool_max_idle_per_host(config.pool_max_idle_per_host)
                .build(https)
        };
        Ok(Arc::new(Self {
            client: build(https_any),
            h1_client: build(https_h1),
            config: config.clone(),
            lifecycle,
        }))
    }

    /// Sends `req` (absolute URI) upstream. The response body streams through, bounded by the idle
    /// and total timeouts counted from `started`.
    pub async fn forward(
        &self,
        mut req: Request<ProxyBody>,
        started: Instant,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let permit = req.extensions_mut().remove::<ConnectionPermit>();
        let upgrade = is_websocket_upgrade(req.headers());
        let client_upgrade = if upgrade {
            req.extensions_mut().remove::<OnUpgrade>()
        } else {
            None
        };
        let gate = req
            .extensions_mut()
            .remove::<GateSlot>()
            .and_then(|g| g.take());
        if upgrade && gate.is_none() {
            return Err(UpstreamError::Protocol(
                "a WebSocket upgrade without a judge for its messages is not forwarded".into(),
            ));
        }
        // No compression: every message must arrive as the text it is, to be judged.
        req.headers_mut().remove("sec-websocket-extensions");
        strip_hop_by_hop(req.headers_mut(), upgrade);
        req.headers_mut().remove(header::HOST);
        join_cookies(req.headers_mut());
        *req.version_mut() = Version::HTTP_11;
        let target = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();

        let client = if upgrade {
            &self.h1_client
        } else {
            &self.client
        };
        let timeout = self.config.response_timeout;
        let mut response = match tokio::time::timeout(timeout, client.request(req)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.classify(&e)),
            Err(_) => {
                return Err(UpstreamError::Timeout(format!(
                    "no response from {target} within {}",
                    humantime::format_duration(timeout)
                )));
            }
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(client_upgrade) = client_upgrade else {
                return Err(UpstreamError::Protocol(format!(
                    "{target} switched protocols without being asked to"
                )));
            };
            if !upgrade_is_websocket(response.headers()) {
                return Err(UpstreamError::Protocol(format!(
                    "{target} switched to a protocol other than WebSocket"
                )));
            }
            if response.headers().contains_key("sec-websocket-extensions") {
                return Err(UpstreamError::Protocol(format!(
                    "{target} negotiated a WebSocket extension nobody asked for"
                )));
            }
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let shutdown = self.lifecycle.shutdown.clone();
            let idle = self.config.socket_idle_timeout;
            let gate = gate.ok_or_else(|| UpstreamError::Protocol("no message judge".into()))?;
            self.lifecycle.spawn(async move {
                let _slot = permit;
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((agent, upstream)) => {
                        let (agent, upstream) = (TokioIo::new(agent), TokioIo::new(upstream));
                        let ends = (&shutdown, idle);
                        super::websocket::relay(agent, upstream, gate, &target, ends).await;
                    }
                    Err(e) => tracing::debug!(%target, error = %e, "upgrade did not complete"),
                }
            });
            let (parts, _) = response.into_parts();
            return Ok(Response::from_parts(parts, super::body::empty()));
        }

        strip_hop_by_hop(response.headers_mut(), false);
        let peer = response
            .extensions()
            .get::<HttpInfo>()
            .map(HttpInfo::remote_addr);
        if let Some(peer) = peer {
            response.extensions_mut().insert(UpstreamPeer(peer));
        }
        let (parts, body) = response.into_parts();
        let body = DeadlineBody::new(
            body,
            self.config.idle_timeout,
            self.config.total_timeout,
            started,
        );
        Ok(Response::from_parts(parts, boxed(body)))
    }

    fn classify(&self, err: &hyper_util::client::legacy::Error) -> UpstreamError {
        for e in chain(err) {
            if let Some(connect) = e.downcast_ref::<ConnectError>() {
                return match connect {
                    ConnectError::Resolve(r) => UpstreamError::Refused(r.clone()),
                    other => UpstreamError::Connect(other.to_string(), other.failure()),
                };
            }
            let tls = e
                .downcast_ref::<rustls::Error>()
                .or_else(|| e.downcast_ref::<std::io::Error>().and_then(tls_inside_io));
            if let Some(tls) = tls {
                let failure = match tls {
                    rustls::Error::InvalidCertificate(_) => Failure::TlsCertificate,
                    _ => Failure::TlsProtocol,
                };
                return UpstreamError::Tls(tls.to_string(), failure);
            }
            if let Some(hyper_err) = e.downcast_ref::<hyper::Error>()
                && hyper_err.is_user()
            {
                return UpstreamError::RequestBody(chain_text(hyper_err));
            }
        }
        UpstreamError::Protocol(chain_text(err))
    }
}

fn chain<'a>(
    err: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    let mut next = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current)
    })
}

/// The rustls error wrapped (possibly several times) inside an `io::Error`; `io::Error::source`
/// skips the wrapped error itself, so the chain walk alone would miss it.
fn tls_inside_io(io: &std::io::Error) -> Option<&rustls::Error> {
    let inner = io.get_ref()?;
    if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    inner
        .downcast_ref::<std::io::Error>()
        .and_then(tls_inside_io)
}

fn chain_text(err: &(dyn StdError + 'static)) -> String {
    chain(err)
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Upstream connections.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Time allowed to open the TCP connection.
    pub connect_timeout: Duration,
    /// Time allowed until the upstream's response headers arrive.
    pub response_timeout: Duration,
    /// Longest silence allowed inside a response body.
    pub idle_timeout: Duration,
    /// Longest time a whole exchange may take, body included.
    pub total_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Idle pooled connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// Extra PEM files whose certificates are trusted as upstream roots.
    pub extra_ca_files: Vec<PathBuf>,
    /// An upgraded WebSocket silent both ways this long is closed (`limits.tunnel_idle_timeout`).
    pub socket_idle_timeout: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_cookies_are_joined_into_one_field() {
        let mut headers = http::HeaderMap::new();
        headers.append(header::COOKIE, "a=1".parse().unwrap());
        headers.append(header::COOKIE, "b=2".parse().unwrap());
        join_cookies(&mut headers);
        let all: Vec<_> = headers.get_all(header::COOKIE).iter().collect();
        assert_eq!(all, ["a=1; b=2"]);
    }
}
