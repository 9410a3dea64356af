//! Byte relays: tunnels without interception (WebSockets are relayed message by message, see
//! `websocket`). A relay ends
//! when either side closes, or at once when shutdown starts: relays are not requests, and waiting
//! for them would only make every shutdown run into its grace period.

use tokio::io::{AsyncRead, AsyncWrite, copy_bidirectional};
use tokio_util::sync::CancellationToken;

use super::TunnelEnd;
use super::counted::Counted;
use super::rewind::Rewind;
use super::target::{Host, Target};
use super::tls::read_client_hello;

/// Copies bytes both ways until either side closes or `shutdown` fires; returns how it ended
/// (`closed`, `error` or `shutdown`) and the bytes (up, down) from the agent's side.
pub async fn splice<A, B>(
    client: A,
    mut upstream: B,
    what: &str,
    target: &str,
    shutdown: &CancellationToken,
) -> (&'static str, u64, u64)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let mut client = Counted::new(client);
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
        () = shutdown.cancelled() => {
            tracing::debug!(%target, "{what} closed for shutdown");
            "shutdown"
        }
    };
    (ended, client.read, client.written)
}

/// Relays a tunnel without interception, after checking that the agent speaks TLS and that its
/// SNI names the CONNECT target (no SNI is accepted only for IP-literal targets). Returns how it
/// ended, for the tunnel's outcome record.
pub async fn relay_tls<A, B>(
    mut client: A,
    upstream: B,
    target: &Target,
    shutdown: &CancellationToken,
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
    let (hello, sni) = match read_client_hello(&mut client).await {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(%target, reason = %e, "tunnel refused");
            return end(format!("refused: {e}"), 0, 0);
        }
    };
    if let Err(reason) = sni_matches(sni.as_deref(), target) {
        tracing::warn!(%target, %reason, "tunnel refused (domain fronting)");
        return end(format!("refused: {reason}"), hello.len() as u64, 0);
    }
    let client = Rewind::new(hello, client);
    let (ended, up, down) = splice(client, upstream, "tunnel", &target.to_string(), shutdown).await;
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
