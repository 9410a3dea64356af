//! The one error type a request can end with, and the single mapping from an error to the HTTP
//! status, the reason shown to the agent, and the log line.
//!
//! Every module has its own `thiserror` enum; each converts into a [`ProxyError`] that knows whose
//! side the failure is on, so operators can tell a misbehaving agent from a broken upstream or a
//! bug of ours.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};

use crate::body::{ProxyBody, full};

mod proxy_status;
pub use proxy_status::{Failure, Recorded};

/// Whose fault a failed request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The agent sent something we refuse or cannot parse.
    Agent,
    /// The upstream could not be reached, failed TLS, timed out, or broke the protocol.
    Upstream,
    /// Our own failure; the request is denied (fail closed), never forwarded uninspected.
    Internal,
}

impl Side {
    /// Stable lower-case name used in logs and error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Agent => "agent",
            Side::Upstream => "upstream",
            Side::Internal => "internal",
        }
    }
}

/// What went wrong, at the granularity that decides the HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A held request is still waiting for a person (408: retry to wait again).
    ApprovalPending,
    /// Malformed or unsupported request.
    BadRequest,
    /// The agent did not send its request body in time.
    RequestTimeout,
    /// Missing or wrong proxy credentials.
    ProxyAuthRequired,
    /// Missing or unknown gateway key (the base-URL gateway's 401).
    Unauthorized,
    /// No gateway route for the path.
    NotFound,
    /// Refused by a guard (SSRF, connect rules).
    Forbidden,
    /// Host, `:authority` or SNI disagree with the CONNECT target (domain fronting).
    Misdirected,
    /// Request body larger than the configured limit.
    PayloadTooLarge,
    /// Request head (request line and headers) larger than the configured limit.
    HeadersTooLarge,
    /// A budget has no room for the call, or the agent is paused.
    BudgetExceeded,
    /// A rate limit was reached.
    RateLimited,
    /// The upstream could not be reached or answered with something unusable.
    BadGateway,
    /// The upstream did not answer in time.
    GatewayTimeout,
    /// The proxy is at its connection limit or shutting down.
    Unavailable,
    /// A failure of our own.
    Internal,
}

impl ErrorKind {
    /// The HTTP status this kind maps to.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::ApprovalPending => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::ProxyAuthRequired => StatusCode::PROXY_AUTHENTICATION_REQUIRED,
            ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorKind::BudgetExceeded | ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::BadGateway => StatusCode::BAD_GATEWAY,
            ErrorKind::GatewayTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable machine-readable code, sent in the error body and the `x-gatehouse-error` header.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::ApprovalPending => "approval_pending",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::RequestTimeout => "request_timeout",
            ErrorKind::ProxyAuthRequired => "proxy_auth_required",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Misdirected => "misdirected_request",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::HeadersTooLarge => "headers_too_large",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::BadGateway => "bad_gateway",
            ErrorKind::GatewayTimeout => "gateway_timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal_error",
        }
    }
}

/// How an error body is shaped, so the agent's SDK raises a readable exception: like the provider
/// it called, a JSON-RPC error for MCP, plain JSON otherwise.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Shape {
    /// `{"error": {"code", "side", "message", ...}}`.
    #[default]
    Plain,
    /// OpenAI and compatible APIs: `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// Anthropic: `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
    /// Google Gemini: `{"error": {"code", "message", "status"}}`.
    Gemini,
    /// MCP: a JSON-RPC error answering this request id.
    JsonRpc(serde_json::Value),
}

impl Shape {
    /// The shape for a call recognised as an MCP call answering `jsonrpc_id`, or an LLM call to
    /// `provider`.
    pub fn of_call(jsonrpc_id: Option<&serde_json::Value>, provider: Option<&str>) -> Shape {
        if let Some(id) = jsonrpc_id {
            return Shape::JsonRpc(id.clone());
        }
        match provider {
            Some("anthropic") => Shape::Anthropic,
            Some("gemini") => Shape::Gemini,
            Some(_) => Shape::OpenAi,
            None => Shape::Plain,
        }
    }
}

/// The policy decision behind a refusal, so the agent and the audit trail can name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionRef {
    /// Decision id, also in the request record.
    pub id: String,
    /// The rules that decided (empty for the default deny).
    pub rules: Vec<String>,
}

/// How a request ended, as records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending<'a> {
    /// The HTTP status the agent received (0: none).
    pub status: u16,
    /// `forwarded`, `cut`, `abandoned`, `cancelled`, or the error's code.
    pub outcome: &'static str,
    /// `agent`, `upstream`, `internal`, or empty when nothing failed.
    pub side: &'static str,
    /// Why, in words (empty when nothing failed).
    pub reason: &'a str,
}

