//! The audit trail: every policy decision as one JSON line, chained to the previous line by
//! SHA-256, so a removed, reordered or edited line is detectable (`gatehouse audit verify`). The
//! only writer of audit output.

mod chain;
mod judge;
mod log;
mod path_shape;
mod records;
mod store;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use chain::{GENESIS, VerifyError, VerifyReport, verify_file};
pub use judge::{Judge, Judgement};
pub use log::{RequestLine, connect_decision, log_request};
pub use path_shape::path_shape;
pub use records::{ApprovalRecord, BudgetRecord, CostRecord, DecisionRecord, OutcomeRecord};
pub use store::{AuditStore, Query, StoreError, spawn_feeder};

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
    /// Lines in the file.
    lines: u64,
    /// Where each written line goes to be indexed, when there is an index.
    index: Option<std::sync::mpsc::Sender<(u64, String)>>,
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
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        // One writer per file: two proxies appending to one chain would fork it.
        file.try_lock().map_err(|_| AuditError::Broken {
            path: path.to_path_buf(),
            reason: "another process is writing to it".to_string(),
        })?;
        let text = std::fs::read_to_string(path).map_err(io)?;
        // A line cut short by a crash was never answered (records are written before the agent
        // is), so dropping it loses no record of an answered request.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            tracing::warn!(path = %path.display(), bytes = text.len() - complete, "dropping a torn last audit line");
            file.set_len(complete as u64).map_err(io)?;
        }
        let last_hash =
            chain::last_hash(&text[..complete]).map_err(|reason| AuditError::Broken {
                path: path.to_path_buf(),
                reason,
            })?;
        let lines = text[..complete].lines().count() as u64;
        Ok(AuditLog {
            path: path.to_path_buf(),
            writer: Mutex::new(Writer {
                file,
                last_hash,
                lines,
                index: None,
            }),
        })
    }

    /// Sends every record written from now on to `index` (see [`spawn_feeder`]).
    pub fn index_into(&self, index: std::sync::mpsc::Sender<(u64, String)>) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.index = Some(index);
        }
    }

    /// Appends how a request ended (see [`OutcomeRecord`]).
    pub fn record_outcome(&self, outcome: &OutcomeRecord) -> Result<(), AuditError> {
        let value = serde_json::to_value(outcome).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.append(value)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one decision, chained to the previous one. Written through to the kernel before
    /// returning, so a crash of the proxy after the agent is answered loses no record.
    pub fn record(&self, record: &DecisionRecord) -> Result<(), AuditError> {
        let value = serde_json::to_value(record).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.append(value)
    }

    fn append(&self, value: serde_json::Value) -> Result<(), AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| io(std::io::Error::other("audit writer poisoned")))?;
        let (line, hash) = chain::seal(value, &writer.last_hash);
        let before = writer.file.metadata().map_err(io)?.len();
        if let Err(e) = writer.file.write_all(line.as_bytes()) {
            // Never leave half a line for the next record to be appended to.
            let _ = writer.file.set_len(before);
            return Err(io(e));
        }
        writer.last_hash = hash;
        writer.lines += 1;
        let number = writer.lines;
        if let Some(index) = &writer.index
            && index.send((number, line.trim_end().to_string())).is_err()
        {
            writer.index = None;
            tracing::error!(
                "the audit index stopped; it catches up from the file on the next start"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(decision: &str) -> DecisionRecord {
        DecisionRecord {
            time: "2026-01-01T00:00:00Z".into(),
            decision: decision.into(),
            request: decision.into(),
            agent: "a".into(),
            team: None,
            env: None,
            execution: None,
            trigger: "http.request".into(),
            method: "GET".into(),
            host: "h".into(),
            port: 443,
            path: "/".into(),
            destination: String::new(),
            effect: "allow".into(),
            rules: vec![],
            monitored: vec![],
            reason: String::new(),
            policy_version: "v".into(),
            policy_commit: None,
            obligations: vec![],
            pii: Default::default(),
            country: String::new(),
            policy_us: 1,
            llm: None,
            tool: None,
            data: None,
        }
    }

    #[test]
    fn one_writer_per_file_and_the_chain_continues_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.record(&record("d1")).unwrap();
        assert!(
            matches!(AuditLog::open(&path), Err(AuditError::Broken { .. })),
            "a second writer is refused"
        );
        drop(log);
        let reopened = AuditLog::open(&path).unwrap();
        reopened.record(&record("d2")).unwrap();
        drop(reopened);
        assert_eq!(verify_file(&path).unwrap(), Ok(VerifyReport { records: 2 }));
    }

    #[test]
    fn a_torn_last_line_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        AuditLog::open(&path)
            .unwrap()
            .record(&record("d1"))
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"decision\":\"d2\",\"ag");
        std::fs::write(&path, text).unwrap();
        AuditLog::open(&path)
            .unwrap()
            .record(&record("d3"))
            .unwrap();
        assert_eq!(verify_file(&path).unwrap(), Ok(VerifyReport { records: 2 }));
    }
}
