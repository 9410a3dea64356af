//! Audit checkpoints: signed statements of how long an audit trail was and what its last hash
//! was at a time. Kept in the store, away from the audit file, so cutting the file's tail or
//! rewriting it is detected against them (`gatehouse audit verify`). The store only keeps them;
//! signing and checking are the audit trail's.

use super::{Backend, Store, StoreError};

/// One checkpoint of one trail, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The audit file as configured: the newest checkpoint of a file names the trail it holds.
    pub file: String,
    /// The trail it is of (its first record's hash).
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
    "CREATE TABLE audit_checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, file TEXT NOT NULL,
        trail TEXT NOT NULL, records INTEGER NOT NULL, head TEXT NOT NULL, time TEXT NOT NULL,
        signature TEXT NOT NULL);
     CREATE INDEX audit_checkpoints_trail ON audit_checkpoints (trail, id);
     CREATE INDEX audit_checkpoints_file ON audit_checkpoints (file, id);";

/// The PostgreSQL migration that adds checkpoints.
pub(super) const POSTGRES_MIGRATION: &str = "
CREATE TABLE gatehouse_audit_checkpoints (id BIGSERIAL PRIMARY KEY, file TEXT NOT NULL,
    trail TEXT NOT NULL, records BIGINT NOT NULL, head TEXT NOT NULL, time TEXT NOT NULL,
    signature TEXT NOT NULL);
CREATE INDEX gatehouse_audit_checkpoints_trail ON gatehouse_audit_checkpoints (trail, id);
CREATE INDEX gatehouse_audit_checkpoints_file ON gatehouse_audit_checkpoints (file, id);
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
            Backend::Sqlite(s) => s.checkpoints("trail", trail),
            Backend::Postgres(p) => p.checkpoints("trail", trail).await,
        }
    }

    /// The newest checkpoint of the audit file `file`, whatever its trail.
    pub async fn newest_checkpoint(
        &self,
        file: &str,
    ) -> Result<Option<AuditCheckpoint>, StoreError> {
        let all = match &self.backend {
            Backend::Sqlite(s) => s.checkpoints("file", file)?,
            Backend::Postgres(p) => p.checkpoints("file", file).await?,
        };
        Ok(all.into_iter().next_back())
    }
}

impl super::sqlite::SqliteStore {
    fn add_checkpoint(&self, c: &AuditCheckpoint) -> Result<(), StoreError> {
        self.with_conn(|conn| {
            conn.execute(
                "INSERT INTO audit_checkpoints (file, trail, records, head, time, signature)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                rusqlite::params![c.file, c.trail, c.records, c.head, c.time, c.signature],
            )
            .map(|_| ())
        })
    }

    /// The checkpoints whose `column` (`trail` or `file`) is `value`, oldest first.
    fn checkpoints(&self, column: &str, value: &str) -> Result<Vec<AuditCheckpoint>, StoreError> {
        self.with_conn(|conn| {
            let mut statement = conn.prepare(&format!(
                "SELECT file, trail, records, head, time, signature FROM audit_checkpoints
                 WHERE {column} = ?1 ORDER BY id"
            ))?;
            let rows = statement.query_map([value], |r| {
                Ok(AuditCheckpoint {
                    file: r.get(0)?,
                    trail: r.get(1)?,
                    records: r.get(2)?,
                    head: r.get(3)?,
                    time: r.get(4)?,
                    signature: r.get(5)?,
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
                "INSERT INTO gatehouse_audit_checkpoints
                 (file, trail, records, head, time, signature) VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &c.file,
                    &c.trail,
                    &c.records,
                    &c.head,
                    &c.time,
                    &c.signature,
                ],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    /// The checkpoints whose `column` (`trail` or `file`) is `value`, oldest first.
    async fn checkpoints(
        &self,
        column: &str,
        value: &str,
    ) -> Result<Vec<AuditCheckpoint>, StoreError> {
        let sql = format!(
            "SELECT file, trail, records, head, time, signature FROM gatehouse_audit_checkpoints
             WHERE {column} = $1 ORDER BY id"
        );
        let rows = self
            .client()
            .await?
            .query(&sql, &[&value])
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| AuditCheckpoint {
                file: r.get(0),
                trail: r.get(1),
                records: r.get(2),
                head: r.get(3),
                time: r.get(4),
                signature: r.get(5),
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
                file: format!("{trail}.jsonl"),
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
            let newest = store.newest_checkpoint("a.jsonl").await.unwrap();
            assert_eq!(newest, Some(at("a", 5)));
            assert_eq!(store.newest_checkpoint("c.jsonl").await.unwrap(), None);
        }
    }
}
