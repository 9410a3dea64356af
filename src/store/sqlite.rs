//! The embedded back end: one SQLite file in WAL mode, one connection serialised by a lock (SQLite
//! allows one writer anyway). A reservation is one IMMEDIATE transaction, so it reads and writes
//! every budget before any other writer can.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

mod approvals;
mod leases;

use super::{Balance, Charge, NoRoom, Paused, SpendBy, SpendOf, SpendRow, StoreError};

const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// Migrations in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS balances (
        budget TEXT NOT NULL, window TEXT NOT NULL,
        spent INTEGER NOT NULL DEFAULT 0, reserved INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (budget, window));
     CREATE TABLE IF NOT EXISTS reservations (
        request TEXT NOT NULL, budget TEXT NOT NULL, window TEXT NOT NULL, amount INTEGER NOT NULL,
        PRIMARY KEY (request, budget));
     CREATE TABLE IF NOT EXISTS settled (request TEXT PRIMARY KEY, amount INTEGER NOT NULL);
     CREATE TABLE IF NOT EXISTS paused (scope TEXT PRIMARY KEY, since TEXT NOT NULL,
        reason TEXT NOT NULL);
     CREATE TABLE IF NOT EXISTS breaker_reset (budget TEXT NOT NULL, window TEXT NOT NULL,
        at_spend INTEGER NOT NULL, PRIMARY KEY (budget, window));",
    "ALTER TABLE reservations ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX reservations_expiry ON reservations (expires_at) WHERE amount > 0;
     ALTER TABLE settled ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX settled_at ON settled (at);
     CREATE TABLE spend (hour TEXT NOT NULL, agent TEXT NOT NULL, team TEXT NOT NULL,
        model TEXT NOT NULL, spent INTEGER NOT NULL, calls INTEGER NOT NULL,
        PRIMARY KEY (hour, agent, team, model));",
    "CREATE TABLE approvals (id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, agent TEXT NOT NULL,
        summary TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        status TEXT NOT NULL, reviewer TEXT, reason TEXT, decided_at INTEGER);
     CREATE INDEX approvals_fingerprint ON approvals (fingerprint, created_at);
     CREATE INDEX approvals_status ON approvals (status, created_at);",
    super::checkpoints::SQLITE_MIGRATION,
    leases::MIGRATION,
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (or creates) the file at `path` and applies pending migrations. What a crashed run
    /// left leased is released by the ledger once it reconciled the run's audit trail
    /// ([`super::Store::end_runs`]), never at open.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let fail = |reason: String| StoreError {
            store: path.display().to_string(),
            reason,
        };
        let mut conn = crate::sqlite::open(path, PRAGMAS).map_err(fail)?;
        migrate(&mut conn).map_err(|e| fail(e.to_string()))?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError {
            store: self.path.display().to_string(),
            reason: e.to_string(),
        }
    }

    /// Runs `query` on the connection, its error named after the store.
    pub(super) fn with_conn<T>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        query(&self.lock()).map_err(|e| self.fail(&e))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn reserve(
        &self,
        request: &str,
        charges: &[Charge],
        amount: i64,
        expires_at: i64,
    ) -> Result<Result<(), NoRoom>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        let mut ordered: Vec<&Charge> = charges.iter().collect();
        ordered.sort_by(|a, b| (&a.budget, &a.window).cmp(&(&b.budget, &b.window)));
        for charge in ordered {
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
            cached(
                &tx,
                "INSERT INTO balances (budget, window, reserved) VALUES (?1, ?2, ?3)
                 ON CONFLICT (budget, window) DO UPDATE SET reserved = reserved + ?3",
                params![charge.budget, charge.window, amount],
            )
            .map_err(|e| self.fail(&e))?;
            cached(
                &tx,
                "INSERT INTO reservations (request, budget, window, amount, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![request, charge.budget, charge.window, amount, expires_at],
            )
            .map_err(|e| self.fail(&e))?;
        }
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(Ok(()))
    }

    pub fn settle(
        &self,
        request: &str,
        amount: i64,
        spend: Option<&SpendOf>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        let first = cached(
            &tx,
            "INSERT OR IGNORE INTO settled (request, amount, at) VALUES (?1, ?2, ?3)",
            params![request, amount, now],
        )
        .map_err(|e| self.fail(&e))?;
        if first == 0 {
            return Ok(false);
        }
        // An expired reservation holds 0 but still names the budgets the spend belongs to.
        cached(
            &tx,
            "UPDATE balances SET
                reserved = reserved - r.amount, spent = spent + ?2
             FROM reservations r
             WHERE r.request = ?1 AND balances.budget = r.budget AND balances.window = r.window",
            params![request, amount],
        )
        .map_err(|e| self.fail(&e))?;
        cached(
            &tx,
            "DELETE FROM reservations WHERE request = ?1",
            [request],
        )
        .map_err(|e| self.fail(&e))?;
        if let Some(s) = spend {
            cached(
                &tx,
                "INSERT INTO spend (hour, agent, team, model, spent, calls)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT (hour, agent, team, model)
                 DO UPDATE SET spent = spent + ?5, calls = calls + 1",
                params![s.hour, s.agent, s.team, s.model, amount],
            )
            .map_err(|e| self.fail(&e))?;
        }
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(true)
    }

    pub fn expire(&self, now: i64, forget_before: i64) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        cached(
            &tx,
            "UPDATE balances SET (reserved, spent) = (
                SELECT balances.reserved - COALESCE(SUM(r.amount), 0),
                       balances.spent + COALESCE(SUM(r.amount), 0)
                FROM reservations r
                WHERE r.budget = balances.budget AND r.window = balances.window
                  AND r.amount > 0 AND r.expires_at < ?1)
             WHERE EXISTS (SELECT 1 FROM reservations r
                WHERE r.budget = balances.budget AND r.window = balances.window
                  AND r.amount > 0 AND r.expires_at < ?1)",
            [now],
        )
        .map_err(|e| self.fail(&e))?;
        let released = cached(
            &tx,
            "UPDATE reservations SET amount = 0 WHERE amount > 0 AND expires_at < ?1",
            [now],
        )
        .map_err(|e| self.fail(&e))?;
        cached(
            &tx,
            "DELETE FROM reservations WHERE amount = 0 AND expires_at < ?1",
            [forget_before],
        )
        .map_err(|e| self.fail(&e))?;
        cached(&tx, "DELETE FROM settled WHERE at < ?1", [forget_before])
            .map_err(|e| self.fail(&e))?;
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(released as u64)
    }

    pub fn pause(&self, scope: &str, since: &str, reason: &str) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            cached(
                conn,
                "INSERT OR REPLACE INTO paused (scope, since, reason) VALUES (?1, ?2, ?3)",
                params![scope, since, reason],
            )
            .map(|_| ())
        })
    }

    pub fn resume(&self, scope: &str) -> Result<bool, StoreError> {
        self.with_conn(|conn| cached(conn, "DELETE FROM paused WHERE scope = ?1", [scope]))
            .map(|n| n > 0)
    }

    pub fn paused_all(&self) -> Result<Vec<Paused>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached("SELECT scope, since, reason FROM paused ORDER BY scope")
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map([], |r| {
                Ok(Paused {
                    scope: r.get(0)?,
                    since: r.get(1)?,
                    reason: r.get(2)?,
                })
            })
            .map_err(|e| self.fail(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(&e))
    }

    pub fn reset_breaker(&self, budget: &str, window: &str) -> Result<(), StoreError> {
        // Leases are money set aside, not spent: the breaker counts what is used of them.
        self.with_conn(|conn| {
            cached(
                conn,
                "INSERT OR REPLACE INTO breaker_reset (budget, window, at_spend)
                 SELECT ?1, ?2, COALESCE((SELECT spent + reserved FROM balances
                                          WHERE budget = ?1 AND window = ?2), 0)
                    - COALESCE((SELECT SUM(amount) FROM reservations WHERE budget = ?1
                                AND window = ?2 AND substr(request, 1, 6) = 'lease:'), 0)",
                params![budget, window],
            )
            .map(|_| ())
        })
    }

    pub fn spend_since_reset(&self, budget: &str, window: &str) -> Result<i64, StoreError> {
        let conn = self.lock();
        let now = balance(&conn, budget, window).map_err(|e| self.fail(&e))?;
        let reset: i64 = conn
            .prepare_cached("SELECT at_spend FROM breaker_reset WHERE budget = ?1 AND window = ?2")
            .and_then(|mut s| s.query_row(params![budget, window], |r| r.get(0)))
            .optional()
            .map_err(|e| self.fail(&e))?
            .unwrap_or(0);
        Ok((now.spent + now.reserved - reset).max(0))
    }

    pub fn balance(&self, budget: &str, window: &str) -> Result<Balance, StoreError> {
        balance(&self.lock(), budget, window).map_err(|e| self.fail(&e))
    }

    pub fn spend(&self, by: SpendBy, hour_prefix: &str) -> Result<Vec<SpendRow>, StoreError> {
        let column = by.column();
        let conn = self.lock();
        let mut statement = conn
            .prepare_cached(&format!(
                "SELECT {column}, SUM(spent), SUM(calls) FROM spend
                 WHERE substr(hour, 1, length(?1)) = ?1
                 GROUP BY {column} ORDER BY SUM(spent) DESC, {column}"
            ))
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map([hour_prefix], |r| {
                Ok(SpendRow {
                    key: r.get(0)?,
                    spent: r.get(1)?,
                    calls: r.get(2)?,
                })
            })
            .map_err(|e| self.fail(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(&e))
    }
}

/// Runs `sql` as a statement prepared once per connection (the hot path prepares nothing).
fn cached(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", version + 1))?;
    }
    tx.commit()
}

fn balance(conn: &Connection, budget: &str, window: &str) -> rusqlite::Result<Balance> {
    conn.prepare_cached("SELECT spent, reserved FROM balances WHERE budget = ?1 AND window = ?2")?
        .query_row(params![budget, window], |r| {
            Ok(Balance {
                spent: r.get(0)?,
                reserved: r.get(1)?,
            })
        })
        .optional()
        .map(Option::unwrap_or_default)
}
