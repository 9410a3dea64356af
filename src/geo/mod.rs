//! Where the bytes go: the country of the address the proxy really connects to, from a CIDR table
//! in config (first) and a MaxMind DB file (GeoLite2/GeoIP2 Country, DB-IP Lite, ip-location-db),
//! behind one small trait. An address no source knows is `unknown`, which counts as outside every
//! region.

mod mmdb;
mod regions;
mod table;

#[cfg(test)]
pub(crate) mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

pub use mmdb::{MmdbError, MmdbSource};
pub use regions::{
    ADEQUATE, EEA_ONLY, EU, Residency, adequate, continent_of, in_eea, in_eu, is_country_code,
};
pub use table::CountryTable;

/// A source of truth for IP → country.
pub trait CountrySource: Send + Sync {
    /// The country (ISO 3166-1 alpha-2) and continent code of `ip`, if known.
    fn locate(&self, ip: IpAddr) -> Option<Place>;
}

/// What a source knows of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// ISO 3166-1 alpha-2, upper-case.
    pub country: String,
    /// Continent code (`EU`, `NA`, ...), when known.
    pub continent: Option<String>,
}

/// Everything rules read about a destination's location.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// ISO 3166-1 alpha-2, or `unknown`.
    pub country: String,
    /// Continent code, or `unknown`.
    pub continent: String,
    /// In the EU.
    pub eu: bool,
    /// In the EEA (EU included).
    pub eea: bool,
    /// Covered by a GDPR adequacy decision.
    pub adequate: bool,
    /// Whether any source knew the address.
    pub known: bool,
}

impl Location {
    /// The location of an address no source knows.
    pub fn unknown() -> Location {
        Location {
            country: "unknown".into(),
            continent: "unknown".into(),
            ..Location::default()
        }
    }

    /// The location of an address known to be in `country` (ISO 3166-1 alpha-2).
    pub fn in_country(country: &str) -> Location {
        let country = country.to_ascii_uppercase();
        if !is_country_code(&country) {
            return Location::unknown();
        }
        Location::of(Place {
            country,
            continent: None,
        })
    }

    fn of(place: Place) -> Location {
        let continent = place
            .continent
            .or_else(|| continent_of(&place.country).map(String::from))
            .unwrap_or_else(|| "unknown".into());
        Location {
            eu: in_eu(&place.country),
            eea: in_eea(&place.country),
            adequate: adequate(&place.country),
            country: place.country,
            continent,
            known: true,
        }
    }
}

/// The table from config, then the database file (swapped in whole when it is reloaded).
pub struct Geo {
    table: CountryTable,
    database: ArcSwapOption<MmdbSource>,
}

impl Geo {
    /// A locator over `table` and, when given, a database.
    pub fn new(table: CountryTable, database: Option<MmdbSource>) -> Geo {
        Geo {
            table,
            database: ArcSwapOption::new(database.map(Arc::new)),
        }
    }

    /// Where `ip` is.
    pub fn locate(&self, ip: IpAddr) -> Location {
        if let Some(place) = self.table.locate(ip) {
            return Location::of(place);
        }
        let database = self.database.load();
        match database.as_deref().and_then(|db| db.locate(ip)) {
            Some(place) => Location::of(place),
            None => Location::unknown(),
        }
    }

    /// Where a destination with these addresses is. The connection may use any of them (the
    /// first that answers, or a pooled connection), so a region holds only when it holds for
    /// every one: one address outside makes the destination outside. No address: unknown.
    pub fn locate_all(&self, ips: &[IpAddr]) -> Location {
        let Some(first) = ips.first() else {
            return Location::unknown();
        };
        let mut location = self.locate(*first);
        for other in &ips[1..] {
            let there = self.locate(*other);
            location.eu &= there.eu;
            location.eea &= there.eea;
            location.adequate &= there.adequate;
            location.known &= there.known;
            if there.country != location.country {
                location.country = "mixed".into();
            }
        }
        location
    }

    /// Whether a database file is in use.
    pub fn has_database(&self) -> bool {
        self.database.load().is_some()
    }

    /// Puts `database` in use for every lookup from now on (a reloaded file).
    pub fn replace_database(&self, database: MmdbSource) {
        self.database.store(Some(Arc::new(database)));
    }
}
