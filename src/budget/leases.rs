//! Leases: the money a proxy run sets aside in the store, per budget and window, in one
//! transaction, and then reserves and settles calls from in memory. Settlements are written behind
//! the answers, in batches (one transaction every few milliseconds); what a batch writes moves out
//! of the lease into `spent`, so spent plus reserved in the store never exceeds a limit, for one
//! proxy or a fleet. A call that does not fit its lease grows it (one transaction); a lease unused
//! for a moment is given back. Each settled call is in the audit file (its outcome's `ledger`)
//! before its answer ends, so the next start reconciles what a `kill -9` left unwritten.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::store::{Charge, LeaseAsk, Leased, NoRoom, Settled, SpendOf, Store, StoreError};

/// How long settlements wait to be written with others.
pub const BATCH_INTERVAL: Duration = Duration::from_millis(5);

/// How long a lease goes unused before what it holds free is given back to the store (so other
/// proxies, and `gatehouse budget`, see the room).
const IDLE: Duration = Duration::from_millis(250);

/// A settled call as its outcome record carries it: enough to charge it again from the audit
/// file (idempotent by request id) if the proxy dies before the batch holding it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The proxy run whose lease held the call.
    pub run: String,
    /// Nano-USD charged.
    pub nano: i64,
    /// UTC hour of the spend (`2026-11-25T18`), absent for a call never sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hour: Option<String>,
    /// Agent, team and model of the spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend: Option<(String, String, String)>,
    /// The budgets and windows charged.
    pub charged: Vec<(String, String)>,
}

impl LedgerEntry {
    /// The settlement `request` writes.
    pub fn settled(&self, request: &str) -> Settled {
        let spend =
            self.hour
                .clone()
                .zip(self.spend.clone())
                .map(|(hour, (agent, team, model))| SpendOf {
                    hour,
                    agent,
                    team,
                    model,
                });
        Settled {
            request: request.to_string(),
            amount: self.nano,
            spend,
            charges: self.charged.clone(),
        }
    }
}

/// One budget window's lease, as this run holds it.
#[derive(Debug)]
struct Account {
    limit: i64,
    /// Nano-USD the lease holds in the store.
    lease: i64,
    /// The part no call holds and no settlement waits for.
    free: i64,
    /// The breaker's count of the budget without this lease, as last read (plus what this run
    /// wrote since).
    others: i64,
    used: Instant,
}

/// The leases of one proxy run and the settlements waiting to be written.
pub struct Leases {
    store: std::sync::Arc<Store>,
    run: String,
    ttl_seconds: i64,
    /// A lease grows by room for this many calls like the one asking (at most a quarter of the
    /// limit), so most calls need no store at all.
    lease_calls: i64,
    /// Shared with the task of each lease transaction (see [`Leases::transact`]).
    accounts: Arc<Mutex<Accounts>>,
    queue: Mutex<Vec<Settled>>,
    wake: tokio::sync::Notify,
    /// Orders the transactions that change leases, so the mirror here follows the store.
    sync: tokio::sync::Mutex<()>,
    stop: CancellationToken,
    /// Store transactions made so far (grows, batches, returns, renewals).
    transactions: AtomicU64,
}

/// The accounts of a run, by budget and window.
type Accounts = HashMap<(String, String), Account>;

/// What one lease transaction returned.
type LeaseResult = Result<Result<Vec<Leased>, NoRoom>, StoreError>;

fn lock(accounts: &Mutex<Accounts>) -> std::sync::MutexGuard<'_, Accounts> {
    accounts.lock().unwrap_or_else(|p| p.into_inner())
}

fn key(charge: &Charge) -> (String, String) {
    (charge.budget.clone(), charge.window.clone())
}

