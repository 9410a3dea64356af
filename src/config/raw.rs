//! Serde structs that mirror `gatehouse.yaml` exactly. Nothing here is validated beyond its YAML
//! shape; [`super::compile`] turns these into the runtime [`super::Config`]. Values that need a
//! check after parsing are `Spanned`, so a failed check can still name its line.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: Option<Spanned<String>>,
    pub ca: RawCa,
    pub upstream: RawUpstream,
    pub network: RawNetwork,
    pub tunnel: RawTunnel,
    pub identity: RawIdentity,
    pub limits: RawLimits,
    pub log: RawLog,
    pub policies: RawPolicies,
    pub audit: RawAudit,
    pub inspect: RawInspect,
    pub pii: RawPii,
    pub geo: RawGeo,
    pub budget: RawBudget,
    pub approvals: RawApprovals,
    pub admin: RawAdmin,
    pub credentials: Vec<RawCredential>,
    pub gateway: Option<super::gateway_section::RawGateway>,
    pub transparent: Option<RawTransparent>,
}

/// One brokered credential (`credentials:`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCredential {
    pub host: Spanned<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub agent: Option<Spanned<String>>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub header: Option<Spanned<String>>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub query: Option<Spanned<String>>,
    #[serde(default)]
    pub secret_env: Option<Spanned<String>>,
    #[serde(default)]
    pub secret_file: Option<Spanned<String>>,
    #[serde(default)]
    pub require: Option<Spanned<String>>,
    #[serde(default)]
    pub placeholder: Option<Spanned<String>>,
    #[serde(default)]
    pub agent_env: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawApprovals {
    pub wait: Option<Spanned<String>>,
    pub expire_after: Option<Spanned<String>>,
    pub max_pending_per_agent: Option<Spanned<u32>>,
    pub max_pending: Option<Spanned<u32>>,
    pub poll_interval: Option<Spanned<String>>,
    pub dashboard_url: Option<Spanned<String>>,
    pub webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: Spanned<String>,
    #[serde(default)]
    pub format: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAdmin {
    pub listen: Option<Spanned<String>>,
    pub token_file: Option<Spanned<String>>,
    pub max_connections: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBudget {
    pub prices: Option<Spanned<String>>,
    pub store: Option<Spanned<String>>,
    pub reservation_ttl_seconds: Option<Spanned<u64>>,
    pub on_trip: Option<Spanned<String>>,
    pub unpriced: Option<Spanned<String>>,
    pub default_max_output_tokens: Option<Spanned<u64>>,
    pub lease_calls: Option<Spanned<u64>>,
    pub provider_hosts: Vec<Spanned<String>>,
    pub budgets: Vec<RawBudgetEntry>,
    pub rate_limits: Vec<RawRateLimit>,
    pub breakers: RawBreakers,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBreakers {
    pub velocity: Option<RawVelocity>,
    #[serde(rename = "loop")]
    pub repeats: Option<RawLoop>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVelocity {
    pub usd: Spanned<String>,
    pub seconds: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoop {
    pub repeats: Spanned<u32>,
    pub seconds: Spanned<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub per_second: Option<Spanned<u32>>,
    #[serde(default)]
    pub per_minute: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBudgetEntry {
    pub id: Spanned<String>,
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    pub limit_usd: Spanned<String>,
    pub window: Spanned<String>,
    #[serde(default)]
    pub breaker_at: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGeo {
    pub database: Option<Spanned<String>>,
    pub reload_interval: Option<Spanned<String>>,
    pub networks: Vec<RawGeoNetwork>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGeoNetwork {
    pub cidr: Spanned<String>,
    pub country: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPii {
    pub internal_domains: Option<Vec<String>>,
    pub hash_key_env: Option<Spanned<String>>,
    pub hash_key_file: Option<Spanned<String>>,
    pub scan_headers: Option<bool>,
    pub unscanned_headers: Vec<String>,
    pub phone_regions: Option<Spanned<Vec<String>>>,
    pub dictionaries: Vec<RawDictionary>,
    pub patterns: Vec<RawPattern>,
    pub vault: RawVault,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDictionary {
    pub name: Spanned<String>,
    #[serde(default)]
    pub words: Vec<String>,
    #[serde(default)]
    pub file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPattern {
    pub name: Spanned<String>,
    pub regex: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawVault {
    pub max_executions: Option<Spanned<usize>>,
    pub max_values: Option<Spanned<usize>>,
    pub idle: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawInspect {
    pub sql_fields: Option<Vec<String>>,
    pub prose_fields: Option<Vec<String>>,
    pub tools: Vec<RawRestTool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRestTool {
    pub name: Spanned<String>,
    pub host: Spanned<String>,
    #[serde(default)]
    pub method: Option<String>,
    pub path: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAudit {
    pub file: Option<String>,
    pub store: Option<String>,
    pub checkpoint_interval: Option<Spanned<String>>,
    pub checkpoint_records: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawPolicies {
    pub dir: Option<Spanned<String>>,
    pub reload_interval: Option<Spanned<String>>,
    pub templates: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCa {
    pub dir: Option<String>,
    pub leaf_cache_size: Option<Spanned<usize>>,
    pub leaf_cache_ttl: Option<Spanned<String>>,
    pub leaf_validity: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawUpstream {
    pub connect_timeout: Option<Spanned<String>>,
    pub response_timeout: Option<Spanned<String>>,
    pub idle_timeout: Option<Spanned<String>>,
    pub total_timeout: Option<Spanned<String>>,
    pub pool_idle_timeout: Option<Spanned<String>>,
    pub pool_max_idle_per_host: Option<usize>,
    pub extra_ca_files: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawNetwork {
    pub allow_cidrs: Vec<Spanned<String>>,
    pub dns_cache_ttl: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTunnel {
    pub hosts: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawIdentity {
    pub allow_anonymous: bool,
    pub agents: Vec<RawAgent>,
    pub signed_executions: bool,
    pub max_new_executions_per_hour: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub id: Spanned<String>,
    #[serde(default)]
    pub residency: Option<Spanned<String>>,
    #[serde(default)]
    pub team: Option<String>,
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub token_env: Option<Spanned<String>>,
    #[serde(default)]
    pub token_file: Option<Spanned<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLimits {
    pub max_connections: Option<Spanned<usize>>,
    pub max_header_bytes: Option<Spanned<usize>>,
    pub max_request_body_bytes: Option<Spanned<u64>>,
    pub max_buffered_bytes: Option<Spanned<u64>>,
    pub max_buffered_bytes_per_agent: Option<Spanned<u64>>,
    pub max_connections_per_agent: Option<Spanned<usize>>,
    pub max_concurrent_streams: Option<Spanned<u32>>,
    pub tunnel_idle_timeout: Option<Spanned<String>>,
    pub client_header_timeout: Option<Spanned<String>>,
    pub client_body_timeout: Option<Spanned<String>>,
    pub shutdown_grace: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: Option<Spanned<String>>,
    pub level: Option<String>,
}

/// `transparent:` — the listener for redirected connections and who their agents are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawTransparent {
    /// One address, or several separated by commas (`127.0.0.1:8082, [::1]:8082`).
    pub listen: Option<Spanned<String>>,
    pub agents: Vec<RawTransparentAgent>,
    pub fallback_agent: Option<Spanned<String>>,
}

/// One agent of the transparent listener and what identifies its connections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransparentAgent {
    pub agent: Spanned<String>,
    #[serde(default)]
    pub users: Vec<Spanned<String>>,
    #[serde(default)]
    pub uids: Vec<Spanned<u32>>,
    #[serde(default)]
    pub sources: Vec<Spanned<String>>,
}
