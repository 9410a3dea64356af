//! Audit checkpoints: signed statements of how long an audit trail was and what its last hash
//! was at a time. Kept in the store, away from the audit file, so cutting the file's tail or
//! rewriting it is detected against them (`gatehouse audit verify`). The store only keeps them;
//! signing and checking are the audit trail's.

use super::{Backend, Store, StoreError};

/// One checkpoint of one trail, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The trail it is of (the audit file as configured).
    pub trail: String,
    /// Records in the trail at the time.
    pub records: i64,
    /// The last record's hash (the genesis hash for an empty trail).
    pub head: String,
    /// RFC 3339 time it was taken.
    pub time: String,
    /// Ed25519 signature, hex.
    pub signature: String,
}

/// The SQLite migration that adds checkpoints.
pub(super) const SQLITE_MIGRATION: &str =
    "CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, trail TEXT NOT NULL,
        records INTEGER NOT NULL, head TEXT NOT NULL, time TEXT NOT NULL, signature TEXT NOT NULL);
     CREATE INDEX audit_checkpoints_trail ON audit_checkpoints (trail, id);";

/// The PostgreSQL migration that adds checkpoints.
pub(super) const POSTGRES_MIGRATION: &str = "
CREATE TABLE gatehouse_audit_checkpoints (id BIGSERIAL PRIMARY KEY, trail TEXT NOT NULL,
    records BIGINT NOT NULL, head TEXT NOT NULL, time TEXT NOT NULL, signature TEXT NOT NULL);
CREATE INDEX gatehouse_audit_checkpoints_trail ON gatehouse_audit_checkpoints (trail, id);
";

impl Store {
    /// Adds a checkpoint.
    pub async fn add_checkpoint(&self, checkpoint: &AuditCheckpoint) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.add_checkpoint(checkpoint),
            Backend::Postgres(p) => p.add_checkpoint(checkpoint).await,
        }
    }

    /// Every checkpoint of `trail`, in the order they were added.
    pub async fn checkpoints(&self, trail: &str) -> Result<Vec<AuditCheckpoint>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.checkpoints(trail),
            Backend::Postgres(p) => p.checkpoints(trail).await,
        }
    }
}

impl super::sqlite::SqliteStore {
    fn add_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO audit_checkpoints (trail, records, head, time, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![c.trail, c.records, c.head, c.time, c.signature],
            )
            .map(|_| ())
        })
    }

    fn checkpoints(&self, trail: &str) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare(
                "SELECT trail, records, head, time, signature FROM audit_checkpoints
                 WHERE trail = ?1 ORDER BY id",
            )?;
            let rows = statement.query_map([trail], |r| {
                Ok(AuditCheckpoint {
                    trail: r.get(0)?,
                    records: r.get(1)?,
                    head: r.get(2)?,
                    time: r.get(3)?,
                    signature: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}

impl super::postgres::PgStore {
    async fn add_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO gatehouse_audit_checkpoints (trail, records, head, time, signature)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&c.trail, &c.records, &c.head, &c.time, &c.signature],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    async fn checkpoints(&self, trail: &str) -> Result<Vec<AuditCheckpoint>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT trail, records, head, time, signature FROM gatehouse_audit_checkpoints
                 WHERE trail = $1 ORDER BY id",
                &[&trail],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| AuditCheckpoint {
                trail: r.get(0),
                records: r.get(1),
                head: r.get(2),
                time: r.get(3),
                signature: r.get(4),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoints_are_kept_per_trail_in_order_on_both_back_ends() {
        for (store, location, _dir) in crate::store::tests::both().await {
            let at = |trail: &str, records: i64| AuditCheckpoint {
                trail: trail.into(),
                records,
                head: format!("h{records}"),
                time: format!("t{records}"),
                signature: "s".into(),
            };
            for checkpoint in [at("a", 1), at("b", 7), at("a", 5), at("a", 5)] {
                store.add_checkpoint(&checkpoint).await.unwrap();
            }
            let kept = store.checkpoints("a").await.unwrap();
            assert_eq!(
                kept,
                vec![at("a", 1), at("a", 5), at("a", 5)],
                "{location:?}"
            );
            assert!(store.checkpoints("c").await.unwrap().is_empty());
        }
    }
}
