//! The audit trail: every policy decision as one JSON line, chained to the previous line by
//! SHA-256, so a removed, reordered or edited line is detectable (`gatehouse audit verify`). The
//! only writer of audit output.

mod chain;
mod store;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

pub use chain::{GENESIS, VerifyError, VerifyReport, verify_file};
pub use store::{AuditStore, Query, StoreError, spawn_feeder};

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
    /// Its country (ISO 3166-1 alpha-2), `unknown`, or empty before the address is resolved.
    pub country: String,
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
    /// Obligations of the applying rules (`redact email as mask`).
    pub obligations: Vec<String>,
    /// Personal data found in the request: findings per kind, never values.
    pub pii: std::collections::BTreeMap<String, u64>,
    /// Microseconds the policy step took.
    pub policy_us: u64,
    /// The LLM call recognised (provider, model, stream, max tokens; never messages).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<serde_json::Value>,
    /// The tool called (its name; never arguments).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// The data access recognised (statement, tables, columns, WHERE, LIMIT; never values).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

/// How a request ended, written after its decisions: the status the agent got, what the upstream
/// answered, and how the answer ended. `record: "outcome"` tells it from a decision.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeRecord {
    /// Always `outcome`.
    pub record: &'static str,
    /// RFC 3339 time the request ended.
    pub time: String,
    /// Request id (its decisions carry the same).
    pub request: String,
    /// Status the agent received (0 when it hung up first).
    pub status: u16,
    /// The upstream's status, when the upstream answered.
    pub upstream_status: Option<u16>,
    /// `forwarded`, `cut`, `abandoned`, `cancelled`, or the error code.
    pub outcome: String,
    /// Response body bytes that reached the agent's side.
    pub response_bytes: u64,
    /// Milliseconds from arrival to the end.
    pub elapsed_ms: u64,
    /// For an LLM call: its model, tokens and cost.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<CostRecord>,
    /// For a call budgets covered: what was reserved and what was settled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<BudgetRecord>,
    /// For a held request: the approval, who decided, why, and how long the request waited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalRecord>,
}

/// A held request's approval, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct ApprovalRecord {
    /// The approval id.
    pub id: String,
    /// `approved`, `denied`, `expired`, `used` (by another request) or `pending` (the agent was
    /// told to retry).
    pub decision: &'static str,
    /// Who decided.
    pub reviewer: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// Whether this request was a retry that found the approval of an earlier one.
    pub retried: bool,
    /// Milliseconds this request waited.
    pub waited_ms: u64,
    /// Seconds from the hold to the decision, once decided.
    pub decided_after_s: Option<i64>,
}

impl ApprovalRecord {
    /// The record of `approval` as this request saw it.
    pub fn of(
        approval: &crate::store::Approval,
        retried: bool,
        waited: std::time::Duration,
    ) -> ApprovalRecord {
        ApprovalRecord {
            id: approval.id.clone(),
            decision: approval.status.name(),
            reviewer: approval.reviewer.clone(),
            reason: approval.reason.clone(),
            retried,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            decided_after_s: approval.decided_at.map(|d| d - approval.created_at),
        }
    }
}

/// A reservation and its settlement, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetRecord {
    /// The budgets it was held in.
    pub budgets: Vec<String>,
    /// USD reserved before forwarding (the worst case).
    pub reserved_usd: String,
    /// USD settled when the answer ended.
    pub settled_usd: String,
    /// `actual` (the reported usage), `estimate` (no usage reported: a cut stream, a timeout) or
    /// `not_sent` (the upstream was never reached).
    pub settled_as: &'static str,
}

/// What an LLM call used and cost, as recorded.
#[derive(Debug, Clone, Serialize)]
pub struct CostRecord {
    /// The model requested.
    pub model: String,
    /// The price-table entry it was priced as.
    pub priced_as: Option<String>,
    /// Input tokens not read from a cache.
    pub input_tokens: Option<u64>,
    /// Input tokens read from a cache.
    pub cached_input_tokens: Option<u64>,
    /// Input tokens written to a cache.
    pub cache_write_tokens: Option<u64>,
    /// Output tokens (thinking included).
    pub output_tokens: Option<u64>,
    /// USD, as an exact decimal string.
    pub cost_usd: Option<String>,
    /// `exact`, `unpriced` or `unknown`.
    pub cost_status: &'static str,
}

impl CostRecord {
    /// The record of `cost` for `model`.
    pub fn of(model: &str, cost: &crate::budget::Cost) -> CostRecord {
        let usage = cost.usage;
        CostRecord {
            model: model.to_string(),
            priced_as: cost.priced_as.clone(),
            input_tokens: usage.map(|u| u.input),
            cached_input_tokens: usage.map(|u| u.cached_input),
            cache_write_tokens: usage.map(|u| u.cache_write),
            output_tokens: usage.map(|u| u.output),
            cost_usd: cost.usd.map(|d| d.normalize().to_string()),
            cost_status: cost.status.name(),
        }
    }
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
