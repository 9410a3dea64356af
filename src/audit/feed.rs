//! What the audit trail has just written, for live watchers (the admin API's event stream): a
//! bounded broadcast that never blocks the writer. A watcher that falls behind loses the oldest
//! items and is told how many (`RecvError::Lagged`); with no watcher nothing is built at all.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::{DecisionRecord, OutcomeRecord};

/// Items kept for the slowest watcher before it lags.
const CAPACITY: usize = 1024;

/// One thing the trail wrote, as a watcher sees it.
#[derive(Debug, Clone)]
pub enum Written {
    /// A decision, with the fields the decisions API lists (never values: kinds, ids, rules).
    Decision(Arc<Value>),
    /// A call was charged to the ledger: spend changed.
    Charged,
}

/// The sending side, owned by the audit log.
pub(super) struct Feed(broadcast::Sender<Written>);

impl Feed {
    pub(super) fn new() -> Feed {
        Feed(broadcast::channel(CAPACITY).0)
    }

    /// A new watcher of what is written from now on.
    pub(super) fn watch(&self) -> broadcast::Receiver<Written> {
        self.0.subscribe()
    }

    /// `record` was written.
    pub(super) fn decided(&self, record: &DecisionRecord) {
        if self.0.receiver_count() == 0 {
            return;
        }
        let mut shown = json!({
            "time": record.time, "decision": record.decision, "request": record.request,
            "agent": record.agent, "team": record.team, "trigger": record.trigger,
            "method": record.method, "host": record.host, "port": record.port,
            "path": record.path, "country": record.country, "effect": record.effect,
            "rules": record.rules, "reason": record.reason, "status": record.status,
        });
        // Bounded as the trail bounds it (a path or reason can be as long as a request head).
        super::bound::bound(&mut shown);
        let _ = self.0.send(Written::Decision(Arc::new(shown)));
    }

    /// `outcome` was written: a charge changes spend.
    pub(super) fn ended(&self, outcome: &OutcomeRecord) {
        if outcome.ledger.is_some() && self.0.receiver_count() > 0 {
            let _ = self.0.send(Written::Charged);
        }
    }
}
