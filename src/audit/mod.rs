//! The audit trail: every policy decision as one JSON line, chained to the previous line by
//! SHA-256 and keyed by an HMAC only the proxy can compute, so a removed, reordered or edited
//! line is detectable, and so is a file rewritten by someone without the key; signed checkpoints
//! in the store catch a cut tail (`gatehouse audit verify`). The only writer of audit output.

mod bound;
mod chain;
mod checkpoint;
mod judge;
mod keys;
mod log;
mod path_shape;
mod records;
mod store;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use chain::{GENESIS, Verifier, VerifyError, VerifyReport, verify_text};
pub use checkpoint::{Checkpoint, trail_of};
pub use judge::{Judge, Judgement};
pub use keys::{CHAIN_KEY_FILE, ChainKey, KeyError, PUBLIC_KEY_FILE, PublicKey, SigningKey};
pub use log::{RequestLine, connect_decision, log_request};
pub use path_shape::path_shape;
pub use records::{
    ApprovalRecord, BudgetRecord, ClosedRecord, CostRecord, DecisionRecord, OutcomeRecord,
    TrailRecord,
};
pub use store::{AuditStore, Query, StoreError, spawn_feeder};
pub use verify::{Verified, verify_file, verify_index, verify_trail};

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

/// The name the checkpoints of the audit file at `path` are kept under: this host's name and the
/// file's absolute path, so proxies of a fleet sharing one store (and one relative path) do not
/// read each other's checkpoints as their own.
pub fn file_key(path: &Path) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    format!("{}:{}", host.trim(), path.display())
}

/// The keys the proxy writes its trail with (see [`keys`]).
pub struct AuditKeys {
    /// The chain key.
    pub chain: ChainKey,
    /// The checkpoint signing key.
    pub signing: SigningKey,
}

impl AuditKeys {
    /// The keys in `dir` (the CA folder), made when there are none; the public key is written
    /// to `dir` too, beside the CA certificate.
    pub fn load_or_create(dir: &Path) -> Result<AuditKeys, KeyError> {
        Ok(AuditKeys {
            chain: ChainKey::load_or_create(dir)?,
            signing: SigningKey::load_or_create(dir, dir)?,
        })
    }
}

/// When a checkpoint is due: after `every`, or after `records` records, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointSchedule {
    /// Time between checkpoints while records are written.
    pub every: std::time::Duration,
    /// Records between checkpoints.
    pub records: u64,
}

struct Writer {
    file: File,
    last_hash: String,
    /// The first record's hash: the trail's name.
    first_hash: Option<String>,
    /// Lines in the file.
    lines: u64,
    /// Records and time of the last checkpoint taken.
    checkpointed: Option<(u64, std::time::Instant)>,
    /// Where each written line goes to be indexed, when there is an index.
    index: Option<std::sync::mpsc::Sender<(u64, String)>>,
}

/// The append-only, hash-chained audit file.
pub struct AuditLog {
    path: PathBuf,
    keys: AuditKeys,
    writer: Mutex<Writer>,
}

