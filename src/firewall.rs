//! `gatehouse firewall`: the nftables ruleset that makes the gate mandatory for agent users. Their
//! outbound TCP to ports 80 and 443 is sent to the transparent listener (DNAT in the `output`
//! hook, so only traffic of this machine's agent users, matched by `meta skuid`); they may reach
//! the proxy's own listeners on loopback and the DNS resolvers named; every other packet they
//! send is dropped, IPv4 and IPv6. The proxy's user is never an agent user (root neither), so
//! the proxy's own connections are never redirected into itself.
//!
//! The ruleset lives in a table of its own (`inet gatehouse`) and replaces it whole when loaded
//! again (`nft -f`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::Config;

/// The table the ruleset owns.
pub const TABLE: &str = "gatehouse";

/// Why no ruleset can be printed.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// The config has no transparent listener to redirect to.
    #[error("the config has no `transparent:` section: there is no listener to redirect to")]
    NoListener,
    /// No agent user is named (neither on the command line nor in `transparent.agents`).
    #[error("no agent user: name them with --agent-user or in transparent.agents (users, uids)")]
    NoAgents,
    /// An agent user that does not exist.
    #[error("there is no OS user `{0}` on this machine")]
    UnknownUser(String),
    /// An agent user whose traffic must never be redirected.
    #[error(
        "`{0}` (uid {1}) cannot be an agent user: it is root or the user printing this ruleset \
         (run `gatehouse firewall` as the proxy's user or root; the proxy's own connections must \
         never be redirected into itself)"
    )]
    Forbidden(String, u32),
    /// No transparent listener local traffic can be redirected to.
    #[error(
        "transparent.listen has no loopback or wildcard address: local traffic can be redirected \
         to those only (other addresses serve containers, through DNAT rules of your own)"
    )]
    Unreachable,
}

/// What the ruleset is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallPlan {
    /// The agent users' uids.
    pub agent_uids: BTreeSet<u32>,
    /// Where IPv4 web traffic is redirected (`None`: dropped).
    pub redirect_v4: Option<(Ipv4Addr, u16)>,
    /// Where IPv6 web traffic is redirected (`None`: dropped).
    pub redirect_v6: Option<(Ipv6Addr, u16)>,
    /// The proxy's listeners agents may reach (forward proxy, transparent, gateway), as loopback
    /// addresses.
    pub proxy: BTreeSet<SocketAddr>,
    /// Resolvers agents may send DNS to.
    pub dns: Vec<IpAddr>,
}

/// The plan for `config`'s listeners, the agent users named on the command line (names or
/// numeric uids) and those of `transparent.agents`, and the resolvers allowed. `own_uid` (the
/// user printing the ruleset) and root are refused as agent users.
pub fn plan(
    config: &Config,
    agent_users: &[String],
    dns: &[IpAddr],
    own_uid: u32,
) -> Result<FirewallPlan, FirewallError> {
    let transparent = config
        .transparent
        .as_ref()
        .ok_or(FirewallError::NoListener)?;
    let mut agent_uids = BTreeSet::new();
    for user in agent_users {
        let uid = match user.parse::<u32>() {
            Ok(uid) => uid,
            Err(_) => nix::unistd::User::from_name(user)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw())
                .ok_or_else(|| FirewallError::UnknownUser(user.clone()))?,
        };
        agent_uids.insert(uid);
    }
    agent_uids.extend(transparent.agents.uids());
    if let Some(uid) = agent_uids.iter().find(|uid| **uid == 0 || **uid == own_uid) {
        return Err(FirewallError::Forbidden(uid.to_string(), *uid));
    }
    if agent_uids.is_empty() {
        return Err(FirewallError::NoAgents);
    }
    let mut redirect_v4 = None;
    let mut redirect_v6 = None;
    let mut proxy = BTreeSet::new();
    // Listeners on other addresses are for agents in containers, whose traffic arrives through
    // the operator's own `prerouting` DNAT.
    for addr in &transparent.listen {
        if let Some((v4, v6)) = loopback_of(*addr) {
            redirect_v4 = redirect_v4.or(v4.map(|ip| (ip, addr.port())));
            redirect_v6 = redirect_v6.or(v6.map(|ip| (ip, addr.port())));
        }
    }
    if redirect_v4.is_none() && redirect_v6.is_none() {
        return Err(FirewallError::Unreachable);
    }
    // The base-URL gateway is a way in too: agents may reach it like the forward proxy.
    let gateway = config.gateway.as_ref().map(|g| g.listen);
    for addr in transparent
        .listen
        .iter()
        .chain([&config.listen])
        .chain(&gateway)
    {
        if let Some((v4, v6)) = loopback_of(*addr) {
            proxy.extend(v4.map(|ip| SocketAddr::new(IpAddr::V4(ip), addr.port())));
            proxy.extend(v6.map(|ip| SocketAddr::new(IpAddr::V6(ip), addr.port())));
        }
    }
    Ok(FirewallPlan {
        agent_uids,
        redirect_v4,
        redirect_v6,
        proxy,
        dns: dns.to_vec(),
    })
}

/// The loopback addresses on which local processes reach a listener bound to `addr` (IPv4,
/// IPv6); `None` for a listener local traffic cannot be redirected to.
fn loopback_of(addr: SocketAddr) -> Option<(Option<Ipv4Addr>, Option<Ipv6Addr>)> {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => Some((Some(Ipv4Addr::LOCALHOST), None)),
        IpAddr::V4(ip) if ip.is_loopback() => Some((Some(ip), None)),
        // A wildcard IPv6 socket is dual-stack on Linux unless told otherwise.
        IpAddr::V6(ip) if ip.is_unspecified() => {
            Some((Some(Ipv4Addr::LOCALHOST), Some(Ipv6Addr::LOCALHOST)))
        }
        IpAddr::V6(ip) if ip.is_loopback() => Some((None, Some(ip))),
        _ => None,
    }
}

