//! The one body type requests and responses carry through every listener and step.

use bytes::Bytes;
use http_body::Body;
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
