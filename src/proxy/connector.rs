//! The TCP connector under the pooled upstream client. It never resolves names on its own: it
//! asks the [`Resolver`], which returns only guard-checked, pinned addresses, and connects to
//! exactly those.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::resolve::{Pinned, ResolveError, Resolver};
use super::target::Target;
use crate::error::{ErrorKind, Failure, ProxyError, Side};

/// Why an upstream connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URI has no usable host.
    #[error("invalid upstream address: {0}")]
    InvalidTarget(String),
    /// Guard refusal or lookup failure.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// No address accepted the connection in time.
    #[error("connecting to {target} timed out after {timeout:?}")]
    Timeout {
        /// The destination.
        target: String,
        /// The configured connect timeout.
        timeout: Duration,
    },
    /// Every address refused or failed.
    #[error("cannot connect to {target}: {source}")]
    Io {
        /// The destination.
        target: String,
        /// The last socket error.
        source: std::io::Error,
    },
}

impl ConnectError {
    /// What failed, as `Proxy-Status` names it.
    pub fn failure(&self) -> Failure {
        match self {
            ConnectError::InvalidTarget(_) => Failure::DestinationNotFound,
            ConnectError::Resolve(ResolveError::Refused { .. }) => Failure::DestinationProhibited,
            ConnectError::Resolve(ResolveError::Lookup {
                timed_out: true, ..
            }) => Failure::DnsTimeout,
            ConnectError::Resolve(ResolveError::Lookup { .. }) => Failure::DnsError,
            ConnectError::Timeout { .. } => Failure::ConnectionTimeout,
            ConnectError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::ConnectionRefused => Failure::ConnectionRefused,
                std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::NetworkUnreachable => {
                    Failure::DestinationUnroutable
                }
                _ => Failure::DestinationUnavailable,
            },
        }
    }
}

impl From<ConnectError> for ProxyError {
    /// A connection that cannot be opened is the upstream's failure; one the guard refuses, the
    /// agent's.
    fn from(e: ConnectError) -> Self {
        match e {
            ConnectError::Resolve(resolve) => resolve.into(),
            ConnectError::Timeout { .. } => {
                let failure = e.failure();
                ProxyError::new(ErrorKind::GatewayTimeout, Side::Upstream, e.to_string())
                    .with_failure(failure)
            }
            _ => {
                let failure = e.failure();
                ProxyError::new(ErrorKind::BadGateway, Side::Upstream, e.to_string())
                    .with_failure(failure)
            }
        }
    }
}

/// Connects to guard-checked addresses only.
#[derive(Clone)]
pub struct GuardedConnector {
    resolver: Arc<Resolver>,
    timeout: Duration,
}

impl GuardedConnector {
    /// A connector that resolves through `resolver` and gives up after `timeout`.
    pub fn new(resolver: Arc<Resolver>, timeout: Duration) -> Self {
        Self { resolver, timeout }
    }

    /// The checked, pinned addresses of `target` (the pin the steps use, when one is fresh).
    pub async fn resolve(&self, target: &Target) -> Result<Pinned, ResolveError> {
        self.resolver.resolve(target).await
    }

    /// Opens a TCP connection to `target` through the guard.
    pub async fn connect(&self, target: &Target) -> Result<TcpStream, ConnectError> {
        let addrs = self.resolver.resolve(target).await?;
        self.connect_to(target, &addrs).await
    }

    /// Opens a TCP connection to the first of `addrs` (already checked by the guard) that answers.
    /// Each address gets its share of the connect timeout (at least a second), so one black-holed
    /// address (often IPv6) does not use up the whole budget.
    pub async fn connect_to(
        &self,
        target: &Target,
        addrs: &Pinned,
    ) -> Result<TcpStream, ConnectError> {
        let count = u32::try_from(addrs.len().max(1)).unwrap_or(u32::MAX);
        let per_address = (self.timeout / count)
            .max(Duration::from_secs(1))
            .min(self.timeout);
        let mut last = None;
        for addr in addrs.iter() {
            match tokio::time::timeout(per_address, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Ok(Err(e)) => last = Some(e),
                Err(_) => last = Some(std::io::ErrorKind::TimedOut.into()),
            }
        }
        match last {
            Some(e) if e.kind() == std::io::ErrorKind::TimedOut => Err(ConnectError::Timeout {
                target: target.to_string(),
                timeout: self.timeout,
            }),
            last => Err(ConnectError::Io {
                target: target.to_string(),
                source: last.unwrap_or_else(|| std::io::Error::other("no address")),
            }),
        }
    }
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let default_port = match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            };
            let authority = uri
                .authority()
                .ok_or_else(|| ConnectError::InvalidTarget(uri.to_string()))?;
            let target = Target::from_authority(authority, Some(default_port))
                .map_err(ConnectError::InvalidTarget)?;
            this.connect(&target).await.map(TokioIo::new)
        })
    }
}
