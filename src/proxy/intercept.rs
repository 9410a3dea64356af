//! Inside an accepted CONNECT: decide whether the agent speaks TLS or plain HTTP, terminate TLS
//! with a leaf for the target, and serve HTTP/1.1 or HTTP/2, handing each request to the handler
//! with an absolute URI. Anything else is refused, never passed through raw.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::BytesMut;
use http::{Request, Response, header};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::body::ProxyBody;
use super::rewind::Rewind;
use super::server::{ProxyServer, drive, log_client_error};
use super::{ClientInfo, ConnectionPermit, Handler, Refusal, tls};
use crate::error::{ErrorKind, ProxyError, Side};

const TLS_HANDSHAKE_RECORD: u8 = 0x16;
const H2_PREFACE_START: &[u8] = b"PRI ";
/// HTTP/2 agents are pinged this often; one that does not answer within the client header
/// timeout is disconnected, so dead peers do not hold connection slots.
const H2_KEEP_ALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves one intercepted tunnel until the agent closes it or shutdown completes.
pub async fn serve<H, IO>(
    server: Arc<ProxyServer<H>>,
    mut io: IO,
    client: ClientInfo,
    permit: ConnectionPermit,
) where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = client.peer;
    let timeout = server.limits.client_header_timeout;
    let mut first = BytesMut::with_capacity(1024);
    let first_read = tokio::select! {
        read = tokio::time::timeout(timeout, io.read_buf(&mut first)) => read,
        () = server.lifecycle.shutdown.cancelled() => return,
    };
    match first_read {
        Ok(Ok(n)) if n > 0 => {}
        Ok(Ok(_)) => return,
        Ok(Err(e)) => return log_client_error(peer, &e),
        Err(_) => {
            tracing::info!(%peer, "tunnel idle before its first byte; closed");
            return;
        }
    }
    let io = Rewind::new(first.clone().freeze(), io);
    let Some(tunnel) = client.tunnel.clone() else {
        return;
    };
    if first[0] == TLS_HANDSHAKE_RECORD {
        let accepted =
            tokio::time::timeout(timeout, tls::accept(io, &tunnel.target, &server.leaves)).await;
        let accepted = match accepted {
            Ok(Ok(accepted)) => accepted,
            Ok(Err(e)) => {
                tracing::warn!(%peer, target = %tunnel.target, reason = %e, "TLS interception refused");
                refuse_tunnel(
                    &server,
                    &client,
                    &ProxyError::bad_request(format!("TLS interception refused: {e}")),
                );
                return;
            }
            Err(_) => {
                tracing::info!(%peer, target = %tunnel.target, "TLS handshake timed out");
                return;
            }
        };
        if let Some(reason) = &accepted.mismatch {
            tracing::warn!(%peer, target = %tunnel.target, %reason, "domain fronting refused");
        }
        let mut client = client;
        if let Some(t) = client.tunnel.as_mut() {
            t.tls = true;
        }
        serve_http(
            server,
            accepted.stream,
            accepted.h2,
            Arc::new(client),
            accepted.mismatch,
            permit,
        )
        .await;
    } else if first[0].is_ascii_uppercase() {
        let h2 = first.starts_with(H2_PREFACE_START);
        serve_http(server, io, h2, Arc::new(client), None, permit).await;
    } else {
        let err = ProxyError::bad_request("bytes inside the tunnel are neither TLS nor HTTP");
        tracing::warn!(%peer, target = %tunnel.target, reason = %err.reason, "tunnel refused");
        refuse_tunnel(&server, &client, &err);
    }
}

/// Records the refusal of the intercepted tunnel `client` opened (its bytes could not be
/// judged): the handler writes it like any other refusal.
fn refuse_tunnel<H: Handler>(server: &ProxyServer<H>, client: &ClientInfo, err: &ProxyError) {
    // Nothing is answered inside a tunnel that speaks neither TLS nor HTTP: the record is all.
    let _ = server.handler.refused(&Refusal {
        peer: client.peer,
        identity: Some(&client.identity),
        method: "CONNECT",
        target: client.tunnel.as_ref().map(|t| &t.target),
        path: "",
        error: err,
    });
}

