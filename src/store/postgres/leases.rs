//! Leases, batched settlements and runs on PostgreSQL: each call is one statement (a PL/pgSQL
//! function, atomic in the database), prepared once per connection.

use super::PgStore;
use crate::store::leases::{LeaseAsk, Leased, Run, Settled};
use crate::store::{NoRoom, StoreError};

/// Runs, the functions that lease and settle in batches, and expiry counting as spent.
pub(super) const MIGRATION: &str = r#"
CREATE TABLE gatehouse_runs (run TEXT PRIMARY KEY, trail TEXT NOT NULL,
    audit_offset BIGINT NOT NULL, started_at BIGINT NOT NULL);
CREATE INDEX gatehouse_runs_trail ON gatehouse_runs (trail);

-- A run's leases give back, then all grow by p_want (by p_min alone once the budget no longer has
-- twice p_want free), or none grows. Budget rows are locked in (budget, window) order, as everywhere.
CREATE FUNCTION gatehouse_lease(p_run TEXT, p_budgets TEXT[], p_windows TEXT[], p_limits BIGINT[],
    p_give BIGINT[], p_min BIGINT[], p_want BIGINT[], p_expires BIGINT)
RETURNS TABLE (o_budget TEXT, o_window TEXT, o_granted BIGINT, o_others BIGINT,
    o_available BIGINT, o_ok BOOLEAN)
LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
    free BIGINT;
    grants BIGINT[] := array_fill(0::BIGINT, ARRAY[cardinality(p_budgets)]);
    mine BIGINT;
    reset BIGINT;
BEGIN
    INSERT INTO gatehouse_balances (budget, window_key)
        SELECT b, w FROM unnest(p_budgets, p_windows) AS t(b, w) ON CONFLICT DO NOTHING;
    PERFORM 1 FROM gatehouse_balances g JOIN unnest(p_budgets, p_windows) AS t(b, w)
        ON g.budget = t.b AND g.window_key = t.w
        ORDER BY g.budget, g.window_key FOR UPDATE OF g;
    INSERT INTO gatehouse_reservations (request, budget, window_key, amount, expires_at)
        SELECT 'lease:' || p_run || ':' || w, b, w, 0, p_expires
        FROM unnest(p_budgets, p_windows) AS t(b, w) ON CONFLICT DO NOTHING;
    FOR c IN SELECT t.b, t.w, least(t.give, r.amount) AS give
        FROM unnest(p_budgets, p_windows, p_give) AS t(b, w, give)
        JOIN gatehouse_reservations r ON r.request = 'lease:' || p_run || ':' || t.w
            AND r.budget = t.b
        WHERE t.give > 0 AND r.amount > 0
    LOOP
        UPDATE gatehouse_reservations SET amount = amount - c.give
            WHERE request = 'lease:' || p_run || ':' || c.w AND budget = c.b;
        UPDATE gatehouse_balances SET reserved = reserved - c.give
            WHERE budget = c.b AND window_key = c.w;
    END LOOP;
    FOR c IN SELECT t.i::INT AS i, t.b, t.w, t.l, t.mn, t.wt, g.spent, g.reserved
        FROM unnest(p_budgets, p_windows, p_limits, p_min, p_want)
            WITH ORDINALITY AS t(b, w, l, mn, wt, i)
        JOIN gatehouse_balances g ON g.budget = t.b AND g.window_key = t.w
        ORDER BY t.b, t.w
    LOOP
        free := c.l - c.spent - c.reserved;
        -- An ask that needs nothing (a renewal, a give) is never refused, even over the limit.
        IF c.mn > 0 AND c.mn > free THEN
            o_budget := c.b; o_window := c.w; o_granted := 0; o_others := 0;
            o_available := greatest(free, 0); o_ok := FALSE;
            RETURN NEXT;
            RETURN;
        END IF;
        -- Near the limit a lease takes only what the call needs: no proxy sits on room another needs.
        grants[c.i] := greatest(CASE WHEN free >= 2 * c.wt THEN greatest(c.wt, c.mn) ELSE c.mn END, 0);
    END LOOP;
    FOR c IN SELECT t.i::INT AS i, t.b, t.w
        FROM unnest(p_budgets, p_windows) WITH ORDINALITY AS t(b, w, i) ORDER BY t.i
    LOOP
        UPDATE gatehouse_balances SET reserved = reserved + grants[c.i]
            WHERE budget = c.b AND window_key = c.w;
        UPDATE gatehouse_reservations
            SET amount = amount + grants[c.i], expires_at = greatest(expires_at, p_expires)
            WHERE request = 'lease:' || p_run || ':' || c.w AND budget = c.b
            RETURNING amount INTO mine;
        reset := COALESCE((SELECT at_spend FROM gatehouse_breaker_reset
                           WHERE budget = c.b AND window_key = c.w), 0);
        SELECT c.b, c.w, grants[c.i], g.spent + g.reserved - reset - mine, 0::BIGINT, TRUE
            INTO o_budget, o_window, o_granted, o_others, o_available, o_ok
            FROM gatehouse_balances g WHERE g.budget = c.b AND g.window_key = c.w;
        RETURN NEXT;
    END LOOP;