impl AuditLog {
    /// Opens (or creates) `path` and continues the chain from its last record, keyed with `keys`.
    pub fn open(path: &Path, keys: AuditKeys) -> Result<AuditLog, AuditError> {
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
            keys,
            writer: Mutex::new(Writer {
                file,
                last_hash,
                first_hash: trail_of(&text[..complete]),
                lines,
                checkpointed: None,
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
        self.append_record(outcome)
    }

    /// Appends how a tunnel or a WebSocket ended (see [`ClosedRecord`]).
    pub fn record_closed(&self, closed: &ClosedRecord) -> Result<(), AuditError> {
        self.append_record(closed)
    }

    fn append_record(&self, record: &impl serde::Serialize) -> Result<(), AuditError> {
        let value = serde_json::to_value(record).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        self.append(value)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name in the store: its checkpoints are kept under it (see [`file_key`]).
    pub fn file_name(&self) -> String {
        file_key(&self.path)
    }

    /// Checks the file against its checkpoints in the store before the proxy adds to it: the
    /// trail `newest` (the file's newest checkpoint) names must be this file's and hold against
    /// `checkpoints` (its trail's). Otherwise the file was replaced, rewritten or cut while no
    /// proxy wrote to it, and continuing (and signing) it would make a forgery look whole; the
    /// proxy refuses to start. An empty file starts a new trail.
    pub fn continues(
        &self,
        newest: Option<&crate::store::AuditCheckpoint>,
        checkpoints: &[crate::store::AuditCheckpoint],
    ) -> Result<(), AuditError> {
        let broken = |reason: String| AuditError::Broken {
            path: self.path.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&self.path).map_err(|source| AuditError::Io {
            path: self.path.clone(),
            source,
        })?;
        match (newest, trail_of(&text)) {
            (None, _) => return Ok(()),
            // A new trail where another was: its first record says which it follows.
            (Some(newest), None) => return self.append_record(&TrailRecord::after(newest)),
            (Some(newest), Some(trail)) if newest.trail != trail => {
                return Err(broken(format!(
                    "it is not the trail its newest checkpoint names ({} records at {}): it was \
                     replaced or rewritten",
                    newest.records, newest.time
                )));
            }
            _ => {}
        }
        let public = PublicKey::parse(&self.keys.signing.public_hex()).map_err(broken)?;
        verify_trail(&text, Some(&self.keys.chain), Some((checkpoints, &public)))
            .map(|_| ())
            .map_err(|e| broken(e.to_string()))
    }

    /// Appends one decision, chained to the previous one. Written through to the kernel before
    /// returning, so a crash of the proxy after the agent is answered loses no record.
    pub fn record(&self, record: &DecisionRecord) -> Result<(), AuditError> {
        self.append_record(record)
    }

    /// A signed checkpoint of the trail as it stands, when one is due by `schedule` (always when
    /// `None`, as at shutdown) and records were written since the last; `None` otherwise, and for
    /// an empty trail. The caller keeps it in the store.
    pub fn checkpoint(&self, schedule: Option<CheckpointSchedule>) -> Option<Checkpoint> {
        let mut writer = self.writer.lock().ok()?;
        let trail = writer.first_hash.clone()?;
        let due = match (writer.checkpointed, schedule) {
            (None, _) => true,
            (Some((records, _)), _) if records == writer.lines => false,
            (Some(_), None) => true,
            (Some((records, at)), Some(s)) => {
                at.elapsed() >= s.every || writer.lines - records >= s.records
            }
        };
        if !due {
            return None;
        }
        writer.checkpointed = Some((writer.lines, std::time::Instant::now()));
        Some(Checkpoint::sign(
            (&self.file_name(), &trail),
            writer.lines,
            &writer.last_hash,
            &self.keys.signing,
        ))
    }

    fn append(&self, mut value: serde_json::Value) -> Result<(), AuditError> {
        bound::bound(&mut value);
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| io(std::io::Error::other("audit writer poisoned")))?;
        let (line, hash) = chain::seal(value, &writer.last_hash, Some(&self.keys.chain));
        let before = writer.file.metadata().map_err(io)?.len();
        if let Err(e) = writer.file.write_all(line.as_bytes()) {
            // Never leave half a line for the next record to be appended to.
            let _ = writer.file.set_len(before);
            return Err(io(e));
        }
        if writer.first_hash.is_none() {
            writer.first_hash = Some(hash.clone());
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
            status: None,
        }
    }

    fn keys(dir: &Path) -> AuditKeys {
        AuditKeys::load_or_create(&dir.join("certs")).unwrap()
    }

    fn verify(dir: &Path, path: &Path) -> VerifyReport {
        let key = ChainKey::load_or_create(&dir.join("certs")).unwrap();
        verify_file(path, Some(&key)).unwrap().unwrap()
    }

    #[test]
    fn one_writer_per_file_and_the_chain_continues_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, keys(dir.path())).unwrap();
        log.record(&record("d1")).unwrap();
        assert!(
            matches!(
                AuditLog::open(&path, keys(dir.path())),
                Err(AuditError::Broken { .. })
            ),
            "a second writer is refused"
        );
        drop(log);
        let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
        reopened.record(&record("d2")).unwrap();
        drop(reopened);
        let report = verify(dir.path(), &path);
        assert_eq!((report.records, report.keyed), (2, 2));
    }

