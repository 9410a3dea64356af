//! Spans of what never becomes a request: a CONNECT the rules or the network guard refused, a
//! refusal the proxy made before the steps (wrong credentials, a head it cannot serve), and a
//! tunnel relayed without interception, when it closes. They start a trace of their own: a
//! CONNECT carries no `traceparent` worth believing (the agent writes it before any TLS).

use std::time::Duration;

use opentelemetry::KeyValue;

use super::{Decided, Exchange, Telemetry};
use crate::audit::Judgement;
use crate::error::ProxyError;
use crate::proxy::target::Target;
use crate::proxy::{ClientInfo, ConnectPlan, Refusal, TunnelEnd};

/// A CONNECT (or a request) the proxy refused: `deny`, the status the agent got, the decision.
fn refused<'a>(
    (agent, method): (&'a str, &'a str),
    target: Option<&Target>,
    err: &'a ProxyError,
    judgement: Option<&'a Judgement>,
) -> Exchange<'a> {
    let ending = err.ending();
    Exchange {
        request: judgement.map_or("", |j| j.id.as_str()),
        agent,
        method,
        scheme: "",
        host: target.map(|t| t.host.as_string()).unwrap_or_default(),
        port: target.map_or(0, |t| t.port),
        status: ending.status,
        outcome: ending.outcome,
        failed: true,
        effect: "deny",
        decisions: judgement
            .map(|j| Decided {
                id: &j.id,
                effect: j.effect.name(),
                rules: &j.rules,
                policy_version: &j.policy_version,
            })
            .into_iter()
            .collect(),
        ..Exchange::default()
    }
}

impl Telemetry {
    /// A CONNECT was judged: a refused one gets its span now (an intercepted one's requests get
    /// theirs, a relayed one gets its own when it closes).
    pub fn connect_decided(
        &self,
        client: &ClientInfo,
        target: &Target,
        plan: &Result<ConnectPlan, ProxyError>,
        judgement: Option<&Judgement>,
    ) {
        let Err(err) = plan else {
            return;
        };
        if self.tracer().is_none() {
            return;
        }
        let who = (client.identity.agent.as_str(), "CONNECT");
        let exchange = refused(who, Some(target), err, judgement);
        self.ended(exchange, Duration::ZERO, Vec::new());
    }

    /// The proxy refused something before the steps saw it.
    pub fn refused(&self, refusal: &Refusal<'_>) {
        if self.tracer().is_none() {
            return;
        }
        let agent = refusal.identity.map_or("", |i| i.agent.as_str());
        let exchange = refused((agent, refusal.method), refusal.target, refusal.error, None);
        self.ended(exchange, Duration::ZERO, Vec::new());
    }

    /// A relayed tunnel closed: its bytes each way and how it ended (`refused` without the why,
    /// which may name what the agent sent).
    pub fn tunnel_closed(&self, client: &ClientInfo, target: &Target, end: &TunnelEnd) {
        if self.tracer().is_none() {
            return;
        }
        let outcome = match end.outcome.split_once(':') {
            Some((head, _)) => head,
            None => end.outcome.as_str(),
        };
        let exchange = Exchange {
            agent: &client.identity.agent,
            method: "CONNECT",
            host: target.host.as_string(),
            port: target.port,
            outcome,
            failed: outcome != "closed" && outcome != "shutdown",
            effect: "allow",
            ..Exchange::default()
        };
        let extra = vec![
            KeyValue::new("gatehouse.tunnel.bytes_up", int(end.bytes_up)),
            KeyValue::new("gatehouse.tunnel.bytes_down", int(end.bytes_down)),
        ];
        self.ended(exchange, Duration::from_millis(end.elapsed_ms), extra);
    }
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
