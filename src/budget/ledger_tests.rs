//! Leases and reconciliation against real stores: SQLite in a temporary folder and PostgreSQL in
//! a fresh database of the server `GATEHOUSE_TEST_POSTGRES` names.

use std::sync::Arc;

use super::*;
use crate::store::{Charge, Role, Settled, Store, StoreLocation};

const WINDOW: &str = "day:2026-11-25";

fn charge(limit: i64) -> Charge {
    Charge {
        budget: "b".into(),
        window: WINDOW.into(),
        limit,
    }
}

fn settled(request: &str, amount: i64) -> Settled {
    Settled {
        request: request.into(),
        amount,
        spend: None,
        charges: vec![("b".into(), WINDOW.into())],
    }
}

async fn locations() -> (Vec<StoreLocation>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreLocation::Sqlite(dir.path().join("l.sqlite"));
    let postgres = StoreLocation::Postgres(crate::store::tests::fresh_postgres().await);
    (vec![sqlite, postgres], dir)
}

async fn open(location: &StoreLocation) -> Arc<Store> {
    Arc::new(Store::open(location, Role::Tool).await.unwrap())
}

#[tokio::test]
async fn a_call_that_fits_its_lease_makes_no_store_transaction() {
    let (locations, _dir) = locations().await;
    for location in locations {
        let at = location.display();
        let store = open(&location).await;
        let leases = Leases::new(store.clone(), "run-a".into(), 3600, 16);
        leases
            .reserve(&[charge(1_000_000)], 100)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            leases.transactions(),
            1,
            "{at}: the first call takes the lease"
        );
        assert_eq!(
            store.balance("b", WINDOW).await.unwrap().reserved,
            1_600,
            "{at}"
        );
        for i in 0..15 {
            leases
                .reserve(&[charge(1_000_000)], 100)
                .await
                .unwrap()
                .unwrap();
            leases.settle(settled(&format!("r{i}"), 40), 100);
        }
        assert_eq!(
            leases.transactions(),
            1,
            "{at}: fifteen more calls fit the lease"
        );
        leases.flush().await.unwrap();
        assert_eq!(leases.transactions(), 2, "{at}: one batch writes them all");
        let balance = store.balance("b", WINDOW).await.unwrap();
        assert_eq!(
            (balance.spent, balance.reserved),
            (15 * 40, 1_600 - 15 * 40),
            "{at}: what was spent left the lease"
        );
        leases.close().await.unwrap();
        assert_eq!(
            store.balance("b", WINDOW).await.unwrap().reserved,
            0,
            "{at}"
        );
    }
}

