//! The base-URL gateway: a listener agents reach by setting their SDK's base URL
//! (`OPENAI_BASE_URL=http://127.0.0.1:8090/openai/v1`) instead of a proxy variable. A path prefix
//! names the upstream (`/openai` → `https://api.openai.com`); a per-agent gateway key in the
//! slot the SDK sends its API key in names the agent. The gateway turns such a request into the
//! absolute-form request to the route's upstream the forward proxy already serves and hands it to
//! the same [`Handler`](crate::proxy::Handler) (the pipeline): connect rules, network guard,
//! inspection, redaction, policy, budgets, holds and audit are the forward proxy's, not a copy.
//!
//! What an agent could try and what it gets:
//! - a path that leaves its route (`..`, `.`, `//`, percent-encoded `/`, `\` or `.`): 400, judged
//!   by the forward proxy's own [`canonical_path`](crate::proxy::target::canonical_path);
//! - an absolute-form or authority-form request target (`GET https://evil/...`): 400;
//! - a `Host` header naming another server (also what a DNS-rebinding page sends): 421;
//! - no key, or one no agent holds: 401, in the audit trail; no anonymous fallback unless
//!   `gateway.allow_anonymous`;
//! - a provider key (anything but its gateway key) in a key slot: 403, never forwarded;
//! - its gateway key is never forwarded: the slots that held it carry the brokered credential's
//!   placeholder (which the broker then replaces with the real key) or are dropped.

mod keys;
mod routes;
mod server;

pub use keys::{GatewayKey, GatewayKeys, Presented};
pub use routes::{Route, RouteTable, Upstream, check_azure_resource, check_prefix};
pub use server::{GatewayServer, TlsName};

use std::net::SocketAddr;

/// The validated `gateway:` section.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the gateway listens (plain HTTP: loopback only, unless `tls_name` is set).
    pub listen: SocketAddr,
    /// Serve TLS with a leaf for this name minted from Gatehouse's CA.
    pub tls_name: Option<crate::proxy::target::Host>,
    /// The agents' gateway keys.
    pub keys: std::sync::Arc<GatewayKeys>,
    /// Requests without any key are the `anonymous` agent's (otherwise 401).
    pub allow_anonymous: bool,
    /// The routes: built-in and configured.
    pub routes: std::sync::Arc<RouteTable>,
}

/// Why the gateway refused a request before the pipeline saw it. None holds a key's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// The request target is not a path (`GET https://host/...`, `CONNECT host:443`, `*`).
    #[error(
        "this is the base-URL gateway: send origin-form requests to a route (`POST \
         /openai/v1/chat/completions`), not absolute-form or CONNECT"
    )]
    NotOriginForm,
    /// The `Host` header names a server other than the gateway.
    #[error("the Host header names another server than this gateway: the route picks the upstream")]
    ForeignHost,
    /// The path is not in canonical form (it could leave its route upstream).
    #[error("the request path is not in canonical form: {0}")]
    Path(&'static str),
    /// No route matches the path.
    #[error("no gateway route for this path; routes: {0}")]
    NoRoute(String),
    /// No key in any key slot, and anonymous requests are not admitted.
    #[error(
        "a gateway key is required (Authorization: Bearer, x-api-key, x-goog-api-key or api-key)"
    )]
    MissingKey,
    /// A key no agent holds.
    #[error("unknown gateway key")]
    UnknownKey,
    /// A request without a key from a web page (anonymous requests are the agents' own).
    #[error("a browser request without a gateway key: web pages may not call through the gateway")]
    BrowserOrigin,
    /// The agent's gateway key in one slot, something else in another.
    #[error(
        "{0} holds something other than the agent's gateway key: a provider key never goes \
         through the gateway; the proxy puts the real key on"
    )]
    ForeignKey(String),
}

impl From<GatewayError> for crate::error::ProxyError {
    /// Every refusal of the gateway is the agent's side; a missing or unknown key is a 401.
    fn from(e: GatewayError) -> Self {
        use crate::error::{ErrorKind, ProxyError, Side};
        let kind = match e {
            GatewayError::NotOriginForm | GatewayError::Path(_) => ErrorKind::BadRequest,
            GatewayError::ForeignHost => ErrorKind::Misdirected,
            GatewayError::NoRoute(_) => ErrorKind::NotFound,
            GatewayError::MissingKey | GatewayError::UnknownKey => ErrorKind::Unauthorized,
            GatewayError::ForeignKey(_) | GatewayError::BrowserOrigin => ErrorKind::Forbidden,
        };
        ProxyError::new(kind, Side::Agent, e.to_string())
    }
}
