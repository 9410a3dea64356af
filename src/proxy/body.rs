//! Body types shared by every path through the proxy, and the wrappers that bound them in time.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use tokio::time::{Instant, Sleep, sleep_until};

/// Error type of every body the proxy streams.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The one body type requests and responses carry through the proxy: streamed, never buffered.
pub type ProxyBody = UnsyncBoxBody<Bytes, BodyError>;

/// A body holding `bytes` in full (error pages, small answers).
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Converts any body into a [`ProxyBody`].
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BodyError>,
{
    body.map_err(Into::into).boxed_unsync()
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
