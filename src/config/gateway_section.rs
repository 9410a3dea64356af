//! `gateway:` → the base-URL gateway (off when absent): its listener, the agents' gateway keys
//! (from the environment or a file, like every secret), its routes.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::compile::Compiler;
use super::{ConfigError, IdentityConfig, Secret};
use crate::gateway::{GatewayConfig, GatewayKey, GatewayKeys, Route, RouteTable, Upstream};
use crate::proxy::identity::Identity;

/// Shortest gateway key accepted: a key is all that names an agent.
const MIN_KEY_CHARS: usize = 16;

/// The `gateway:` section as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawGateway {
    pub listen: Option<Spanned<String>>,
    pub tls_name: Option<Spanned<String>>,
    pub allow_anonymous: bool,
    pub azure_resource: Option<Spanned<String>>,
    pub keys: Vec<RawGatewayKey>,
    pub routes: Vec<RawRoute>,
}

/// One agent's gateway key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGatewayKey {
    pub agent: Spanned<String>,
    #[serde(default)]
    pub key_env: Option<Spanned<String>>,
    #[serde(default)]
    pub key_file: Option<Spanned<String>>,
}

/// One configured route.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub prefix: Spanned<String>,
    pub upstream: Spanned<String>,
}

impl Compiler<'_> {
    pub(super) fn gateway(
        &self,
        raw: Option<&RawGateway>,
        identity: &IdentityConfig,
    ) -> Result<Option<GatewayConfig>, ConfigError> {
        let Some(raw) = raw else {
            return Ok(None);
        };
        let listen: SocketAddr = match &raw.listen {
            None => SocketAddr::from(([127, 0, 0, 1], 8090)),
            Some(s) => s.value.trim().parse().map_err(|_| {
                self.invalid(
                    Some(&s.referenced),
                    "gateway.listen",
                    format!("`{}` is not an address like 127.0.0.1:8090", s.value),
                )
            })?,
        };
        let tls_name = match &raw.tls_name {
            None => None,
            Some(name) => {
                let host = crate::proxy::target::Host::parse(name.value.trim())
                    .map_err(|e| self.invalid(Some(&name.referenced), "gateway.tls_name", e))?;
                Some(host)
            }
        };
        if tls_name.is_none() && !listen.ip().is_loopback() {
            let at = raw.listen.as_ref().map(|l| &l.referenced);
            return Err(self.invalid(
                at,
                "gateway.listen",
                "plain HTTP carries the agents' gateway keys in clear: listen on a loopback \
                 address, or set gateway.tls_name to serve TLS",
            ));
        }
        let azure_resource = match &raw.azure_resource {
            None => None,
            Some(r) => {
                crate::gateway::check_azure_resource(r.value.trim())
                    .map_err(|e| self.invalid(Some(&r.referenced), "gateway.azure_resource", e))?;
                Some(r.value.trim().to_string())
            }
        };
        Ok(Some(GatewayConfig {
            listen,
            tls_name,
            keys: Arc::new(GatewayKeys::new(&self.gateway_keys(raw, identity)?)),
            allow_anonymous: raw.allow_anonymous,
            routes: Arc::new(RouteTable::new(
                self.routes(raw)?,
                azure_resource.as_deref(),
            )),
        }))
    }

    fn gateway_keys(
        &self,
        raw: &RawGateway,
        identity: &IdentityConfig,
    ) -> Result<Vec<GatewayKey>, ConfigError> {
        let mut keys: Vec<GatewayKey> = Vec::new();
        let mut seen = HashSet::new();
        for (i, entry) in raw.keys.iter().enumerate() {
            let key = format!("gateway.keys[{i}]");
            let id = entry.agent.value.trim();
            let at = Some(&entry.agent.referenced);
            let agent = identity.agents.iter().find(|a| a.id == id).ok_or_else(|| {
                self.invalid(
                    at,
                    &format!("{key}.agent"),
                    format!("agent `{id}` is not declared in identity.agents"),
                )
            })?;
            let what = format!("gateway key of agent `{id}`");
            let value = self
                .secret(&entry.key_env, &entry.key_file, &key, "key", &what)?
                .ok_or_else(|| {
                    self.invalid(
                        at,
                        &key,
                        "give `key_env` or `key_file` (never the key itself)",
                    )
                })?;
            if value.chars().count() < MIN_KEY_CHARS {
                return Err(self.invalid(
                    at,
                    &key,
                    format!("the {what} is shorter than {MIN_KEY_CHARS} characters"),
                ));
            }
            if !seen.insert(value.clone()) {
                return Err(self.invalid(at, &key, format!("the {what} is another key's too")));
            }
            keys.push(GatewayKey {
                identity: Identity {
                    agent: agent.id.clone(),
                    team: agent.team.clone(),
                    env: agent.env.clone(),
                    execution: None,
                    labels: agent.labels.clone(),
                },
                key: Secret::new(value),
            });
        }
        Ok(keys)
    }

    fn routes(&self, raw: &RawGateway) -> Result<Vec<Route>, ConfigError> {
        let mut routes: Vec<Route> = Vec::new();
        for (i, route) in raw.routes.iter().enumerate() {
            let key = format!("gateway.routes[{i}]");
            let prefix = route.prefix.value.trim().to_string();
            let at = Some(&route.prefix.referenced);
            crate::gateway::check_prefix(&prefix)
                .map_err(|e| self.invalid(at, &format!("{key}.prefix"), e))?;
            if routes.iter().any(|r| r.prefix == prefix) {
                return Err(self.invalid(
                    at,
                    &format!("{key}.prefix"),
                    format!("`{prefix}` is routed twice"),
                ));
            }
            let upstream = Upstream::parse(&route.upstream.value).map_err(|e| {
                self.invalid(
                    Some(&route.upstream.referenced),
                    &format!("{key}.upstream"),
                    e,
                )
            })?;
            routes.push(Route { prefix, upstream });
        }
        Ok(routes)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn config(gateway: &str) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "gk-coder-0123456789abcdef").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "token-of-coder").unwrap();
        let yaml = format!(
            "identity:\n  agents:\n    - {{ id: coder, token_file: {} }}\ngateway:\n{gateway}",
            token.display()
        )
        .replace("KEY", &key.display().to_string());
        Config::from_yaml(&yaml, "test.yaml").map_err(|e| e.to_string())
    }

    #[test]
    fn a_gateway_off_loopback_needs_tls_and_keys_name_declared_agents() {
        assert!(config("  listen: 127.0.0.1:8090\n").is_ok());
        let open = config("  listen: 0.0.0.0:8090\n").unwrap_err();
        assert!(
            open.contains("gateway.listen") && open.contains("loopback"),
            "{open}"
        );
        assert!(config("  listen: 0.0.0.0:8090\n  tls_name: gw.example.com\n").is_ok());
        let stranger = config("  keys:\n    - { agent: stranger, key_file: KEY }\n").unwrap_err();
        assert!(stranger.contains("gateway.keys[0].agent"), "{stranger}");
        let both = config("  keys:\n    - { agent: coder, key_file: KEY }\n    - { agent: coder, key_file: KEY }\n")
            .unwrap_err();
        assert!(both.contains("another key's too"), "{both}");
        let route = config("  routes:\n    - { prefix: /gh, upstream: 'http://api.github.com' }\n")
            .unwrap_err();
        assert!(route.contains("gateway.routes[0].upstream"), "{route}");
        let prefix =
            config("  routes:\n    - { prefix: /a/../b, upstream: 'https://x.example' }\n")
                .unwrap_err();
        assert!(prefix.contains("gateway.routes[0].prefix"), "{prefix}");
    }
}
