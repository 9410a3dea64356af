//! Step 6 seen from the policy: the checked address the proxy connects to, where it is, and
//! whether it is in a private range, as the `destination` facts rules read.

use std::net::IpAddr;

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

/// The destination facts of `ip` (none: a destination not resolved yet, unknown everywhere).
pub fn destination_facts(ip: Option<IpAddr>, geo: &Geo) -> DestinationFacts {
    let location = ip.map_or_else(Location::unknown, |ip| geo.locate(ip));
    with_location(
        ip.map(|ip| ip.to_string()).unwrap_or_default(),
        ip.is_some_and(|ip| non_global_category(ip).is_some()),
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
