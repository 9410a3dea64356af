//! Where a brokered credential's secret lives: an environment variable of the proxy (read once,
//! at start) or a file of the proxy, read again when it changes, so a rotated key takes effect
//! without a restart. The value never prints ([`Secret`]).

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::secret::Secret;

/// How often a secret file's metadata is looked at, at most.
const RECHECK: Duration = Duration::from_secs(1);

/// A secret and where it comes from.
#[derive(Debug)]
pub enum SecretSource {
    /// An environment variable of the proxy, read when the config loaded.
    Env {
        /// Its value (`gatehouse exec` keeps the variable from the agent: `Config::secret_vars`).
        value: Secret,
    },
    /// A file of the proxy; its trimmed contents, read again when its size or time changes.
    File {
        /// The file.
        path: PathBuf,
        /// The last contents read, and when that was checked.
        cache: Mutex<FileCache>,
    },
}

/// The contents of a secret file as last read.
#[derive(Debug)]
pub struct FileCache {
    checked: Instant,
    stamp: Option<(SystemTime, u64)>,
    value: Secret,
}

/// Why a secret file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// It could not be read.
    #[error("the secret file {path} cannot be read: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// It is empty.
    #[error("the secret file {0} is empty")]
    Empty(PathBuf),
    /// Other users can read it: an agent running as another user would read the key.
    #[error("the secret file {0} can be read by other users: `chmod 600` it")]
    Exposed(PathBuf),
    /// It holds characters a header or query cannot carry.
    #[error("the secret holds characters a header or URL cannot carry")]
    NotAHeader,
}

impl SecretSource {
    /// A secret file, read now (a config naming an unreadable or empty file does not load).
    pub fn file(path: PathBuf) -> Result<SecretSource, SourceError> {
        let (stamp, value) = read(&path)?;
        let cache = FileCache {
            checked: Instant::now(),
            stamp,
            value,
        };
        Ok(SecretSource::File {
            path,
            cache: Mutex::new(cache),
        })
    }

    /// The secret as it is now. A file that became unreadable or empty fails the request (the
    /// proxy never forwards with a stale key it was told to replace, nor without one).
    pub fn current(&self) -> Result<Secret, SourceError> {
        match self {
            SecretSource::Env { value } => Ok(value.clone()),
            SecretSource::File { path, cache } => {
                let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.checked.elapsed() < RECHECK {
                    return Ok(cache.value.clone());
                }
                let stamp = stamp_of(path)?;
                if stamp != cache.stamp {
                    let (stamp, value) = read(path)?;
                    cache.stamp = stamp;
                    cache.value = value;
                }
                cache.checked = Instant::now();
                Ok(cache.value.clone())
            }
        }
    }
}

fn stamp_of(path: &PathBuf) -> Result<Option<(SystemTime, u64)>, SourceError> {
    let meta = std::fs::metadata(path).map_err(|e| SourceError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(meta.modified().ok().map(|m| (m, meta.len())))
}

fn read(path: &PathBuf) -> Result<(Option<(SystemTime, u64)>, Secret), SourceError> {
    use std::os::unix::fs::PermissionsExt as _;
    let stamp = stamp_of(path)?;
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o777);
    if mode & 0o077 != 0 {
        return Err(SourceError::Exposed(path.clone()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| SourceError::Unreadable {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(SourceError::Empty(path.clone()));
    }
    Ok((stamp, Secret::new(value.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_file_is_read_again_and_an_emptied_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "sk-first\n").unwrap();
        assert!(
            matches!(
                SecretSource::file(path.clone()),
                Err(SourceError::Exposed(_))
            ),
            "a key others can read is refused"
        );
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let source = SecretSource::file(path.clone()).unwrap();
        assert_eq!(source.current().unwrap().expose(), "sk-first");
        std::fs::write(&path, "sk-second-longer").unwrap();
        if let SecretSource::File { cache, .. } = &source {
            cache.lock().unwrap().checked = Instant::now() - RECHECK * 2;
        }
        assert_eq!(source.current().unwrap().expose(), "sk-second-longer");
        std::fs::write(&path, "  \n").unwrap();
        if let SecretSource::File { cache, .. } = &source {
            cache.lock().unwrap().checked = Instant::now() - RECHECK * 2;
        }
        assert!(matches!(source.current(), Err(SourceError::Empty(_))));
        assert!(SecretSource::file(dir.path().join("missing")).is_err());
    }
}
