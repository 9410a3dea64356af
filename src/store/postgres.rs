//! The fleet back end: PostgreSQL, shared by several proxies. Reserving and settling are each one
//! call of a PL/pgSQL function (created by the migrations), so they are atomic in the database
//! and need no client-side transaction: the budget rows are locked in a fixed order, checked, and
//! written before the statement commits. One connection, pipelined, is reopened when it drops.

mod approvals;
mod leases;

use std::sync::Arc;

use std::collections::HashMap;

use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls, Statement};

use super::{Balance, Charge, NoRoom, Paused, Role, SpendBy, SpendOf, SpendRow, StoreError};

/// Migrations in order, each applied once in its own transaction; `gatehouse_migrations` records
/// those applied. Applying takes an advisory lock, so proxies starting together apply each once.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE gatehouse_balances (
    budget TEXT NOT NULL, window_key TEXT NOT NULL,
    spent BIGINT NOT NULL DEFAULT 0, reserved BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (budget, window_key));
CREATE TABLE gatehouse_reservations (
    request TEXT NOT NULL, budget TEXT NOT NULL, window_key TEXT NOT NULL,
    amount BIGINT NOT NULL, expires_at BIGINT NOT NULL,
    PRIMARY KEY (request, budget));
CREATE INDEX gatehouse_reservations_expiry ON gatehouse_reservations (expires_at) WHERE amount > 0;
CREATE TABLE gatehouse_settled (request TEXT PRIMARY KEY, amount BIGINT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX gatehouse_settled_at ON gatehouse_settled (at);
CREATE TABLE gatehouse_paused (scope TEXT PRIMARY KEY, since TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE gatehouse_breaker_reset (budget TEXT NOT NULL, window_key TEXT NOT NULL,
    at_spend BIGINT NOT NULL, PRIMARY KEY (budget, window_key));
CREATE TABLE gatehouse_spend (hour TEXT NOT NULL, agent TEXT NOT NULL, team TEXT NOT NULL,
    model TEXT NOT NULL, spent BIGINT NOT NULL, calls BIGINT NOT NULL,
    PRIMARY KEY (hour, agent, team, model));

-- All or none: the rows of every budget are created if missing, locked in (budget, window) order
-- (so concurrent reservations and settlements cannot deadlock), checked, then charged. Returns the
-- first budget without room, or no row.
CREATE FUNCTION gatehouse_reserve(p_request TEXT, p_budgets TEXT[], p_windows TEXT[],
    p_limits BIGINT[], p_amount BIGINT, p_expires BIGINT)
RETURNS TABLE (o_budget TEXT, o_window TEXT, o_available BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
    free BIGINT;
BEGIN
    INSERT INTO gatehouse_balances (budget, window_key)
        SELECT b, w FROM unnest(p_budgets, p_windows) AS t(b, w)
        ON CONFLICT DO NOTHING;
    FOR c IN
        SELECT t.b, t.w, t.l, g.spent, g.reserved
        FROM unnest(p_budgets, p_windows, p_limits) AS t(b, w, l)
        JOIN gatehouse_balances g ON g.budget = t.b AND g.window_key = t.w
        ORDER BY t.b, t.w
        FOR UPDATE OF g
    LOOP
        free := c.l - c.spent - c.reserved;
        IF p_amount > free THEN
            o_budget := c.b; o_window := c.w; o_available := greatest(free, 0);
            RETURN NEXT;
            RETURN;
        END IF;
    END LOOP;
    UPDATE gatehouse_balances g SET reserved = g.reserved + p_amount
        FROM unnest(p_budgets, p_windows) AS t(b, w)
        WHERE g.budget = t.b AND g.window_key = t.w;
    -- A second reservation under the same request id would hold money nothing releases: the
    -- primary key refuses it and the whole call rolls back.
    INSERT INTO gatehouse_reservations (request, budget, window_key, amount, expires_at)
        SELECT p_request, b, w, p_amount, p_expires FROM unnest(p_budgets, p_windows) AS t(b, w);
END $$;

-- Once per request id: the reservations (0 when expired) give way to the real cost.
CREATE FUNCTION gatehouse_settle(p_request TEXT, p_amount BIGINT, p_now BIGINT,
    p_hour TEXT, p_agent TEXT, p_team TEXT, p_model TEXT)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO gatehouse_settled (request, amount, at) VALUES (p_request, p_amount, p_now)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    PERFORM 1 FROM gatehouse_balances g JOIN gatehouse_reservations r
        ON g.budget = r.budget AND g.window_key = r.window_key
        WHERE r.request = p_request ORDER BY g.budget, g.window_key FOR UPDATE OF g;
    UPDATE gatehouse_balances g SET reserved = g.reserved - r.amount, spent = g.spent + p_amount
        FROM gatehouse_reservations r
        WHERE r.request = p_request AND g.budget = r.budget AND g.window_key = r.window_key;
    DELETE FROM gatehouse_reservations WHERE request = p_request;
    IF p_hour IS NOT NULL THEN
        INSERT INTO gatehouse_spend (hour, agent, team, model, spent, calls)
            VALUES (p_hour, p_agent, p_team, p_model, p_amount, 1)
            ON CONFLICT (hour, agent, team, model) DO UPDATE
            SET spent = gatehouse_spend.spent + excluded.spent,
                calls = gatehouse_spend.calls + 1;
    END IF;
    RETURN TRUE;
END $$;

-- Releases reservations past their expiry (their process died) and forgets old settlements.
CREATE FUNCTION gatehouse_expire(p_now BIGINT, p_forget_before BIGINT)
RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    released BIGINT;
BEGIN
    PERFORM 1 FROM gatehouse_balances g JOIN gatehouse_reservations r
        ON g.budget = r.budget AND g.window_key = r.window_key
        WHERE r.amount > 0 AND r.expires_at < p_now
        ORDER BY g.budget, g.window_key FOR UPDATE OF g;
    WITH gone AS (
        SELECT request, budget, window_key, amount FROM gatehouse_reservations
        WHERE amount > 0 AND expires_at < p_now FOR UPDATE
    ), sums AS (
        SELECT budget, window_key, sum(amount) AS held, count(*) AS n FROM gone
        GROUP BY budget, window_key
    ), applied AS (
        UPDATE gatehouse_balances g SET reserved = g.reserved - s.held
        FROM sums s WHERE g.budget = s.budget AND g.window_key = s.window_key
        RETURNING s.n
    ), zeroed AS (
        UPDATE gatehouse_reservations r SET amount = 0 FROM gone
        WHERE r.request = gone.request AND r.budget = gone.budget
    )
    SELECT COALESCE(sum(n), 0) INTO released FROM applied;
    DELETE FROM gatehouse_reservations WHERE amount = 0 AND expires_at < p_forget_before;
    DELETE FROM gatehouse_settled WHERE at < p_forget_before;
    RETURN released;
END $$;
"#,
    approvals::MIGRATION,
    super::checkpoints::POSTGRES_MIGRATION,
    leases::MIGRATION,
];

/// The PostgreSQL store.
pub struct PgStore {
    config: tokio_postgres::Config,
    name: String,
    client: Mutex<Option<Connected>>,
    /// Dropped with the store: tells the approval listener to stop.
    alive: Arc<()>,
}

/// The open connection and the statements prepared on it (each once per connection).
#[derive(Clone)]
struct Connected {
    client: Arc<Client>,
    statements: Arc<std::sync::Mutex<HashMap<&'static str, Statement>>>,
}

/// `url` without its password, for messages.
pub fn without_password(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let host = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect::<Vec<_>>()
                .join(",");
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!(
                "postgres://{}@{host}:{port}/{}",
                config.get_user().unwrap_or(""),
                config.get_dbname().unwrap_or("")
            )
        }
        Err(_) => "postgres://(unparseable)".to_string(),
    }
}

