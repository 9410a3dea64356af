//! Byte relays: tunnels without interception and upgraded (WebSocket) connections.

use tokio::io::{AsyncRead, AsyncWrite, copy_bidirectional};

/// Copies bytes both ways until either side closes; logs how much went each way.
pub async fn splice<A, B>(mut client: A, mut upstream: B, what: &str, target: &str)
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    match copy_bidirectional(&mut client, &mut upstream).await {
        Ok((sent, received)) => {
            tracing::debug!(%target, sent, received, "{what} closed");
        }
        Err(e) => {
            tracing::debug!(%target, error = %e, "{what} ended with an error");
        }
    }
}
