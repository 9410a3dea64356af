//! Per-request context: what the pipeline learns about one request as it moves through the steps,
//! for the record written when it ends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Request;
use tokio::time::Instant;

use crate::audit::{ApprovalRecord, Judgement};
use crate::budget::Reserved;
use crate::error::{ProxyError, Shape};
use crate::proxy::ClientInfo;
use crate::proxy::resolve::Pinned;
use crate::proxy::target::Target;

/// One request's facts, gathered step by step.
#[derive(Debug)]
pub struct RequestCtx {
    /// Short random id, in every log line about this request.
    pub id: String,
    /// The connection (and tunnel) it came from, with the agent's identity.
    pub client: Arc<ClientInfo>,
    /// When the proxy received it.
    pub started: Instant,
    /// As the agent sent it.
    pub method: http::Method,
    /// `http` or `https`.
    pub scheme: String,
    /// Destination host and port.
    pub target: Target,
    /// Path without the query (queries may hold secrets and never reach logs).
    pub path: String,
    /// The checked addresses the upstream connection will use, once located.
    pub destination: Option<Pinned>,
    /// The address the answering upstream connection is really connected to.
    pub connected: Option<SocketAddr>,
    /// What the policy decided, trigger by trigger.
    pub judgements: Vec<Judgement>,
    /// How errors are shaped for this request (set once the body is recognised).
    pub shape: Shape,
    /// Personal data found, by kind (counts only).
    pub pii: BTreeMap<String, u64>,
    /// Values redacted before forwarding, by kind (counts only).
    pub redacted: BTreeMap<String, u64>,
    /// What detection found where in the JSON body; redaction scans all when it is `None`.
    pub known: Option<crate::pii::Known>,
    /// The LLM call recognised: provider and model, for metering its answer.
    pub llm: Option<(String, String)>,
    /// Whether the proxy asked for a stream's usage the client did not ask for (the extra chunk is
    /// then taken out of the answer).
    pub usage_asked: bool,
    /// What step 8 reserved, settled when the call ends.
    pub reserved: Reserved,
    /// Whether the request was handed to the upstream client (a call refused, held or abandoned
    /// before that was never sent and costs nothing).
    pub forwarded: bool,
    /// A held request's approval, as it ended for this request.
    pub approval: Option<ApprovalRecord>,
    /// Its OpenTelemetry span (continued from the agent's `traceparent`), ended by the record.
    pub trace: crate::telemetry::RequestTrace,
}

impl RequestCtx {
    /// Gathers the facts a request carries on arrival. Its URI is absolute (the proxy made it so).
    pub fn new<B>(client: Arc<ClientInfo>, req: &Request<B>) -> Result<Self, ProxyError> {
        let uri = req.uri();
        let (scheme, target) = Target::of_uri(uri).map_err(ProxyError::bad_request)?;
        // Refusals on a provider's host are shaped like its errors even before (or without) a
        // recognised call.
        let shape = Shape::of_call(
            None,
            crate::inspect::provider_of_host(&target.host.as_string()),
        );
        Ok(Self {
            id: crate::random::request_id(),
            client,
            started: Instant::now(),
            method: req.method().clone(),
            scheme,
            target,
            path: uri.path().to_string(),
            destination: None,
            connected: None,
            judgements: Vec::new(),
            shape,
            pii: BTreeMap::new(),
            redacted: BTreeMap::new(),
            known: None,
            llm: None,
            usage_asked: false,
            reserved: Reserved::default(),
            forwarded: false,
            approval: None,
            trace: Default::default(),
        })
    }

    /// Who sends the request, as the credential broker tells senders apart.
    pub fn sender(&self) -> crate::credentials::Sender<'_> {
        let identity = &self.client.identity;
        crate::credentials::Sender {
            agent: &identity.agent,
            team: identity.team.as_deref(),
            anonymous: identity.agent == crate::proxy::identity::ANONYMOUS,
        }
    }

    /// Where the request goes, as the credential broker matches it; `host` is the target's.
    pub fn brokered_at<'a>(&'a self, host: &'a str) -> crate::credentials::Destination<'a> {
        crate::credentials::Destination {
            https: self.scheme == "https",
            host,
            port: self.target.port,
            path: &self.path,
        }
    }

    /// `scheme://host:port/path?query` as the request goes upstream.
    pub fn url(&self, query: Option<&str>) -> String {
        match query {
            Some(query) => format!("{}://{}{}?{query}", self.scheme, self.target, self.path),
            None => format!("{}://{}{}", self.scheme, self.target, self.path),
        }
    }
}
