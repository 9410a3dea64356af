//! Opening the SQLite files the proxy keeps (the audit index, the budget ledger): the folder is
//! created, writers wait for each other a few seconds, and the schema is applied.

use std::path::Path;

use rusqlite::Connection;

/// Opens (or creates) the database at `path` with `schema`; the error says what failed.
pub fn open(path: &Path, schema: &str) -> Result<Connection, String> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    conn.execute_batch(schema).map_err(|e| e.to_string())?;
    Ok(conn)
}
