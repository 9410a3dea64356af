//! What an unmodified agent process needs to go through the proxy: proxy variables carrying its
//! credentials and a fresh execution id, and CA trust for common runtimes. Used by `gatehouse
//! exec` (sets them for a child) and `gatehouse env` (prints them as shell exports).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};

use std::os::unix::fs::PermissionsExt as _;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::config::{ANONYMOUS_AGENT, Config};
use crate::credentials::Sender;
use crate::proxy::executions::ExecutionKey;
use crate::proxy::tls::{CaError, CertificateAuthority, native_roots_pem};

mod base_url;

pub use base_url::base_url_env;

/// Name of the bundle (system roots + Gatehouse CA) written next to the CA.
pub const BUNDLE_FILE: &str = "gatehouse-bundle.pem";

/// Variables that point a runtime's proxy support at Gatehouse.
const PROXY_VARS: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// Variables through which runtimes take a CA bundle.
const CA_VARS: [&str; 11] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "PIP_CERT",
    "HTTPLIB2_CA_CERTS",
    "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
    "CARGO_HTTP_CAINFO",
    "DENO_CERT",
];

/// The variables the official SDKs read their key from, by the host they call: `exec` sets them to
/// the placeholder of a brokered credential, so unmodified SDKs start.
const KEY_VARS: [(&str, &[&str]); 6] = [
    ("api.openai.com", &["OPENAI_API_KEY"]),
    ("api.anthropic.com", &["ANTHROPIC_API_KEY"]),
    (
        "generativelanguage.googleapis.com",
        &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
    ),
    ("example.openai.azure.com", &["AZURE_OPENAI_API_KEY"]),
    ("api.mistral.ai", &["MISTRAL_API_KEY"]),
    ("api.groq.com", &["GROQ_API_KEY"]),
];

/// The admin API's token variable, read by the proxy and the CLI, never by an agent.
const ADMIN_TOKEN_VAR: &str = "GATEHOUSE_ADMIN_TOKEN";

/// The OTLP exporter's header variables, which carry the collector's credentials.
const OTLP_HEADER_VARS: [&str; 3] = [
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
];

/// Characters escaped in the user-info part of the proxy URL.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'+');

