//! The proxy's periodic work: every second, what the ledger, the vault, the rate limits and the
//! approvals need, and the audit trail's signed checkpoints.

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{AuditLog, CheckpointSchedule};
use crate::pipeline::Pipeline;

/// Every second: the pause state from the ledger, idle pseudonym sessions (so the vault holds
/// values only while an agent run is active), full rate-limit buckets, expired approvals.
pub(super) async fn housekeeping(
    pipeline: Arc<Pipeline>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => housekeep(&pipeline).await,
        }
    }
}

/// Every second: forgets the pseudonyms of executions idle for longer than the vault keeps
/// them and rate-limit buckets that are full again; reads which agents and teams are paused;
/// marks expired approvals.
async fn housekeep(pipeline: &Pipeline) {
    // Local work first: a store that does not answer must not keep pseudonyms past their
    // retention.
    pipeline.redactor.forget_idle();
    pipeline.rate_limits.shrink();
    // Read before the ledger writes what is queued: every outcome before it is then stored.
    let audited = pipeline.judge.audit().written_bytes();
    let store_work = async {
        if let Err(e) = pipeline.ledger.housekeeping().await {
            tracing::error!(error = %e, "the budget store could not be read");
        }
        // Without budgets no run was begun and nothing is written behind.
        if !pipeline.ledger.budgets().is_empty()
            && let Err(e) = pipeline.ledger.reconciled_up_to(audited).await
        {
            tracing::error!(error = %e, "the budget store could not take the settlements written behind");
        }
        if let Err(e) = pipeline.approvals.housekeeping().await {
            tracing::error!(error = %e, "expired approvals could not be marked");
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), store_work)
        .await
        .is_err()
    {
        tracing::error!("the store did not answer within 10 s; housekeeping retries in a second");
    }
}

/// Every second, a signed checkpoint of the audit trail when one is due by `schedule`.
pub(super) async fn checkpoints(
    audit: (Arc<AuditLog>, Arc<crate::store::Store>),
    schedule: CheckpointSchedule,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => checkpoint(&audit, Some(schedule)).await,
        }
    }
}

/// Signs a checkpoint of the audit trail (when due by `schedule`; at once when `None`) and keeps
/// it in the store.
pub(super) async fn checkpoint(
    (audit, store): &(Arc<AuditLog>, Arc<crate::store::Store>),
    schedule: Option<CheckpointSchedule>,
) {
    let Some(checkpoint) = audit.checkpoint(schedule) else {
        return;
    };
    let stored = checkpoint.stored();
    match tokio::time::timeout(Duration::from_secs(10), store.add_checkpoint(&stored)).await {
        Ok(Ok(())) => return,
        Ok(Err(e)) => tracing::error!(error = %e, "the audit checkpoint could not be stored"),
        Err(_) => tracing::error!("the store did not take the audit checkpoint within 10 s"),
    }
    audit.checkpoint_lost(&checkpoint);
}
