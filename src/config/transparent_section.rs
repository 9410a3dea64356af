//! `transparent:` → the transparent listener's addresses and the agents of its connections: OS
//! users (names looked up here, once) and source networks, each mapped to a declared agent.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use ipnet::IpNet;
use serde_saphyr::Spanned;

use super::compile::Compiler;
use super::raw::{RawConfig, RawTransparentAgent};
use super::{ANONYMOUS_AGENT, ConfigError, IdentityConfig};
use crate::proxy::transparent::{TransparentAgents, TransparentConfig};

impl Compiler<'_> {
    pub(super) fn transparent(
        &self,
        raw: &RawConfig,
        identity: &IdentityConfig,
    ) -> Result<Option<TransparentConfig>, ConfigError> {
        let Some(section) = &raw.transparent else {
            return Ok(None);
        };
        let Some(listen) = &section.listen else {
            return Err(self.invalid(
                None,
                "transparent.listen",
                "the transparent listener needs an address, like 127.0.0.1:8082 (and [::1]:8082 \
                 for IPv6, separated by a comma); leave `transparent:` out to turn it off",
            ));
        };
        let mut addresses = Vec::new();
        for part in listen.value.split(',').map(str::trim) {
            let addr: SocketAddr = part.parse().map_err(|_| {
                self.invalid(
                    Some(&listen.referenced),
                    "transparent.listen",
                    format!("`{part}` is not an address like 127.0.0.1:8082 or [::1]:8082"),
                )
            })?;
            addresses.push(addr);
        }
        let mut agents = TransparentAgents::default();
        for (i, entry) in section.agents.iter().enumerate() {
            self.transparent_agent(entry, i, identity, &mut agents)?;
        }
        if let Some(fallback) = &section.fallback_agent {
            let key = "transparent.fallback_agent";
            agents.fallback = Some(self.declared_agent(fallback, key, identity)?);
        }
        Ok(Some(TransparentConfig {
            listen: addresses,
            agents,
        }))
    }

    fn transparent_agent(
        &self,
        entry: &RawTransparentAgent,
        i: usize,
        identity: &IdentityConfig,
        agents: &mut TransparentAgents,
    ) -> Result<(), ConfigError> {
        let key = format!("transparent.agents[{i}]");
        let agent = self.declared_agent(&entry.agent, &format!("{key}.agent"), identity)?;
        if entry.users.is_empty() && entry.uids.is_empty() && entry.sources.is_empty() {
            return Err(self.invalid(
                Some(&entry.agent.referenced),
                &key,
                "name the agent's `users`, `uids` or `sources`",
            ));
        }
        let mut uids = Vec::new();
        for (j, user) in entry.users.iter().enumerate() {
            let name = user.value.trim();
            let found = nix::unistd::User::from_name(name).ok().flatten();
            let Some(found) = found else {
                return Err(self.invalid(
                    Some(&user.referenced),
                    &format!("{key}.users[{j}]"),
                    format!("there is no OS user `{name}` on this machine"),
                ));
            };
            uids.push((found.uid.as_raw(), user, format!("{key}.users[{j}]")));
        }
        for (j, uid) in entry.uids.iter().enumerate() {
            uids.push((uid.value, &entry.agent, format!("{key}.uids[{j}]")));
        }
        for (uid, at, key) in uids {
            self.map_uid(uid, at, &key, &agent, &mut agents.by_uid)?;
        }
        for (j, source) in entry.sources.iter().enumerate() {
            let text = source.value.trim();
            let net = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    self.invalid(
                        Some(&source.referenced),
                        &format!("{key}.sources[{j}]"),
                        format!("`{text}` is not a CIDR like 10.200.0.0/24"),
                    )
                })?
                .trunc();
            if agents.by_source.iter().any(|(known, _)| *known == net) {
                return Err(self.invalid(
                    Some(&source.referenced),
                    &format!("{key}.sources[{j}]"),
                    format!("`{net}` is mapped to an agent twice"),
                ));
            }
            agents.by_source.push((net, agent.clone()));
        }
        Ok(())
    }

    fn map_uid<T>(
        &self,
        uid: u32,
        at: &Spanned<T>,
        key: &str,
        agent: &str,
        by_uid: &mut BTreeMap<u32, String>,
    ) -> Result<(), ConfigError> {
        if uid == 0 {
            return Err(self.invalid(
                Some(&at.referenced),
                key,
                "root (uid 0) is never an agent: its traffic would be redirected, the proxy's \
                 own included",
            ));
        }
        if by_uid.insert(uid, agent.to_string()).is_some() {
            return Err(self.invalid(
                Some(&at.referenced),
                key,
                format!("uid {uid} is mapped to an agent twice"),
            ));
        }
        Ok(())
    }

    /// An agent id that names a declared agent (or `anonymous`, when anonymous agents are
    /// admitted).
    fn declared_agent(
        &self,
        agent: &Spanned<String>,
        key: &str,
        identity: &IdentityConfig,
    ) -> Result<String, ConfigError> {
        let id = agent.value.trim();
        let declared = identity.agents.iter().any(|a| a.id == id)
            || (id == ANONYMOUS_AGENT && identity.allow_anonymous);
        if declared {
            return Ok(id.to_string());
        }
        Err(self.invalid(
            Some(&agent.referenced),
            key,
            format!(
                "`{id}` is not an agent declared under identity.agents (`anonymous` needs \
                 identity.allow_anonymous)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};

    const AGENTS: &str = "identity:\n  agents:\n    - id: coder\n      token_env: PATH\n";

    fn compile(section: &str) -> Result<Config, ConfigError> {
        Config::from_yaml(&format!("{AGENTS}{section}"), "t.yaml")
    }

    #[test]
    fn users_uids_and_sources_map_to_declared_agents() {
        let config = compile(
            "transparent:\n  listen: '127.0.0.1:8082, [::1]:8082'\n  agents:\n    - agent: coder\n      users: [nobody]\n      uids: [1234]\n      sources: [10.200.0.0/24]\n",
        )
        .unwrap();
        let t = config.transparent.unwrap();
        assert_eq!(t.listen.len(), 2);
        assert_eq!(
            t.agents.by_uid.get(&1234).map(String::as_str),
            Some("coder")
        );
        assert_eq!(t.agents.by_uid.len(), 2, "nobody's uid too");
        assert_eq!(t.agents.by_source.len(), 1);
        assert!(t.agents.fallback.is_none());
        assert!(compile("").unwrap().transparent.is_none());
    }

    #[test]
    fn mistakes_name_their_line_and_key() {
        let cases = [
            ("transparent:\n  agents: []\n", "transparent.listen"),
            ("transparent:\n  listen: 127.0.0.1\n", "transparent.listen"),
            (
                "transparent:\n  listen: 127.0.0.1:8082\n  agents:\n    - agent: ghost\n      uids: [5]\n",
                "transparent.agents[0].agent",
            ),
            (
                "transparent:\n  listen: 127.0.0.1:8082\n  agents:\n    - agent: coder\n      users: [no-such-user-here]\n",
                "transparent.agents[0].users[0]",
            ),
            (
                "transparent:\n  listen: 127.0.0.1:8082\n  agents:\n    - agent: coder\n      uids: [0]\n",
                "transparent.agents[0].uids[0]",
            ),
            (
                "transparent:\n  listen: 127.0.0.1:8082\n  agents:\n    - agent: coder\n      uids: [7, 7]\n",
                "transparent.agents[0].uids[1]",
            ),
            (
                "transparent:\n  listen: 127.0.0.1:8082\n  agents:\n    - agent: coder\n",
                "transparent.agents[0]",
            ),
            (
                "transparent:\n  listen: 127.0.0.1:8082\n  fallback_agent: anonymous\n",
                "transparent.fallback_agent",
            ),
        ];
        for (section, key) in cases {
            let err = compile(section).unwrap_err().to_string();
            assert!(err.contains(&format!("key `{key}`")), "{section}: {err}");
            assert!(err.starts_with("t.yaml:"), "{err}");
        }
    }
}
