//! Leases, batched settlements and runs on SQLite: each call is one IMMEDIATE transaction of
//! statements prepared once per connection.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SqliteStore, balance, cached};
use crate::store::leases::{LeaseAsk, Leased, Run, Settled, lease_id};
use crate::store::{NoRoom, StoreError};

/// The schema of runs (applied as a migration).
pub(super) const MIGRATION: &str = "CREATE TABLE runs (run TEXT PRIMARY KEY, trail TEXT NOT NULL,
    audit_offset INTEGER NOT NULL, started_at INTEGER NOT NULL);
    CREATE INDEX runs_trail ON runs (trail);";

impl SqliteStore {
    pub fn lease(
        &self,
        run: &str,
        asks: &[LeaseAsk],
        expires_at: i64,
    ) -> Result<Result<Vec<Leased>, NoRoom>, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        let done = lease(&tx, run, asks, expires_at).map_err(|e| self.fail(&e))?;
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(done)
    }

    pub fn settle_batch(&self, run: &str, batch: &[Settled], now: i64) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        let new = settle_batch(&tx, run, batch, now).map_err(|e| self.fail(&e))?;
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(new)
    }

    pub fn begin_run(
        &self,
        run: &str,
        trail: &str,
        offset: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            cached(
                conn,
                "INSERT OR REPLACE INTO runs (run, trail, audit_offset, started_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![run, trail, offset, now],
            )
            .map(|_| ())
        })
    }

    pub fn runs(&self, trail: &str) -> Result<Vec<Run>, StoreError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare_cached(
                "SELECT run, audit_offset FROM runs WHERE trail = ?1 ORDER BY audit_offset",
            )?;
            let rows = statement.query_map([trail], |r| {
                Ok(Run {
                    run: r.get(0)?,
                    offset: r.get(1)?,
                })
            })?;
            rows.collect()
        })
    }

    pub fn advance_run(&self, run: &str, offset: i64) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            cached(
                conn,
                "UPDATE runs SET audit_offset = max(audit_offset, ?2) WHERE run = ?1",
                params![run, offset],
            )
            .map(|_| ())
        })
    }

    pub fn end_runs(&self, runs: &[String]) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        for run in runs {
            let prefix = format!("lease:{run}:");
            cached(
                &tx,
                "UPDATE balances SET reserved = reserved - r.amount
                 FROM reservations r
                 WHERE substr(r.request, 1, length(?1)) = ?1
                   AND balances.budget = r.budget AND balances.window = r.window",
                [&prefix],
            )
            .map_err(|e| self.fail(&e))?;
            cached(
                &tx,
                "DELETE FROM reservations WHERE substr(request, 1, length(?1)) = ?1",
                [&prefix],
            )
            .map_err(|e| self.fail(&e))?;
            cached(&tx, "DELETE FROM runs WHERE run = ?1", [run]).map_err(|e| self.fail(&e))?;
        }
        tx.commit().map_err(|e| self.fail(&e))
    }
}

/// The amount of `run`'s lease of `budget` in `window`.
fn lease_amount(conn: &Connection, run: &str, budget: &str, window: &str) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT amount FROM reservations WHERE request = ?1 AND budget = ?2")?
        .query_row(params![lease_id(run, window), budget], |r| r.get(0))
        .optional()
        .map(Option::unwrap_or_default)
}

/// Adds `delta` (negative: gives back) to `run`'s lease of `budget` in `window`, renewing it.
fn grow(
    conn: &Connection,
    run: &str,
    (budget, window): (&str, &str),
    delta: i64,
    expires_at: i64,
) -> rusqlite::Result<()> {
    cached(
        conn,
        "INSERT INTO balances (budget, window, reserved) VALUES (?1, ?2, ?3)
         ON CONFLICT (budget, window) DO UPDATE SET reserved = reserved + ?3",
        params![budget, window, delta],
    )?;
    cached(
        conn,
        "INSERT INTO reservations (request, budget, window, amount, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (request, budget)
         DO UPDATE SET amount = amount + ?4, expires_at = max(expires_at, ?5)",
        params![lease_id(run, window), budget, window, delta, expires_at],
    )?;
    Ok(())
}