END $$;

-- Settled calls written at once, each once per request id: their cost moves out of the run's
-- leases into spent (and into the spend of their agent, team and model).
CREATE FUNCTION gatehouse_settle_batch(p_run TEXT, p_requests TEXT[], p_amounts BIGINT[],
    p_hours TEXT[], p_agents TEXT[], p_teams TEXT[], p_models TEXT[],
    p_items BIGINT[], p_budgets TEXT[], p_windows TEXT[], p_now BIGINT)
RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
    new_items BIGINT[];
    shrink BIGINT;
BEGIN
    WITH items AS (
        SELECT * FROM unnest(p_requests, p_amounts) WITH ORDINALITY AS t(request, amount, i)
    ), added AS (
        INSERT INTO gatehouse_settled (request, amount, at)
            SELECT request, amount, p_now FROM items ON CONFLICT DO NOTHING RETURNING request
    )
    SELECT COALESCE(array_agg(items.i), '{}') INTO new_items
        FROM items JOIN added ON added.request = items.request;
    INSERT INTO gatehouse_spend (hour, agent, team, model, spent, calls)
        SELECT s.h, s.a, s.t, s.m, sum(s.amount)::BIGINT, count(*)
        FROM unnest(p_hours, p_agents, p_teams, p_models, p_amounts)
            WITH ORDINALITY AS s(h, a, t, m, amount, i)
        WHERE s.i = ANY(new_items) AND s.h IS NOT NULL
        GROUP BY s.h, s.a, s.t, s.m
        ON CONFLICT (hour, agent, team, model) DO UPDATE
        SET spent = gatehouse_spend.spent + excluded.spent,
            calls = gatehouse_spend.calls + excluded.calls;
    FOR c IN SELECT ch.b, ch.w, sum(p_amounts[ch.item::INT])::BIGINT AS total
        FROM unnest(p_items, p_budgets, p_windows) AS ch(item, b, w)
        WHERE ch.item = ANY(new_items)
        GROUP BY ch.b, ch.w ORDER BY ch.b, ch.w
    LOOP
        INSERT INTO gatehouse_balances (budget, window_key) VALUES (c.b, c.w)
            ON CONFLICT DO NOTHING;
        PERFORM 1 FROM gatehouse_balances WHERE budget = c.b AND window_key = c.w FOR UPDATE;
        shrink := least(c.total, greatest(COALESCE((SELECT amount FROM gatehouse_reservations
            WHERE request = 'lease:' || p_run || ':' || c.w AND budget = c.b), 0), 0));
        UPDATE gatehouse_reservations SET amount = amount - shrink
            WHERE request = 'lease:' || p_run || ':' || c.w AND budget = c.b;
        UPDATE gatehouse_balances SET spent = spent + c.total, reserved = reserved - shrink
            WHERE budget = c.b AND window_key = c.w;
    END LOOP;
    RETURN cardinality(new_items);
END $$;

-- Ended runs: what their leases still hold is released.
CREATE FUNCTION gatehouse_end_runs(p_runs TEXT[])
RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
BEGIN
    FOR c IN SELECT r.request, r.budget, r.window_key, r.amount FROM gatehouse_reservations r
        JOIN unnest(p_runs) AS u(run) ON starts_with(r.request, 'lease:' || u.run || ':')
        ORDER BY r.budget, r.window_key
    LOOP
        UPDATE gatehouse_balances SET reserved = reserved - c.amount
            WHERE budget = c.budget AND window_key = c.window_key;
        DELETE FROM gatehouse_reservations WHERE request = c.request AND budget = c.budget;
    END LOOP;
    DELETE FROM gatehouse_runs WHERE run = ANY(p_runs);
END $$;

-- What expires unsettled (its process died and was not restarted to reconcile) counts as spent.
CREATE OR REPLACE FUNCTION gatehouse_expire(p_now BIGINT, p_forget_before BIGINT)
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
        UPDATE gatehouse_balances g SET reserved = g.reserved - s.held, spent = g.spent + s.held
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
"#;

