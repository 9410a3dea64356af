//! Requests whose body the proxy cannot inspect: larger than the limit, encoded in a way that does
//! not decode, or JSON and SQL that do not parse. They are judged on what is known (who, where,
//! the request line) with `body.inspected == false`, and go through only when an allowing rule
//! says `allow_uninspected: true`; then the body is forwarded exactly as it came, the part already
//! read followed by the rest of the stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Request, Response};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::{Pipeline, RequestCtx};
use crate::error::{ErrorKind, ProxyError, Side};
use crate::policy::{BodyFacts, Trigger};
use crate::proxy::body::{BodyError, ProxyBody, boxed, full};
use crate::proxy::upstream::UpstreamPeer;

/// A request body as read for inspection.
pub(super) enum ReadBody {
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

/// A body that was not inspected, ready to be forwarded as it came.
pub(super) enum Uninspected {
    /// Read whole (undecodable or unparseable).
    Whole(Bytes),
    /// Too large: the part read, then the rest of the stream.
    Streaming {
        /// The bytes read so far.
        prefix: Bytes,
        /// The rest of the agent's stream.
        rest: Incoming,
    },
}

/// Reads a request body up to `limit` bytes (a declared length above it is not read at all).
pub(super) async fn read_body(
    headers: &http::HeaderMap,
    mut body: Incoming,
    limit: u64,
) -> Result<ReadBody, ProxyError> {
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
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ProxyError::bad_request(format!("request body from the agent failed: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
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

impl Pipeline {
    /// Judges and, if a rule allows it uninspected, forwards a request whose body could not be
    /// inspected for `problem`.
    pub(super) async fn uninspected(
        &self,
        ctx: &mut RequestCtx,
        parts: http::request::Parts,
        body: Uninspected,
        problem: String,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let mut facts = self
            .located_facts(ctx, &parts, Trigger::HttpRequest)
            .await?;
        facts.body = BodyFacts {
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
            inspected: false,
            problem,
            ..BodyFacts::default()
        };
        let (judgement, outcome) = self.judge.decide(&facts, &ctx.id, ctx.id.clone());
        let obliged = !judgement.obligations.is_empty();
        ctx.judgements.push(judgement);
        let too_large = matches!(body, Uninspected::Streaming { .. });
        if let Err(mut err) = outcome {
            if too_large && err.rules_are_empty() {
                err.kind = ErrorKind::PayloadTooLarge;
            }
            return Err(err);
        }
        // Rate limits and pauses hold for uninspected requests too (they cannot be metered: no
        // LLM call was recognised, so no budget is reserved; with no body read whole there is no
        // fingerprint for the loop breaker).
        self.pace(&facts, None)?;
        if obliged {
            return Err(ProxyError::new(
                ErrorKind::Forbidden,
                Side::Agent,
                format!(
                    "the policy requires redacting a body the proxy could not read ({}); the \
                     request was not forwarded",
                    facts.body.problem
                ),
            ));
        }
        let body = match body {
            Uninspected::Whole(bytes) => full(bytes),
            Uninspected::Streaming { prefix, rest } => boxed(Prefixed {
                prefix: Some(prefix).filter(|p| !p.is_empty()),
                rest,
            }),
        };
        let response = self
            .upstream
            .forward(Request::from_parts(parts, body), ctx.started)
            .await?;
        ctx.connected = response
            .extensions()
            .get::<UpstreamPeer>()
            .map(|peer| peer.0);
        Ok(response)
    }
}

/// The bytes already read, then the rest of the agent's stream.
struct Prefixed {
    prefix: Option<Bytes>,
    rest: Incoming,
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