impl From<crate::pii::RedactError> for ProxyError {
    /// Obliged redactions that cannot be carried out refuse the request (the agent's side).
    fn from(e: crate::pii::RedactError) -> Self {
        ProxyError::new(ErrorKind::Forbidden, Side::Agent, e.to_string())
    }
}

impl From<crate::credentials::BrokerError> for ProxyError {
    /// A key of the agent's own (or none where the placeholder belongs) is the agent's refusal; a
    /// secret the proxy cannot read is ours.
    fn from(e: crate::credentials::BrokerError) -> Self {
        match e {
            crate::credentials::BrokerError::Unavailable { ref host, .. } => {
                tracing::error!(error = %e, "brokered credential unavailable");
                ProxyError::internal(format!(
                    "the credential for {host} is unavailable; the request was not forwarded"
                ))
                .with_failure(Failure::Configuration)
            }
            _ => ProxyError::new(ErrorKind::Forbidden, Side::Agent, e.to_string()),
        }
    }
}

/// A request that ends in an error response. The reason never contains secrets or body content.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} ({} side): {reason}", kind.code(), side.as_str())]
pub struct ProxyError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Whose side it is on.
    pub side: Side,
    /// Human-readable reason, shown to the agent and logged.
    pub reason: String,
    /// Set when a policy decision refused the request (boxed: errors travel in every `Result`).
    pub decision: Option<Box<DecisionRef>>,
    /// Seconds after which a retry can succeed (`Retry-After`).
    pub retry_after: Option<u32>,
    /// The approval a held request waits on (`x-gatehouse-approval`).
    pub approval: Option<String>,
    /// What exactly failed, for the `Proxy-Status` error type (see [`Failure`]).
    pub failure: Option<Failure>,
    /// Where the audit trail holds a refusal no policy decision made, for `Proxy-Status`.
    pub recorded: Option<Recorded>,
}

impl ProxyError {
    /// Builds an error of `kind` on `side`.
    pub fn new(kind: ErrorKind, side: Side, reason: impl Into<String>) -> Self {
        Self {
            kind,
            side,
            reason: reason.into(),
            decision: None,
            retry_after: None,
            approval: None,
            failure: None,
            recorded: None,
        }
    }

    /// The same error, saying exactly what failed (the `Proxy-Status` error type).
    pub fn with_failure(mut self, failure: Failure) -> Self {
        self.failure = Some(failure);
        self
    }

    /// The same error, naming the proxy's own refusal record `id` when it was written.
    pub fn recorded_decision(self, id: Option<String>) -> Self {
        match id {
            Some(id) => self.recorded_as(Recorded::Decision(id)),
            None => self,
        }
    }

    /// The same error, naming where the audit trail holds it, unless a policy decision (which
    /// names itself) or an earlier record already does.
    pub fn recorded_as(mut self, recorded: Recorded) -> Self {
        if self.decision.is_none() && self.recorded.is_none() {
            self.recorded = Some(recorded);
        }
        self
    }

    /// The same error, telling the agent when a retry can succeed (`Retry-After`).
    pub fn with_retry_after(mut self, seconds: Option<u32>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// The same error, naming the approval a held request waits on.
    pub fn with_approval(mut self, id: String) -> Self {
        self.approval = Some(id);
        self
    }

    /// The same error, naming the policy decision behind it.
    pub fn with_decision(mut self, decision: DecisionRef) -> Self {
        self.decision = Some(Box::new(decision));
        self
    }

    /// A malformed request: 400 on the agent's side.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest, Side::Agent, reason)
    }

    /// The refusal of a request head hyper would not read: 431 over the header limit, 400 for
    /// a head that does not parse; `None` for a connection that ended otherwise (a reset, a
    /// timeout), which refused no request.
    pub fn of_rejected_head(err: &hyper::Error) -> Option<Self> {
        if err.is_parse_too_large() {
            Some(Self::new(
                ErrorKind::HeadersTooLarge,
                Side::Agent,
                "request head larger than limits.max_header_bytes",
            ))
        } else if err.is_parse() {
            Some(Self::bad_request("malformed request head"))
        } else {
            None
        }
    }

