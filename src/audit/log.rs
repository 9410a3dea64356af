//! The log lines of requests and tunnels (target `gatehouse::request`): one per CONNECT decision
//! and one per request, with who, where, how it ended and why, the deciding rules, and personal
//! data as kinds and counts — never bodies, query strings, header values or credentials.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{Judgement, path_shape};
use crate::error::{Ending, ProxyError};
use crate::proxy::target::Target;
use crate::proxy::{ClientInfo, ConnectPlan};

/// One request as its log line tells it.
pub struct RequestLine<'a> {
    /// Request id.
    pub request: &'a str,
    /// Agent id.
    pub agent: &'a str,
    /// Execution id, or empty.
    pub execution: &'a str,
    /// As the agent sent it.
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Where it went.
    pub target: &'a Target,
    /// The path (logged as its shape).
    pub path: &'a str,
    /// The address the upstream connection used (or would have).
    pub destination: Option<SocketAddr>,
    /// How it ended.
    pub ending: &'a Ending<'a>,
    /// Bytes of the answer that reached the agent.
    pub response_bytes: u64,
    /// What the policy decided, trigger by trigger.
    pub judgements: &'a [Judgement],
    /// Personal data found, by kind.
    pub pii: &'a BTreeMap<String, u64>,
    /// Values redacted, by kind.
    pub redacted: &'a BTreeMap<String, u64>,
    /// Milliseconds from arrival to the end.
    pub elapsed_ms: f64,
}

/// Writes the request's log line (`gatehouse::request`).
pub fn log_request(line: &RequestLine<'_>) {
    let destination = line.destination.map(|a| a.to_string()).unwrap_or_default();
    let ending = line.ending;
    // The judgement that settled the request: the refusing one, else the last (http.request).
    let decided = line
        .judgements
        .iter()
        .find(|j| j.effect != crate::policy::Effect::Allow)
        .or(line.judgements.last());
    tracing::info!(
        target: "gatehouse::request",
        request = %line.request,
        agent = %line.agent,
        execution = line.execution,
        method = %line.method,
        scheme = %line.scheme,
        host = %line.target.host,
        port = line.target.port,
        path = %path_shape(line.path),
        destination = %destination,
        status = ending.status,
        response_bytes = line.response_bytes,
        outcome = ending.outcome,
        side = ending.side,
        reason = ending.reason,
        decision = %decided.map_or(String::new(), |j| j.id.clone()),
        effect = decided.map_or("", |j| j.effect.name()),
        rules = %decided.map(|j| j.rules.join(",")).unwrap_or_default(),
        monitored = %line.judgements.iter().flat_map(|j| j.monitored.iter().cloned()).collect::<Vec<_>>().join(","),
        policy_version = decided.map_or("", |j| j.policy_version.as_str()),
        pii = %counts(line.pii),
        redacted = %counts(line.redacted),
        elapsed_ms = format_args!("{:.2}", line.elapsed_ms),
        "request"
    );
}

/// Writes a CONNECT decision (one line per tunnel): intercepted, relayed, or refused and why,
/// with the decision id and the rules that decided.
pub fn connect_decision(
    client: &ClientInfo,
    target: &Target,
    decision: &Result<ConnectPlan, ProxyError>,
    judgement: Option<&Judgement>,
    policy_version: &str,
) {
    let identity = &client.identity;
    let plan = |outcome| Ending {
        status: 200,
        outcome,
        side: "",
        reason: "",
    };
    let Ending {
        status,
        outcome,
        side,
        reason,
    } = match decision {
        Ok(ConnectPlan::Intercept) => plan("intercept"),
        Ok(ConnectPlan::Relay(_)) => plan("relay"),
        Err(err) => err.ending(),
    };
    tracing::info!(
        target: "gatehouse::request",
        peer = %client.peer,
        agent = %identity.agent,
        execution = identity.execution.as_deref().unwrap_or(""),
        method = "CONNECT",
        host = %target.host,
        port = target.port,
        status,
        outcome,
        side,
        reason,
        decision = judgement.map_or("", |j| j.id.as_str()),
        effect = judgement.map_or("", |j| j.effect.name()),
        rules = %judgement.map(|j| j.rules.join(",")).unwrap_or_default(),
        monitored = %judgement.map(|j| j.monitored.join(",")).unwrap_or_default(),
        policy_version,
        "connect"
    );
}

/// Findings per kind as a log field (`email:2,phone:1`): kinds and counts, never values.
fn counts(counts: &std::collections::BTreeMap<String, u64>) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}:{n}"))
        .collect::<Vec<_>>()
        .join(",")
}
