//! A request on its way upstream: its head as it will be forwarded, its body as inspection left it
//! (read whole and decoded, or not inspected and forwarded as it came), and the buffer budget its
//! bytes hold; and the upstream's answer.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::{HeaderValue, Response};

use super::body::{ProxyBody, ReadBody};
use super::buffers::Reservation;

/// A request on its way upstream: its head, and its body as inspection left it.
pub struct Outgoing {
    /// The head, as it will be forwarded.
    pub parts: http::request::Parts,
    /// The body as inspection left it.
    pub body: RequestBody,
    /// The buffer budget the body's bytes hold until it has gone upstream.
    pub held: Reservation,
}

/// A request's body as inspection left it.
pub enum RequestBody {
    /// Read whole, decoded and recognised; forwarded decoded, as judged.
    Inspected {
        /// The decoded bytes (redacted and rewritten by later steps).
        decoded: Bytes,
        /// It came with a `Content-Encoding`.
        encoded: bool,
        /// The pseudonyms to put back into the answer, once redaction handed some out.
        restore: Option<Arc<HashMap<String, String>>>,
    },
    /// Too large, undecodable or unparseable: judged with `body.inspected == false`, forwarded
    /// exactly as it came when a rule allows it.
    Uninspected(ReadBody),
}

/// The upstream's answer, and whether response rules judge it before the agent sees it.
pub struct Answer {
    pub response: Response<ProxyBody>,
    pub judged: bool,
}

impl Outgoing {
    /// The decoded body, when it was inspected.
    pub fn inspected(&self) -> Option<&Bytes> {
        match &self.body {
            RequestBody::Inspected { decoded, .. } => Some(decoded),
            RequestBody::Uninspected(_) => None,
        }
    }

    /// `None` for an inspected body; for one that was not, whether it was too large to read.
    pub fn uninspected_too_large(&self) -> Option<bool> {
        match &self.body {
            RequestBody::Inspected { .. } => None,
            RequestBody::Uninspected(read) => Some(matches!(read, ReadBody::TooLarge { .. })),
        }
    }

    /// The request's URI as it goes upstream.
    pub fn uri(&self) -> &http::Uri {
        &self.parts.uri
    }

    /// An inspected body rewritten before it is judged by a person and forwarded.
    pub fn replace_body(&mut self, body: Bytes) {
        if let RequestBody::Inspected { decoded, .. } = &mut self.body {
            let length = body.len();
            *decoded = body;
            self.set_length(length);
        }
    }

    /// Declares the body's new length.
    pub fn set_length(&mut self, length: usize) {
        self.parts
            .headers
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
}
