//! What the kernel knows about a redirected connection: where the agent really dialled
//! (`SO_ORIGINAL_DST` / `IP6T_SO_ORIGINAL_DST`, kept by conntrack when nftables or iptables
//! REDIRECT/DNAT rewrote the destination) and which OS user owns the agent's end of it (the `uid`
//! column of `/proc/self/net/tcp` and `tcp6`: the proxy's own network namespace, where a local
//! agent's socket lives).

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use nix::sys::socket::sockopt::{Ip6tOriginalDst, OriginalDst};
use nix::sys::socket::{SockaddrIn, SockaddrIn6, getsockopt};
use tokio::net::TcpStream;

/// The socket tables of the proxy's own network namespace (`/proc/net` follows the reading
/// process; `self` says so explicitly).
const SOCKET_TABLES: [&str; 2] = ["/proc/self/net/tcp", "/proc/self/net/tcp6"];

/// Lines of a socket table read at most, so a host with very many sockets cannot make one
/// look-up unbounded.
const MAX_TABLE_LINES: usize = 1_000_000;

/// The destination the agent dialled before a NAT rule sent the connection to the proxy. An
/// IPv4 connection (also one accepted on a dual-stack socket) asks the IPv4 table, an IPv6 one
/// the IPv6 table.
pub fn original_destination(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    let local = stream.local_addr()?;
    let v4 = match local.ip() {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    };
    if v4 {
        let raw = getsockopt(stream, OriginalDst)?;
        Ok(SocketAddr::V4(SocketAddrV4::from(SockaddrIn::from(raw))))
    } else {
        let raw = getsockopt(stream, Ip6tOriginalDst)?;
        Ok(SocketAddr::V6(SocketAddrV6::from(SockaddrIn6::from(raw))))
    }
}

/// The uid owning the local socket whose own address is `peer` and whose remote address is
/// `dialled`: the agent's end of a redirected connection. `None` when no such socket is in the
/// proxy's namespace (the agent is in another namespace or container, or already gone).
pub fn socket_owner(peer: SocketAddr, dialled: SocketAddr) -> std::io::Result<Option<u32>> {
    let (peer, dialled) = (canonical(peer), canonical(dialled));
    for table in SOCKET_TABLES {
        let file = match std::fs::File::open(table) {
            Ok(file) => file,
            // A kernel without IPv6 has no tcp6 table.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines().skip(1).take(MAX_TABLE_LINES) {
            if let Some(uid) = owner_in_line(&line?, peer, dialled) {
                return Ok(Some(uid));
            }
        }
    }
    Ok(None)
}

/// The uid of one table line when its local and remote addresses are `peer` and `dialled`.
fn owner_in_line(line: &str, peer: SocketAddr, dialled: SocketAddr) -> Option<u32> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let (local, remote, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
    if parse_entry(local)? != peer || parse_entry(remote)? != dialled {
        return None;
    }
    uid.parse().ok()
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6): the address as the kernel prints
/// it, each 32-bit word in the host's byte order.
fn parse_entry(entry: &str) -> Option<SocketAddr> {
    let (addr, port) = entry.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Vec<[u8; 4]> = (0..addr.len() / 8)
        .map(|i| addr.get(i * 8..i * 8 + 8))
        .map(|word| word.and_then(|w| u32::from_str_radix(w, 16).ok()))
        .map(|word| word.map(u32::to_ne_bytes))
        .collect::<Option<_>>()?;
    let ip = match (addr.len(), words.as_slice()) {
        (8, [word]) => IpAddr::V4(Ipv4Addr::from(*word)),
        (32, [a, b, c, d]) => {
            let mut octets = [0u8; 16];
            for (i, word) in [a, b, c, d].into_iter().enumerate() {
                octets[i * 4..i * 4 + 4].copy_from_slice(word);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(canonical(SocketAddr::new(ip, port)))
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps (a dual-stack socket prints it so).
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(octets: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(octets))
    }

    #[test]
    fn the_agents_end_is_found_by_both_addresses_and_read_in_host_byte_order() {
        let peer: SocketAddr = "10.77.0.1:46112".parse().unwrap();
        let dialled: SocketAddr = "10.77.0.1:443".parse().unwrap();
        let ours = format!(
            "   1: {}:1F91 {}:B420 01 00000000:00000000 00:00000000 00000000     0        0 1",
            word([127, 0, 0, 1]),
            word([10, 77, 0, 1])
        );
        let agents = format!(
            "   2: {}:B420 {}:01BB 01 00000000:00000000 00:00000000 00000000 65534        0 2",
            word([10, 77, 0, 1]),
            word([10, 77, 0, 1])
        );
        assert_eq!(owner_in_line(&ours, peer, dialled), None);
        assert_eq!(owner_in_line(&agents, peer, dialled), Some(65534));
        assert_eq!(owner_in_line(&agents, dialled, peer), None);
    }

    #[test]
    fn ipv6_and_mapped_entries_parse() {
        let v6: Ipv6Addr = "fd77::1".parse().unwrap();
        let o = v6.octets();
        let hex: String = o
            .chunks(4)
            .map(|c| word([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(
            parse_entry(&format!("{hex}:01BB")),
            Some("[fd77::1]:443".parse().unwrap())
        );
        let mapped: Ipv6Addr = "::ffff:10.0.0.7".parse().unwrap();
        let o = mapped.octets();
        let hex: String = o
            .chunks(4)
            .map(|c| word([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(
            parse_entry(&format!("{hex}:0050")),
            Some("10.0.0.7:80".parse().unwrap())
        );
        assert_eq!(parse_entry("zz:0050"), None);
        assert_eq!(parse_entry("0100007F"), None);
    }
}