fn lease(
    conn: &Connection,
    run: &str,
    asks: &[LeaseAsk],
    expires_at: i64,
) -> rusqlite::Result<Result<Vec<Leased>, NoRoom>> {
    for ask in asks.iter().filter(|a| a.give > 0) {
        let c = &ask.charge;
        let held = lease_amount(conn, run, &c.budget, &c.window)?;
        grow(
            conn,
            run,
            (&c.budget, &c.window),
            -ask.give.min(held),
            expires_at,
        )?;
    }
    let mut ordered: Vec<(usize, &LeaseAsk)> = asks.iter().enumerate().collect();
    ordered.sort_by(|(_, a), (_, b)| {
        (&a.charge.budget, &a.charge.window).cmp(&(&b.charge.budget, &b.charge.window))
    });
    let mut grants = vec![0; asks.len()];
    for (i, ask) in ordered {
        let c = &ask.charge;
        let now = balance(conn, &c.budget, &c.window)?;
        let available = c.limit - now.spent - now.reserved;
        // An ask that needs nothing (a renewal, a give) is never refused, even over the limit:
        // refusing it after the gives were applied left memory thinking they failed.
        if ask.min > 0 && ask.min > available {
            return Ok(Err(NoRoom {
                budget: c.budget.clone(),
                window: c.window.clone(),
                available: available.max(0),
            }));
        }
        // Near the limit a lease takes only what the call needs: no proxy sits on room another needs.
        grants[i] = if available >= ask.want.saturating_mul(2) {
            ask.want.max(ask.min)
        } else {
            ask.min
        }
        .max(0);
    }
    let mut leased = Vec::with_capacity(asks.len());
    for (ask, granted) in asks.iter().zip(grants) {
        let c = &ask.charge;
        grow(conn, run, (&c.budget, &c.window), granted, expires_at)?;
        let now = balance(conn, &c.budget, &c.window)?;
        let reset: i64 = conn
            .prepare_cached("SELECT at_spend FROM breaker_reset WHERE budget = ?1 AND window = ?2")?
            .query_row(params![c.budget, c.window], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let mine = lease_amount(conn, run, &c.budget, &c.window)?;
        leased.push(Leased {
            granted,
            others: now.spent + now.reserved - reset - mine,
        });
    }
    Ok(Ok(leased))
}

fn settle_batch(
    conn: &Connection,
    run: &str,
    batch: &[Settled],
    now: i64,
) -> rusqlite::Result<u64> {
    let mut totals: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut new = 0;
    for settled in batch {
        let first = cached(
            conn,
            "INSERT OR IGNORE INTO settled (request, amount, at) VALUES (?1, ?2, ?3)",
            params![settled.request, settled.amount, now],
        )?;
        if first == 0 {
            continue;
        }
        new += 1;
        for (budget, window) in &settled.charges {
            *totals.entry((budget, window)).or_default() += settled.amount;
        }
        if let Some(s) = &settled.spend {
            cached(
                conn,
                "INSERT INTO spend (hour, agent, team, model, spent, calls)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1)
                 ON CONFLICT (hour, agent, team, model)
                 DO UPDATE SET spent = spent + ?5, calls = calls + 1",
                params![s.hour, s.agent, s.team, s.model, settled.amount],
            )?;
        }
    }
    for ((budget, window), total) in totals {
        let held = lease_amount(conn, run, budget, window)?;
        let shrink = total.min(held.max(0));
        cached(
            conn,
            "UPDATE reservations SET amount = amount - ?3 WHERE request = ?1 AND budget = ?2",
            params![lease_id(run, window), budget, shrink],
        )?;
        cached(
            conn,
            "INSERT INTO balances (budget, window, spent, reserved) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (budget, window)
             DO UPDATE SET spent = spent + ?3, reserved = reserved - ?4",
            params![budget, window, total, shrink],
        )?;
    }
    Ok(new)
}
