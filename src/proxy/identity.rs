//! Agent identity from `Proxy-Authorization: Basic`: the user name is `agent` or
//! `agent+execution`, the password is the agent's token.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use base64::Engine;
use http::HeaderValue;
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use super::executions::{ExecutionCounter, ExecutionKey};
use crate::secret::Secret;

/// The agent name reserved for requests admitted without credentials.
pub const ANONYMOUS: &str = "anonymous";

/// Who is calling. Travels with every request of a connection or tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Agent id.
    pub agent: String,
    /// Team, when declared.
    pub team: Option<String>,
    /// Environment, when declared.
    pub env: Option<String>,
    /// Execution id the agent process was started with, when it sent one.
    pub execution: Option<String>,
    /// Labels from config.
    pub labels: BTreeMap<String, String>,
}

/// Why credentials were not accepted. All map to 407.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Proxy-Authorization` and anonymous agents are not admitted.
    #[error("proxy credentials required (Proxy-Authorization: Basic agent:token)")]
    Missing,
    /// The header is not Basic or not decodable.
    #[error("malformed Proxy-Authorization: {0}")]
    Malformed(&'static str),
    /// No such agent.
    #[error("unknown agent `{0}`")]
    UnknownAgent(String),
    /// The token does not match.
    #[error("wrong token for agent `{0}`")]
    WrongToken(String),
    /// The agent's budgets count executions, and this id was not issued by the proxy.
    #[error(
        "execution id not issued by this proxy: agent `{0}` has budgets per execution, so its \
         executions come from `gatehouse exec` (signed), not from the agent"
    )]
    UnsignedExecution(String),
    /// The agent started more new executions this hour than it may.
    #[error(
        "agent `{0}` started more new executions this hour than `identity.max_new_executions_per_hour` allows"
    )]
    TooManyExecutions(String),
}

impl AuthError {
    /// What the agent is told: unknown agents and wrong tokens get the same answer, so the 407
    /// does not reveal which agent ids exist. The log keeps the precise reason.
    pub fn public_message(&self) -> String {
        match self {
            AuthError::UnknownAgent(_) | AuthError::WrongToken(_) => {
                "invalid proxy credentials (unknown agent or wrong token)".to_string()
            }
            other => other.to_string(),
        }
    }
}

struct Registered {
    identity: Identity,
    token_digest: [u8; 32],
}

/// Declared agents, ready to check credentials against.
pub struct Agents {
    allow_anonymous: bool,
    by_id: HashMap<String, Registered>,
    /// Agents whose execution ids must be signed.
    signed: std::collections::BTreeSet<String>,
    key: ExecutionKey,
    counter: ExecutionCounter,
}

impl Agents {
    /// Builds the registry from config; tokens are kept only as SHA-256 digests. Execution ids
    /// are checked against `key`.
    pub fn new(config: &IdentityConfig, key: ExecutionKey) -> Arc<Self> {
        let by_id = config
            .agents
            .iter()
            .map(|agent| {
                let registered = Registered {
                    identity: Identity {
                        agent: agent.id.clone(),
                        team: agent.team.clone(),
                        env: agent.env.clone(),
                        execution: None,
                        labels: agent.labels.clone(),
                    },
                    token_digest: sha256(agent.token.expose().as_bytes()),
                };
                (agent.id.clone(), registered)
            })
            .collect();
        Arc::new(Self {
            allow_anonymous: config.allow_anonymous,
            by_id,
            signed: config.signed_executions.clone(),
            key,
            counter: ExecutionCounter::new(config.max_new_executions_per_hour),
        })
    }

    /// An execution id of `agent` that its budgets count must be one the proxy issued; no agent
    /// starts more new executions an hour than the cap.
    fn check_execution(&self, agent: &str, execution: &Option<String>) -> Result<(), AuthError> {
        let Some(execution) = execution else {
            return Ok(());
        };
        if self.signed.contains(agent) && !self.key.verify(agent, execution) {
            return Err(AuthError::UnsignedExecution(agent.to_string()));
        }
        if !self.counter.admit(agent, execution) {
            return Err(AuthError::TooManyExecutions(agent.to_string()));
        }
        Ok(())
    }