#[tokio::test]
async fn a_growth_the_caller_stopped_waiting_for_still_reaches_memory() {
    let (locations, _dir) = locations().await;
    for location in locations {
        let at = location.display();
        let store = open(&location).await;
        let leases = Leases::new(store.clone(), "run-a".into(), 3600, 16);
        // The caller gives up while the lease grows (an agent resets its stream).
        let gave_up = tokio::time::timeout(
            std::time::Duration::from_nanos(1),
            leases.reserve(&[charge(1_000_000)], 100),
        )
        .await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.balance("b", WINDOW).await.unwrap().reserved == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "{at}: the lease grows"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let calls = if gave_up.is_err() { 16 } else { 15 };
        for _ in 0..calls {
            leases
                .reserve(&[charge(1_000_000)], 100)
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(
            leases.transactions(),
            1,
            "{at}: what the store granted is in memory, and the abandoned call's part is free"
        );
        leases.close().await.unwrap();
        assert_eq!(
            store.balance("b", WINDOW).await.unwrap().reserved,
            0,
            "{at}: nothing stays leased"
        );
    }
}

#[tokio::test]
async fn a_renewal_is_never_refused_when_a_budget_is_over_its_limit() {
    let (locations, _dir) = locations().await;
    for location in locations {
        let at = location.display();
        let store = open(&location).await;
        let leases = Leases::new(store.clone(), "run-a".into(), 3600, 16);
        leases
            .reserve(&[charge(1_000)], 100)
            .await
            .unwrap()
            .unwrap();
        // The call costs far more than it reserved: the budget ends over its limit.
        leases.settle(settled("over", 5_000), 100);
        leases.flush().await.unwrap();
        let balance = store.balance("b", WINDOW).await.unwrap();
        assert!(balance.spent > 1_000, "{at}: {balance:?}");
        let renewal = crate::store::LeaseAsk {
            charge: charge(1_000),
            give: 0,
            min: 0,
            want: 0,
        };
        let renewed = store.lease("run-a", &[renewal], i64::MAX).await.unwrap();
        assert!(
            renewed.is_ok(),
            "{at}: a renewal asks for nothing; refusing it left gives applied in the store and \
             counted as failed in memory"
        );
        let ask = crate::store::LeaseAsk {
            charge: charge(1_000),
            give: 0,
            min: 1,
            want: 1,
        };
        let grown = store.lease("run-a", &[ask], i64::MAX).await.unwrap();
        assert!(grown.is_err(), "{at}: growing is refused over the limit");
    }
}

#[tokio::test]
async fn a_run_is_reconciled_only_from_where_its_settlements_are_stored() {
    let (locations, dir) = locations().await;
    for location in locations {
        let at = location.display();
        let ledger = ledger(&location).await;
        let store = ledger.store().clone();
        let run = ledger.leases().run().to_string();
        store.begin_run(&run, "trail", 10).await.unwrap();
        ledger.reconciled_up_to(4_096).await.unwrap();
        let runs = store.runs("trail").await.unwrap();
        let ours = runs.iter().find(|r| r.run == run).map(|r| r.offset);
        assert_eq!(ours, Some(4_096), "{at}: the mark moved");
        ledger.reconciled_up_to(100).await.unwrap();
        let runs = store.runs("trail").await.unwrap();
        let ours = runs.iter().find(|r| r.run == run).map(|r| r.offset);
        assert_eq!(ours, Some(4_096), "{at}: the mark never moves back");
    }
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_runs_leasing_one_budget_never_overshoot_and_use_all_of_it() {
    let (locations, _dir) = locations().await;
    for location in locations {
        let at = location.display();
        let store = open(&location).await;
        let runs = [
            Arc::new(Leases::new(store.clone(), "run-a".into(), 3600, 4)),
            Arc::new(Leases::new(store.clone(), "run-b".into(), 3600, 4)),
        ];
        // Room for 10.5 calls of 100.
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let leases = runs[i % 2].clone();
                tokio::spawn(async move {
                    usize::from(leases.reserve(&[charge(1_050)], 100).await.unwrap().is_ok())
                })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            granted += task.await.unwrap();
        }
        assert_eq!(
            granted, 10,
            "{at}: no room is stranded in another run's lease"
        );
        let balance = store.balance("b", WINDOW).await.unwrap();
        assert!(
            balance.spent + balance.reserved <= 1_050,
            "{at}: {balance:?}"
        );
    }
}

/// An audit file of run `run` holding the outcomes of `calls` LLM calls at 40 nano-USD each.
fn audit_file(dir: &std::path::Path, run: &str, calls: usize) -> std::path::PathBuf {
    let path = dir.join("audit.jsonl");
    let mut text = format!("{{\"record\":\"run\",\"run\":\"{run}\"}}\n");
    for i in 0..calls {
        let entry = LedgerEntry {
            run: run.into(),
            nano: 40,
            hour: Some("2026-11-25T18".into()),
            spend: Some(("agent".into(), String::new(), "gpt-4o".into())),
            charged: vec![("b".into(), WINDOW.into())],
        };
        let record = serde_json::json!({"record": "outcome", "request": format!("r{i}"),
            "status": 200, "ledger": entry});
        text.push_str(&format!(
            "{{\"decision\":\"d{i}\",\"request\":\"r{i}\"}}\n{record}\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

async fn ledger(location: &StoreLocation) -> Ledger {
    let config = BudgetConfig {
        store: location.clone(),
        reservation_ttl_seconds: 3600,
        deny_unpriced: false,
        default_max_output_tokens: 1000,
        lease_calls: 16,
        budgets: Vec::new(),
        provider_hosts: crate::policy::HostPatterns(Vec::new()),
        rate_limits: Vec::new(),
        hold_on_trip: false,
        breakers: BreakerConfig::default(),
    };
    let prices = Arc::new(PriceTable::from_yaml(DEFAULT_PRICES, "prices").unwrap());
    Ledger::open(&config, prices, tokio_util::task::TaskTracker::new())
        .await
        .unwrap()
}

#[tokio::test]
async fn reconciliation_from_the_audit_file_charges_each_answered_call_once() {
    let (locations, dir) = locations().await;
    for location in locations {
        let at = location.display();
        let store = open(&location).await;
        // A run leased 1000, answered 10 calls and wrote the settlement of 3 before `kill -9`.
        let dead = Leases::new(store.clone(), "dead".into(), 3600, 16);
        store.begin_run("dead", "trail", 0).await.unwrap();
        dead.reserve(&[charge(1_000_000)], 1_000)
            .await
            .unwrap()
            .unwrap();
        let written: Vec<Settled> = (0..3).map(|i| settled(&format!("r{i}"), 40)).collect();
        store.settle_batch("dead", &written, 0).await.unwrap();
        let file = audit_file(dir.path(), "dead", 10);

        let first = ledger(&location).await;
        let reconciled = first.recover(&file, "trail", 0).await.unwrap();
        assert_eq!(
            (reconciled.runs, reconciled.calls, reconciled.charged),
            (1, 10, 7),
            "{at}"
        );
        let after = store.balance("b", WINDOW).await.unwrap();
        assert_eq!(
            (after.spent, after.reserved),
            (400, 0),
            "{at}: lease released"
        );
        // A start that died before ending the runs it reconciled: the next one charges nothing
        // twice.
        store.begin_run("dead", "trail", 0).await.unwrap();
        let again = ledger(&location)
            .await
            .recover(&file, "trail", 0)
            .await
            .unwrap();
        assert_eq!((again.runs, again.charged), (2, 0), "{at}");
        assert_eq!(store.balance("b", WINDOW).await.unwrap(), after, "{at}");
        let spend = store.spend(crate::store::SpendBy::Agent, "").await.unwrap();
        assert_eq!(
            (spend[0].spent, spend[0].calls),
            (280, 7),
            "{at}: written once each"
        );
        // Another trail's runs (another proxy of the fleet) are left to their owner.
        assert_eq!(
            store.runs("trail").await.unwrap().len(),
            1,
            "{at}: the last start's run"
        );
    }
}
