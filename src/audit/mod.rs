//! The audit trail: every policy decision as one JSON line, chained to the previous line by
//! SHA-256, so a removed, reordered or edited line is detectable (`gatehouse audit verify`). The
//! only writer of audit output.

mod chain;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

pub use chain::{GENESIS, VerifyError, VerifyReport, verify_file};

/// One decision, as recorded. Never holds a body, a header value, a query or a credential.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionRecord {
    /// RFC 3339 time of the decision.
    pub time: String,
    /// Decision id (also sent to the agent on refusals).
    pub decision: String,
    /// Request id (the same for the connect and request decisions of a plain-HTTP request).
    pub request: String,
    /// Agent id.
    pub agent: String,
    /// Team.
    pub team: Option<String>,
    /// Environment.
    pub env: Option<String>,
    /// Execution id.
    pub execution: Option<String>,
    /// The trigger judged.
    pub trigger: String,
    /// Method (`CONNECT` for tunnels).
    pub method: String,
    /// Destination host.
    pub host: String,
    /// Destination port.
    pub port: u16,
    /// Path shape (identifiers replaced by `*`).
    pub path: String,
    /// The checked address the proxy connects to.
    pub destination: String,
    /// `allow`, `deny` or `hold`.
    pub effect: String,
    /// The rules that decided (empty: the default deny).
    pub rules: Vec<String>,
    /// Monitor-mode rules that applied.
    pub monitored: Vec<String>,
    /// Why, in words (the agent sees the same on refusals).
    pub reason: String,
    /// Content hash of the policies that judged.
    pub policy_version: String,
    /// Git commit of the policy folder, when it is a git checkout.
    pub policy_commit: Option<String>,
    /// Microseconds the policy step took.
    pub policy_us: u64,
}

/// Why the audit trail could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened, read or written.
    #[error("audit file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file exists but its last record cannot be chained to.
    #[error("audit file {path}: {reason}; run `gatehouse audit verify` on it, or move it aside")]
    Broken {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

struct Writer {
    file: File,
    last_hash: String,
}

/// The append-only, hash-chained audit file.
pub struct AuditLog {
    path: PathBuf,
    writer: Mutex<Writer>,
}

impl AuditLog {
    /// Opens (or creates) `path` and continues the chain from its last record.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let last_hash = match std::fs::read_to_string(path) {
            Ok(text) => chain::last_hash(&text).map_err(|reason| AuditError::Broken {
                path: path.to_path_buf(),
                reason,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => GENESIS.to_string(),
            Err(e) => return Err(io(e)),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            writer: Mutex::new(Writer { file, last_hash }),
        })
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one decision, chained to the previous one. Written through to the kernel before
    /// returning, so a crash of the proxy after the agent is answered loses no record.
    pub fn record(&self, record: &DecisionRecord) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let value = serde_json::to_value(record).map_err(|e| io(std::io::Error::other(e)))?;
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| io(std::io::Error::other("audit writer poisoned")))?;
        let (line, hash) = chain::seal(value, &writer.last_hash);
        writer.file.write_all(line.as_bytes()).map_err(io)?;
        writer.last_hash = hash;
        Ok(())
    }
}