    /// Checks the `Proxy-Authorization` header (if any) and returns the caller's identity.
    pub fn authenticate(&self, header: Option<&HeaderValue>) -> Result<Identity, AuthError> {
        let Some(header) = header else {
            return if self.allow_anonymous {
                Ok(anonymous(None))
            } else {
                Err(AuthError::Missing)
            };
        };
        let (user, token) = decode_basic(header)?;
        let (agent, execution) = match user.split_once('+') {
            Some((agent, execution)) => (agent, Some(validate_execution(execution)?)),
            None => (user.as_str(), None),
        };
        if agent == ANONYMOUS && self.allow_anonymous {
            self.check_execution(agent, &execution)?;
            return Ok(anonymous(execution));
        }
        let registered = self
            .by_id
            .get(agent)
            .ok_or_else(|| AuthError::UnknownAgent(agent.to_string()))?;
        let offered = sha256(token.as_bytes());
        if !bool::from(offered.ct_eq(&registered.token_digest)) {
            return Err(AuthError::WrongToken(agent.to_string()));
        }
        self.check_execution(agent, &execution)?;
        let mut identity = registered.identity.clone();
        identity.execution = execution;
        Ok(identity)
    }

    /// The identity of a declared agent (or `anonymous`, when admitted), for connections whose
    /// agent is known by other means than a token (the transparent listener's socket owner or
    /// source address). No execution id: nothing the agent sent names one.
    pub fn identity_of(&self, agent: &str) -> Option<Identity> {
        match self.by_id.get(agent) {
            Some(registered) => Some(registered.identity.clone()),
            None if agent == ANONYMOUS && self.allow_anonymous => Some(anonymous(None)),
            None => None,
        }
    }
}

fn anonymous(execution: Option<String>) -> Identity {
    Identity {
        agent: ANONYMOUS.to_string(),
        team: None,
        env: None,
        execution,
        labels: BTreeMap::new(),
    }
}

fn decode_basic(header: &HeaderValue) -> Result<(String, String), AuthError> {
    let text = header
        .to_str()
        .map_err(|_| AuthError::Malformed("not ASCII"))?;
    let (scheme, encoded) = text
        .trim()
        .split_once(' ')
        .ok_or(AuthError::Malformed("expected `Basic <base64>`"))?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(AuthError::Malformed("only the Basic scheme is supported"));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| AuthError::Malformed("credentials are not valid base64"))?;
    let decoded = String::from_utf8(decoded)
        .map_err(|_| AuthError::Malformed("credentials are not UTF-8"))?;
    let (user, token) = decoded.split_once(':').ok_or(AuthError::Malformed(
        "credentials lack the `:` between agent and token",
    ))?;
    Ok((user.to_string(), token.to_string()))
}

fn validate_execution(execution: &str) -> Result<String, AuthError> {
    let ok = (1..=128).contains(&execution.len())
        && execution
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(execution.to_string())
    } else {
        Err(AuthError::Malformed(
            "execution id must be 1-128 characters of A-Z a-z 0-9 - _ .",
        ))
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// Agents and how they prove who they are.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Requests without credentials are admitted as the `anonymous` agent.
    pub allow_anonymous: bool,
    /// Declared agents.
    pub agents: Vec<AgentConfig>,
    /// Agents (and `anonymous`) an `execution`-window budget covers: their execution ids must be
    /// signed by the proxy.
    pub signed_executions: std::collections::BTreeSet<String>,
    /// New executions one agent may start per clock hour.
    pub max_new_executions_per_hour: usize,
}