impl Leases {
    /// The leases of run `run` in `store`, held `ttl_seconds` past their last renewal.
    pub fn new(
        store: std::sync::Arc<Store>,
        run: String,
        ttl_seconds: u64,
        lease_calls: u64,
    ) -> Leases {
        Leases {
            store,
            run,
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 4),
            lease_calls: i64::try_from(lease_calls.max(1)).unwrap_or(1),
            accounts: Arc::new(Mutex::new(HashMap::new())),
            queue: Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
            sync: tokio::sync::Mutex::new(()),
            stop: CancellationToken::new(),
            transactions: AtomicU64::new(0),
        }
    }

    /// This run's id.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Store transactions made so far: a call that fits its lease makes none.
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    fn accounts(&self) -> std::sync::MutexGuard<'_, Accounts> {
        lock(&self.accounts)
    }

    /// Runs one lease transaction of `asks` and applies its result to the accounts with `apply`
    /// on a task of its own, so the store and the accounts agree even when the caller stops
    /// waiting (the housekeeping timeout, an agent resetting its stream while a lease grows):
    /// a dropped future left the store changed and memory not. `abandoned` runs instead of
    /// handing the result over when nobody waits for it any more.
    async fn transact(
        &self,
        asks: Vec<LeaseAsk>,
        apply: impl FnOnce(&mut Accounts, &[LeaseAsk], &LeaseResult) + Send + 'static,
        abandoned: impl FnOnce(&mut Accounts, &[LeaseAsk], &LeaseResult) + Send + 'static,
    ) -> LeaseResult {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let (store, run) = (self.store.clone(), self.run.clone());
        let (accounts, expires_at) = (self.accounts.clone(), self.expires_at());
        let (answer, answered) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let leased = store.lease(&run, &asks, expires_at).await;
            apply(&mut lock(&accounts), &asks, &leased);
            if let Err(leased) = answer.send(leased) {
                abandoned(&mut lock(&accounts), &asks, &leased);
            }
        });
        answered.await.map_err(|_| StoreError {
            store: "budget store".to_string(),
            reason: "the lease transaction's task ended without an answer".to_string(),
        })?
    }

    fn expires_at(&self) -> i64 {
        crate::store::now().saturating_add(self.ttl_seconds)
    }

    /// Takes `nano` from the leases of every budget of `charges`, or from none (`NoRoom` names the
    /// first budget, by id, without room once its lease could not grow).
    pub async fn reserve(
        &self,
        charges: &[Charge],
        nano: i64,
    ) -> Result<Result<(), NoRoom>, StoreError> {
        if self.take(charges, nano) {
            return Ok(Ok(()));
        }
        let _sync = self.sync.lock().await;
        if self.take(charges, nano) {
            return Ok(Ok(()));
        }
        // Claim what the leases hold free, give it back and grow by at least the whole call.
        let asks: Vec<LeaseAsk> = {
            let mut accounts = self.accounts();
            charges
                .iter()
                .map(|c| {
                    let account = accounts.entry(key(c)).or_insert_with(|| Account {
                        limit: c.limit,
                        lease: 0,
                        free: 0,
                        others: 0,
                        used: Instant::now(),
                    });
                    // A call settled above its reservation left the lease short (free < 0):
                    // the store must hold that too before it grants anything more.
                    let give = account.free.max(0);
                    let need = nano.saturating_add((-account.free).max(0));
                    account.free -= give;
                    let chunk = nano.saturating_mul(self.lease_calls).min(c.limit / 4);
                    LeaseAsk {
                        charge: c.clone(),
                        give,
                        min: need,
                        want: chunk.max(need),
                    }
                })
                .collect()
        };
        let grown = move |accounts: &mut Accounts, asks: &[LeaseAsk], leased: &LeaseResult| {
            for (i, ask) in asks.iter().enumerate() {
                let Some(account) = accounts.get_mut(&key(&ask.charge)) else {
                    continue;
                };
                account.used = Instant::now();
                match leased {
                    Err(_) => account.free += ask.give,
                    Ok(Err(_)) => account.lease -= ask.give.min(account.lease),
                    Ok(Ok(grown)) => {
                        let grown = grown[i];
                        account.lease += grown.granted - ask.give;
                        account.free += grown.granted - nano;
                        account.others = grown.others;
                    }
                }
            }
        };
        // Nobody waits for the call any more: it never leaves, so what it took is free again.
        let untaken = move |accounts: &mut Accounts, asks: &[LeaseAsk], leased: &LeaseResult| {
            if matches!(leased, Ok(Ok(_))) {
                for ask in asks {
                    if let Some(account) = accounts.get_mut(&key(&ask.charge)) {
                        account.free += nano;
                    }
                }
            }
        };
        let leased = self.transact(asks, grown, untaken).await;
        leased.map(|done| done.map(|_| ()))
    }

    /// Takes `nano` from every lease of `charges` if each has it free.
    fn take(&self, charges: &[Charge], nano: i64) -> bool {
        let mut accounts = self.accounts();
        let fits = charges
            .iter()
            .all(|c| accounts.get(&key(c)).is_some_and(|a| a.free >= nano));
        if fits {
            let now = Instant::now();
            for c in charges {
                if let Some(account) = accounts.get_mut(&key(c)) {
                    account.free -= nano;
                    account.used = now;
                }
            }
        }
        fits
    }

    /// The breaker's count of `charge`'s budget since its last reset: the rest of the fleet and
    /// the settled past as last read, plus what this run holds and spent. Read from the store
    /// when `fresh` (a tripped breaker is checked again before refusing: someone may have reset
    /// it) or when this run holds no lease in the window yet.
    pub async fn breaker_count(&self, charge: &Charge, fresh: bool) -> Result<i64, StoreError> {
        let count = |accounts: &HashMap<(String, String), Account>| {
            accounts
                .get(&key(charge))
                .map(|a| a.others + a.lease - a.free)
        };
        if !fresh && let Some(count) = count(&self.accounts()) {
            return Ok(count);
        }
        let _sync = self.sync.lock().await;
        if !fresh && let Some(count) = count(&self.accounts()) {
            return Ok(count);
        }
        let ask = LeaseAsk {
            charge: charge.clone(),
            give: 0,
            min: 0,
            want: 0,
        };
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let others = match self
            .store
            .lease(&self.run, &[ask], self.expires_at())
            .await?
        {
            Ok(leased) => leased.first().map_or(0, |l| l.others),
            Err(_) => 0,
        };
        let mut accounts = self.accounts();
        let account = accounts.entry(key(charge)).or_insert_with(|| Account {
            limit: charge.limit,
            lease: 0,
            free: 0,
            others,
            used: Instant::now(),
        });
        account.others = others;
        Ok(account.others + account.lease - account.free)
    }

    /// Settles a call that held `reserved` in the leases of its charges at `settled.amount`: the
    /// difference is free at once; the amount waits in the lease for the next batch.
    pub fn settle(&self, settled: Settled, reserved: i64) {
        {
            let mut accounts = self.accounts();
            for (budget, window) in &settled.charges {
                if let Some(account) = accounts.get_mut(&(budget.clone(), window.clone())) {
                    account.free += reserved - settled.amount;
                }
            }
        }
        if settled.amount == 0 && settled.spend.is_none() {
            return;
        }
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(settled);
        self.wake.notify_one();
    }

    /// Writes what waits, in one transaction; on failure it waits for the next attempt.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let _sync = self.sync.lock().await;
        let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        self.transactions.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self
            .store
            .settle_batch(&self.run, &batch, crate::store::now())
            .await
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.splice(0..0, batch);
            return Err(e);
        }
        let mut totals: HashMap<(String, String), i64> = HashMap::new();
        for settled in &batch {
            for charge in &settled.charges {
                *totals.entry(charge.clone()).or_default() += settled.amount;
            }
        }
        let mut accounts = self.accounts();
        for (charge, total) in totals {
            if let Some(account) = accounts.get_mut(&charge) {
                let shrink = total.min(account.lease.max(0));
                account.lease -= shrink;
                account.free += total - shrink;
                account.others += total;
            }
        }
        Ok(())
    }

    /// Renews every lease, reads what the rest of the fleet holds (for breakers), and gives back
    /// what leases unused for a moment hold free; a window's lease that holds nothing is
    /// forgotten.
    pub async fn tend(&self) -> Result<(), StoreError> {
        let _sync = self.sync.lock().await;
        let asks: Vec<LeaseAsk> = {
            let mut accounts = self.accounts();
            accounts.retain(|_, a| a.lease > 0 || a.used.elapsed() < IDLE);
            accounts
                .iter_mut()
                .map(|((budget, window), a)| {
                    let give = if a.used.elapsed() >= IDLE {
                        a.free.max(0)
                    } else {
                        0
                    };
                    a.free -= give;
                    LeaseAsk {
                        charge: Charge {
                            budget: budget.clone(),
                            window: window.clone(),
                            limit: a.limit,
                        },
                        give,
                        min: 0,
                        want: 0,
                    }
                })
                .collect()
        };
        if asks.is_empty() {
            return Ok(());
        }
        let renewed = |accounts: &mut Accounts, asks: &[LeaseAsk], leased: &LeaseResult| {
            for (i, ask) in asks.iter().enumerate() {
                let Some(account) = accounts.get_mut(&key(&ask.charge)) else {
                    continue;
                };
                match leased {
                    Ok(Ok(leased)) => {
                        account.lease -= ask.give.min(account.lease);
                        account.others = leased[i].others;
                    }
                    _ => account.free += ask.give,
                }
            }
        };
        let leased = self.transact(asks, renewed, |_, _, _| {}).await;
        leased.map(|_| ())
    }

    /// Whether a lease holds free money it has not used for a moment.
    fn idle_free(&self) -> bool {
        self.accounts()
            .values()
            .any(|a| a.free > 0 && a.used.elapsed() >= IDLE)
    }

    /// Writes settlements behind the answers, in batches, and gives back idle leases, until
    /// [`Leases::close`].
    pub async fn write_behind(self: std::sync::Arc<Self>) {
        loop {
            let held = !self.accounts().is_empty();
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(IDLE), if held => {}
                () = self.stop.cancelled() => return,
            }
            tokio::time::sleep(BATCH_INTERVAL).await;
            if let Err(e) = self.flush().await {
                tracing::error!(error = %e, "settlements could not be written; retrying in a second");
                tokio::time::sleep(Duration::from_secs(1)).await;
                self.wake.notify_one();
                continue;
            }
            if self.idle_free()
                && let Err(e) = self.tend().await
            {
                tracing::warn!(error = %e, "an idle lease could not be given back");
            }
        }
    }

    /// Writes every settlement, gives back every lease and ends the run (requests are drained).
    pub async fn close(&self) -> Result<(), StoreError> {
        self.stop.cancel();
        self.flush().await?;
        let _sync = self.sync.lock().await;
        self.accounts().clear();
        self.store.end_runs(std::slice::from_ref(&self.run)).await
    }
}
