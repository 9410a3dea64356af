//! The ledger's cost per LLM call: one reservation (all or none, in two budgets) and its
//! settlement, on SQLite (a file in a temporary folder) and on PostgreSQL (the server
//! `GATEHOUSE_TEST_POSTGRES` names; `scripts/test-postgres` starts one on loopback).
//!
//! Run: `cargo bench --bench store_ledger`.

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::store::{Charge, Role, SpendOf, Store, StoreLocation};

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

fn bench_store(c: &mut Criterion, name: &str, location: StoreLocation) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = runtime
        .block_on(Store::open(&location, Role::Proxy))
        .expect("store");
    let charges = charges();
    let spend = SpendOf {
        hour: "2026-11-25T18".into(),
        agent: "bench-agent".into(),
        team: "bench-team".into(),
        model: "gpt-4o".into(),
    };
    let mut n = 0u64;
    c.bench_function(&format!("reserve + settle, {name}"), |b| {
        b.iter(|| {
            n += 1;
            let id = format!("r{n}");
            runtime.block_on(async {
                store
                    .reserve(&id, &charges, 1_000_000, i64::MAX / 2)
                    .await
                    .expect("reserve")
                    .expect("room");
                store
                    .settle(&id, 400_000, Some(&spend))
                    .await
                    .expect("settle");
            });
        });
    });
}

fn ledgers(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    bench_store(
        c,
        "SQLite",
        StoreLocation::Sqlite(dir.path().join("ledger.sqlite")),
    );
    match std::env::var("GATEHOUSE_TEST_POSTGRES") {
        Ok(url) => bench_store(c, "PostgreSQL (loopback)", StoreLocation::Postgres(url)),
        Err(_) => eprintln!("GATEHOUSE_TEST_POSTGRES not set: PostgreSQL not measured"),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(5));
    targets = ledgers
}
criterion_main!(benches);
