//! Bodies as the proxy reads and bounds them: the wrapper that bounds a body in time, and the
//! bounded read of a request or response body whole (for inspection and response rules).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use bytes::BytesMut;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep, sleep_until};

pub use super::buffers::{Holding, OverBudget, Reservation};
pub use crate::body::{BodyError, ProxyBody, boxed, empty, full};

/// A request body as read for inspection.
pub enum ReadBody {
    /// All of it, within the limit.
    Whole(Bytes),
    /// More than the limit: what was read, and the rest still to come.
    TooLarge {
        /// The bytes read so far.
        prefix: Bytes,
        /// The rest of the agent's stream.
        rest: Incoming,
    },
}

/// Reads a request body up to `limit` bytes (a declared length above it is not read at all)
/// within `timeout`, every byte held in `held` first: a declared length is reserved before
/// anything is read, so an agent over its buffer budget is refused before it can send the bytes,
/// and one that stalls gives its reservation back when the timeout ends the read (408).
pub async fn read_request_body(
    headers: &http::HeaderMap,
    body: Incoming,
    (limit, timeout): (u64, Duration),
    held: &mut Reservation,
) -> Result<ReadBody, crate::error::ProxyError> {
    use crate::error::{ErrorKind, ProxyError, Side};
    match tokio::time::timeout(timeout, read_bounded(headers, body, limit, held)).await {
        Ok(read) => read,
        Err(_) => Err(ProxyError::new(
            ErrorKind::RequestTimeout,
            Side::Agent,
            format!(
                "the request body did not arrive within {} (limits.client_body_timeout)",
                humantime::format_duration(timeout)
            ),
        )),
    }
}

async fn read_bounded(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limit: u64,
    held: &mut Reservation,
) -> Result<ReadBody, crate::error::ProxyError> {
    let declared = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|d| d > limit) {
        return Ok(ReadBody::TooLarge {
            prefix: Bytes::new(),
            rest: body,
        });
    }
    if let Some(declared) = declared {
        held.ensure(declared)?;
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            crate::error::ProxyError::bad_request(format!(
                "request body from the agent failed: {e}"
            ))
        })?;
        if let Ok(data) = frame.into_data() {
            held.ensure((buffer.len() + data.len()) as u64)?;
            buffer.extend_from_slice(&data);
            if buffer.len() > limit {
                return Ok(ReadBody::TooLarge {
                    prefix: buffer.freeze(),
                    rest: body,
                });
            }
        }
    }
    Ok(ReadBody::Whole(buffer.freeze()))
}

/// Why an answer could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum WholeError {
    /// It broke off or is larger than the limit: it cannot be judged.
    #[error("{0}")]
    Unjudged(String, crate::error::Failure),
    /// The buffer budget has no room for it.
    #[error(transparent)]
    OverBudget(#[from] OverBudget),
}

impl WholeError {
    /// An answer whose content coding or charset cannot be decoded for judging.
    pub fn undecodable(why: impl std::fmt::Display) -> Self {
        let reason = format!("the upstream's answer cannot be decoded: {why}");
        WholeError::Unjudged(reason, crate::error::Failure::ResponseContentCoding)
    }
}

impl From<WholeError> for crate::error::ProxyError {
    /// An answer that cannot be judged is the upstream's failure (502); no room is 429 or 503.
    fn from(e: WholeError) -> Self {
        use crate::error::{ErrorKind, ProxyError, Side};
        match e {
            WholeError::Unjudged(why, failure) => ProxyError::new(
                ErrorKind::BadGateway,
                Side::Upstream,
                format!("{why}; the answer was not passed on unjudged"),
            )
            .with_failure(failure),
            WholeError::OverBudget(over) => over.into(),
        }
    }
}

/// The whole body, refusing one past `limit` bytes; every byte held in `held` first.
pub async fn read_whole(
    mut body: ProxyBody,
    limit: usize,
    held: &mut Reservation,
) -> Result<Bytes, WholeError> {
    let mut buffer = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let why = format!("the upstream's answer broke off: {e}");
            WholeError::Unjudged(why, crate::error::Failure::ResponseIncomplete)
        })?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(WholeError::Unjudged(
                    format!(
                        "the upstream's answer exceeds {limit} bytes, the most response rules judge"
                    ),
                    crate::error::Failure::ResponseBodySize,
                ));
            }
            held.ensure((buffer.len() + data.len()) as u64)?;
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// The bytes already read, then the rest of the agent's stream.
pub struct Prefixed {
    prefix: Option<Bytes>,
    rest: Incoming,
}

impl Prefixed {
    /// `prefix` (skipped when empty), then `rest`.
    pub fn new(prefix: Bytes, rest: Incoming) -> Prefixed {
        Prefixed {
            prefix: Some(prefix).filter(|p| !p.is_empty()),
            rest,
        }
    }
}

impl Body for Prefixed {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        if let Some(prefix) = self.prefix.take() {
            return Poll::Ready(Some(Ok(Frame::data(prefix))));
        }
        Pin::new(&mut self.rest)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as BodyError)
    }
}

/// Why a streamed body was cut short by the proxy.
#[derive(Debug, thiserror::Error)]
pub enum DeadlineError {
    /// No frame arrived within the idle timeout.
    #[error("upstream body idle for more than {0:?}")]
    Idle(Duration),
    /// The exchange ran past its total timeout.
    #[error("exchange exceeded the total timeout of {0:?}")]
    Total(Duration),
}

/// A body that fails when it stays silent for `idle`, or runs past an absolute deadline.
pub struct DeadlineBody<B> {
    inner: B,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    total: Duration,
    total_timer: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    /// Wraps `inner`; `started` is when the exchange began, so `total` counts from there.
    pub fn new(inner: B, idle: Duration, total: Duration, started: Instant) -> Self {
        Self {
            inner,
            idle,
            idle_timer: Box::pin(sleep_until(Instant::now() + idle)),
            total,
            total_timer: Box::pin(sleep_until(started + total)),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.idle;
                this.idle_timer.as_mut().reset(next);
                return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
            }
            Poll::Pending => {}
        }
        if this.total_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(DeadlineError::Total(this.total).into())));
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(DeadlineError::Idle(this.idle).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::StreamBody;

    #[tokio::test(start_paused = true)]
    async fn idle_body_fails_after_the_idle_timeout() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BodyError>>(1);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        let body = DeadlineBody::new(
            StreamBody::new(Box::pin(stream)),
            Duration::from_secs(5),
            Duration::from_secs(60),
            Instant::now(),
        );
        let mut body = std::pin::pin!(body);
        tx.send(Ok(Frame::data(Bytes::from_static(b"a"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "a");
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("idle"), "{err}");
        drop(tx);
    }

    #[tokio::test(start_paused = true)]
    async fn total_deadline_counts_from_the_start_of_the_exchange() {
        let silent = futures_util::stream::pending::<Result<Frame<Bytes>, BodyError>>();
        let body = DeadlineBody::new(
            StreamBody::new(silent),
            Duration::from_secs(30),
            Duration::from_secs(10),
            Instant::now() - Duration::from_secs(9),
        );
        let mut body = std::pin::pin!(body);
        let before = Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("total"), "{err}");
        assert_eq!(Instant::now() - before, Duration::from_secs(1));
    }
}
