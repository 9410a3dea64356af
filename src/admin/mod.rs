//! The admin listener: a JSON API under `/api/` for people and tools (approvals, decisions,
//! spend, pauses, policies), `/healthz`, `/readyz`, `/metrics` for Prometheus, and the dashboard
//! at `/`. Everything but the health checks and the dashboard's own files needs the bearer token
//! (compared in constant time); without a token configured the listener only runs on loopback
//! (the config refuses anything else).

mod api;
mod dashboard;
mod events;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::budget::Ledger;
use crate::config::{Config, Secret};
use crate::metrics::Metrics;
use crate::policy::PolicyHandle;
use crate::proxy::Lifecycle;
use crate::reload::PolicyInputs;

/// Largest request body the API reads.
const MAX_BODY: usize = 64 * 1024;

/// What the admin API reads and changes.
pub struct AdminState {
    /// The config the proxy runs with (budgets, approvals, audit paths).
    pub config: Arc<Config>,
    /// The ledger: spend, budgets, pauses; its store keeps the approvals too.
    pub ledger: Arc<Ledger>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The policies in force, for their version and reloads.
    pub policies: Arc<PolicyHandle>,
    /// The policy folder and what a reload needs, when policies come from a folder.
    pub reloadable: Option<(PathBuf, PolicyInputs)>,
    /// The bearer token.
    pub token: Secret,
    /// The audit trail, watched for the event stream's decisions and charges.
    pub audit: Arc<crate::audit::AuditLog>,
}

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address is unavailable.
    #[error("admin API cannot listen on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The socket error.
        source: std::io::Error,
    },
    /// The generated token could not be written.
    #[error("admin API token file {path}: {source}")]
    Token {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Binds `addr`, before the proxy's network guard is built: the guard refuses the bound address
/// as a destination, so no agent can reach the admin API through the proxy.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), AdminError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| AdminError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| AdminError::Bind { addr, source })?;
    Ok((listener, bound))
}

/// What the admin listener lets its clients hold.
#[derive(Debug, Clone, Copy)]
pub struct AdminLimits {
    /// Concurrent connections; more are closed at once.
    pub max_connections: usize,
    /// Time a client has to send a request head.
    pub header_timeout: Duration,
}

/// Serves `state` on `listener` until shutdown starts. Every connection is a task of `lifecycle`:
/// shutdown closes idle ones at once, waits for requests in flight, and cuts them when the grace
/// period ends.
pub fn serve(
    listener: TcpListener,
    state: Arc<AdminState>,
    limits: AdminLimits,
    lifecycle: &Lifecycle,
) {
    if let Ok(bound) = listener.local_addr() {
        tracing::info!(%bound, "admin API and dashboard listening");
    }
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let events = events::Events::start(state.clone(), lifecycle.shutdown.clone());
    let connections = lifecycle.clone();
    let shutdown = lifecycle.shutdown.clone();
    lifecycle.tasks.spawn(async move {
        while let Some((stream, peer)) =
            crate::proxy::next_connection(&listener, &shutdown, "admin").await
        {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::warn!(%peer, limit = limits.max_connections, "admin connection limit reached; closed");
                continue;
            };
            let state = state.clone();
            let events = events.clone();
            let shutdown = shutdown.clone();
            connections.spawn(async move {
                let _permit = permit;
                let streams_end = shutdown.clone();
                let service = service_fn(move |req| {
                    let (state, events) = (state.clone(), events.clone());
                    let streams_end = streams_end.clone();
                    async move { Ok::<_, Infallible>(respond(&state, &events, req, streams_end).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(TokioIo::new(stream), service);
                let mut conn = std::pin::pin!(conn);
                let ended = tokio::select! {
                    ended = conn.as_mut() => ended,
                    () = shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "admin connection ended with an error");
                }
            });
        }
    });
}

/// The event stream (a body that does not end), or any other route.
async fn respond(
    state: &AdminState,
    events: &events::Events,
    req: Request<Incoming>,
    shutdown: tokio_util::sync::CancellationToken,
) -> Response<BoxBody<Bytes, Infallible>> {
    let path = req.uri().path();
    if req.method() == Method::GET && path == "/api/events" {
        let bearer = authorized(&state.token, req.headers());
        return events.stream(bearer, req.uri().query().unwrap_or(""), shutdown);
    }
    if req.method() == Method::POST && path == "/api/events/ticket" {
        if !authorized(&state.token, req.headers()) {
            return unauthorized().map(BodyExt::boxed);
        }
        return match events.ticket() {
            Ok(ticket) => json_response(StatusCode::OK, &ticket),
            Err((status, message)) => error(status, &message),
        }
        .map(BodyExt::boxed);
    }
    route(state, req).await.map(BodyExt::boxed)
}

fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"gatehouse-admin\""),
    );
    response
}

async fn route(state: &AdminState, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let open = match (&parts.method, path.as_str()) {
        (&Method::GET, "/healthz") => Some(text(StatusCode::OK, "ok\n")),
        (&Method::GET, "/readyz") => Some(match state.ledger.store().paused_all().await {
            Ok(_) => text(StatusCode::OK, "ready\n"),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}\n")),
        }),
        (&Method::GET, "/") => Some(dashboard::page()),
        _ => None,
    };
    if let Some(response) = open {
        return response;
    }
    if !authorized(&state.token, &parts.headers) {
        return unauthorized();
    }
    if parts.method == Method::GET && path == "/metrics" {
        let mut response = text(StatusCode::OK, &state.metrics.encode());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response;
    }
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, "request body over 64 KiB"),
    };
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => return error(StatusCode::BAD_REQUEST, &format!("body is not JSON: {e}")),
        }
    };
    let query = parts.uri.query().unwrap_or("");
    match api::handle(state, &parts.method, &path, query, &body).await {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err((status, message)) => error(status, &message),
    }
}

/// Without a configured token, a random one is made at start and written to `admin-token` in the
/// CA's folder (mode 0600): the API is never open to whatever else runs on the machine, an agent
/// included, which could otherwise approve its own held requests.
pub fn generated_token(dir: &std::path::Path) -> Result<Secret, AdminError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join("admin-token");
    let fail = |source: std::io::Error| AdminError::Token {
        path: path.clone(),
        source,
    };
    let token =
        crate::random::random_hex(24).map_err(|_| fail(std::io::Error::other("no randomness")))?;
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    // A file left from before keeps its mode on open: make it private before the token goes in.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(fail)?;
    file.write_all(token.as_bytes()).map_err(fail)?;
    tracing::info!(path = %path.display(), "no admin token configured: generated one for the admin API and dashboard");
    Ok(Secret::new(token))
}

/// Whether `headers` carry the bearer token.
fn authorized(token: &Secret, headers: &http::HeaderMap) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()))
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({"error": message}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_must_match_exactly() {
        let token = Secret::new("s3cret".into());
        let with = |value: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            headers
        };
        assert!(authorized(&token, &with("Bearer s3cret")));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Basic s3cret",
            "bearer s3cret",
            "Bearer ",
        ] {
            assert!(!authorized(&token, &with(wrong)), "{wrong}");
        }
        assert!(!authorized(&token, &http::HeaderMap::new()));
    }

    #[test]
    fn a_generated_token_is_random_and_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let first = generated_token(dir.path()).unwrap();
        let file = dir.path().join("admin-token");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), first.expose());
        assert_eq!(first.expose().len(), 48);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(
            generated_token(dir.path()).unwrap().expose(),
            first.expose()
        );
    }
}