/// Why the environment could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// `--agent` names an agent the config does not declare.
    #[error("agent `{0}` is not declared in the config")]
    UnknownAgent(String),
    /// No agent was named and the config admits no anonymous agents.
    #[error("name an agent with --agent ({0}); anonymous agents are not admitted")]
    NoAgent(String),
    /// The CA could not be created or loaded.
    #[error("certificate authority: {0}")]
    Ca(#[from] CaError),
    /// No execution id could be issued.
    #[error(transparent)]
    Execution(#[from] crate::proxy::executions::KeyError),
    /// `--mode base-url` without a `gateway:` section.
    #[error("--mode base-url needs the base-URL gateway: add a `gateway:` section to the config")]
    NoGateway,
    /// The agent has no gateway key.
    #[error("agent `{0}` has no key in gateway.keys")]
    NoGatewayKey(String),
    /// The bundle could not be written.
    #[error("{path}: {source}")]
    Bundle {
        /// The bundle file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The variables for one agent process.
#[derive(Debug, Clone)]
pub struct AgentEnv {
    /// Agent id.
    pub agent: String,
    /// Fresh execution id.
    pub execution: String,
    /// Name/value pairs to set.
    pub vars: Vec<(String, String)>,
    /// Variables the agent must not inherit: every secret the config reads from the
    /// environment (other agents' tokens, brokered keys, the hash key) and the admin token.
    pub removed: Vec<String>,
}

impl AgentEnv {
    /// The variables as POSIX shell `export` lines.
    pub fn as_shell(&self) -> String {
        self.vars
            .iter()
            .map(|(k, v)| format!("export {k}='{}'\n", v.replace('\'', r"'\''")))
            .collect()
    }
}

/// Prepares the environment for `agent` (or the anonymous agent) under `config`: its proxy
/// credentials with an execution id the proxy signed, CA trust, placeholders for brokered keys,
/// and the secrets it must not inherit.
pub fn agent_env(config: &Config, agent: Option<&str>) -> Result<AgentEnv, LaunchError> {
    let (agent, token) = credentials(config, agent)?;
    let execution = ExecutionKey::load_or_create(&config.ca.dir)?.issue(&agent)?;
    let bundle = write_bundle(&config.ca.dir)?;
    let user = format!("{agent}+{execution}");
    let proxy_url = format!(
        "http://{}:{}@{}",
        utf8_percent_encode(&user, USERINFO),
        utf8_percent_encode(&token, USERINFO),
        client_address(config.listen)
    );
    let bundle = bundle.display().to_string();
    let mut vars: Vec<(String, String)> = PROXY_VARS
        .iter()
        .map(|k| (k.to_string(), proxy_url.clone()))
        .collect();
    vars.extend(CA_VARS.iter().map(|k| (k.to_string(), bundle.clone())));
    // Node's built-in fetch honours the proxy variables only when told to (Node >= 22.21/24.5).
    vars.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    vars.push(("GATEHOUSE_AGENT".into(), agent.clone()));
    vars.push(("GATEHOUSE_EXECUTION_ID".into(), execution.clone()));
    vars.extend(placeholders(config, &agent));
    let mut removed: Vec<String> = config.secret_vars.clone();
    removed.push(ADMIN_TOKEN_VAR.to_string());
    // The collector's credentials are the proxy's: an agent holding them could write spans that
    // pass for the proxy's own.
    removed.extend(OTLP_HEADER_VARS.iter().map(|v| v.to_string()));
    removed.retain(|name| !vars.iter().any(|(set, _)| set == name));
    removed.sort();
    removed.dedup();
    Ok(AgentEnv {
        agent,
        execution,
        vars,
        removed,
    })
}

/// The key variables of every credential brokered for `agent`, set to its placeholder.
fn placeholders(config: &Config, agent: &str) -> Vec<(String, String)> {
    let team = config
        .identity
        .agents
        .iter()
        .find(|a| a.id == agent)
        .and_then(|a| a.team.as_deref());
    let sender = Sender {
        agent,
        team,
        anonymous: agent == ANONYMOUS_AGENT,
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    for credential in config.credentials.of_sender(sender) {
        let usual = KEY_VARS
            .iter()
            .filter(|(host, _)| credential.host.matches(host))
            .flat_map(|(_, names)| names.iter().map(|n| n.to_string()));
        for name in usual.chain(credential.agent_env.iter().cloned()) {
            if !vars.iter().any(|(set, _)| *set == name) {
                vars.push((name, credential.placeholder.clone()));
            }
        }
    }
    vars
}

fn credentials(config: &Config, agent: Option<&str>) -> Result<(String, String), LaunchError> {
    let declared = &config.identity.agents;
    match agent {
        Some(id) if id == ANONYMOUS_AGENT && config.identity.allow_anonymous => {
            Ok((id.to_string(), String::new()))
        }
        Some(id) => declared
            .iter()
            .find(|a| a.id == id)
            .map(|a| (a.id.clone(), a.token.expose().to_string()))
            .ok_or_else(|| LaunchError::UnknownAgent(id.to_string())),
        None if config.identity.allow_anonymous => Ok((ANONYMOUS_AGENT.to_string(), String::new())),
        None => match declared.as_slice() {
            [only] => Ok((only.id.clone(), only.token.expose().to_string())),
            _ => {
                let ids: Vec<&str> = declared.iter().map(|a| a.id.as_str()).collect();
                Err(LaunchError::NoAgent(format!(
                    "declared: {}",
                    ids.join(", ")
                )))
            }
        },
    }
}

/// Where a local client reaches a proxy listening on `listen`.
fn client_address(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port()).to_string()
}

/// Writes system roots plus the Gatehouse CA to one PEM file and returns its absolute path.
fn write_bundle(ca_dir: &Path) -> Result<PathBuf, LaunchError> {
    let (ca, _) = CertificateAuthority::load_or_create(ca_dir)?;
    let path = ca_dir.join(BUNDLE_FILE);
    let io = |source| LaunchError::Bundle {
        path: path.clone(),
        source,
    };
    let mut contents = native_roots_pem();
    contents.push_str(ca.cert_pem());
    let tmp = ca_dir.join(format!(".{BUNDLE_FILE}.{}", std::process::id()));
    std::fs::write(&tmp, contents).map_err(io)?;
    // Agents running as another user read it.
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(io)?;
    std::path::absolute(&path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str, dir: &Path) -> Config {
        let yaml = format!("ca:\n  dir: {}\n{yaml}", dir.display());
        Config::from_yaml(&yaml, "t").unwrap()
    }

    #[test]
    fn anonymous_env_points_every_runtime_at_the_proxy_and_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(
            "listen: 0.0.0.0:3128\nidentity:\n  allow_anonymous: true\n",
            dir.path(),
        );
        let env = agent_env(&cfg, None).unwrap();
        let get = |k: &str| {
            env.vars
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(
            get("HTTPS_PROXY"),
            format!("http://anonymous+{}:@127.0.0.1:3128", env.execution)
        );
        assert_eq!(get("https_proxy"), get("HTTPS_PROXY"));
        let bundle = get("SSL_CERT_FILE");
        assert!(Path::new(&bundle).is_absolute());
        let text = std::fs::read_to_string(&bundle).unwrap();
        let ca = std::fs::read_to_string(CertificateAuthority::cert_path(dir.path())).unwrap();
        assert!(text.ends_with(&ca), "bundle ends with the Gatehouse CA");
        for var in CA_VARS {
            assert_eq!(get(var), bundle, "{var}");
        }
        let again = agent_env(&cfg, None).unwrap();
        assert_ne!(
            env.execution, again.execution,
            "each launch gets a fresh execution id"
        );
    }

    #[test]
    fn declared_agents_need_their_token_and_a_name_when_ambiguous() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("tok");
        std::fs::write(&token, "p@ss:word").unwrap();
        let agents = format!(
            "identity:\n  agents:\n    - id: a\n      token_file: {t}\n    - id: b\n      token_file: {t}\n",
            t = token.display()
        );
        let cfg = config(&agents, dir.path());
        assert!(matches!(
            agent_env(&cfg, None),
            Err(LaunchError::NoAgent(_))
        ));
        assert!(matches!(
            agent_env(&cfg, Some("zed")),
            Err(LaunchError::UnknownAgent(_))
        ));
        let env = agent_env(&cfg, Some("b")).unwrap();
        let proxy = &env.vars[0].1;
        assert!(
            proxy.starts_with(&format!("http://b+{}:p%40ss%3Aword@", env.execution)),
            "{proxy}"
        );
    }

    #[test]
    fn the_agent_gets_placeholders_for_its_brokered_keys_and_a_signed_execution() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "sk-real").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "agent-token").unwrap();
        let yaml = format!(
            "identity:\n  agents:\n    - {{ id: a, team: t, token_file: {t} }}\n    - {{ id: b, token_file: {t} }}\n\
             credentials:\n  - {{ host: api.openai.com, secret_file: {s}, require: placeholder }}\n\
             \x20 - {{ host: api.anthropic.com, agent: b, secret_file: {s}, agent_env: [CLAUDE_KEY] }}\n",
            s = secret.display(),
            t = token.display()
        );
        let cfg = config(&yaml, dir.path());
        let env = agent_env(&cfg, Some("a")).unwrap();
        let get = |k: &str| {
            env.vars
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("OPENAI_API_KEY").as_deref(),
            Some("gatehouse-placeholder")
        );
        assert_eq!(get("ANTHROPIC_API_KEY"), None, "b's credential is not a's");
        assert_eq!(get("NODE_USE_ENV_PROXY").as_deref(), Some("1"));
        assert!(env.removed.iter().any(|r| r == "GATEHOUSE_ADMIN_TOKEN"));
        assert!(
            env.removed
                .iter()
                .any(|r| r == "OTEL_EXPORTER_OTLP_HEADERS")
        );
        assert!(!env.vars.iter().any(|(_, v)| v.contains("sk-real")));
        let env = agent_env(&cfg, Some("b")).unwrap();
        let get = |k: &str| {
            env.vars
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("ANTHROPIC_API_KEY").as_deref(),
            Some("gatehouse-placeholder")
        );
        assert_eq!(get("CLAUDE_KEY").as_deref(), Some("gatehouse-placeholder"));
        let key = ExecutionKey::load_or_create(dir.path()).unwrap();
        assert!(
            key.verify("b", &env.execution),
            "the execution id is signed"
        );
    }

    #[test]
    fn shell_exports_are_quoted() {
        let env = AgentEnv {
            agent: "a".into(),
            execution: "e".into(),
            vars: vec![("X".into(), "it's".into())],
            removed: Vec::new(),
        };
        assert_eq!(env.as_shell(), "export X='it'\\''s'\n");
    }
}
