//! The geo database file: read whole when the proxy starts, and read again when its modification
//! time changes while the proxy runs. A file that no longer reads keeps the database in use.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::geo::{CountryTable, Geo, MmdbError, MmdbSource};

/// A database file and the modification time it was last read at.
pub struct GeoFile {
    path: PathBuf,
    modified: std::sync::Mutex<Option<SystemTime>>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read(path: &Path) -> Result<MmdbSource, MmdbError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| MmdbError {
        name: name.clone(),
        reason: e.to_string(),
    })?;
    MmdbSource::from_bytes(bytes, &name)
}

impl GeoFile {
    /// Reads `path`: the file to watch and its database.
    pub fn open(path: &Path) -> Result<(GeoFile, MmdbSource), MmdbError> {
        let at = modified(path);
        let database = read(path)?;
        let file = GeoFile {
            path: path.to_path_buf(),
            modified: std::sync::Mutex::new(at),
        };
        Ok((file, database))
    }

    /// Reads the file again into `geo` when its modification time changed since it was read;
    /// `Ok(false)` when unchanged. A file that does not read keeps the database in use.
    pub fn reload_into(&self, geo: &Geo) -> Result<bool, MmdbError> {
        let now = modified(&self.path);
        let mut seen = self
            .modified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now == *seen {
            return Ok(false);
        }
        let database = read(&self.path)?;
        *seen = now;
        geo.replace_database(database);
        Ok(true)
    }
}

/// The locator of the config's `geo` section: its table, then its database file (if any), and
/// the file to watch.
pub fn build_geo(config: &crate::config::GeoConfig) -> Result<(Geo, Option<GeoFile>), MmdbError> {
    let opened = config.database.as_deref().map(GeoFile::open).transpose()?;
    let (file, database) = match opened {
        Some((file, database)) => (Some(file), Some(database)),
        None => (None, None),
    };
    let geo = Geo::new(CountryTable::new(config.networks.clone()), database);
    Ok((geo, file))
}

/// Reads the database file again when it changes; a file that no longer reads keeps the one in
/// use (and says so once per change).
pub async fn watch_geo(
    file: GeoFile,
    geo: std::sync::Arc<Geo>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let file = std::sync::Arc::new(file);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let (file, geo) = (file.clone(), geo.clone());
        match tokio::task::spawn_blocking(move || file.reload_into(&geo)).await {
            Ok(Ok(true)) => {
                tracing::info!("geo database reloaded");
                last_error = None;
            }
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                let message = e.to_string();
                if last_error.as_deref() != Some(message.as_str()) {
                    tracing::error!(error = %message, "geo database change rejected; the database in use stays");
                    last_error = Some(message);
                }
            }
            Err(e) => tracing::error!(error = %e, "geo database reload failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::geo::tests::test_database;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn a_changed_file_is_reopened_and_a_broken_one_keeps_the_current() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("geo.mmdb");
        std::fs::copy(test_database(), &path).expect("copy");
        let (file, database) = GeoFile::open(&path).expect("opens");
        let geo = Geo::new(CountryTable::default(), Some(database));
        assert!(!file.reload_into(&geo).expect("unchanged"));
        std::fs::write(&path, b"not a database").expect("write");
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert!(file.reload_into(&geo).is_err());
        assert_eq!(
            geo.locate(ip("89.160.20.128")).country,
            "SE",
            "the old database stays"
        );
    }
}
