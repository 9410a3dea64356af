//! Answers as they stream to the agent: watched to the end by the request's record ([`Watched`]),
//! and rewritten by a stateful [`Rewrite`] — pseudonyms put back (frame by frame, holding back
//! only what could still complete a placeholder; an event stream is restored on the text of its
//! events, where tokens split placeholders) and the usage chunk the proxy asked for taken out.
//! Data goes out as soon as the rewrite releases it, what it still holds goes out at the end,
//! before the trailers.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http_body::{Body, Frame, SizeHint};

use crate::body::{BodyError, ProxyBody, boxed};
use crate::credentials::Scrub;
use crate::inspect::UsageChunkFilter;
use crate::pii::{EventRestorer, Restorer};

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

/// `inner` without the usage-only chunk the proxy asked for.
pub fn without_usage_chunk(inner: ProxyBody) -> RewrittenBody<UsageChunkFilter> {
    RewrittenBody::new(inner, UsageChunkFilter::default())
}

impl Rewrite for UsageChunkFilter {
    fn push(&mut self, data: &[u8]) -> Bytes {
        UsageChunkFilter::push(self, data)
    }

    fn finish(&mut self) -> Bytes {
        UsageChunkFilter::finish(self)
    }
}

/// The response of a pseudonymized request with the originals put back. A response still encoded
/// (the upstream ignored the dropped `Accept-Encoding`) passes unchanged: the agent then sees
/// placeholders, never anything it did not send.
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
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let json = content_type.contains("json") || content_type.contains("event-stream");
    let restorer = if content_type.contains("event-stream") {
        Restoring::Events(EventRestorer::new(
            Restorer::new(names.clone(), false),
            Restorer::new(names, true),
        ))
    } else {
        Restoring::Bytes(Restorer::new(names, json))
    };
    let (mut parts, body) = response.into_parts();
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, boxed(RewrittenBody::new(body, restorer)))
}

/// The answer of a request that carried a brokered credential, with the secret scrubbed from its
/// headers and body. It was asked for unencoded; one that came encoded anyway cannot be searched
/// and is refused (the agent must never receive the key).
pub fn scrubbed(response: Response<ProxyBody>, scrub: Scrub) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    for value in parts.headers.values_mut() {
        if let Some(clean) = scrub.header(value.as_bytes())
            && let Ok(clean) = http::HeaderValue::from_bytes(&clean)
        {
            *value = clean;
        }
    }
    let encoded = parts
        .headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if encoded {
        tracing::warn!("a brokered request was answered with an encoded body; it is not passed on");
        return crate::error::ProxyError::new(
            crate::error::ErrorKind::BadGateway,
            crate::error::Side::Upstream,
            "the upstream answered a brokered request with an encoded body the proxy cannot \
             search for the credential; it was not passed on",
        )
        .with_failure(crate::error::Failure::ResponseContentCoding)
        .to_response();
    }
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(parts, boxed(RewrittenBody::new(body, scrub)))
}

impl Rewrite for Scrub {
    fn push(&mut self, data: &[u8]) -> Bytes {
        Scrub::push(self, data)
    }

    fn finish(&mut self) -> Bytes {
        Scrub::finish(self)
    }
}

/// How an answer is restored: as bytes, or event by event.
enum Restoring {
    /// A JSON or text answer.
    Bytes(Restorer),
    /// Server-sent events.
    Events(EventRestorer),
}

impl Rewrite for Restoring {
    fn push(&mut self, data: &[u8]) -> Bytes {
        Bytes::from(match self {
            Restoring::Bytes(r) => r.push(data),
            Restoring::Events(r) => r.push(data),
        })
    }

    fn finish(&mut self) -> Bytes {
        Bytes::from(match self {
            Restoring::Bytes(r) => r.finish(),
            Restoring::Events(r) => r.finish(),
        })
    }
}

/// What watches an answer pass: the request's record, which is written once the last byte went
/// out, the stream broke, or the agent hung up — exactly once, when the watcher drops.
pub trait Watcher: Send + 'static {
    /// `data` passed towards the agent.
    fn passed(&mut self, data: &[u8]);
    /// The body ended like this.
    fn ended(&mut self, end: BodyEnd);
}

/// How a response body ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// Not (yet) finished: if the record is written like this, the agent went away mid-stream.
    Unfinished,
    /// Every byte reached the agent's side.
    Complete,
    /// The stream broke (upstream reset, idle or total timeout).
    Failed(String),
}

/// A response body that owns its watcher. The end is reported before the last frame goes out:
/// when the inner body says it ended, or its exact length has passed.
pub struct Watched<W> {
    inner: ProxyBody,
    watcher: W,
    /// Bytes still to come, when the length is known.
    remaining: Option<u64>,
}

impl<W: Watcher> Watched<W> {
    /// Moves `watcher` into the body; an already finished body is reported as complete.
    pub fn new(inner: ProxyBody, mut watcher: W) -> Self {
        if inner.is_end_stream() {
            watcher.ended(BodyEnd::Complete);
        }
        let remaining = inner.size_hint().exact();
        Self {
            inner,
            watcher,
            remaining,
        }
    }
}

impl<W: Watcher + Unpin> Body for Watched<W> {
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
                    this.watcher.passed(data);
                    if let Some(remaining) = &mut this.remaining {
                        *remaining = remaining.saturating_sub(data.len() as u64);
                    }
                }
                if this.inner.is_end_stream() || this.remaining == Some(0) {
                    this.watcher.ended(BodyEnd::Complete);
                }
            }
            Poll::Ready(Some(Err(e))) => this.watcher.ended(BodyEnd::Failed(e.to_string())),
            Poll::Ready(None) => this.watcher.ended(BodyEnd::Complete),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::full;
    use http_body::Frame;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_added_usage_chunk_is_taken_out_in_any_framing() {
        let stream = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/usage/openai_chat_stream.sse"
        ))
        .unwrap();
        let expected: String = String::from_utf8_lossy(&stream)
            .split("\n\n")
            .filter(|e| !e.contains("\"choices\":[],\"usage\""))
            .collect::<Vec<_>>()
            .join("\n\n");
        for size in [1, 5, 64, stream.len()] {
            let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = stream
                .chunks(size)
                .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
                .collect();
            let inner = boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
                frames,
            )));
            let out = without_usage_chunk(inner)
                .collect()
                .await
                .unwrap()
                .to_bytes();
            assert_eq!(String::from_utf8_lossy(&out), expected, "frames of {size}");
        }
        let untouched = without_usage_chunk(full("data: {\"choices\":[{}]}\n\n"))
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&untouched[..], b"data: {\"choices\":[{}]}\n\n");
    }
}
