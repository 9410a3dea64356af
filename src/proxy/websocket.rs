//! An allowed WebSocket, message by message: the proxy speaks the protocol to both sides (server
//! to the agent, client to the upstream) so that every text message can be judged before it is
//! passed on. The judging is not the proxy's: a [`MessageGate`] the pipeline hands over with the
//! upgrade request decides, and a refused message closes both sides with 1008 (policy violation)
//! and the reason. Compression is never negotiated (the proxy strips `Sec-WebSocket-Extensions`),
//! so every message arrives as the text it is.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_util::sync::CancellationToken;

/// Largest message passed on (and judged whole).
const MAX_MESSAGE: usize = 8 << 20;

/// Judges the messages of one allowed WebSocket.
pub trait MessageGate: Send + 'static {
    /// A text message, from the agent (`to_upstream`) or to it; `Err(reason)` closes the socket.
    fn text(&mut self, to_upstream: bool, text: &str) -> Result<(), String>;
    /// A binary message of `len` bytes that is not UTF-8 (one that is goes to [`Self::text`]);
    /// `Err(reason)` closes the socket.
    fn binary(&mut self, to_upstream: bool, len: usize) -> Result<(), String>;
    /// The socket closed, with what passed.
    fn closed(&mut self, passed: &Passed, refused: Option<&str>);
}

/// What passed through a socket.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Passed {
    /// Messages from the agent.
    pub messages_up: u64,
    /// Messages to the agent.
    pub messages_down: u64,
    /// Payload bytes from the agent.
    pub bytes_up: u64,
    /// Payload bytes to the agent.
    pub bytes_down: u64,
}

/// The gate of an upgrade request, carried in its extensions to the upstream client.
#[derive(Clone)]
pub struct GateSlot(pub Arc<Mutex<Option<Box<dyn MessageGate>>>>);

impl GateSlot {
    /// A slot holding `gate`.
    pub fn new(gate: Box<dyn MessageGate>) -> GateSlot {
        GateSlot(Arc::new(Mutex::new(Some(gate))))
    }

    /// The gate, once.
    pub fn take(&self) -> Option<Box<dyn MessageGate>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Relays messages between `agent` and `upstream` through `gate` until either side closes, a
/// message is refused, nothing passed either way for `idle` (pings included), or `shutdown`
/// fires.
pub async fn relay<A, U>(
    agent: A,
    upstream: U,
    mut gate: Box<dyn MessageGate>,
    target: &str,
    (shutdown, idle): (&CancellationToken, Duration),
) where
    A: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let mut config = WebSocketConfig::default();
    config.max_message_size = Some(MAX_MESSAGE);
    config.max_frame_size = Some(MAX_MESSAGE);
    let mut agent = WebSocketStream::from_raw_socket(agent, Role::Server, Some(config)).await;
    let mut upstream = WebSocketStream::from_raw_socket(upstream, Role::Client, Some(config)).await;
    let mut passed = Passed::default();
    let silence = tokio::time::sleep(idle);
    tokio::pin!(silence);
    let mut silent = false;
    let refused = loop {
        let (message, to_upstream) = tokio::select! {
            m = agent.next() => (m, true),
            m = upstream.next() => (m, false),
            () = shutdown.cancelled() => break None,
            () = &mut silence => {
                silent = true;
                break None;
            }
        };
        silence.as_mut().reset(tokio::time::Instant::now() + idle);
        let message = match message {
            Some(Ok(message)) => message,
            Some(Err(e)) => {
                tracing::debug!(%target, error = %e, "websocket ended with an error");
                break None;
            }
            None => break None,
        };
        let message = match message {
            // Each side answers pings itself; payloads the agent chose go nowhere.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            // A close passes on without its reason text (unjudged words).
            Message::Close(frame) => Message::Close(frame.map(|f| CloseFrame {
                code: f.code,
                reason: "".into(),
            })),
            other => other,
        };
        let verdict = match &message {
            Message::Text(text) => gate.text(to_upstream, text.as_str()),
            Message::Binary(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => gate.text(to_upstream, text),
                Err(_) => gate.binary(to_upstream, bytes.len()),
            },
            _ => Ok(()),
        };
        if let Err(reason) = verdict {
            break Some(reason);
        }
        let len = message.len() as u64;
        let closing = matches!(message, Message::Close(_));
        if matches!(message, Message::Text(_) | Message::Binary(_)) {
            if to_upstream {
                passed.messages_up += 1;
                passed.bytes_up += len;
            } else {
                passed.messages_down += 1;
                passed.bytes_down += len;
            }
        }
        let sent = if to_upstream {
            upstream.send(message).await
        } else {
            agent.send(message).await
        };
        if sent.is_err() || closing {
            break None;
        }
    };
    if silent {
        tracing::debug!(%target, ?idle, "websocket idle both ways; closed");
        let away = || {
            Message::Close(Some(CloseFrame {
                code: CloseCode::Away,
                reason: "idle timeout".into(),
            }))
        };
        let _ = agent.send(away()).await;
        let _ = upstream.send(away()).await;
    }
    if let Some(reason) = &refused {
        let frame = |reason: &str| {
            // A close reason is at most 123 bytes.
            let mut cut = reason.len().min(123);
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            Message::Close(Some(CloseFrame {
                code: CloseCode::Policy,
                reason: reason[..cut].to_string().into(),
            }))
        };
        let _ = agent.send(frame(reason)).await;
        let _ = upstream.send(frame("closed by the proxy's policy")).await;
    }
    gate.closed(&passed, refused.as_deref());
}
