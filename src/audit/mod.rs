//! The audit trail: every policy decision as one JSON line, chained to the previous line by
//! SHA-256 and keyed by an HMAC only the proxy can compute, so a removed, reordered or edited
//! line is detectable, and so is a file rewritten by someone without the key; signed checkpoints
//! in the store catch a cut tail (`gatehouse audit verify`). The only writer of audit output.

mod bound;
mod chain;
mod checkpoint;
mod encode;
mod feed;
mod judge;
mod keys;
mod log;
mod path_shape;
mod records;
mod row;
mod store;
mod verify;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use chain::{GENESIS, Verifier, VerifyError, VerifyReport, verify_text};
pub use checkpoint::{Checkpoint, trail_of};
pub use feed::Written;
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
    /// Bytes in the file: what a failed write is cut back to.
    len: u64,
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
    /// What was written, for live watchers.
    feed: feed::Feed,
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
        let mut text = std::fs::read_to_string(path).map_err(io)?;
        // A line cut short by a crash was never answered (records are written before the agent
        // is), so dropping it loses no record of an answered request. A whole sealed record that
        // only lacks its line break is no torn line: it is kept (and checked like any other),
        // never deleted by the proxy itself on a one-byte edit of the file.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        if complete < text.len() && chain::is_sealed(&text[complete..]) {
            tracing::warn!(path = %path.display(), "the last audit record lacked its line break; completed");
            (&file).write_all(b"\n").map_err(io)?;
            text.push('\n');
        } else if complete < text.len() {
            tracing::warn!(path = %path.display(), bytes = text.len() - complete, "dropping a torn last audit line");
            file.set_len(complete as u64).map_err(io)?;
            text.truncate(complete);
        }
        let last_hash = chain::last_hash(&text).map_err(|reason| AuditError::Broken {
            path: path.to_path_buf(),
            reason,
        })?;
        let lines = text.lines().count() as u64;
        Ok(AuditLog {
            path: path.to_path_buf(),
            keys,
            writer: Mutex::new(Writer {
                file,
                last_hash,
                first_hash: trail_of(&text),
                lines,
                len: text.len() as u64,
                checkpointed: None,
                index: None,
            }),
            feed: feed::Feed::new(),
        })
    }

    /// Decisions and charges written from now on, for a live view (bounded: a watcher that
    /// falls behind is told it lagged).
    pub fn watch(&self) -> tokio::sync::broadcast::Receiver<Written> {
        self.feed.watch()
    }

    /// Sends every record written from now on to `index` (see [`spawn_feeder`]).
    pub fn index_into(&self, index: std::sync::mpsc::Sender<(u64, String)>) {
        if let Ok(mut writer) = self.writer.lock() {
            writer.index = Some(index);
        }
    }

    /// Appends how a request ended (see [`OutcomeRecord`]).
    pub fn record_outcome(&self, outcome: &OutcomeRecord) -> Result<(), AuditError> {
        self.append_record(outcome)?;
        self.feed.ended(outcome);
        Ok(())
    }

    /// Appends how a tunnel or a WebSocket ended (see [`ClosedRecord`]).
    pub fn record_closed(&self, closed: &ClosedRecord) -> Result<(), AuditError> {
        self.append_record(closed)
    }

    fn append_record(&self, record: &impl serde::Serialize) -> Result<(), AuditError> {
        self.append(record, false).map(|_| ())
    }

    /// Appends the first record of ledger run `run` (`record: "run"`); returns the byte offset it
    /// starts at and the trail the file holds. The next start reconciles the store from there.
    pub fn begin_run(&self, run: &str) -> Result<(u64, String), AuditError> {
        let record = serde_json::json!({
            "record": "run",
            "time": humantime::format_rfc3339_micros(std::time::SystemTime::now()).to_string(),
            "run": run,
        });
        let offset = self.append(&record, false)?;
        let trail = self.trail().ok_or_else(|| AuditError::Broken {
            path: self.path.clone(),
            reason: "no trail after a record was written".to_string(),
        })?;
        Ok((offset, trail))
    }

    /// Bytes written to the file so far: every record before this offset is in it.
    pub fn written_bytes(&self) -> u64 {
        self.writer.lock().map_or(0, |w| w.len)
    }

    /// The file written to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's name in the store: its checkpoints are kept under it (see [`file_key`]).
    pub fn file_name(&self) -> String {
        file_key(&self.path)
    }

    /// The trail the file holds: its first record's hash, `None` while it is empty.
    pub fn trail(&self) -> Option<String> {
        self.writer.lock().ok()?.first_hash.clone()
    }

    /// Checks the file against its checkpoints in the store before the proxy adds to it: the
    /// trail `newest` (the file's newest checkpoint) names must be this file's and hold against
    /// `checkpoints` (its trail's; without a `newest`, those of the trail the file holds: the
    /// file's name in the store changes with the host's name, as a container's does on every
    /// re-creation). Otherwise the file was replaced, rewritten or cut while no proxy wrote to
    /// it, and continuing (and signing) it would make a forgery look whole; the proxy refuses to
    /// start. An empty file starts a new trail.
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
            (None, None) => return Ok(()),
            // A trail no checkpoint knows (written before checkpoints, or under another host
            // name): its chain and macs at least must hold before the proxy signs it as whole.
            (None, Some(_)) if checkpoints.is_empty() => {
                return verify_trail(&text, Some(&self.keys.chain), None)
                    .map(|_| ())
                    .map_err(|e| broken(e.to_string()));
            }
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
        self.append(record, true)?;
        self.feed.decided(record);
        Ok(())
    }

    /// The store did not keep `lost`: the trail counts as unsigned since the checkpoint before,
    /// so the next tick (or shutdown) signs again even when no record was written in between;
    /// otherwise a store that failed once left the tail unprotected through a clean shutdown.
    pub fn checkpoint_lost(&self, lost: &Checkpoint) {
        if let Ok(mut writer) = self.writer.lock()
            && writer
                .checkpointed
                .is_some_and(|(records, _)| records == lost.records)
        {
            writer.checkpointed = None;
        }
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

    /// Appends `record`, bounded and sealed, and sends it to the index when it is `indexed` (the
    /// index holds decisions; outcomes and ends are read with the file); returns the byte offset
    /// its line starts at. It is serialised before the writer is taken: only the seal, which needs
    /// the previous hash, and the write are under it.
    fn append(&self, record: &impl serde::Serialize, indexed: bool) -> Result<u64, AuditError> {
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let body = encode::encode(record).map_err(|e| io(std::io::Error::other(e)))?;
        let mut writer = self
            .writer
            .lock()
            .map_err(|_| io(std::io::Error::other("audit writer poisoned")))?;
        let (mut line, hash) = chain::seal_encoded(body, &writer.last_hash, Some(&self.keys.chain))
            .map_err(|e| io(std::io::Error::other(e)))?;
        let before = writer.len;
        if let Err(e) = writer.file.write_all(line.as_bytes()) {
            // Never leave half a line for the next record to be appended to.
            let _ = writer.file.set_len(before);
            return Err(io(e));
        }
        writer.len += line.len() as u64;
        if writer.first_hash.is_none() {
            writer.first_hash = Some(hash.clone());
        }
        writer.last_hash = hash;
        writer.lines += 1;
        let number = writer.lines;
        line.pop();
        if indexed
            && let Some(index) = &writer.index
            && index.send((number, line)).is_err()
        {
            writer.index = None;
            tracing::error!(
                "the audit index stopped; it catches up from the file on the next start"
            );
        }
        Ok(before)
    }
}

#[cfg(test)]
mod tests;