async fn serve_http<H, IO>(
    server: Arc<ProxyServer<H>>,
    io: IO,
    h2: bool,
    client: Arc<ClientInfo>,
    mismatch: Option<String>,
    permit: ConnectionPermit,
) where
    H: Handler,
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let peer = client.peer;
    let identity = client.identity.clone();
    let target = client.tunnel.as_ref().map(|t| t.target.clone());
    let this = server.clone();
    let mismatch = mismatch.map(Arc::new);
    let service = service_fn(move |req| {
        let this = this.clone();
        let client = client.clone();
        let mismatch = mismatch.clone();
        let mut req = req;
        req.extensions_mut().insert(permit.clone());
        async move { Ok::<_, Infallible>(inner_request(this, client, mismatch, req).await) }
    });
    let shutdown = &server.lifecycle.shutdown;
    let io = TokioIo::new(io);
    let result = if h2 {
        let conn = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(H2_KEEP_ALIVE_INTERVAL))
            .keep_alive_timeout(server.limits.client_header_timeout)
            .max_concurrent_streams(server.limits.max_concurrent_streams)
            .max_header_list_size(u32::try_from(server.limits.max_header_bytes).unwrap_or(u32::MAX))
            .serve_connection(io, service);
        drive(conn, shutdown, |c| c.graceful_shutdown()).await
    } else {
        let conn = server
            .limits
            .http1_server()
            .serve_connection(io, service)
            .with_upgrades();
        drive(conn, shutdown, |c| c.graceful_shutdown()).await
    };
    if let Err(e) = result {
        server.client_error(peer, Some(&identity), target.as_ref(), &e);
    }
}

/// Checks that the request names the tunnel's target, makes its URI absolute, and hands it on.
async fn inner_request<H: Handler>(
    server: Arc<ProxyServer<H>>,
    client: Arc<ClientInfo>,
    mismatch: Option<Arc<String>>,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(tunnel) = client.tunnel.as_ref() else {
        return super::server::refuse(
            client.peer,
            &ProxyError::internal("tunnel request without tunnel"),
        );
    };
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let refuse = |error: &ProxyError| {
        server.refuse(Refusal {
            peer: client.peer,
            identity: Some(&client.identity),
            method: method.as_str(),
            target: Some(&tunnel.target),
            path: &path,
            error,
        })
    };
    if let Some(reason) = mismatch {
        return refuse(&ProxyError::new(
            ErrorKind::Misdirected,
            Side::Agent,
            reason.as_str(),
        ));
    }
    if let Err(reason) = super::headers::check_head(req.method(), req.headers()) {
        return refuse(&ProxyError::bad_request(reason));
    }
    let default_port = if tunnel.tls { 443 } else { 80 };
    let host_header = req
        .headers()
        .get(header::HOST)
        .map(|h| h.to_str().unwrap_or("\u{fffd}"));
    let authority = req.uri().authority().map(|a| a.as_str());
    if host_header.is_none() && authority.is_none() {
        return refuse(&ProxyError::bad_request("request has no Host header"));
    }
    for named in [host_header, authority].into_iter().flatten() {
        if !tunnel.target.same_as(named, default_port) {
            let reason = format!(
                "Host `{named}` does not match the CONNECT target `{}` (domain fronting is refused)",
                tunnel.target
            );
            return refuse(&ProxyError::new(
                ErrorKind::Misdirected,
                Side::Agent,
                reason,
            ));
        }
    }
    if req.method() == http::Method::CONNECT {
        return refuse(&ProxyError::bad_request(
            "CONNECT inside a tunnel is not supported",
        ));
    }
    let scheme = if tunnel.tls { "https" } else { "http" };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let uri = if tunnel.target.port == default_port {
        format!("{scheme}://{}{path}", tunnel.target.host)
    } else {
        format!("{scheme}://{}{path}", tunnel.target)
    };
    match uri.parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(_) => {
            return refuse(&ProxyError::bad_request(
                "request target is not a valid URI",
            ));
        }
    }
    server.handler.request(client, req).await
}
