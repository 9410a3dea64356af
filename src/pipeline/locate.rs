//! Step 6 seen from the policy: the checked address the proxy connects to, where it is, and
//! whether it is in a private range, as the `destination` facts rules read.

use std::net::SocketAddr;

use crate::config::GeoConfig;
use crate::geo::{CountryTable, Geo, Location, MmdbError, MmdbSource};
use crate::policy::DestinationFacts;
use crate::proxy::guard::non_global_category;

/// The locator of `config`: its table, then its database file (if any).
pub fn build_geo(config: &GeoConfig) -> Result<Geo, MmdbError> {
    let database = config
        .database
        .as_deref()
        .map(MmdbSource::open)
        .transpose()?;
    Ok(Geo::new(
        CountryTable::new(config.networks.clone()),
        database,
    ))
}

/// The destination facts of the checked addresses the proxy may connect to (empty: not resolved
/// yet, unknown everywhere). The connection may use any of them (the first that answers, or a
/// pooled connection), so a region holds only when it holds for every one: an address outside
/// makes the destination outside.
pub fn destination_facts(addresses: &[SocketAddr], geo: &Geo) -> DestinationFacts {
    let Some(first) = addresses.first() else {
        return with_location(String::new(), false, Location::unknown());
    };
    let mut location = geo.locate(first.ip());
    for other in &addresses[1..] {
        let there = geo.locate(other.ip());
        location.eu &= there.eu;
        location.eea &= there.eea;
        location.adequate &= there.adequate;
        location.known &= there.known;
        if there.country != location.country {
            location.country = "mixed".into();
        }
    }
    with_location(
        first.ip().to_string(),
        addresses
            .iter()
            .any(|a| non_global_category(a.ip()).is_some()),
        location,
    )
}

/// Destination facts for a country named outright (policy tests, `explain --country`).
pub fn destination_in(ip: String, country: &str) -> DestinationFacts {
    with_location(ip, false, Location::in_country(country))
}

fn with_location(ip: String, private: bool, l: Location) -> DestinationFacts {
    DestinationFacts {
        ip,
        private,
        country: l.country,
        continent: l.continent,
        eu: l.eu,
        eea: l.eea,
        adequate: l.adequate,
        known: l.known,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_holds_only_when_every_address_is_in_it() {
        let geo = Geo::new(
            CountryTable::new(vec![
                ("10.0.0.1/32".parse().expect("net"), "DE".into()),
                ("10.0.0.2/32".parse().expect("net"), "FR".into()),
                ("10.0.0.3/32".parse().expect("net"), "US".into()),
            ]),
            None,
        );
        let at = |ips: &[&str]| {
            let addresses: Vec<SocketAddr> = ips
                .iter()
                .map(|ip| SocketAddr::new(ip.parse().expect("ip"), 443))
                .collect();
            destination_facts(&addresses, &geo)
        };
        let eu = at(&["10.0.0.1", "10.0.0.2"]);
        assert!(eu.eu && eu.known && eu.country == "mixed");
        let split = at(&["10.0.0.1", "10.0.0.3"]);
        assert!(
            !split.eu && !split.eea,
            "one address outside makes the destination outside"
        );
        let unknown = at(&["10.0.0.1", "10.9.9.9"]);
        assert!(!unknown.known && !unknown.eu);
        assert_eq!(at(&["10.0.0.1"]).country, "DE");
        assert_eq!(at(&[]).country, "unknown");
    }
}
