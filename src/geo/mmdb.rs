//! A MaxMind DB (`.mmdb`) handed over whole in memory (the caller reads the file), read with the
//! `maxminddb` crate. GeoIP2/GeoLite2 and DB-IP write `country.iso_code`; ip-location-db writes a top-level `country_code`. An
//! address without a country of its own (anycast, some CDNs) takes its registered country.

use std::net::IpAddr;

use maxminddb::{PathElement, Reader};

use super::{CountrySource, Place, is_country_code};

/// Why a database could not be read.
#[derive(Debug, thiserror::Error)]
#[error("geo database {name}: {reason}")]
pub struct MmdbError {
    /// Where it came from (its file).
    pub name: String,
    /// What went wrong.
    pub reason: String,
}

/// A database read into memory.
pub struct MmdbSource {
    reader: Reader<Vec<u8>>,
}

impl MmdbSource {
    /// The database in `bytes`; `name` (its file) is only used in errors.
    pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<MmdbSource, MmdbError> {
        let reader = Reader::from_source(bytes).map_err(|e| MmdbError {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(MmdbSource { reader })
    }

    /// The database type its metadata names (`GeoIP2-Country`, ...).
    pub fn database_type(&self) -> &str {
        &self.reader.metadata.database_type
    }
}

impl CountrySource for MmdbSource {
    fn locate(&self, ip: IpAddr) -> Option<Place> {
        let result = self.reader.lookup(ip).ok()?;
        if !result.has_data() {
            return None;
        }
        // Only the fields needed are walked to; a record's many names are never decoded.
        let at = |path: &[PathElement<'_>]| result.decode_path::<&str>(path).ok().flatten();
        let country = at(&[PathElement::Key("country"), PathElement::Key("iso_code")])
            .or_else(|| at(&[PathElement::Key("country_code")]))
            .or_else(|| {
                at(&[
                    PathElement::Key("registered_country"),
                    PathElement::Key("iso_code"),
                ])
            })?;
        let country = country.to_ascii_uppercase();
        is_country_code(&country).then(|| Place {
            country,
            continent: at(&[PathElement::Key("continent"), PathElement::Key("code")])
                .map(String::from),
        })
    }
}
