//! The CIDR → country table from config: private networks, internal gateways, tests. It overrides
//! the database; the most specific network wins.

use std::net::IpAddr;

use ipnet::IpNet;

use super::{CountrySource, Place};

/// Networks and their countries, most specific first.
#[derive(Debug, Clone, Default)]
pub struct CountryTable {
    entries: Vec<(IpNet, String)>,
}

impl CountryTable {
    /// A table of `(network, country)`; countries are ISO 3166-1 alpha-2, upper-case.
    pub fn new(mut entries: Vec<(IpNet, String)>) -> CountryTable {
        entries.sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        CountryTable { entries }
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl CountrySource for CountryTable {
    fn locate(&self, ip: IpAddr) -> Option<Place> {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.entries
            .iter()
            .find(|(net, _)| net.contains(&ip))
            .map(|(_, country)| Place {
                country: country.clone(),
                continent: None,
            })
    }
}
