//! A MaxMind DB file (`.mmdb`) read whole into memory with the `maxminddb` crate. GeoIP2/GeoLite2
//! and DB-IP write `country.iso_code`; ip-location-db writes a top-level `country_code`. An
//! address without a country of its own (anycast, some CDNs) takes its registered country.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use maxminddb::{PathElement, Reader};

use super::{CountrySource, Place, is_country_code};

/// Why a database could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("geo database {path}: {reason}")]
pub struct MmdbError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// An opened database file.
pub struct MmdbSource {
    reader: Reader<Vec<u8>>,
    path: PathBuf,
    modified: Option<SystemTime>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl MmdbSource {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<MmdbSource, MmdbError> {
        let modified = modified(path);
        let reader = Reader::open_readfile(path).map_err(|e| MmdbError {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Ok(MmdbSource {
            reader,
            path: path.to_path_buf(),
            modified,
        })
    }

    /// The file reopened, when its modification time changed since it was opened.
    pub fn reopen_if_changed(&self) -> Result<Option<MmdbSource>, MmdbError> {
        if modified(&self.path) == self.modified {
            return Ok(None);
        }
        MmdbSource::open(&self.path).map(Some)
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