    #[test]
    fn a_torn_last_line_is_dropped_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        AuditLog::open(&path, keys(dir.path()))
            .unwrap()
            .record(&record("d1"))
            .unwrap();
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"decision\":\"d2\",\"ag");
        std::fs::write(&path, text).unwrap();
        AuditLog::open(&path, keys(dir.path()))
            .unwrap()
            .record(&record("d3"))
            .unwrap();
        assert_eq!(verify(dir.path(), &path).records, 2);
    }

    #[test]
    fn an_agent_sized_model_name_writes_a_bounded_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, keys(dir.path())).unwrap();
        let mut huge = record("d1");
        huge.llm = Some(serde_json::json!({"provider": "openai", "model": "m".repeat(8 << 20)}));
        huge.tool = Some("t".repeat(1 << 20));
        huge.path = "/p".repeat(1 << 19);
        log.record(&huge).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size < 4096, "{size} bytes of audit for one request");
        assert_eq!(verify(dir.path(), &path).records, 1);
    }

    #[test]
    fn checkpoints_are_due_by_time_or_records_and_signed_over_the_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, keys(dir.path())).unwrap();
        let schedule = CheckpointSchedule {
            every: std::time::Duration::from_secs(3600),
            records: 3,
        };
        assert!(
            log.checkpoint(None).is_none(),
            "an empty trail has no name yet"
        );
        log.record(&record("d1")).unwrap();
        let first = log.checkpoint(Some(schedule)).unwrap();
        assert_eq!(first.records, 1);
        log.record(&record("d2")).unwrap();
        assert!(log.checkpoint(Some(schedule)).is_none(), "neither due");
        log.record(&record("d3")).unwrap();
        log.record(&record("d4")).unwrap();
        let by_count = log.checkpoint(Some(schedule)).unwrap();
        assert_eq!((by_count.records, &by_count.trail), (4, &first.trail));
        assert!(log.checkpoint(None).is_none(), "nothing new since");
        log.record(&record("d5")).unwrap();
        let at_shutdown = log.checkpoint(None).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(at_shutdown.head, chain::last_hash(&text).unwrap());
        let public = PublicKey::read(&dir.path().join("certs").join(PUBLIC_KEY_FILE)).unwrap();
        let stored: Vec<_> = [first, by_count, at_shutdown]
            .iter()
            .map(Checkpoint::stored)
            .collect();
        let verified = verify_trail(&text, None, Some((&stored, &public))).unwrap();
        assert_eq!(verified.report.checkpoints, 3);
        log.continues(stored.last(), &stored).unwrap();
        // The file replaced by another trail, or cut, while no proxy wrote to it.
        drop(log);
        let cut: String = text.lines().take(3).map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, cut).unwrap();
        let reopened = AuditLog::open(&path, keys(dir.path())).unwrap();
        let refused = reopened.continues(stored.last(), &stored).unwrap_err();
        assert!(refused.to_string().contains("tail was cut"), "{refused}");
        drop(reopened);
        std::fs::write(&path, "").unwrap();
        let fresh = AuditLog::open(&path, keys(dir.path())).unwrap();
        // Moved aside (or emptied): a new trail, whose first record names the one before.
        fresh.continues(stored.last(), &stored).unwrap();
        let first: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(first["record"], "trail");
        assert_eq!(first["follows"], stored[0].trail.as_str());
        assert_eq!(first["follows_records"], 5);
        drop(fresh);
        std::fs::write(&path, "").unwrap();
        let fresh = AuditLog::open(&path, keys(dir.path())).unwrap();
        fresh.record(&record("other")).unwrap();
        let refused = fresh.continues(stored.last(), &stored[..0]).unwrap_err();
        assert!(
            refused.to_string().contains("replaced or rewritten"),
            "{refused}"
        );
    }
}
