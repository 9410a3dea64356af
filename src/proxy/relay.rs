//! Byte relays: tunnels without interception (WebSockets are relayed message by message, see
//! `websocket`). A relay ends
//! when either side closes, or at once when shutdown starts: relays are not requests, and waiting
//! for them would only make every shutdown run into its grace period.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, copy_bidirectional};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::TunnelEnd;
use super::counted::Counted;
use super::rewind::Rewind;
use super::target::{Host, Target};
use super::tls::read_client_hello;

/// Copies bytes both ways until either side closes, no byte moved either way for `idle`, or
/// `shutdown` fires; returns how it ended (`closed`, `error`, `idle` or `shutdown`) and the bytes
/// (up, down) from the agent's side.
pub async fn splice<A, B>(
    client: A,
    upstream: B,
    what: &str,
    target: &str,
    (shutdown, idle): (&CancellationToken, Duration),
) -> (&'static str, u64, u64)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Arc::new(Activity::new());
    let mut client = Counted::new(Active::new(client, activity.clone()));
    let mut upstream = Active::new(upstream, activity.clone());
    let ended = tokio::select! {
        result = copy_bidirectional(&mut client, &mut upstream) => match result {
            Ok((sent, received)) => {
                tracing::debug!(%target, sent, received, "{what} closed");
                "closed"
            }
            Err(e) => {
                tracing::debug!(%target, error = %e, "{what} ended with an error");
                "error"
            }
        },
        () = activity.silent_for(idle) => {
            tracing::debug!(%target, ?idle, "{what} idle both ways; closed");
            "idle"
        }
        () = shutdown.cancelled() => {
            tracing::debug!(%target, "{what} closed for shutdown");
            "shutdown"
        }
    };
    (ended, client.read, client.written)
}

/// When bytes last moved through a relay, in milliseconds since it began.
struct Activity {
    began: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            began: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.began.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(now, Ordering::Relaxed);
    }

    /// Returns once nothing moved for `idle`.
    async fn silent_for(&self, idle: Duration) {
        loop {
            let last = self.began + Duration::from_millis(self.last.load(Ordering::Relaxed));
            if last.elapsed() >= idle {
                return;
            }
            tokio::time::sleep_until(last + idle).await;
        }
    }
}

/// One side of a relay, noting every byte read from it.
struct Active<IO> {
    io: IO,
    activity: Arc<Activity>,
}

impl<IO> Active<IO> {
    fn new(io: IO, activity: Arc<Activity>) -> Active<IO> {
        Active { io, activity }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Active<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Active<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Relays a tunnel without interception, after checking that the agent speaks TLS (its
/// ClientHello within `hello_timeout`) and that its SNI names the CONNECT target (no SNI is
/// accepted only for IP-literal targets). The tunnel closes after `idle` without a byte. Returns
/// how it ended, for the tunnel's outcome record.
pub async fn relay_tls<A, B>(
    mut client: A,
    upstream: B,
    target: &Target,
    (shutdown, hello_timeout, idle): (&CancellationToken, Duration, Duration),
) -> TunnelEnd
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let started = std::time::Instant::now();
    let end = |outcome: String, bytes_up: u64, bytes_down: u64| TunnelEnd {
        bytes_up,
        bytes_down,
        outcome,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let hello = tokio::time::timeout(hello_timeout, read_client_hello(&mut client));
    let (hello, sni) = match hello.await {
        Ok(Ok(read)) => read,
        Ok(Err(e)) => {
            tracing::warn!(%target, reason = %e, "tunnel refused");
            return end(format!("refused: {e}"), 0, 0);
        }
        Err(_) => {
            tracing::info!(%target, "tunnel without a ClientHello within the header timeout; closed");
            return end(
                "refused: no ClientHello within the header timeout".into(),
                0,
                0,
            );
        }
    };
    if let Err(reason) = sni_matches(sni.as_deref(), target) {
        tracing::warn!(%target, %reason, "tunnel refused (domain fronting)");
        return end(format!("refused: {reason}"), hello.len() as u64, 0);
    }
    let client = Rewind::new(hello, client);
    let ends = (shutdown, idle);
    let (ended, up, down) = splice(client, upstream, "tunnel", &target.to_string(), ends).await;
    end(ended.to_string(), up, down)
}

fn sni_matches(sni: Option<&str>, target: &Target) -> Result<(), String> {
    match (sni, &target.host) {
        (None, Host::Ip(_)) => Ok(()),
        (None, Host::Name(_)) => Err(format!(
            "ClientHello without SNI for CONNECT target `{target}`"
        )),
        (Some(sni), host) if Host::parse(sni).as_ref() == Ok(host) => Ok(()),
        (Some(sni), _) => Err(format!(
            "TLS SNI `{sni}` does not match the CONNECT target `{target}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sni_table() {
        let name = Target {
            host: Host::Name("pinned.example.com".into()),
            port: 443,
        };
        let ip = Target {
            host: Host::Ip("192.0.2.1".parse().unwrap()),
            port: 443,
        };
        assert!(sni_matches(Some("PINNED.example.com"), &name).is_ok());
        assert!(sni_matches(Some("evil.example.com"), &name).is_err());
        assert!(sni_matches(None, &name).is_err());
        assert!(sni_matches(None, &ip).is_ok());
        assert!(sni_matches(Some("pinned.example.com"), &ip).is_err());
    }
}
