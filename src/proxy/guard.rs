//! The network guard: which destination addresses the proxy may connect to. Pure, no I/O.
//!
//! Everything that is not globally routable is refused (loopback, private, link-local with the
//! cloud metadata address, CGNAT, unique-local, multicast, IPv4-mapped and friends), and so is the
//! proxy's own listening address, unless an operator allows a CIDR. The proxy's own address is
//! refused even then, so a request can never loop back into Gatehouse.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::IpNet;

/// Why an address is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The address belongs to a non-global range.
    #[error("{addr} is a {category} address")]
    NonGlobal {
        /// The refused address.
        addr: IpAddr,
        /// Which range it falls in.
        category: &'static str,
    },
    /// The address is one of the proxy's own listeners (the proxy's, the admin API's).
    #[error("{0} is the proxy's own listening address (the proxy or its admin API)")]
    OwnListener(SocketAddr),
}

/// Decides whether an address may be connected to.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allow: Vec<IpNet>,
    own: Vec<SocketAddr>,
}

impl AddressGuard {
    /// A guard that admits the non-global ranges in `allow`.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            allow,
            own: Vec::new(),
        }
    }

    /// Records one of the proxy's own listening addresses (the proxy's, the admin API's), refused
    /// whatever `allow` says.
    pub fn add_own_listener(&mut self, addr: SocketAddr) {
        self.own.push(addr);
    }

    /// Checks one destination.
    pub fn check(&self, dest: SocketAddr) -> Result<(), Refusal> {
        let ip = canonical(dest.ip());
        if ip.is_unspecified() {
            // The kernel routes 0.0.0.0 and :: to this host: never a destination, whatever is allowed.
            return Err(Refusal::NonGlobal {
                addr: dest.ip(),
                category: "unspecified (this host)",
            });
        }
        let category = non_global_category(dest.ip());
        for own in &self.own {
            if own.port() != dest.port() {
                continue;
            }
            // A wildcard listener answers on every local address; the non-global ones on its
            // port may be this very proxy.
            let ours = if own.ip().is_unspecified() {
                category.is_some()
            } else {
                canonical(own.ip()) == ip
            };
            if ours {
                return Err(Refusal::OwnListener(dest));
            }
        }
        let Some(category) = category else {
            return Ok(());
        };
        if self.allow.iter().any(|net| net.contains(&dest.ip())) {
            return Ok(());
        }
        Err(Refusal::NonGlobal {
            addr: dest.ip(),
            category,
        })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The non-global range `ip` falls in, or `None` for a globally routable address.
pub fn non_global_category(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_category(v4),
        IpAddr::V6(v6) => v6_category(v6),
    }
}

fn v4_category(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let category = match (a, b, c) {
        (0, _, _) => "this-network (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "CGNAT shared (100.64.0.0/10)",
        (127, _, _) => "loopback",
        (169, 254, _) => "link-local (169.254.0.0/16, cloud metadata)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignment (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    };
    Some(category)
}

fn v6_category(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let seg = ip.segments();
    let category = match seg[0] {
        0 if ip.to_ipv4_mapped().is_some() => "IPv4-mapped (::ffff:0:0/96)",
        0 if seg[..6] == [0; 6] => "IPv4-compatible (deprecated ::/96)",
        0x64 if seg[1] == 0xff9b => "NAT64 (64:ff9b::/96)",
        0x100 if seg[1..4] == [0; 3] => "discard-only (100::/64)",
        0x2001 if seg[1] == 0 => "Teredo (2001::/32)",
        0x2001 if seg[1] == 0xdb8 => "documentation (2001:db8::/32)",
        0x2001 if seg[1] < 0x200 => "IETF protocol assignment (2001::/23)",
        0x2002 => "6to4 (2002::/16)",
        s if s & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        s if s & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        s if s & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        s if s & 0xff00 == 0xff00 => "multicast",
        s if s & 0xe000 != 0x2000 => "not global unicast (outside 2000::/3)",
        _ => return None,
    };
    Some(category)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        SocketAddr::new(s.parse().unwrap(), 443)
    }

    #[test]
    fn classification_table() {
        let refused = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:db8::1",
            "2002:0a00:0001::1",
            "2001::1",
            "fec0::1",
            "::127.0.0.1",
        ];
        for ip in refused {
            assert!(
                non_global_category(ip.parse().unwrap()).is_some(),
                "{ip} should be refused"
            );
        }
        let global = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
        ];
        for ip in global {
            assert_eq!(
                non_global_category(ip.parse().unwrap()),
                None,
                "{ip} is global"
            );
        }
    }

    #[test]
    fn allowed_cidrs_open_exactly_their_range() {
        let guard = AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(guard.check(addr("127.0.0.1")).is_ok());
        assert!(guard.check(addr("10.0.0.1")).is_err());
        assert!(guard.check(addr("8.8.8.8")).is_ok());
        let err = guard.check(addr("169.254.169.254")).unwrap_err();
        assert!(err.to_string().contains("cloud metadata"), "{err}");
    }

    #[test]
    fn own_listener_is_refused_even_when_allowed() {
        let mut guard = AddressGuard::new(vec!["127.0.0.0/8".parse().unwrap()]);
        guard.add_own_listener("127.0.0.1:8080".parse().unwrap());
        assert!(matches!(
            guard.check("127.0.0.1:8080".parse().unwrap()),
            Err(Refusal::OwnListener(_))
        ));
        assert!(
            guard
                .check("[::ffff:127.0.0.1]:8080".parse().unwrap())
                .is_err()
        );
        assert!(guard.check("127.0.0.1:8081".parse().unwrap()).is_ok());

        let mut wildcard = AddressGuard::new(vec!["10.0.0.0/8".parse().unwrap()]);
        wildcard.add_own_listener("0.0.0.0:3128".parse().unwrap());
        assert!(wildcard.check("10.0.0.5:3128".parse().unwrap()).is_err());
        assert!(wildcard.check("10.0.0.5:443".parse().unwrap()).is_ok());
        assert!(
            wildcard
                .check("93.184.216.34:3128".parse().unwrap())
                .is_ok(),
            "a public host on the proxy's port number is someone else"
        );
    }

    #[test]
    fn unspecified_destinations_are_refused_even_when_allowed() {
        let guard = AddressGuard::new(vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()]);
        assert!(guard.check("0.0.0.0:80".parse().unwrap()).is_err());
        assert!(guard.check("[::]:80".parse().unwrap()).is_err());
        assert!(guard.check("10.1.1.1:80".parse().unwrap()).is_ok());
    }
}
