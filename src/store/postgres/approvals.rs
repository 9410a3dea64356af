//! Approvals on PostgreSQL: holding is serialised by an advisory lock (so the queue bounds hold
//! across proxies); deciding and expiring NOTIFY `gatehouse_approvals`, which every proxy LISTENs
//! to, so a request held by one proxy wakes when another decides it.

use tokio_postgres::Row;

use super::PgStore;
use crate::store::StoreError;
use crate::store::approvals::{Approval, ApprovalStatus, COLUMNS, Decision, Held, NewHold};

/// The migration that adds approvals.
pub(super) const MIGRATION: &str = r#"
CREATE TABLE gatehouse_approvals (
    id TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, agent TEXT NOT NULL, summary TEXT NOT NULL,
    created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, status TEXT NOT NULL,
    reviewer TEXT, reason TEXT, decided_at BIGINT);
CREATE INDEX gatehouse_approvals_fingerprint ON gatehouse_approvals (fingerprint, created_at);
CREATE INDEX gatehouse_approvals_status ON gatehouse_approvals (status, created_at);

CREATE FUNCTION gatehouse_hold(p_id TEXT, p_fingerprint TEXT, p_agent TEXT, p_summary TEXT,
    p_now BIGINT, p_expires BIGINT, p_max_agent BIGINT, p_max_total BIGINT)
