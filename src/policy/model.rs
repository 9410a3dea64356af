//! The rule model: what a compiled rule is made of. Built once when policies load.

use std::fmt;

use globset::GlobSet;

use super::condition::Condition;
use super::facts::{AgentFacts, RequestFacts};
use super::host_pattern::HostPatterns;

/// When a rule is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger {
    /// A CONNECT, before any TLS work.
    Connect,
    /// Any HTTP request.
    HttpRequest,
    /// A recognised LLM call.
    LlmRequest,
    /// A recognised tool call (MCP or a REST endpoint named as a tool).
    ToolCall,
    /// A recognised data access (SQL, PostgREST).
    DataAccess,
    LlmResponse,
    /// Any HTTP response.
    HttpResponse,
    /// A text message of a WebSocket a rule allowed (`allow_websocket`), either way.
    WebsocketMessage,
}

impl Trigger {
    /// Every trigger, in the order they are documented.
    pub const ALL: [Trigger; 8] = [
        Trigger::Connect,
        Trigger::HttpRequest,
        Trigger::LlmRequest,
        Trigger::ToolCall,
        Trigger::DataAccess,
        Trigger::LlmResponse,
        Trigger::HttpResponse,
        Trigger::WebsocketMessage,
    ];

    /// The name rules use (`llm.request`).
    pub fn name(self) -> &'static str {
        match self {
            Trigger::Connect => "connect",
            Trigger::HttpRequest => "http.request",
            Trigger::LlmRequest => "llm.request",
            Trigger::ToolCall => "tool.call",
            Trigger::DataAccess => "data.access",
            Trigger::LlmResponse => "llm.response",
            Trigger::HttpResponse => "http.response",
            Trigger::WebsocketMessage => "websocket.message",
        }
    }

    /// The general trigger whose rules also judge this one: LLM, tool and data calls are HTTP
    /// requests too.
    pub fn parent(self) -> Option<Trigger> {
        match self {
            Trigger::LlmRequest | Trigger::ToolCall | Trigger::DataAccess => {
                Some(Trigger::HttpRequest)
            }
            Trigger::LlmResponse => Some(Trigger::HttpResponse),
            _ => None,
        }
    }

    /// Parses a trigger name.
    pub fn parse(name: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a rule does when it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Let the request through.
    Allow,
    /// Hold it until a human decides.
    Hold,
    /// Refuse it.
    Deny,
    /// Never decides: adds the rule's `redact` obligations to a request other rules allow.
    Redact,
}

impl Effect {
    /// The name rules use.
    pub fn name(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Hold => "hold",
            Effect::Deny => "deny",
            Effect::Redact => "redact",
        }
    }
}

/// Whether a rule changes the verdict or only reports what it would have done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The rule takes part in the verdict.
    Enforce,
    /// The rule is only logged.
    Monitor,
}

/// How specific a rule's scope is; a more specific rank outranks a more general one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// No scope: everyone.
    Global,
    /// Scoped to environments.
    Environment,
    /// Scoped to teams.
    Team,
    /// Scoped to agents.
    Agent,
}

/// Who a rule is for. Within a list any entry matches; every list given must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Agent ids.
    pub agents: Vec<String>,
    pub teams: Vec<String>,
    pub environments: Vec<String>,
}

impl Scope {
    /// The most specific dimension the scope names.
    pub fn rank(&self) -> Rank {
        if !self.agents.is_empty() {
            Rank::Agent
        } else if !self.teams.is_empty() {
            Rank::Team
        } else if !self.environments.is_empty() {
            Rank::Environment
        } else {
            Rank::Global
        }
    }

    /// Whether the scope covers `agent`.
    pub fn covers(&self, agent: &AgentFacts) -> bool {
        let fits = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        fits(&self.agents, Some(agent.id.as_str()))
            && fits(&self.teams, agent.team.as_deref())
            && fits(&self.environments, agent.env.as_deref())
    }
}

/// The cheap pre-filter checked before any condition: hosts, methods, paths.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    /// Host patterns; empty matches every host.
    pub hosts: HostPatterns,
    /// Upper-case methods; empty matches every method.
    pub methods: Vec<String>,
    /// Path globs (`/v1/**`); `None` matches every path.
    pub paths: Option<GlobSet>,
}

/// Which part of the cheap match failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchMiss {
    /// The host is not listed.
    Host,
    /// The method is not listed.
    Method,
    /// No path glob matches.
    Path,
}

impl Matcher {
    /// `Ok` when the request passes, else which part missed.
    pub fn check(&self, request: &RequestFacts) -> Result<(), MatchMiss> {
        if !self.hosts.0.is_empty() && !self.hosts.matches_normalized(&request.host) {
            return Err(MatchMiss::Host);
        }
        if !self.methods.is_empty() && !self.methods.contains(&request.method) {
            return Err(MatchMiss::Method);
        }
        if let Some(paths) = &self.paths
            && !paths.is_match(&request.path)
        {
            return Err(MatchMiss::Path);
        }
        Ok(())
    }
}

/// How a redaction replaces what it finds (`mask`, `hash`, `pseudonymize`).
pub use crate::pii::Style as RedactStyle;

/// Something every applying rule asks for, unless the verdict is deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obligation {
    /// Redact these kinds of personal data in this style.
    Redact {
        /// Kinds (`email`, `credit_card`, ...).
        kinds: Vec<String>,
        /// Replacement style.
        style: RedactStyle,
    },
}

impl Obligation {
    /// The kinds to redact and how, as redaction takes them.
    pub fn rule(&self) -> (Vec<String>, RedactStyle) {
        let Obligation::Redact { kinds, style } = self;
        (kinds.clone(), *style)
    }
}

/// Where a rule was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The policy file.
    pub file: String,
    /// The line of the rule's `id`.
    pub line: u64,
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// What it is for.
    pub description: String,
    /// Who it is for.
    pub scope: Scope,
    /// When it is considered.
    pub trigger: Trigger,
    /// Cheap pre-filter.
    pub matcher: Matcher,
    /// CEL condition, if any.
    pub condition: Option<Condition>,
    /// What it does.
    pub effect: Effect,
    /// Order inside a rank: higher first.
    pub priority: i32,
    /// Obligations it adds.
    pub obligations: Vec<Obligation>,
    /// Enforce or monitor.
    pub mode: Mode,
    /// Shown to the agent when this rule decides.
    pub message: Option<String>,
    /// Whether this allow also lets through a request whose body the proxy could not inspect
    /// (too large, undecodable, unparseable); without it such a request is denied.
    pub allow_uninspected: bool,
    /// Whether this allow also lets through a request to an LLM provider's endpoint that the
    /// proxy does not meter while a budget covers the agent; without it such a request is denied.
    pub allow_unmetered: bool,
    /// Whether this allow also lets a WebSocket upgrade through; without it one is denied.
    pub allow_websocket: bool,
    /// Where it was written.
    pub origin: Origin,
}
