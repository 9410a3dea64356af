//! The dashboard: one page with its script and styles built into the binary (no CDN, no
//! internet). It reads and acts through the same JSON API as every other client, with the token
//! the reviewer enters (kept for the browser tab only).

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;

const PAGE: &str = include_str!("dashboard.html");

/// The dashboard page.
pub(super) fn page() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // Nothing from elsewhere: scripts and styles are inline, data comes from this origin.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'",
        ),
    );
    headers.insert(
        "x-content-type-options",
        header::HeaderValue::from_static("nosniff"),
    );
    response
}
