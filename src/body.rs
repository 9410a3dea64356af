//! The one body type requests and responses carry through every listener and step, and a body
//! rewritten as it streams by a stateful [`Rewrite`] (pseudonyms restored, the usage chunk the
//! proxy asked for taken out): data goes out as soon as the rewrite releases it, what it still
//! holds goes out at the end, before the trailers.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};

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

/// A rewrite of a body's data that may hold some back until more arrives.
pub trait Rewrite: Unpin {
    /// What may go out now, given `data` (possibly nothing).
    fn push(&mut self, data: &[u8]) -> Bytes;
    /// Whatever is still held, at the end of the body.
    fn finish(&mut self) -> Bytes;
}

/// `inner` with its data rewritten by `R`; trailers pass through after the rewrite's rest.
pub struct RewrittenBody<R> {
    inner: ProxyBody,
    rewrite: R,
    trailers: Option<Frame<Bytes>>,
    finished: bool,
}

impl<R: Rewrite> RewrittenBody<R> {
    /// Rewrites `inner` with `rewrite`.
    pub fn new(inner: ProxyBody, rewrite: R) -> Self {
        Self {
            inner,
            rewrite,
            trailers: None,
            finished: false,
        }
    }
}

impl<R: Rewrite> Body for RewrittenBody<R> {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if let Some(trailers) = this.trailers.take() {
                return Poll::Ready(Some(Ok(trailers)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.rewrite.push(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                    Err(trailers) => {
                        // Trailers end the body: what is held goes out first, then they do.
                        this.finished = true;
                        let rest = this.rewrite.finish();
                        if rest.is_empty() {
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        this.trailers = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(rest))));
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.finished = true;
                    let rest = this.rewrite.finish();
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(rest))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
