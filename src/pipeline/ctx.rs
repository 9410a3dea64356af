//! Per-request context: what the pipeline knows about one request as it moves through the steps.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use http::Request;
use tokio::time::Instant;

use super::judge::Judgement;
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
    /// Method.
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
    /// The LLM call recognised: provider and model, for metering its answer.
    pub llm: Option<(String, String)>,
    /// Whether the proxy asked for a stream's usage the client did not ask for (the extra chunk is
    /// then taken out of the answer).
    pub usage_asked: bool,
    /// Money reserved for this call, settled when it ends.
    pub reservation: Option<super::reserve::Reservation>,
    /// Whether the request was handed to the upstream client (a call refused, held or abandoned
    /// before that was never sent and costs nothing).
    pub forwarded: bool,
    /// A held request's approval, as it ended for this request.
    pub approval: Option<crate::audit::ApprovalRecord>,
    /// The call's worst-case cost in nano-USD (what a cut answer without usage is recorded at).
    pub worst_case_nano: Option<i64>,
}

impl RequestCtx {
    /// Gathers the facts a request carries on arrival. Its URI is absolute (the proxy made it so).
    pub fn new<B>(client: Arc<ClientInfo>, req: &Request<B>) -> Result<Self, ProxyError> {
        let uri = req.uri();
        let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
        let default_port = if scheme == "https" { 443 } else { 80 };
        let authority = uri
            .authority()
            .ok_or_else(|| ProxyError::bad_request("request URI has no host"))?;
        let target = Target::from_authority(authority, Some(default_port))
            .map_err(|reason| ProxyError::bad_request(format!("bad request target: {reason}")))?;
        canonical_path(uri.path()).map_err(|reason| {
            ProxyError::bad_request(format!(
                "the request path is not in canonical form: {reason}"
            ))
        })?;
        if scheme != "http" && scheme != "https" {
            return Err(ProxyError::bad_request(format!(
                "unsupported scheme `{scheme}`"
            )));
        }
        Ok(Self {
            id: new_id(),
            client,
            started: Instant::now(),
            method: req.method().clone(),
            scheme,
            target,
            path: uri.path().to_string(),
            destination: None,
            connected: None,
            judgements: Vec::new(),
            shape: Shape::Plain,
            pii: BTreeMap::new(),
            redacted: BTreeMap::new(),
            llm: None,
            usage_asked: false,
            reservation: None,
            worst_case_nano: None,
            forwarded: false,
            approval: None,
        })
    }
}

/// Refuses paths that different servers read differently, so a rule matching `/a/admin/**` cannot
/// be sidestepped by `/a//admin`, `/a/./admin` or `/a/%61dmin`.
pub fn canonical_path(path: &str) -> Result<(), &'static str> {
    if path.contains("//") {
        return Err("empty segment (`//`)");
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("dot segment (`.` or `..`)");
    }
    let bytes = path.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b != b'%' {
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        let decoded = hex
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or("malformed percent-escape")?;
        if decoded.is_ascii_alphanumeric()
            || matches!(decoded, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\')
        {
            return Err("percent-escape of a character that needs none (or of a separator)");
        }
    }
    Ok(())
}

/// A fresh id for a request or a decision: a random per-process prefix and a counter, unique across restarts in practice
/// and cheap (no system call per request).
pub fn new_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        let rng = ring::rand::SystemRandom::new();
        let _ = ring::rand::SecureRandom::fill(&rng, &mut bytes);
        u32::from_be_bytes(bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}{n:08x}")
}

#[cfg(test)]
mod tests {
    use super::canonical_path;

    #[test]
    fn canonical_path_table() {
        let table = [
            ("/v1/chat/completions", true),
            ("/", true),
            ("/files/a%20b", true),
            ("/q/%E2%9C%93", true),
            ("/echo//admin", false),
            ("/echo/./admin", false),
            ("/echo/../admin", false),
            ("/echo/%61dmin", false),
            ("/echo%2Fadmin", false),
            ("/echo/%zz", false),
            ("/echo/%4", false),
        ];
        for (path, ok) in table {
            assert_eq!(canonical_path(path).is_ok(), ok, "{path}");
        }
    }
}
