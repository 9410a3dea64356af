//! The queryable index of the audit trail: every record of the JSON Lines file, in SQLite. The
//! file stays the source of truth (it is written before the agent is answered); the index is fed
//! in the background as records are written, and catches up with the file whenever it is opened,
//! so a crash between the two loses nothing the file has.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::{Connection, params};

use super::row::Row;
use serde_json::Value;

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
#[error("audit store {path}: {reason}")]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub reason: String,
}

/// A filter over recorded decisions; unset fields match everything.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Agent id.
    pub agent: Option<String>,
    /// `allow`, `deny` or `hold`.
    pub effect: Option<String>,
    /// A rule among the deciding ones.
    pub rule: Option<String>,
    /// Trigger name.
    pub trigger: Option<String>,
    /// Earliest time (RFC 3339, inclusive).
    pub since: Option<String>,
    /// Latest time (RFC 3339, exclusive).
    pub until: Option<String>,
    /// Most records returned, newest first.
    pub limit: usize,
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS decisions (
    line INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    decision TEXT NOT NULL,
    request TEXT NOT NULL,
    agent TEXT NOT NULL,
    team TEXT,
    env TEXT,
    trigger TEXT NOT NULL,
    host TEXT NOT NULL,
    effect TEXT NOT NULL,
    country TEXT,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS decision_rules (line INTEGER NOT NULL, rule TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS decisions_agent ON decisions(agent, time);
CREATE INDEX IF NOT EXISTS decisions_effect ON decisions(effect, time);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions(time);
CREATE INDEX IF NOT EXISTS decision_rules_rule ON decision_rules(rule, line);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// An open index.
pub struct AuditStore {
    conn: Connection,
    path: PathBuf,
}

impl AuditStore {
    /// Opens (or creates) the index at `path`.
    pub fn open(path: &Path) -> Result<AuditStore, StoreError> {
        let conn = crate::sqlite::open(path, SCHEMA).map_err(|reason| StoreError {
            path: path.to_path_buf(),
            reason,
        })?;
        Ok(AuditStore {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn fail(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// Indexes the lines of `jsonl` not indexed yet; starts over when the file is not the one
    /// indexed (its first line differs) or is shorter. Returns how many lines were added.
    pub fn catch_up(&mut self, jsonl: &Path) -> Result<u64, StoreError> {
        let text = match std::fs::read_to_string(jsonl) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(self.fail(&format!("{}: {e}", jsonl.display()))),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let first = lines.first().copied().unwrap_or_default();
        let known_first: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'first'", [], |r| {
                r.get(0)
            })
            .ok();
        // Every line up to `indexed` is in the index; later ones may be, or not (a failed batch).
        let indexed = self.indexed();
        let same_file = known_first.as_deref().is_none_or(|f| f == first);
        let start = if same_file && indexed <= lines.len() as u64 {
            indexed
        } else {
            self.conn
                .execute_batch("DELETE FROM decisions; DELETE FROM decision_rules;")
                .map_err(|e| self.fail(&e))?;
            0
        };
        let tx = self.conn.transaction().map_err(|e| StoreError {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('first', ?1), ('indexed', ?2)",
            params![first, lines.len().to_string()],
        )
        .map_err(|e| StoreError {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let mut added = 0;
        for (i, line) in lines.iter().enumerate().skip(start as usize) {
            insert(&tx, i as u64 + 1, line).map_err(|e| StoreError {
                path: self.path.clone(),
                reason: format!("{}: line {}: {e}", jsonl.display(), i + 1),
            })?;
            added += 1;
        }
        tx.commit().map_err(|e| StoreError {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        Ok(added)
    }

    /// The mark up to which every line of the file is indexed.
    fn indexed(&self) -> u64 {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'indexed'", [], |r| {
                r.get::<_, String>(0)
            })
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Every row as (line, record text), in line order, and the mark up to which every line of
    /// the file is indexed.
    pub fn rows(&self) -> Result<(Vec<(u64, String)>, u64), StoreError> {
        let indexed = self.indexed();
        let mut statement = self
            .conn
            .prepare("SELECT line, record FROM decisions ORDER BY line")
            .map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map([], |r| {
                Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
            })
            .map_err(|e| self.fail(&e))?;
        let rows = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.fail(&e))?;
        Ok((rows, indexed))
    }

    /// The records `query` selects, newest first.
    pub fn query(&self, query: &Query) -> Result<Vec<Value>, StoreError> {
        let mut sql = String::from("SELECT record FROM decisions WHERE 1 = 1");
        let mut values: Vec<String> = Vec::new();
        let mut filter = |clause: &str, value: &Option<String>| {
            if let Some(v) = value {
                values.push(v.clone());
                sql.push_str(&format!(" AND {clause} ?{}", values.len()));
            }
        };
        filter("agent =", &query.agent);
        filter("effect =", &query.effect);
        filter("trigger =", &query.trigger);
        filter("time >=", &query.since);
        filter("time <", &query.until);
        filter(
            "line IN (SELECT line FROM decision_rules WHERE rule =",
            &query.rule,
        );
        if query.rule.is_some() {
            sql.push(')');
        }
        sql.push_str(&format!(" ORDER BY line DESC LIMIT {}", query.limit.max(1)));
        let mut statement = self.conn.prepare(&sql).map_err(|e| self.fail(&e))?;
        let rows = statement
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                r.get::<_, String>(0)
            })
            .map_err(|e| self.fail(&e))?;
        let mut records = Vec::new();
        for row in rows {
            let text = row.map_err(|e| self.fail(&e))?;
            records.push(serde_json::from_str(&text).map_err(|e| self.fail(&e))?);
        }
        Ok(records)
    }
}

/// Indexes one line (its number in the file, its JSON text).
fn insert(conn: &Connection, line: u64, text: &str) -> Result<(), String> {
    let row: Row<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if row.record {
        // Outcomes and socket ends are read with the file; the index holds decisions.
        return Ok(());
    }
    let line = i64::try_from(line).unwrap_or(i64::MAX);
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO decisions (line, time, decision, request, agent, team, env, \
             trigger, host, effect, country, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
             ?10, ?11, ?12)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                line,
                row.time.unwrap_or_default(),
                row.decision.unwrap_or_default(),
                row.request.unwrap_or_default(),
                row.agent.unwrap_or_default(),
                row.team,
                row.env,
                row.trigger.unwrap_or_default(),
                row.host.unwrap_or_default(),
                row.effect.unwrap_or_default(),
                row.country,
                text,
            ])
        })
        .map_err(|e| e.to_string())?;
    if added == 0 {
        // Indexed already (by the proxy's feeder and a catch-up at once).
        return Ok(());
    }
    for rule in &row.rules {
        conn.prepare_cached("INSERT INTO decision_rules (line, rule) VALUES (?1, ?2)")
            .and_then(|mut statement| statement.execute(params![line, rule]))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// How long the feeder lets records gather before it writes them in one transaction.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(20);

/// The most records one transaction writes.
const BATCH_RECORDS: usize = 4096;

/// Feeds the index from a channel of `(line number, JSON text)` until every sender is gone,
/// in transactions of whatever has queued up.
pub fn feed(mut store: AuditStore, records: Receiver<(u64, String)>) {
    let mut healthy = true;
    while let Ok(first) = records.recv() {
        // Records come one per decision; one transaction (and one WAL commit) per record was
        // about a sixth of the proxy's CPU under load. The feeder sleeps while a batch gathers:
        // a sender wakes no thread while no one waits, and the index trails the file by at most
        // this window (a crash loses nothing: the next start catches up from the file).
        std::thread::sleep(BATCH_WINDOW);
        let mut batch = vec![first];
        batch.extend(records.try_iter().take(BATCH_RECORDS));
        let last = batch.last().map_or(0, |(line, _)| *line);
        let result = store.conn.transaction().and_then(|tx| {
            let mut whole = true;
            for (line, text) in &batch {
                if let Err(e) = insert(&tx, *line, text) {
                    tracing::error!(line, error = %e, "audit record not indexed");
                    whole = false;
                }
            }
            // The mark moves only while every line so far is in: a gap stays behind it, and the
            // next catch-up fills it from the file.
            if whole && healthy {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('indexed', ?1)",
                )?
                .execute(params![last.to_string()])?;
            }
            healthy &= whole;
            tx.commit()
        });
        if let Err(e) = result {
            healthy = false;
            tracing::error!(error = %e, store = %store.path.display(), "audit index write failed; it catches up from the file on the next start");
        }
    }
}

/// A sender of records to a store fed on its own thread.
pub fn spawn_feeder(store: AuditStore) -> Result<Sender<(u64, String)>, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let path = store.path.clone();
    std::thread::Builder::new()
        .name("audit-index".into())
        .spawn(move || feed(store, rx))
        .map_err(|e| StoreError {
            path,
            reason: e.to_string(),
        })?;
    Ok(tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(decision: &str, agent: &str, effect: &str, rules: &[&str], time: &str) -> String {
        serde_json::json!({
            "time": time, "decision": decision, "request": decision, "agent": agent,
            "trigger": "http.request", "host": "h", "effect": effect, "rules": rules,
        })
        .to_string()
    }

    #[test]
    fn catches_up_with_the_file_and_answers_queries() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("a.jsonl");
        let lines = [
            line(
                "d1",
                "bot",
                "allow",
                &["allow-openai"],
                "2026-11-25T10:00:00Z",
            ),
            line("d2", "bot", "deny", &[], "2026-11-25T11:00:00Z"),
            line(
                "d3",
                "other",
                "deny",
                &["deny-admin"],
                "2026-11-25T12:00:00Z",
            ),
        ];
        std::fs::write(&jsonl, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        let mut store = AuditStore::open(&dir.path().join("a.sqlite")).unwrap();
        assert_eq!(store.catch_up(&jsonl).unwrap(), 2);
        assert_eq!(store.catch_up(&jsonl).unwrap(), 0, "nothing new");
        std::fs::write(
            &jsonl,
            format!("{}\n{}\n{}\n", lines[0], lines[1], lines[2]),
        )
        .unwrap();
        assert_eq!(store.catch_up(&jsonl).unwrap(), 1);
        let decisions = |q: Query| -> Vec<String> {
            store
                .query(&Query {
                    limit: if q.limit == 0 { 10 } else { q.limit },
                    ..q
                })
                .unwrap()
                .iter()
                .map(|r| r["decision"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(decisions(Query::default()), ["d3", "d2", "d1"]);
        let bot = Query {
            agent: Some("bot".into()),
            ..Query::default()
        };
        assert_eq!(decisions(bot), ["d2", "d1"]);
        let denies = Query {
            effect: Some("deny".into()),
            ..Query::default()
        };
        assert_eq!(decisions(denies), ["d3", "d2"]);
        let rule = Query {
            rule: Some("deny-admin".into()),
            ..Query::default()
        };
        assert_eq!(decisions(rule), ["d3"]);
        let window = Query {
            since: Some("2026-11-25T10:30:00Z".into()),
            until: Some("2026-11-25T12:00:00Z".into()),
            ..Query::default()
        };
        assert_eq!(decisions(window), ["d2"]);
        assert_eq!(
            decisions(Query {
                limit: 1,
                ..Query::default()
            }),
            ["d3"]
        );
    }

    #[test]
    fn a_gap_the_feeder_left_is_filled_by_the_next_catch_up() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("a.jsonl");
        let lines: Vec<String> = (1..=3)
            .map(|i| line(&format!("d{i}"), "bot", "allow", &[], "t"))
            .collect();
        std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
        let mut store = AuditStore::open(&dir.path().join("a.sqlite")).unwrap();
        store.catch_up(&jsonl).unwrap();
        // As if the batch holding line 2 had failed while line 3's succeeded.
        store
            .conn
            .execute_batch(
                "DELETE FROM decisions WHERE line = 2; \
                 UPDATE meta SET value = '1' WHERE key = 'indexed';",
            )
            .unwrap();
        assert_eq!(
            store.catch_up(&jsonl).unwrap(),
            2,
            "lines 2 and 3 read again"
        );
        let all = store
            .query(&Query {
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(all.len(), 3, "line 3 not indexed twice, line 2 back");
    }

    #[test]
    fn a_replaced_file_is_indexed_from_scratch() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(&jsonl, line("d1", "bot", "allow", &[], "t1") + "\n").unwrap();
        let mut store = AuditStore::open(&dir.path().join("a.sqlite")).unwrap();
        store.catch_up(&jsonl).unwrap();
        std::fs::write(&jsonl, line("x1", "bot", "deny", &[], "t2") + "\n").unwrap();
        assert_eq!(store.catch_up(&jsonl).unwrap(), 1);
        let all = store
            .query(&Query {
                limit: 10,
                ..Query::default()
            })
            .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["decision"], "x1");
    }
}