RETURNS TABLE (o_kind TEXT, o_id TEXT, o_agent_pending BIGINT, o_total_pending BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    live TEXT;
    n_agent BIGINT;
    n_total BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(7355609);
    SELECT id INTO live FROM gatehouse_approvals
        WHERE fingerprint = p_fingerprint AND status IN ('pending', 'approved', 'denied')
          AND expires_at >= p_now
        ORDER BY created_at DESC LIMIT 1;
    IF live IS NOT NULL THEN
        o_kind := 'attached'; o_id := live;
        RETURN NEXT;
        RETURN;
    END IF;
    SELECT count(*) FILTER (WHERE agent = p_agent), count(*) INTO n_agent, n_total
        FROM gatehouse_approvals WHERE status = 'pending' AND expires_at >= p_now;
    IF n_agent >= p_max_agent OR n_total >= p_max_total THEN
        o_kind := 'full'; o_agent_pending := n_agent; o_total_pending := n_total;
        RETURN NEXT;
        RETURN;
    END IF;
    INSERT INTO gatehouse_approvals (id, fingerprint, agent, summary, created_at, expires_at, status)
        VALUES (p_id, p_fingerprint, p_agent, p_summary, p_now, p_expires, 'pending');
    o_kind := 'created'; o_id := p_id;
    RETURN NEXT;
END $$;

CREATE FUNCTION gatehouse_decide(p_id TEXT, p_status TEXT, p_reviewer TEXT, p_reason TEXT,
    p_now BIGINT, p_until BIGINT)
RETURNS BOOLEAN
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE gatehouse_approvals SET status = p_status, reviewer = p_reviewer, reason = p_reason,
        decided_at = p_now, expires_at = greatest(expires_at, p_until)
        WHERE id = p_id AND status = 'pending' AND expires_at >= p_now;
    IF NOT FOUND THEN
        RETURN FALSE;
    END IF;
    PERFORM pg_notify('gatehouse_approvals', p_id);
    RETURN TRUE;
END $$;

CREATE FUNCTION gatehouse_expire_approvals(p_now BIGINT, p_forget_before BIGINT)
RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    n BIGINT;
BEGIN
    UPDATE gatehouse_approvals SET status = 'expired', decided_at = p_now
        WHERE status = 'pending' AND expires_at < p_now;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM pg_notify('gatehouse_approvals', '*');
    END IF;
    DELETE FROM gatehouse_approvals WHERE status <> 'pending' AND expires_at < p_forget_before;
    RETURN n;
END $$;
"#;

fn approval(row: &Row) -> Approval {
    let status: String = row.get(6);
    Approval {
        id: row.get(0),
        fingerprint: row.get(1),
        agent: row.get(2),
        summary: row.get(3),
        created_at: row.get(4),
        expires_at: row.get(5),
        status: ApprovalStatus::parse(&status).unwrap_or(ApprovalStatus::Expired),
        reviewer: row.get(7),
        reason: row.get(8),
        decided_at: row.get(9),
    }
}

impl PgStore {
    pub async fn hold(&self, hold: &NewHold) -> Result<Held, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT o_kind, o_id, o_agent_pending, o_total_pending
                 FROM gatehouse_hold($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &hold.id,
                    &hold.fingerprint,
                    &hold.agent,
                    &hold.summary,
                    &hold.now,
                    &hold.expires_at,
                    &hold.max_per_agent,
                    &hold.max_total,
                ],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        let kind: String = row.get(0);
        if kind == "full" {
            let reason = crate::store::approvals_full(row.get(2), row.get(3), hold)
                .unwrap_or_else(|| "the approval queue is full".into());
            return Ok(Held::Full(reason));
        }
        let id: String = row.get(1);
        let found = self
            .approval(&id)
            .await?
            .ok_or_else(|| self.fail(&format!("approval {id} vanished")))?;
        Ok(if kind == "created" {
            Held::Created(found)
        } else {
            Held::Attached(found)
        })
    }

    pub async fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                &format!("SELECT {COLUMNS} FROM gatehouse_approvals WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(row.as_ref().map(approval))
    }

    pub async fn decide(&self, d: &Decision<'_>) -> Result<Result<Approval, String>, StoreError> {
        let status = if d.approve { "approved" } else { "denied" };
        let changed: bool = self
            .client()
            .await?
            .query_one(
                "SELECT gatehouse_decide($1, $2, $3, $4, $5, $6)",
                &[
                    &d.id,
                    &status,
                    &d.reviewer,
                    &d.reason,
                    &d.now,
                    &d.usable_until,
                ],
            )
            .await
            .map_err(|e| self.fail(&e))?
            .get(0);
        Ok(match (changed, self.approval(d.id).await?) {
            (true, Some(a)) => Ok(a),
            (_, Some(a)) => Err(format!("approval {} is {}", a.id, a.status.name())),
            (_, None) => Err(format!("no approval {}", d.id)),
        })
    }

    pub async fn consume(&self, id: &str) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE gatehouse_approvals SET status = 'used' WHERE id = $1 AND status = 'approved'",
                &[&id],
            )
            .await
            .map(|n| n == 1)
            .map_err(|e| self.fail(&e))
    }

    pub async fn approvals(
        &self,
        status: ApprovalStatus,
        limit: i64,
    ) -> Result<Vec<Approval>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM gatehouse_approvals WHERE status = $1
                     ORDER BY created_at DESC, id LIMIT $2"
                ),
                &[&status.name(), &limit],
            )
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(rows.iter().map(approval).collect())
    }

    pub async fn expire_approvals(&self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = self
            .client()
            .await?
            .query_one(
                "SELECT gatehouse_expire_approvals($1, $2)",
                &[&now, &(now - crate::store::SETTLED_KEPT_SECONDS)],
            )
            .await
            .map_err(|e| self.fail(&e))?
            .get(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Listens for approval changes on a connection of its own while this store is open; every
    /// notification, and every (re)connection (a notification may have been missed while down),
    /// bumps `changes`.
    pub fn listen(&self, changes: tokio::sync::watch::Sender<u64>) {
        let config = self.config.clone();
        let name = self.name.clone();
        let open = std::sync::Arc::downgrade(&self.alive);
        tokio::spawn(async move {
            let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
            while open.strong_count() > 0 {
                match config.connect(tokio_postgres::NoTls).await {
                    Ok((client, mut connection)) => {
                        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                        let driver = tokio::spawn(async move {
                            while let Some(message) =
                                std::future::poll_fn(|cx| connection.poll_message(cx)).await
                            {
                                match message {
                                    Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                        if tx.send(()).is_err() {
                                            return;
                                        }
                                    }
                                    Ok(_) => {}
                                    Err(_) => return,
                                }
                            }
                        });
                        if client
                            .batch_execute("LISTEN gatehouse_approvals")
                            .await
                            .is_ok()
                        {
                            changes.send_modify(|n| *n = n.wrapping_add(1));
                            loop {
                                tokio::select! {
                                    got = rx.recv() => match got {
                                        Some(()) => changes.send_modify(|n| *n = n.wrapping_add(1)),
                                        None => break,
                                    },
                                    _ = check.tick() => if open.strong_count() == 0 {
                                        driver.abort();
                                        return;
                                    },
                                }
                            }
                        }
                        driver.abort();
                        tracing::warn!(store = %name, "approval notifications stopped; reconnecting");
                    }
                    Err(e) => {
                        tracing::warn!(store = %name, error = %e, "cannot listen for approval notifications");
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        });
    }
}
