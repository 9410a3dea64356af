//! Configuration: the YAML file operators write, parsed once into validated runtime types.
//!
//! `raw` mirrors the file; `compile` checks every value and builds what the proxy uses at runtime
//! (socket addresses, CIDRs, host patterns, secrets read from the environment). Errors name the
//! file, the line and the key.

mod approvals_section;
mod budget_section;
pub(crate) mod compile;
mod credentials_section;
mod error;
mod gateway_section;
mod geo_section;
mod identity_section;
mod limits_section;
mod pii_section;
pub mod policies;
mod raw;
mod transparent_section;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;

pub use crate::approval::{ApprovalsConfig, Webhook, WebhookFormat};
pub use crate::budget::{Budget, BudgetConfig};
pub use crate::geo::Residency;
pub use crate::pii::PiiConfig;
pub use crate::policy::{HostPattern, HostPatterns};
pub use crate::proxy::Limits;
pub use crate::proxy::identity::{ANONYMOUS as ANONYMOUS_AGENT, AgentConfig, IdentityConfig};
pub use crate::proxy::upstream::UpstreamConfig;
pub use crate::secret::Secret;
pub use approvals_section::AdminConfig;
pub use compile::validate_agent_id;
pub use error::{ConfigError, Place};

/// The default config, compiled into the binary so `gatehouse run` works on a fresh machine.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/gatehouse.yaml");

/// Where `gatehouse run` looks for its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "config/gatehouse.yaml";

/// The validated runtime configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from (`<embedded>` for the built-in default).
    pub source: String,
    /// Address the proxy listens on.
    pub listen: SocketAddr,
    /// The local certificate authority.
    pub ca: CaConfig,
    /// How requests are forwarded.
    pub upstream: UpstreamConfig,
    /// Which destinations the network guard admits.
    pub network: NetworkConfig,
    /// Hosts relayed without interception.
    pub tunnel_hosts: HostPatterns,
    /// Who may use the proxy.
    pub identity: IdentityConfig,
    /// Resource limits that protect the proxy from its clients.
    pub limits: Limits,
    /// Logging.
    pub log: LogConfig,
    /// The policies in force.
    pub policies: crate::policy::Policies,
    /// How often the policy folder is checked for changes.
    pub policy_reload_interval: Duration,
    /// The hash-chained JSON Lines file every decision is appended to.
    pub audit_file: PathBuf,
    /// The SQLite index of the audit file, for queries.
    pub audit_store: PathBuf,
    /// When the audit trail's signed checkpoints are written to the store.
    pub audit_checkpoints: crate::audit::CheckpointSchedule,
    /// What request recognition is told: SQL fields, REST endpoints named as tools.
    pub inspect: crate::inspect::InspectConfig,
    /// What the PII scanner looks for and how redaction works.
    pub pii: PiiConfig,
    /// Where destinations are.
    pub geo: GeoConfig,
    /// What LLM tokens cost.
    pub prices: std::sync::Arc<crate::budget::PriceTable>,
    /// Budgets and how reservations are made.
    pub budget: BudgetConfig,
    /// How held requests wait for a person.
    pub approvals: ApprovalsConfig,
    /// The admin API's listener (`None`: off).
    pub admin: Option<AdminConfig>,
    /// The base-URL gateway (`None`: off).
    pub gateway: Option<crate::gateway::GatewayConfig>,
    /// The environment variables the config reads secrets from (agent tokens, keys, the admin
    /// token): `gatehouse exec` keeps them from the agent.
    pub secret_vars: Vec<String>,
    /// The credential broker: the keys the proxy puts on requests.
    pub credentials: std::sync::Arc<crate::credentials::Broker>,
    /// Policy texts the config adds to the folder's: enabled templates and residency rules,
    /// as `(name, YAML)`; reloads keep them.
    pub policy_extras: Vec<(String, String)>,
    /// The transparent listener (`None`: off).
    pub transparent: Option<crate::proxy::transparent::TransparentConfig>,
}

/// The local CA and the leaf certificates minted from it.
#[derive(Debug, Clone)]
pub struct CaConfig {
    /// Directory holding `gatehouse-ca.pem` and `gatehouse-ca.key`.
    pub dir: PathBuf,
    /// How many leaf certificates are kept.
    pub leaf_cache_size: usize,
    /// How long a cached leaf is reused before a fresh one is minted.
    pub leaf_cache_ttl: Duration,
    /// Validity period written into each leaf.
    pub leaf_validity: Duration,
}

/// The network guard's exceptions.
#[derive(Debug, Clone)]
pub struct NetworkConfig {
    /// Non-global ranges that are nevertheless allowed as destinations.
    pub allow_cidrs: Vec<IpNet>,
    /// How long a resolved (and checked) address stays pinned for a host.
    pub dns_cache_ttl: Duration,
}

/// Geolocation of destinations.
#[derive(Debug, Clone)]
pub struct GeoConfig {
    /// A MaxMind DB file (`.mmdb`), when one is configured.
    pub database: Option<PathBuf>,
    /// How often the file is checked for changes.
    pub reload_interval: Duration,
    /// Networks and their countries; they override the file.
    pub networks: Vec<(IpNet, String)>,
}

/// Log output.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Human-readable or JSON lines.
    pub format: LogFormat,
    /// Default filter (`info`, `gatehouse=debug`, ...); `RUST_LOG` overrides it.
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// For people at a terminal.
    Human,
    /// One JSON object per line, for log pipelines.
    Json,
}

impl Config {
    /// Loads `path`, or when none is given, `config/gatehouse.yaml` if it exists, else the
    /// embedded default.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(path) => Self::load_file(path),
            None if Path::new(DEFAULT_PATH).is_file() => Self::load_file(Path::new(DEFAULT_PATH)),
            None => Self::from_yaml(EMBEDDED_DEFAULT, "<embedded>"),
        }
    }

    /// Loads and validates one file.
    pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_yaml(&text, &file)
    }

    /// Parses and validates YAML text; `file` is only used in error messages.
    pub fn from_yaml(text: &str, file: &str) -> Result<Config, ConfigError> {
        compile::compile(text, file)
    }
}

#[cfg(test)]
mod tests;
