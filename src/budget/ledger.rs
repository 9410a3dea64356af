//! The ledger: money spent and reserved per budget and window, in SQLite (survives restarts).
//! A reservation checks every budget that applies and reserves in all of them in one write
//! transaction, so concurrent requests can never overshoot; settlement replaces the reservation
//! with the real cost exactly once per request id.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// Why the ledger could not be used.
#[derive(Debug, thiserror::Error)]
#[error("budget ledger {path}: {reason}")]
pub struct LedgerError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// One budget a request must have room in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Budget id.
    pub budget: String,
    /// Ledger key of the current window (`day:2026-11-25`).
    pub window: String,
    /// Limit in nano-USD.
    pub limit: i64,
}

/// A budget without room for a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoRoom {
    /// Budget id.
    pub budget: String,
    /// Window key.
    pub window: String,
    /// Nano-USD still free (limit − spent − reserved).
    pub available: i64,
}

/// What a budget holds in one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Balance {
    /// Settled spend, nano-USD.
    pub spent: i64,
    /// Held by requests in flight, nano-USD.
    pub reserved: i64,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS balances (
    budget TEXT NOT NULL, window TEXT NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (budget, window)
);
CREATE TABLE IF NOT EXISTS reservations (
    request TEXT NOT NULL, budget TEXT NOT NULL, window TEXT NOT NULL, amount INTEGER NOT NULL,
    PRIMARY KEY (request, budget)
);
CREATE TABLE IF NOT EXISTS settled (request TEXT PRIMARY KEY, amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS paused (scope TEXT PRIMARY KEY, since TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS breaker_reset (budget TEXT NOT NULL, window TEXT NOT NULL,
    at_spend INTEGER NOT NULL, PRIMARY KEY (budget, window));
";

/// The ledger, one connection serialised by a lock (SQLite allows one writer anyway).
pub struct Ledger {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path` for the proxy that owns it: reservations left by a
    /// crash are released, as their requests never reached a settlement. Tools that read or pause
    /// while the proxy runs use [`Ledger::open`], which leaves reservations alone.
    pub fn open_owned(path: &Path) -> Result<Ledger, LedgerError> {
        let ledger = Ledger::open(path)?;
        ledger.release_orphans()?;
        Ok(ledger)
    }

    /// Opens (or creates) the ledger at `path` without touching reservations.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        let conn = crate::sqlite::open(path, SCHEMA).map_err(|reason| LedgerError {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(Ledger {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> LedgerError {
        LedgerError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn release_orphans(&self) -> Result<(), LedgerError> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(|e| self.fail(&e))?;
        tx.execute_batch("UPDATE balances SET reserved = 0; DELETE FROM reservations;")
            .map_err(|e| self.fail(&e))?;
        tx.commit().map_err(|e| self.fail(&e))
    }

    /// Reserves `amount` nano-USD for `request` in every budget of `charges`, or in none when one
    /// lacks room (the first such budget is returned).
    pub fn reserve(
        &self,
        request: &str,
        charges: &[Charge],
        amount: i64,
    ) -> Result<Result<(), NoRoom>, LedgerError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        for charge in charges {
            let balance =
                balance(&tx, &charge.budget, &charge.window).map_err(|e| self.fail(&e))?;
            let available = charge.limit - balance.spent - balance.reserved;
            if amount > available {
                return Ok(Err(NoRoom {
                    budget: charge.budget.clone(),
                    window: charge.window.clone(),
                    available: available.max(0),
                }));
            }
        }
        for charge in charges {
            tx.execute(
                "INSERT INTO balances (budget, window, reserved) VALUES (?1, ?2, ?3)
                 ON CONFLICT (budget, window) DO UPDATE SET reserved = reserved + ?3",
                params![charge.budget, charge.window, amount],
            )
            .map_err(|e| self.fail(&e))?;
            tx.execute(
                "INSERT OR REPLACE INTO reservations (request, budget, window, amount)
                 VALUES (?1, ?2, ?3, ?4)",
                params![request, charge.budget, charge.window, amount],
            )
            .map_err(|e| self.fail(&e))?;
        }
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(Ok(()))
    }

    /// Replaces `request`'s reservations by its real cost; a second settlement of the same request
    /// changes nothing. Returns whether this call settled it.
    pub fn settle(&self, request: &str, amount: i64) -> Result<bool, LedgerError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        let done: Option<i64> = tx
            .query_row(
                "SELECT amount FROM settled WHERE request = ?1",
                [request],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail(&e))?;
        if done.is_some() {
            return Ok(false);
        }
        let held: Vec<(String, String, i64)> = {
            let mut statement = tx
                .prepare("SELECT budget, window, amount FROM reservations WHERE request = ?1")
                .map_err(|e| self.fail(&e))?;
            let rows = statement
                .query_map([request], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(|e| self.fail(&e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.fail(&e))?
        };
        for (budget, window, reserved) in &held {
            tx.execute(
                "UPDATE balances SET reserved = reserved - ?3, spent = spent + ?4
                 WHERE budget = ?1 AND window = ?2",
                params![budget, window, reserved, amount],
            )
            .map_err(|e| self.fail(&e))?;
        }
        tx.execute("DELETE FROM reservations WHERE request = ?1", [request])
            .map_err(|e| self.fail(&e))?;
        tx.execute(
            "INSERT INTO settled (request, amount) VALUES (?1, ?2)",
            params![request, amount],
        )
        .map_err(|e| self.fail(&e))?;
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(true)
    }

    /// Pauses `scope` (`agent:<id>` or `team:<id>`): its calls are refused until resumed.
    pub fn pause(&self, scope: &str, since: &str, reason: &str) -> Result<(), LedgerError> {
        self.lock()
            .execute(
                "INSERT OR REPLACE INTO paused (scope, since, reason) VALUES (?1, ?2, ?3)",
                params![scope, since, reason],
            )
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    /// Resumes `scope`; returns whether it was paused.
    pub fn resume(&self, scope: &str) -> Result<bool, LedgerError> {
        self.lock()
            .execute("DELETE FROM paused WHERE scope = ?1", [scope])
            .map(|n| n > 0)
            .map_err(|e| self.fail(&e))
    }

    /// Every paused scope: `(scope, since, reason)`.
    pub fn paused_all(&self) -> Result<Vec<(String, String, String)>, LedgerError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare("SELECT scope, since, reason FROM paused ORDER BY scope")
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(|e| self.fail(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(&e))
    }

    /// Resets the breaker of `budget` in `window`: it trips again only once spend grows past the
    /// trip point counted from what is spent now.
    pub fn reset_breaker(&self, budget: &str, window: &str) -> Result<(), LedgerError> {
        let conn = self.lock();
        let now = balance(&conn, budget, window).map_err(|e| self.fail(&e))?;
        conn.execute(
            "INSERT OR REPLACE INTO breaker_reset (budget, window, at_spend) VALUES (?1, ?2, ?3)",
            params![budget, window, now.spent + now.reserved],
        )
        .map(|_| ())
        .map_err(|e| self.fail(&e))
    }

    /// Spend (settled and reserved) in `window` counted since the breaker was last reset.
    pub fn spend_since_reset(&self, budget: &str, window: &str) -> Result<i64, LedgerError> {
        let conn = self.lock();
        let now = balance(&conn, budget, window).map_err(|e| self.fail(&e))?;
        let reset: i64 = conn
            .query_row(
                "SELECT at_spend FROM breaker_reset WHERE budget = ?1 AND window = ?2",
                params![budget, window],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.fail(&e))?
            .unwrap_or(0);
        Ok((now.spent + now.reserved - reset).max(0))
    }

    /// The balance of `budget` in `window`.
    pub fn balance(&self, budget: &str, window: &str) -> Result<Balance, LedgerError> {
        balance(&self.lock(), budget, window).map_err(|e| self.fail(&e))
    }
}

fn balance(conn: &Connection, budget: &str, window: &str) -> rusqlite::Result<Balance> {
    conn.query_row(
        "SELECT spent, reserved FROM balances WHERE budget = ?1 AND window = ?2",
        params![budget, window],
        |r| {
            Ok(Balance {
                spent: r.get(0)?,
                reserved: r.get(1)?,
            })
        },
    )
    .optional()
    .map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(budget: &str, limit: i64) -> Charge {
        Charge {
            budget: budget.into(),
            window: "day:2026-11-25".into(),
            limit,
        }
    }

    #[test]
    fn reservations_never_overshoot_under_concurrency_and_settle_once() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = std::sync::Arc::new(Ledger::open(&dir.path().join("l.sqlite")).unwrap());
        let budgets = vec![charge("team", 1_000), charge("agent", 10_000)];
        let granted: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let ledger = ledger.clone();
                    let budgets = budgets.clone();
                    s.spawn(move || {
                        let ok = ledger
                            .reserve(&format!("r{i}"), &budgets, 300)
                            .unwrap()
                            .is_ok();
                        usize::from(ok)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 3, "only three reservations of 300 fit in 1000");
        let team = ledger.balance("team", "day:2026-11-25").unwrap();
        assert_eq!(
            team,
            Balance {
                spent: 0,
                reserved: 900
            }
        );
        let refused = ledger.reserve("late", &budgets, 300).unwrap().unwrap_err();
        assert_eq!((refused.budget.as_str(), refused.available), ("team", 100));

        let settled: Vec<bool> = (0..16)
            .map(|i| ledger.settle(&format!("r{i}"), 120).unwrap())
            .collect();
        assert_eq!(
            settled.iter().filter(|s| **s).count(),
            16,
            "settling without a reservation still records it once"
        );
        assert!(!ledger.settle("r0", 120).unwrap(), "settled once");
        let team = ledger.balance("team", "day:2026-11-25").unwrap();
        assert_eq!(
            team,
            Balance {
                spent: 360,
                reserved: 0
            }
        );
    }

    #[test]
    fn the_ledger_survives_a_restart_and_releases_orphaned_reservations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("l.sqlite");
        let ledger = Ledger::open(&path).unwrap();
        ledger
            .reserve("a", &[charge("b", 1_000)], 400)
            .unwrap()
            .unwrap();
        ledger.settle("a", 250).unwrap();
        ledger
            .reserve("crashed", &[charge("b", 1_000)], 500)
            .unwrap()
            .unwrap();
        drop(ledger);
        let reader = Ledger::open(&path).unwrap();
        assert_eq!(
            reader.balance("b", "day:2026-11-25").unwrap(),
            Balance {
                spent: 250,
                reserved: 500
            },
            "a tool opening the ledger leaves live reservations alone"
        );
        drop(reader);
        let reopened = Ledger::open_owned(&path).unwrap();
        assert_eq!(
            reopened.balance("b", "day:2026-11-25").unwrap(),
            Balance {
                spent: 250,
                reserved: 0
            }
        );
    }
}
