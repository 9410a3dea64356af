//! Reconciling the ledger from the audit file at start, before serving. Settlements are written
//! behind the answers, in batches; a proxy killed before a batch was written left those calls in
//! its lease, unspent. Every answered call's outcome record (written before its answer ended)
//! carries what the ledger was to write (`ledger`), so the start charges each call of the file's
//! earlier runs that the store lacks (idempotent by request id), and only then releases what
//! their leases still hold.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use super::leases::LedgerEntry;
use super::ledger::Ledger;
use crate::store::{Settled, StoreError};

/// Settlements written per transaction while reconciling.
const BATCH: usize = 1000;

/// What reconciling found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Earlier runs of this trail whose leases were released.
    pub runs: usize,
    /// Calls found in the audit file for them.
    pub calls: usize,
    /// Calls the store lacked, charged now.
    pub charged: u64,
}

impl Ledger {
    /// Reconciles the runs that wrote the audit trail `trail` (the file at `file`) and never
    /// ended, from where the oldest began, then starts this run at `offset` of the file. A lease
    /// of another trail (another proxy of the fleet) is left to its owner, or to expiry, where
    /// it counts as spent.
    pub async fn recover(
        &self,
        file: &Path,
        trail: &str,
        offset: u64,
    ) -> Result<Reconciled, StoreError> {
        let store = self.store();
        let run = self.leases().run().to_string();
        let earlier: Vec<_> = store
            .runs(trail)
            .await?
            .into_iter()
            .filter(|r| r.run != run)
            .collect();
        let mut reconciled = Reconciled {
            runs: earlier.len(),
            ..Reconciled::default()
        };
        if let Some(from) = earlier.iter().map(|r| r.offset).min() {
            let runs: HashSet<&str> = earlier.iter().map(|r| r.run.as_str()).collect();
            let fail = |e: &dyn std::fmt::Display| StoreError {
                store: file.display().to_string(),
                reason: format!("audit file not read to reconcile the ledger: {e}"),
            };
            let calls = answered_calls(file, u64::try_from(from).unwrap_or(0), &runs)
                .map_err(|e| fail(&e))?;
            for (run, calls) in calls {
                reconciled.calls += calls.len();
                for batch in calls.chunks(BATCH) {
                    reconciled.charged +=
                        store.settle_batch(&run, batch, crate::store::now()).await?;
                }
            }
            let ended: Vec<String> = earlier.into_iter().map(|r| r.run).collect();
            store.end_runs(&ended).await?;
        }
        store
            .begin_run(&run, trail, i64::try_from(offset).unwrap_or(i64::MAX))
            .await?;
        Ok(reconciled)
    }
}

/// The calls settled by `runs` that the audit file at `path` holds from byte `from`, per run, each
/// once.
fn answered_calls(
    path: &Path,
    from: u64,
    runs: &HashSet<&str>,
) -> std::io::Result<HashMap<String, Vec<Settled>>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut calls: HashMap<String, Vec<Settled>> = HashMap::new();
    let mut seen = HashSet::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        // Only outcomes of LLM calls carry a ledger entry: skip the rest unparsed.
        if !line.contains("\"ledger\"") {
            continue;
        }
        let Ok(record) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let (Some(request), Some(entry)) = (record["request"].as_str(), record.get("ledger"))
        else {
            continue;
        };
        if record["record"] != "outcome" {
            continue;
        }
        let Ok(entry) = serde_json::from_value::<LedgerEntry>(entry.clone()) else {
            continue;
        };
        if runs.contains(entry.run.as_str()) && seen.insert(request.to_string()) {
            calls
                .entry(entry.run.clone())
                .or_default()
                .push(entry.settled(request));
        }
    }
    Ok(calls)
}