impl PgStore {
    /// Connects, applies pending migrations, and (for a proxy) releases expired reservations.
    pub async fn open(url: &str, role: Role) -> Result<PgStore, StoreError> {
        let name = without_password(url);
        let mut config = url
            .parse::<tokio_postgres::Config>()
            .map_err(|e| StoreError {
                store: name.clone(),
                reason: format!("not a PostgreSQL connection string: {e}"),
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(5));
        }
        let store = PgStore {
            config,
            name,
            client: Mutex::new(None),
            alive: Arc::new(()),
        };
        store.migrate().await?;
        if role == Role::Proxy {
            store.expire(super::now(), i64::MIN).await?;
        }
        Ok(store)
    }

    pub(super) fn fail(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError {
            store: self.name.clone(),
            reason: e.to_string(),
        }
    }

    /// The connection, reopened when the last one dropped.
    pub(super) async fn client(&self) -> Result<Arc<Client>, StoreError> {
        Ok(self.connected().await?.client)
    }

    /// The connection and `sql` prepared on it (once per connection).
    pub(super) async fn prepared(
        &self,
        sql: &'static str,
    ) -> Result<(Arc<Client>, Statement), StoreError> {
        let connected = self.connected().await?;
        let cache = |c: &Connected| {
            c.statements
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(sql)
                .cloned()
        };
        if let Some(statement) = cache(&connected) {
            return Ok((connected.client, statement));
        }
        let statement = connected
            .client
            .prepare(sql)
            .await
            .map_err(|e| self.fail(&e))?;
        connected
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(sql, statement.clone());
        Ok((connected.client, statement))
    }

