//! The response body of a pseudonymized request: placeholders become the original values again
//! on the way back, frame by frame, holding back only what could still complete one. A stream of
//! events is restored on the text of its events, where tokens split placeholders.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame};

use crate::pii::{EventRestorer, Restorer};
use crate::proxy::body::{BodyError, ProxyBody};

/// How an answer is restored: as bytes, or event by event.
pub enum Restoring {
    /// A JSON or text answer.
    Bytes(Restorer),
    /// Server-sent events.
    Events(EventRestorer),
}

impl Restoring {
    fn push(&mut self, data: &[u8]) -> Vec<u8> {
        match self {
            Restoring::Bytes(r) => r.push(data),
            Restoring::Events(r) => r.push(data),
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        match self {
            Restoring::Bytes(r) => r.finish(),
            Restoring::Events(r) => r.finish(),
        }
    }
}

/// A response body with pseudonyms restored.
pub struct RestoredBody {
    inner: ProxyBody,
    restorer: Restoring,
    trailers: Option<Frame<Bytes>>,
    finished: bool,
}

impl RestoredBody {
    /// Restores `inner` with `restorer`.
    pub fn new(inner: ProxyBody, restorer: Restoring) -> Self {
        Self {
            inner,
            restorer,
            trailers: None,
            finished: false,
        }
    }
}

impl Body for RestoredBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        loop {
            if let Some(trailers) = this.trailers.take() {
                this.finished = true;
                return Poll::Ready(Some(Ok(trailers)));
            }
            if this.finished {
                return Poll::Ready(None);
            }
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        let out = this.restorer.push(&data);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                    Err(trailers) => {
                        let rest = this.restorer.finish();
                        if rest.is_empty() {
                            this.finished = true;
                            return Poll::Ready(Some(Ok(trailers)));
                        }
                        this.trailers = Some(trailers);
                        return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                    }
                },
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    this.finished = true;
                    let rest = this.restorer.finish();
                    if rest.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(rest)))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
