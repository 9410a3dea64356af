//! Steps 2 and 7 seen from the pipeline: turn what is known about a request into policy facts,
//! ask the policy for a verdict, and turn a refusing verdict into the agent's answer.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use http::HeaderMap;

use crate::error::{DecisionRef, ProxyError};
use crate::policy::{
    AgentFacts, DestinationFacts, Effect, Facts, PolicySet, RequestFacts, Trigger, Verdict,
};
use crate::proxy::ClientInfo;
use crate::proxy::guard::non_global_category;
use crate::proxy::target::Target;

/// The request line as the policy sees it.
pub struct Line<'a> {
    /// Method (`CONNECT` for tunnels).
    pub method: &'a str,
    /// `http`, `https`, or empty for a CONNECT.
    pub scheme: &'a str,
    /// Destination.
    pub target: &'a Target,
    /// Path without the query.
    pub path: &'a str,
    /// Raw query string.
    pub query: Option<&'a str>,
    /// Request headers (empty for a CONNECT).
    pub headers: Option<&'a HeaderMap>,
}

/// What the policy said about one trigger, for the record.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Decision id.
    pub id: String,
    /// The trigger judged.
    pub trigger: Trigger,
    /// The effect enforced.
    pub effect: Effect,
    /// The deciding rules.
    pub rules: Vec<String>,
    /// Monitor-mode rules that applied.
    pub monitored: Vec<String>,
}

/// Builds the facts of `line` for `trigger`.
pub fn facts(
    trigger: Trigger,
    client: &ClientInfo,
    line: &Line<'_>,
    destination: Option<SocketAddr>,
) -> Facts {
    let identity = &client.identity;
    let headers = line
        .headers
        .map(|headers| {
            let mut joined: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in headers {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                joined
                    .entry(name.as_str().to_string())
                    .and_modify(|v| {
                        v.push_str(", ");
                        v.push_str(&value);
                    })
                    .or_insert(value);
            }
            joined
        })
        .unwrap_or_default();
    let query = line
        .query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    Facts {
        trigger,
        agent: AgentFacts {
            id: identity.agent.clone(),
            team: identity.team.clone(),
            env: identity.env.clone(),
            execution: identity.execution.clone(),
            labels: identity.labels.clone(),
        },
        request: RequestFacts {
            method: line.method.to_string(),
            scheme: line.scheme.to_string(),
            host: line.target.host.as_string(),
            port: line.target.port,
            path: line.path.to_string(),
            query,
            headers,
        },
        destination: DestinationFacts {
            ip: destination.map(|d| d.ip().to_string()).unwrap_or_default(),
            private: destination.is_some_and(|d| non_global_category(d.ip()).is_some()),
        },
        llm: None,
        tool: None,
        data: None,
    }
}

/// Judges `facts` and returns the judgement, or the refusal the agent receives.
pub fn judge(
    policy: &PolicySet,
    facts: &Facts,
    decision_id: String,
) -> (Judgement, Result<(), ProxyError>) {
    let verdict = policy.evaluate(facts);
    let judgement = Judgement {
        id: decision_id,
        trigger: facts.trigger,
        effect: verdict.effect,
        rules: verdict.deciding.clone(),
        monitored: verdict.monitored.iter().map(|(id, _)| id.clone()).collect(),
    };
    let outcome = refusal(&verdict, &judgement);
    (judgement, outcome)
}

fn refusal(verdict: &Verdict, judgement: &Judgement) -> Result<(), ProxyError> {
    let decision = DecisionRef {
        id: judgement.id.clone(),
        rules: judgement.rules.clone(),
    };
    let rules = judgement
        .rules
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let message = verdict
        .message
        .as_deref()
        .map(|m| format!(": {m}"))
        .unwrap_or_default();
    match verdict.effect {
        Effect::Allow => Ok(()),
        Effect::Deny if verdict.is_default_deny() => Err(ProxyError::denied_by_policy(
            format!(
                "denied by default: no rule allows this {} request",
                judgement.trigger
            ),
            decision,
        )),
        Effect::Deny => Err(ProxyError::denied_by_policy(
            format!("denied by rule {rules}{message}"),
            decision,
        )),
        Effect::Hold => Err(ProxyError::denied_by_policy(
            format!(
                "rule {rules} holds this request for human approval{message}; \
                 this proxy has no approval queue, so held requests are refused"
            ),
            decision,
        )),
    }
}