impl PgStore {
    pub async fn lease(
        &self,
        run: &str,
        asks: &[LeaseAsk],
        expires_at: i64,
    ) -> Result<Result<Vec<Leased>, NoRoom>, StoreError> {
        let column = |f: fn(&LeaseAsk) -> i64| asks.iter().map(f).collect::<Vec<i64>>();
        let budgets: Vec<&str> = asks.iter().map(|a| a.charge.budget.as_str()).collect();
        let windows: Vec<&str> = asks.iter().map(|a| a.charge.window.as_str()).collect();
        let (limits, give) = (column(|a| a.charge.limit), column(|a| a.give));
        let (min, want) = (column(|a| a.min), column(|a| a.want));
        let (client, statement) = self
            .prepared(
                "SELECT o_budget, o_window, o_granted, o_others, o_available, o_ok
                 FROM gatehouse_lease($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .await?;
        let rows = client
            .query(
                &statement,
                &[
                    &run,
                    &budgets,
                    &windows,
                    &limits,
                    &give,
                    &min,
                    &want,
                    &expires_at,
                ],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        if let Some(refused) = rows.iter().find(|r| !r.get::<_, bool>(5)) {
            return Ok(Err(NoRoom {
                budget: refused.get(0),
                window: refused.get(1),
                available: refused.get(4),
            }));
        }
        Ok(Ok(rows
            .iter()
            .map(|r| Leased {
                granted: r.get(2),
                others: r.get(3),
            })
            .collect()))
    }

    pub async fn settle_batch(
        &self,
        run: &str,
        batch: &[Settled],
        now: i64,
    ) -> Result<u64, StoreError> {
        let requests: Vec<&str> = batch.iter().map(|s| s.request.as_str()).collect();
        let amounts: Vec<i64> = batch.iter().map(|s| s.amount).collect();
        let spend = |f: fn(&crate::store::SpendOf) -> &str| -> Vec<Option<&str>> {
            batch.iter().map(|s| s.spend.as_ref().map(f)).collect()
        };
        let (hours, agents) = (spend(|s| &s.hour), spend(|s| &s.agent));
        let (teams, models) = (spend(|s| &s.team), spend(|s| &s.model));
        let mut items: Vec<i64> = Vec::new();
        let mut budgets: Vec<&str> = Vec::new();
        let mut windows: Vec<&str> = Vec::new();
        for (i, settled) in (1i64..).zip(batch) {
            for (budget, window) in &settled.charges {
                items.push(i);
                budgets.push(budget);
                windows.push(window);
            }
        }
        let (client, statement) = self
            .prepared("SELECT gatehouse_settle_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
            .await?;
        let row = client
            .query_one(
                &statement,
                &[
                    &run, &requests, &amounts, &hours, &agents, &teams, &models, &items, &budgets,
                    &windows, &now,
                ],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    pub async fn begin_run(
        &self,
        run: &str,
        trail: &str,
        offset: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        let (client, statement) = self
            .prepared(
                "INSERT INTO gatehouse_runs (run, trail, audit_offset, started_at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (run) DO UPDATE SET trail = excluded.trail,
                    audit_offset = excluded.audit_offset",
            )
            .await?;
        client
            .execute(&statement, &[&run, &trail, &offset, &now])
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    pub async fn runs(&self, trail: &str) -> Result<Vec<Run>, StoreError> {
        let (client, statement) = self
            .prepared(
                "SELECT run, audit_offset FROM gatehouse_runs WHERE trail = $1
                 ORDER BY audit_offset",
            )
            .await?;
        let rows = client
            .query(&statement, &[&trail])
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(rows
            .iter()
            .map(|r| Run {
                run: r.get(0),
                offset: r.get(1),
            })
            .collect())
    }

    pub async fn advance_run(&self, run: &str, offset: i64) -> Result<(), StoreError> {
        let (client, statement) = self
            .prepared(
                "UPDATE gatehouse_runs SET audit_offset = greatest(audit_offset, $2) WHERE run = $1",
            )
            .await?;
        client
            .execute(&statement, &[&run, &offset])
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }

    pub async fn end_runs(&self, runs: &[String]) -> Result<(), StoreError> {
        let (client, statement) = self.prepared("SELECT gatehouse_end_runs($1)").await?;
        client
            .execute(&statement, &[&runs])
            .await
            .map(|_| ())
            .map_err(|e| self.fail(&e))
    }
}