/// The ruleset, ready for `nft -f`.
pub fn ruleset(plan: &FirewallPlan) -> String {
    let uids = set(plan.agent_uids.iter().map(u32::to_string));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Gatehouse transparent mode: agent users (uids {uids}) reach the network only through \
         the proxy.\n# Load with `nft -f`; it replaces the table `inet {TABLE}` whole.\n\
         table inet {TABLE}\ndelete table inet {TABLE}\n\ntable inet {TABLE} {{"
    );
    let _ = writeln!(
        out,
        "  # Their web traffic goes to the transparent listener (the proxy's own user is never \
         matched).\n  chain web_to_proxy {{\n    type nat hook output priority -100; policy accept;"
    );
    if let Some((ip, port)) = plan.redirect_v4 {
        let _ = writeln!(
            out,
            "    meta skuid {uids} meta nfproto ipv4 tcp dport {{ 80, 443 }} dnat ip to {ip}:{port}"
        );
    }
    if let Some((ip, port)) = plan.redirect_v6 {
        let _ = writeln!(
            out,
            "    meta skuid {uids} meta nfproto ipv6 tcp dport {{ 80, 443 }} dnat ip6 to [{ip}]:{port}"
        );
    }
    let _ = writeln!(
        out,
        "  }}\n\n  chain egress {{\n    type filter hook output priority 0; policy accept;\n    \
         meta skuid {uids} jump agent_egress\n  }}\n\n  # What an agent user may send: to the proxy on \
         loopback, DNS to the named resolvers; nothing else.\n  chain agent_egress {{"
    );
    for addr in &plan.proxy {
        let family = if addr.is_ipv4() { "ip" } else { "ip6" };
        let _ = writeln!(
            out,
            "    {family} daddr {} tcp dport {} accept",
            addr.ip(),
            addr.port()
        );
    }
    if plan.dns.is_empty() {
        let _ = writeln!(out, "    # No DNS: no --dns resolver was named.");
    }
    for resolver in &plan.dns {
        let family = if resolver.is_ipv4() { "ip" } else { "ip6" };
        let _ = writeln!(
            out,
            "    {family} daddr {resolver} meta l4proto {{ tcp, udp }} th dport 53 accept"
        );
    }
    let _ = writeln!(out, "    counter drop\n  }}\n}}");
    out
}

/// `{ a, b }`, or the one element alone.
fn set(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    match items.as_slice() {
        [one] => one.clone(),
        _ => format!("{{ {} }}", items.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(listen: &str) -> Config {
        let yaml = format!(
            "listen: 127.0.0.1:8080\nidentity:\n  agents:\n    - id: coder\n      token_env: PATH\n\
             transparent:\n  listen: {listen}\n  agents:\n    - agent: coder\n      uids: [4242]\n\
             gateway:\n  listen: 127.0.0.1:8090\n  allow_anonymous: true\n"
        );
        Config::from_yaml(&yaml, "t.yaml").unwrap()
    }

    #[test]
    fn agents_are_redirected_to_the_listener_and_cut_off_elsewhere() {
        let config = config("'127.0.0.1:8082, [::1]:8082'");
        let dns = ["10.0.0.53".parse().unwrap()];
        let plan = plan(&config, &["4343".into()], &dns, 1000).unwrap();
        let rules = ruleset(&plan);
        for line in [
            "meta skuid { 4242, 4343 } meta nfproto ipv4 tcp dport { 80, 443 } dnat ip to 127.0.0.1:8082",
            "meta skuid { 4242, 4343 } meta nfproto ipv6 tcp dport { 80, 443 } dnat ip6 to [::1]:8082",
            "meta skuid { 4242, 4343 } jump agent_egress",
            "ip daddr 127.0.0.1 tcp dport 8080 accept",
            "ip daddr 127.0.0.1 tcp dport 8082 accept",
            "ip daddr 127.0.0.1 tcp dport 8090 accept",
            "ip6 daddr ::1 tcp dport 8082 accept",
            "ip daddr 10.0.0.53 meta l4proto { tcp, udp } th dport 53 accept",
            "counter drop",
        ] {
            assert!(rules.contains(line), "{line}\n{rules}");
        }
        assert!(rules.starts_with("# Gatehouse"));
    }

    #[test]
    fn root_the_printing_user_unknown_users_and_unreachable_listeners_are_refused() {
        let config = config("127.0.0.1:8082");
        assert!(matches!(
            plan(&config, &["0".into()], &[], 1000),
            Err(FirewallError::Forbidden(..))
        ));
        assert!(matches!(
            plan(&config, &["1000".into()], &[], 1000),
            Err(FirewallError::Forbidden(..))
        ));
        assert!(matches!(
            plan(&config, &["no-such-user-here".into()], &[], 1000),
            Err(FirewallError::UnknownUser(_))
        ));
        let only_v4 = ruleset(&plan(&config, &[], &[], 1000).unwrap());
        assert!(!only_v4.contains("nfproto ipv6"), "{only_v4}");
        assert!(
            only_v4.contains("meta skuid 4242 jump agent_egress"),
            "{only_v4}"
        );
        let both = self::config("'127.0.0.1:8082, 10.78.0.1:8082'");
        let rules = ruleset(&plan(&both, &[], &[], 1000).unwrap());
        assert!(rules.contains("dnat ip to 127.0.0.1:8082"), "{rules}");
        assert!(!rules.contains("10.78.0.1"), "{rules}");
        let far = self::config("192.0.2.1:8082");
        assert!(matches!(
            plan(&far, &[], &[], 1000),
            Err(FirewallError::Unreachable)
        ));
    }
}
