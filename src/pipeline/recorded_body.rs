//! The response body that carries the request's [`Record`] to the end of the stream, so the record
//! is written once the last byte went out, the stream broke, or the agent hung up — exactly once.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::record::{BodyEnd, Record};
use crate::proxy::body::{BodyError, ProxyBody};

/// A response body that owns the request's record.
pub struct RecordedBody {
    inner: ProxyBody,
    record: Record,
}

impl RecordedBody {
    /// Moves `record` into the body; an already finished body is recorded as complete.
    pub fn new(inner: ProxyBody, mut record: Record) -> Self {
        if inner.is_end_stream() {
            record.body_ended(BodyEnd::Complete);
        }
        Self { inner, record }
    }
}

impl Body for RecordedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.record.add_response_bytes(data);
                }
                if this.inner.is_end_stream() {
                    this.record.body_ended(BodyEnd::Complete);
                }
            }
            Poll::Ready(Some(Err(e))) => this.record.body_ended(BodyEnd::Failed(e.to_string())),
            Poll::Ready(None) => this.record.body_ended(BodyEnd::Complete),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
