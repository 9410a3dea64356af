//! The ledger's cost per LLM call on the hot path: a reservation in two budgets (all or none) from
//! the run's leases and its settlement, amortised over the lease growths and the batches that
//! write the settlements (each measurement ends once every settlement is in the store). SQLite in
//! a temporary folder; PostgreSQL on the server `GATEHOUSE_TEST_POSTGRES` names, when set
//! (`scripts/test-postgres` starts one on loopback).
//!
//! Run: `cargo bench --bench ledger`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::budget::Leases;
use gatehouse::store::{Charge, Role, Settled, SpendOf, Store, StoreLocation};

fn charges() -> Vec<Charge> {
    vec![
        Charge {
            budget: "team".into(),
            window: "day:2026-11-25".into(),
            limit: i64::MAX / 4,
        },
        Charge {
            budget: "agent".into(),
            window: "month:2026-11".into(),
            limit: i64::MAX / 4,
        },
    ]
}

fn bench_ledger(c: &mut Criterion, name: &str, location: StoreLocation) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(
        runtime
            .block_on(Store::open(&location, Role::Proxy))
            .expect("store"),
    );
    let run = format!("bench-{}", std::process::id());
    let leases = Arc::new(Leases::new(store, run, 3600, 16));
    runtime.spawn(leases.clone().write_behind());
    let charges = charges();
    let charged: Vec<(String, String)> = charges
        .iter()
        .map(|c| (c.budget.clone(), c.window.clone()))
        .collect();
    let spend = SpendOf {
        hour: "2026-11-25T18".into(),
        agent: "bench-agent".into(),
        team: "bench-team".into(),
        model: "gpt-4o".into(),
    };
    let mut n = 0u64;
    c.bench_function(&format!("ledger reserve + settle, {name}"), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    n += 1;
                    leases
                        .reserve(&charges, 1_000_000)
                        .await
                        .expect("reserve")
                        .expect("room");
                    let settled = Settled {
                        request: format!("r{n}"),
                        amount: 400_000,
                        spend: Some(spend.clone()),
                        charges: charged.clone(),
                    };
                    leases.settle(settled, 1_000_000);
                }
                leases.flush().await.expect("flush");
                start.elapsed()
            })
        });
    });
    runtime.block_on(leases.close()).expect("close");
}

fn ledgers(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_ledger(
        c,
        "SQLite",
        StoreLocation::Sqlite(dir.path().join("ledger.sqlite")),
    );
    match std::env::var("GATEHOUSE_TEST_POSTGRES") {
        Ok(url) => bench_ledger(c, "PostgreSQL (loopback)", StoreLocation::Postgres(url)),
        Err(_) => eprintln!("GATEHOUSE_TEST_POSTGRES not set: PostgreSQL not measured"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = ledgers
}
criterion_main!(benches);
