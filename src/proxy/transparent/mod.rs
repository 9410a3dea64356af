//! Transparent interception: a second listener for connections an nftables/iptables REDIRECT or
//! DNAT rule sent to the proxy, from agents that never asked for a proxy (they ignore or unset
//! `HTTPS_PROXY`). The kernel says where the agent dialled; the agent's first bytes say which
//! name it means (TLS SNI, or the HTTP `Host`); the name must resolve, for the proxy, to the
//! address the agent dialled. Then the connection is exactly a CONNECT to that name and port:
//! judged by the connect rules and the network guard, intercepted, and every request inside goes
//! through the steps. Who the agent is comes from the socket, not from a header: the OS user
//! owning the agent's end (local agents) or its source address (agents in containers).

mod first_bytes;
mod serve;
mod socket_facts;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

pub use first_bytes::{NameError, Named, read_name};
pub use socket_facts::{original_destination, socket_owner};

/// `transparent:` from the config, validated.
#[derive(Debug, Clone, Default)]
pub struct TransparentConfig {
    /// Where redirected connections arrive (one per address family, usually `127.0.0.1:port`
    /// and `[::1]:port`: REDIRECT sends local traffic to the loopback address of its family).
    pub listen: Vec<SocketAddr>,
    /// The agents of the connections found here.
    pub agents: TransparentAgents,
}

/// Who a redirected connection's agent is: by the uid owning its socket, else by its source
/// address; an explicitly named fallback for the rest, or nobody (refused).
#[derive(Debug, Clone, Default)]
pub struct TransparentAgents {
    /// OS user id → agent id.
    pub by_uid: BTreeMap<u32, String>,
    /// Source network → agent id (agents in containers or other namespaces, whose sockets the
    /// proxy's namespace does not list).
    pub by_source: Vec<(IpNet, String)>,
    /// The agent of connections neither map names (`None`: they are refused).
    pub fallback: Option<String>,
}

/// Why a redirected connection has no agent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unknown {
    /// The socket belongs to a local user no entry maps.
    #[error("OS user {0} is not mapped to an agent (transparent.agents)")]
    Uid(u32),
    /// The socket belongs to the proxy's own user: a redirect loop, never served.
    #[error(
        "the connection comes from the proxy's own user ({0}): its traffic must never be redirected"
    )]
    Own(u32),
    /// Not a local socket, and its source address is in no mapped network.
    #[error("source address {0} is not mapped to an agent (transparent.agents)")]
    Source(IpAddr),
}

impl TransparentAgents {
    /// The agent of a connection whose agent-side socket is owned by `owner` (when the proxy's
    /// namespace lists it) and comes from `peer`. A local socket is judged by its user alone: a
    /// source address could be any local user's.
    pub fn agent_for(
        &self,
        owner: Option<u32>,
        own_uid: u32,
        peer: IpAddr,
    ) -> Result<&str, Unknown> {
        let found = match owner {
            Some(uid) if uid == own_uid => return Err(Unknown::Own(uid)),
            Some(uid) => self.by_uid.get(&uid).ok_or(Unknown::Uid(uid)),
            None => self
                .by_source
                .iter()
                .filter(|(net, _)| net.contains(&peer))
                .max_by_key(|(net, _)| net.prefix_len())
                .map(|(_, agent)| agent)
                .ok_or(Unknown::Source(peer)),
        };
        match (found, &self.fallback) {
            (Ok(agent), _) => Ok(agent),
            (Err(_), Some(fallback)) => Ok(fallback),
            (Err(unknown), None) => Err(unknown),
        }
    }

    /// The uids of every mapped user (for the printed firewall).
    pub fn uids(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_uid.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agents(fallback: Option<&str>) -> TransparentAgents {
        TransparentAgents {
            by_uid: BTreeMap::from([(1001, "coder".to_string())]),
            by_source: vec![
                ("10.200.0.0/16".parse().unwrap(), "fleet".to_string()),
                ("10.200.7.0/24".parse().unwrap(), "sandbox".to_string()),
            ],
            fallback: fallback.map(str::to_string),
        }
    }

    #[test]
    fn local_sockets_go_by_uid_others_by_the_narrowest_source_network() {
        let a = agents(None);
        let local: IpAddr = "10.200.7.9".parse().unwrap();
        assert_eq!(a.agent_for(Some(1001), 0, local), Ok("coder"));
        // A local user no entry maps is refused even from a mapped source address.
        assert_eq!(a.agent_for(Some(1002), 0, local), Err(Unknown::Uid(1002)));
        assert_eq!(a.agent_for(None, 0, local), Ok("sandbox"));
        assert_eq!(
            a.agent_for(None, 0, "10.200.1.1".parse().unwrap()),
            Ok("fleet")
        );
        let outside: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(a.agent_for(None, 0, outside), Err(Unknown::Source(outside)));
    }

    #[test]
    fn the_proxys_own_user_is_refused_even_with_a_fallback() {
        let a = agents(Some("guest"));
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(a.agent_for(Some(999), 999, peer), Err(Unknown::Own(999)));
        assert_eq!(a.agent_for(Some(1002), 999, peer), Ok("guest"));
    }
}