    /// A failure of ours; the request is denied.
    pub fn internal(reason: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, Side::Internal, reason)
    }

    fn body(&self, shape: &Shape) -> serde_json::Value {
        use serde_json::json;
        let (decision, rules) = match &self.decision {
            Some(d) => (json!(d.id), json!(d.rules)),
            None => (serde_json::Value::Null, json!([])),
        };
        // SDKs often show only the message: it names the decision too, so whoever reads the
        // exception can find the audit record.
        let message = match &self.decision {
            Some(d) => format!("{} (decision {})", self.reason, d.id),
            None => self.reason.clone(),
        };
        match shape {
            Shape::Plain => {
                let mut error = json!({"code": self.kind.code(), "side": self.side.as_str(), "message": message});
                if self.decision.is_some() {
                    error["decision"] = decision;
                    error["rules"] = rules;
                }
                json!({ "error": error })
            }
            Shape::OpenAi => json!({"error": {
                "message": message, "type": "gatehouse_policy", "param": null,
                "code": self.kind.code(), "decision": decision, "rules": rules,
            }}),
            Shape::Anthropic => json!({"type": "error", "error": {
                "type": match self.kind {
                    ErrorKind::Forbidden => "permission_error",
                    ErrorKind::Unauthorized => "authentication_error",
                    ErrorKind::NotFound => "not_found_error",
                    _ => "api_error",
                },
                "message": message, "decision": decision, "rules": rules,
            }}),
            Shape::Gemini => json!({"error": {
                "code": self.status().as_u16(),
                "message": message,
                "status": match self.kind {
                    ErrorKind::Forbidden => "PERMISSION_DENIED",
                    ErrorKind::Unauthorized => "UNAUTHENTICATED",
                    ErrorKind::NotFound => "NOT_FOUND",
                    _ => "UNAVAILABLE",
                },
                "details": [{"decision": decision, "rules": rules}],
            }}),
            Shape::JsonRpc(id) => json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32001, "message": message,
                "data": {"code": self.kind.code(), "decision": decision, "rules": rules},
            }}),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// How a request or tunnel that ended in this error is recorded: the same status, outcome
    /// code, side and reason in the log line, the outcome record and the CONNECT record.
    pub fn ending(&self) -> Ending<'_> {
        Ending {
            status: self.status().as_u16(),
            outcome: self.kind.code(),
            side: self.side.as_str(),
            reason: &self.reason,
        }
    }

    /// Whether this is a refusal the proxy made on its own (guard, inspection, malformed
    /// request, wrong credentials, a Host or SNI that does not name the tunnel's target, a head
    /// or body over its limit), which the audit trail records as a deny without a rule — rather
    /// than a policy decision (recorded when it was made) or an upstream failure (not a
    /// decision).
    pub fn is_own_refusal(&self) -> bool {
        self.decision.is_none()
            && self.side == Side::Agent
            && matches!(
                self.kind,
                ErrorKind::Forbidden
                    | ErrorKind::BadRequest
                    | ErrorKind::PayloadTooLarge
                    | ErrorKind::HeadersTooLarge
                    | ErrorKind::ProxyAuthRequired
                    | ErrorKind::Unauthorized
                    | ErrorKind::NotFound
                    | ErrorKind::Misdirected
            )
    }

    /// The RFC 9209 `Proxy-Status` value of this refusal: its registered error type, and in
    /// `details` the reason and the id the audit trail holds it under (the policy decision, the
    /// proxy's own refusal record, or the request's outcome record).
    pub fn proxy_status(&self) -> HeaderValue {
        let error_type = proxy_status::error_type(self.kind, self.failure);
        let id = match (&self.decision, &self.recorded) {
            (Some(decision), _) => Some(("decision", decision.id.as_str())),
            (None, Some(Recorded::Decision(id))) => Some(("decision", id.as_str())),
            (None, Some(Recorded::Request(id))) => Some(("request", id.as_str())),
            (None, None) => None,
        };
        proxy_status::header_value(error_type, &self.reason, id)
    }

    /// The response the agent receives: a small JSON body with the code and reason, plain, and
    /// for 407 the `Proxy-Authenticate` challenge.
    pub fn to_response(&self) -> Response<ProxyBody> {
        self.to_response_shaped(&Shape::Plain)
    }

    /// The response the agent receives, its body shaped like the API it called.
    pub fn to_response_shaped(&self, shape: &Shape) -> Response<ProxyBody> {
        let body = self.body(shape);
        let mut response = Response::new(full(Bytes::from(body.to_string())));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            "x-gatehouse-error",
            HeaderValue::from_static(self.kind.code()),
        );
        headers.insert("proxy-status", self.proxy_status());
        if let Some(decision) = &self.decision
            && let Ok(id) = HeaderValue::from_str(&decision.id)
        {
            headers.insert("x-gatehouse-decision", id);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(id) = self
            .approval
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert("x-gatehouse-approval", id);
        }
        if self.kind == ErrorKind::ProxyAuthRequired {
            headers.insert(
                header::PROXY_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"gatehouse\""),
            );
        }
        if self.kind == ErrorKind::Unauthorized {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gatehouse-gateway\""),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests;