    async fn connected(&self) -> Result<Connected, StoreError> {
        let mut slot = self.client.lock().await;
        if let Some(connected) = slot.as_ref().filter(|c| !c.client.is_closed()) {
            return Ok(connected.clone());
        }
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .map_err(|e| self.fail(&e))?;
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::error!(store = %name, error = %e, "PostgreSQL connection closed");
            }
        });
        let connected = Connected {
            client: Arc::new(client),
            statements: Arc::default(),
        };
        *slot = Some(connected.clone());
        Ok(connected)
    }

    /// Applies pending migrations in one transaction, serialised across processes by an
    /// advisory lock (proxies starting together apply each migration once).
    async fn migrate(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let applied = async {
            client
                .batch_execute(
                    "BEGIN;
                     SELECT pg_advisory_xact_lock(7355608);
                     CREATE TABLE IF NOT EXISTS gatehouse_migrations (
                        version INTEGER PRIMARY KEY,
                        applied_at TIMESTAMPTZ NOT NULL DEFAULT now());",
                )
                .await?;
            for (index, sql) in MIGRATIONS.iter().enumerate() {
                let version = i32::try_from(index + 1).unwrap_or(i32::MAX);
                let done = client
                    .query_opt(
                        "SELECT 1 FROM gatehouse_migrations WHERE version = $1",
                        &[&version],
                    )
                    .await?;
                if done.is_none() {
                    client.batch_execute(sql).await?;
                    client
                        .execute(
                            "INSERT INTO gatehouse_migrations (version) VALUES ($1)",
                            &[&version],
                        )
                        .await?;
                }
            }
            client.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = applied {
            let _ = client.batch_execute("ROLLBACK").await;
            return Err(self.fail(&format!("schema migration failed: {e}")));
        }
        Ok(())
    }

    pub async fn reserve(
        &self,
        request: &str,
        charges: &[Charge],
        amount: i64,
        expires_at: i64,
    ) -> Result<Result<(), NoRoom>, StoreError> {
        let budgets: Vec<&str> = charges.iter().map(|c| c.budget.as_str()).collect();
        let windows: Vec<&str> = charges.iter().map(|c| c.window.as_str()).collect();
        let limits: Vec<i64> = charges.iter().map(|c| c.limit).collect();
        let (client, statement) = self
            .prepared(
                "SELECT o_budget, o_window, o_available FROM gatehouse_reserve($1, $2, $3, $4, $5, $6)",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[&request, &budgets, &windows, &limits, &amount, &expires_at],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(match rows.first() {
            None => Ok(()),
            Some(row) => Err(NoRoom {
                budget: row.get(0),
                window: row.get(1),
                available: row.get(2),
            }),
        })
    }

    pub async fn settle(
        &self,
        request: &str,
        amount: i64,
        spend: Option<&SpendOf>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let (client, statement) = self
            .prepared("SELECT gatehouse_settle($1, $2, $3, $4, $5, $6, $7)")
            .await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &request,
                    &amount,
                    &now,
                    &spend.map(|s| s.hour.as_str()),
                    &spend.map(|s| s.agent.as_str()),
                    &spend.map(|s| s.team.as_str()),
                    &spend.map(|s| s.model.as_str()),
                ],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(row.get(0))
    }

    pub async fn expire(&self, now: i64, forget_before: i64) -> Result<u64, StoreError> {
        let (client, statement) = self.prepared("SELECT gatehouse_expire($1, $2)").await?;
        let row = client
            .query_one(&statement, &[&now, &forget_before])
            .await
            .map_err(|e| self.fail(&e))?;
        let released: i64 = row.get(0);
        Ok(u64::try_from(released).unwrap_or(0))
    }

    pub async fn pause(&self, scope: &str, since: &str, reason: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO gatehouse_paused (scope, since, reason) VALUES ($1, $2, $3)
                 ON CONFLICT (scope) DO UPDATE SET since = excluded.since, reason = excluded.reason",
                &[&scope, &since, &reason],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    pub async fn resume(&self, scope: &str) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute("DELETE FROM gatehouse_paused WHERE scope = $1", &[&scope])
            .await
            .map(|n| n > 0)
            .map_err(|e| self.fail(&e))
    }

    pub async fn paused_all(&self) -> Result<Vec<Paused>, StoreError> {
        let (client, statement) = self
            .prepared("SELECT scope, since, reason FROM gatehouse_paused ORDER BY scope")
            .await?;
        let rows = client
            .query(&statement, &[])
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| Paused {
                scope: r.get(0),
                since: r.get(1),
                reason: r.get(2),
            })
            .collect())
    }

    pub async fn reset_breaker(&self, budget: &str, window: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO gatehouse_breaker_reset (budget, window_key, at_spend)
                 SELECT $1, $2, COALESCE((SELECT spent + reserved FROM gatehouse_balances
                                          WHERE budget = $1 AND window_key = $2), 0)
                    - COALESCE((SELECT sum(amount) FROM gatehouse_reservations
                                WHERE budget = $1 AND window_key = $2
                                  AND starts_with(request, 'lease:')), 0)
                 ON CONFLICT (budget, window_key) DO UPDATE SET at_spend = excluded.at_spend",
                &[&budget, &window],
            )
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    pub async fn spend_since_reset(&self, budget: &str, window: &str) -> Result<i64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "SELECT COALESCE((SELECT spent + reserved FROM gatehouse_balances
                                  WHERE budget = $1 AND window_key = $2), 0)
                      - COALESCE((SELECT at_spend FROM gatehouse_breaker_reset
                                  WHERE budget = $1 AND window_key = $2), 0)",
                &[&budget, &window],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(row.get::<_, i64>(0).max(0))
    }

    pub async fn balance(&self, budget: &str, window: &str) -> Result<Balance, StoreError> {
        let (client, statement) = self
            .prepared(
                "SELECT spent, reserved FROM gatehouse_balances WHERE budget = $1 AND window_key = $2",
            )
            .await?;
        let row = client
            .query_opt(&statement, &[&budget, &window])
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(row.map_or_else(Balance::default, |r| Balance {
            spent: r.get(0),
            reserved: r.get(1),
        }))
    }

    pub async fn spend(&self, by: SpendBy, hour_prefix: &str) -> Result<Vec<SpendRow>, StoreError> {
        let column = by.column();
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {column}, SUM(spent)::BIGINT, SUM(calls)::BIGINT FROM gatehouse_spend
                     WHERE starts_with(hour, $1)
                     GROUP BY {column} ORDER BY SUM(spent) DESC, {column}"
                ),
                &[&hour_prefix],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| SpendRow {
                key: r.get(0),
                spent: r.get(1),
                calls: r.get(2),
            })
            .collect())
    }
}
