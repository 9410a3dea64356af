//! Approvals on SQLite: each change is one IMMEDIATE transaction.

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::approvals::{Approval, ApprovalStatus, COLUMNS, Decision, Held, NewHold};

fn approval(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let status: String = row.get(6)?;
    Ok(Approval {
        id: row.get(0)?,
        fingerprint: row.get(1)?,
        agent: row.get(2)?,
        summary: row.get(3)?,
        created_at: row.get(4)?,
        expires_at: row.get(5)?,
        status: ApprovalStatus::parse(&status).unwrap_or(ApprovalStatus::Expired),
        reviewer: row.get(7)?,
        reason: row.get(8)?,
        decided_at: row.get(9)?,
    })
}

impl SqliteStore {
    pub fn hold(&self, hold: &NewHold) -> Result<Held, StoreError> {
        let mut conn = self.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.fail(&e))?;
        let live = tx
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE fingerprint = ?1
                     AND status IN ('pending', 'approved', 'denied') AND expires_at >= ?2
                     ORDER BY created_at DESC LIMIT 1"
                ),
                params![hold.fingerprint, hold.now],
                approval,
            )
            .optional()
            .map_err(|e| self.fail(&e))?;
        if let Some(live) = live {
            return Ok(Held::Attached(live));
        }
        let (agent, total): (i64, i64) = tx
            .query_row(
                "SELECT COALESCE(SUM(agent = ?1), 0), COUNT(*) FROM approvals
                 WHERE status = 'pending' AND expires_at >= ?2",
                params![hold.agent, hold.now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.fail(&e))?;
        if let Some(full) = super::super::approvals_full(agent, total, hold) {
            return Ok(Held::Full(full));
        }
        tx.execute(
            "INSERT INTO approvals (id, fingerprint, agent, summary, created_at, expires_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
            params![
                hold.id,
                hold.fingerprint,
                hold.agent,
                hold.summary,
                hold.now,
                hold.expires_at
            ],
        )
        .map_err(|e| self.fail(&e))?;
        let created = tx
            .query_row(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                [&hold.id],
                approval,
            )
            .map_err(|e| self.fail(&e))?;
        tx.commit().map_err(|e| self.fail(&e))?;
        Ok(Held::Created(created))
    }

    pub fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.lock()
            .query_row(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                [id],
                approval,
            )
            .optional()
            .map_err(|e| self.fail(&e))
    }

    pub fn decide(&self, d: &Decision<'_>) -> Result<Result<Approval, String>, StoreError> {
        let conn = self.lock();
        let status = if d.approve { "approved" } else { "denied" };
        let changed = conn
            .execute(
                "UPDATE approvals SET status = ?2, reviewer = ?3, reason = ?4, decided_at = ?5,
                    expires_at = MAX(expires_at, ?6)
                 WHERE id = ?1 AND status = 'pending' AND expires_at >= ?5",
                params![d.id, status, d.reviewer, d.reason, d.now, d.usable_until],
            )
            .map_err(|e| self.fail(&e))?;
        let now = conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                [d.id],
                approval,
            )
            .optional()
            .map_err(|e| self.fail(&e))?;
        Ok(match (changed, now) {
            (1, Some(a)) => Ok(a),
            (_, Some(a)) => Err(format!("approval {} is {}", a.id, a.status.name())),
            (_, None) => Err(format!("no approval {}", d.id)),
        })
    }

    pub fn consume(&self, id: &str) -> Result<bool, StoreError> {
        self.lock()
            .execute(
                "UPDATE approvals SET status = 'used' WHERE id = ?1 AND status = 'approved'",
                [id],
            )
            .map(|n| n == 1)
            .map_err(|e| self.fail(&e))
    }

    pub fn approvals(
        &self,
        status: ApprovalStatus,
        limit: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        let conn = self.lock();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM approvals WHERE status = ?1
                 ORDER BY created_at DESC, id LIMIT ?2"
            ))
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map(params![status.name(), limit], approval)
            .map_err(|e| self.fail(&e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.fail(&e))
    }

    pub fn expire_approvals(&self, now: i64) -> Result<u64, StoreError> {
        let conn = self.lock();
        let expired = conn
            .execute(
                "UPDATE approvals SET status = 'expired', decided_at = ?1
                 WHERE status = 'pending' AND expires_at < ?1",
                [now],
            )
            .map_err(|e| self.fail(&e))?;
        conn.execute(
            "DELETE FROM approvals WHERE status <> 'pending' AND expires_at < ?1",
            [now - super::super::SETTLED_KEPT_SECONDS],
        )
        .map_err(|e| self.fail(&e))?;
        Ok(expired as u64)
    }
}
