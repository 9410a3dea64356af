//! The response body of a pseudonymized request: placeholders become the original values again
//! on the way back, frame by frame, holding back only what could still complete one. A stream of
//! events is restored on the text of its events, where tokens split placeholders.

use std::pin::Pin;
use std::task::{Context, Poll};

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http::header::CONTENT_ENCODING;
use http_body::{Body, Frame};

use crate::pii::{EventRestorer, Restorer};
use crate::proxy::body::{BodyError, ProxyBody, boxed};

/// How an answer is restored: as bytes, or event by event.
enum Restoring {
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

/// The response of a pseudonymized request with the originals put back. A response still
/// encoded (the upstream ignored the dropped `Accept-Encoding`) passes unchanged: the agent then
/// sees placeholders, never anything it did not send.
pub fn restored(
    response: Response<ProxyBody>,
    names: Arc<HashMap<String, String>>,
) -> Response<ProxyBody> {
    if response.headers().contains_key(CONTENT_ENCODING) {
        tracing::warn!(
            "pseudonymized request answered with an encoded body; placeholders are not restored"
        );
        return response;
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let json = content_type.contains("json") || content_type.contains("event-stream");
    let restorer = if content_type.contains("event-stream") {
        Restoring::Events(crate::pii::EventRestorer::new(
            crate::pii::Restorer::new(names.clone(), false),
            crate::pii::Restorer::new(names, true),
        ))
    } else {
        Restoring::Bytes(crate::pii::Restorer::new(names, json))
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, boxed(RestoredBody::new(body, restorer)))
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
    fn new(inner: ProxyBody, restorer: Restoring) -> Self {
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