/// One declared agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Agent id, the user name in `Proxy-Authorization`.
    pub id: String,
    /// Team the agent belongs to.
    pub team: Option<String>,
    /// Environment (`prod`, `staging`, ...).
    pub env: Option<String>,
    /// Free-form labels, available to rules.
    pub labels: BTreeMap<String, String>,
    /// The agent's token, read from an environment variable or file.
    pub token: Secret,
    /// Where this agent's traffic may go, as a region.
    pub residency: Option<crate::geo::Residency>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::{AgentConfig, Secret};

    fn basic(user_pass: &str) -> HeaderValue {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn agents(allow_anonymous: bool) -> Arc<Agents> {
        let dir = tempfile::tempdir().unwrap();
        let key = ExecutionKey::load_or_create(dir.path()).unwrap();
        Agents::new(
            &IdentityConfig {
                allow_anonymous,
                signed_executions: Default::default(),
                max_new_executions_per_hour: 100,
                agents: vec![AgentConfig {
                    id: "bot".into(),
                    team: Some("research".into()),
                    env: Some("prod".into()),
                    labels: BTreeMap::new(),
                    residency: None,
                    token: Secret::new("t0ken".into()),
                }],
            },
            key,
        )
    }

    #[test]
    fn authentication_table() {
        let strict = agents(false);
        let open = agents(true);
        type Expected = Result<(&'static str, Option<&'static str>), AuthError>;
        let cases: Vec<(&Arc<Agents>, Option<HeaderValue>, Expected)> = vec![
            (&strict, Some(basic("bot:t0ken")), Ok(("bot", None))),
            (
                &strict,
                Some(basic("bot+run-42:t0ken")),
                Ok(("bot", Some("run-42"))),
            ),
            (
                &strict,
                Some(basic("bot:wrong")),
                Err(AuthError::WrongToken("bot".into())),
            ),
            (
                &strict,
                Some(basic("ghost:t0ken")),
                Err(AuthError::UnknownAgent("ghost".into())),
            ),
            (&strict, None, Err(AuthError::Missing)),
            (
                &strict,
                Some(basic("anonymous:")),
                Err(AuthError::UnknownAgent("anonymous".into())),
            ),
            (&open, None, Ok(("anonymous", None))),
            (
                &open,
                Some(basic("anonymous+e1:")),
                Ok(("anonymous", Some("e1"))),
            ),
            (
                &open,
                Some(basic("bot:wrong")),
                Err(AuthError::WrongToken("bot".into())),
            ),
            (
                &strict,
                Some(HeaderValue::from_static("Bearer abc")),
                Err(AuthError::Malformed("only the Basic scheme is supported")),
            ),
            (
                &strict,
                Some(HeaderValue::from_static("Basic !!!")),
                Err(AuthError::Malformed("credentials are not valid base64")),
            ),
            (
                &strict,
                Some(basic("bot+bad id:t0ken")),
                Err(AuthError::Malformed(
                    "execution id must be 1-128 characters of A-Z a-z 0-9 - _ .",
                )),
            ),
        ];
        for (registry, header, expected) in cases {
            let got = registry
                .authenticate(header.as_ref())
                .map(|id| (id.agent.clone(), id.execution.clone()));
            let expected = expected.map(|(a, e)| (a.to_string(), e.map(str::to_string)));
            assert_eq!(got, expected, "header {header:?}");
        }
    }

    #[test]
    fn agents_whose_executions_count_need_ids_the_proxy_issued() {
        let dir = tempfile::tempdir().unwrap();
        let key = ExecutionKey::load_or_create(dir.path()).unwrap();
        let issued = key.issue("bot").unwrap();
        let for_other = key.issue("other").unwrap();
        let config = IdentityConfig {
            allow_anonymous: false,
            signed_executions: ["bot".to_string()].into(),
            max_new_executions_per_hour: 2,
            agents: vec![AgentConfig {
                id: "bot".into(),
                team: None,
                env: None,
                labels: BTreeMap::new(),
                residency: None,
                token: Secret::new("t0ken".into()),
            }],
        };
        let registry = Agents::new(&config, key);
        let auth = |user: &str| registry.authenticate(Some(&basic(&format!("{user}:t0ken"))));
        assert_eq!(
            auth(&format!("bot+{issued}")).unwrap().execution,
            Some(issued.clone())
        );
        assert_eq!(
            auth("bot").unwrap().execution,
            None,
            "no execution: the shared key"
        );
        for forged in ["bot+exec-1", &format!("bot+{for_other}"), "bot+run-42"] {
            assert_eq!(
                auth(forged),
                Err(AuthError::UnsignedExecution("bot".into())),
                "{forged}"
            );
        }
        assert!(
            auth(&format!("bot+{issued}")).is_ok(),
            "refused ids are not counted as started"
        );
    }

    #[test]
    fn identity_carries_team_and_env() {
        let id = agents(false)
            .authenticate(Some(&basic("bot:t0ken")))
            .unwrap();
        assert_eq!(id.team.as_deref(), Some("research"));
        assert_eq!(id.env.as_deref(), Some("prod"));
    }
}
