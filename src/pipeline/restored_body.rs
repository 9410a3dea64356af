//! The response body of a pseudonymized request: placeholders become the original values again
//! on the way back, frame by frame, holding back only what could still complete one. A stream of
//! events is restored on the text of its events, where tokens split placeholders.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http::header::CONTENT_ENCODING;

use super::rewritten_body::{Rewrite, RewrittenBody};
use crate::pii::{EventRestorer, Restorer};
use crate::proxy::body::{ProxyBody, boxed};

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
    Response::from_parts(parts, boxed(RewrittenBody::new(body, restorer)))
}
