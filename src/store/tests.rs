//! The same behaviour asked of both back ends: SQLite in a temporary folder, and PostgreSQL in a
//! fresh database of the server `GATEHOUSE_TEST_POSTGRES` names (`scripts/test` starts one).

use std::sync::Arc;

use super::*;

const WINDOW: &str = "day:2026-11-25";
const LATER: i64 = 4_000_000_000;

fn charge(budget: &str, limit: i64) -> Charge {
    Charge {
        budget: budget.into(),
        window: WINDOW.into(),
        limit,
    }
}

/// A new, empty database on the test server; its URL.
pub async fn fresh_postgres() -> String {
    let server = std::env::var("GATEHOUSE_TEST_POSTGRES").expect(
        "GATEHOUSE_TEST_POSTGRES names the PostgreSQL server for tests; scripts/test starts one",
    );
    let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
        .await
        .expect("test PostgreSQL server reachable");
    tokio::spawn(connection);
    let name = format!("gatehouse_test_{}", crate::random::random_hex(8).unwrap());
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let base = server.rsplit_once('/').unwrap().0;
    format!("{base}/{name}")
}

pub(super) async fn both() -> Vec<(Store, StoreLocation, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreLocation::Sqlite(dir.path().join("l.sqlite"));
    let postgres = StoreLocation::Postgres(fresh_postgres().await);
    vec![
        (
            Store::open(&sqlite, Role::Tool).await.unwrap(),
            sqlite,
            Some(dir),
        ),
        (
            Store::open(&postgres, Role::Tool).await.unwrap(),
            postgres,
            None,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reservations_never_overshoot_under_concurrency_and_settle_once() {
    for (store, location, _dir) in both().await {
        let store = Arc::new(store);
        let budgets = vec![charge("team", 1_000), charge("agent", 10_000)];
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                let budgets = budgets.clone();
                tokio::spawn(async move {
                    let ok = store
                        .reserve(&format!("r{i}"), &budgets, 300, LATER)
                        .await
                        .unwrap()
                        .is_ok();
                    usize::from(ok)
                })
            })
            .collect();
        let mut granted = 0;
        for task in tasks {
            granted += task.await.unwrap();
        }
        let at = location.display();
        assert_eq!(
            granted, 3,
            "{at}: only three reservations of 300 fit in 1000"
        );
        let team = store.balance("team", WINDOW).await.unwrap();
        assert_eq!(
            team,
            Balance {
                spent: 0,
                reserved: 900
            },
            "{at}"
        );
        let refused = store
            .reserve("late", &budgets, 300, LATER)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(
            (refused.budget.as_str(), refused.available),
            ("team", 100),
            "{at}"
        );

        let spend = SpendOf {
            hour: "2026-11-25T18".into(),
            agent: "a1".into(),
            team: "t".into(),
            model: "gpt-4o".into(),
        };
        let mut settled = 0;
        for i in 0..16 {
            settled += usize::from(
                store
                    .settle(&format!("r{i}"), 120, Some(&spend))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(
            settled, 16,
            "{at}: settling without a reservation still records it once"
        );
        assert!(
            !store.settle("r0", 120, Some(&spend)).await.unwrap(),
            "{at}: settled once"
        );
        let team = store.balance("team", WINDOW).await.unwrap();
        assert_eq!(
            team,
            Balance {
                spent: 360,
                reserved: 0
            },
            "{at}"
        );
        let by_model = store.spend(SpendBy::Model, "2026-11-25").await.unwrap();
        assert_eq!(
            by_model,
            vec![SpendRow {
                key: "gpt-4o".into(),
                spent: 16 * 120,
                calls: 16
            }],
            "{at}"
        );
        assert!(
            store
                .spend(SpendBy::Agent, "2026-11-24")
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn spend_survives_a_restart_and_expired_reservations_count_as_spent() {
    for (store, location, _dir) in both().await {
        let at = location.display();
        store
            .reserve("a", &[charge("b", 1_000)], 400, LATER)
            .await
            .unwrap()
            .unwrap();
        store.settle("a", 250, None).await.unwrap();
        store
            .reserve("crashed", &[charge("b", 1_000)], 500, LATER)
            .await
            .unwrap()
            .unwrap();
        store
            .reserve("stale", &[charge("b", 1_000)], 100, now() - 1)
            .await
            .unwrap()
            .unwrap();
        drop(store);
        let tool = Store::open(&location, Role::Tool).await.unwrap();
        assert_eq!(
            tool.balance("b", WINDOW).await.unwrap(),
            Balance {
                spent: 250,
                reserved: 600
            },
            "{at}: a tool opening the store leaves reservations alone"
        );
        drop(tool);
        let proxy = Store::open(&location, Role::Proxy).await.unwrap();
        proxy.expire().await.unwrap();
        // The expired one may have been answered (and billed) by a process that died for good:
        // it counts as spent at what it held, never as released. The live one stays reserved.
        assert_eq!(
            proxy.balance("b", WINDOW).await.unwrap(),
            Balance {
                spent: 350,
                reserved: 500
            },
            "{at}"
        );
        // A request settling after its reservation expired is charged its cost on top, once.
        assert!(proxy.settle("stale", 80, None).await.unwrap());
        assert!(!proxy.settle("stale", 80, None).await.unwrap());
        assert_eq!(proxy.balance("b", WINDOW).await.unwrap().spent, 430, "{at}");
    }
}

#[tokio::test]
async fn pauses_and_breaker_resets_are_kept() {
    for (store, location, _dir) in both().await {
        let at = location.display();
        store
            .pause("agent:x", "2026-11-25T18:00:00Z", "by hand")
            .await
            .unwrap();
        store
            .pause("team:y", "2026-11-25T18:00:01Z", "loop")
            .await
            .unwrap();
        let paused = store.paused_all().await.unwrap();
        assert_eq!(paused.len(), 2, "{at}");
        assert_eq!(paused[1].reason, "loop", "{at}");
        assert!(store.resume("agent:x").await.unwrap());
        assert!(!store.resume("agent:x").await.unwrap());

        store
            .reserve("r", &[charge("b", 1_000)], 700, LATER)
            .await
            .unwrap()
            .unwrap();
        store.settle("r", 600, None).await.unwrap();
        assert_eq!(
            store.spend_since_reset("b", WINDOW).await.unwrap(),
            600,
            "{at}"
        );
        store.reset_breaker("b", WINDOW).await.unwrap();
        assert_eq!(
            store.spend_since_reset("b", WINDOW).await.unwrap(),
            0,
            "{at}"
        );
        store
            .reserve("s", &[charge("b", 1_000)], 100, LATER)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            store.spend_since_reset("b", WINDOW).await.unwrap(),
            100,
            "{at}"
        );
    }
}

#[test]
fn locations_are_told_apart_and_passwords_never_shown() {
    assert_eq!(
        StoreLocation::parse("state/budget.sqlite"),
        StoreLocation::Sqlite("state/budget.sqlite".into())
    );
    let pg = StoreLocation::parse("postgres://gh:s3cret@db.internal:5433/ledger");
    assert_eq!(pg.display(), "postgres://gh@db.internal:5433/ledger");
}

#[tokio::test]
async fn a_window_that_rolls_over_starts_with_its_own_room() {
    use crate::budget::Window;
    use time::macros::datetime;
    let last_second = datetime!(2026-11-25 23:59:59 UTC);
    let next_day = datetime!(2026-11-26 00:00:00 UTC);
    assert_eq!(Window::Day.seconds_left(last_second), Some(1));
    for (store, location, _dir) in both().await {
        let at = location.display();
        let in_window = |now| Charge {
            budget: "daily".into(),
            window: Window::Day.key(now, None),
            limit: 1_000,
        };
        store
            .reserve("a", &[in_window(last_second)], 900, LATER)
            .await
            .unwrap()
            .unwrap();
        let full = store
            .reserve("b", &[in_window(last_second)], 900, LATER)
            .await
            .unwrap();
        assert!(full.is_err(), "{at}");
        let fresh = store
            .reserve("c", &[in_window(next_day)], 900, LATER)
            .await
            .unwrap();
        assert!(
            fresh.is_ok(),
            "{at}: the next day is a new ledger key with its own room"
        );
    }
}

fn new_hold(id: &str, fingerprint: &str, agent: &str, now: i64) -> NewHold {
    NewHold {
        id: id.into(),
        fingerprint: fingerprint.into(),
        agent: agent.into(),
        summary: "{}".into(),
        now,
        expires_at: now + 900,
        max_per_agent: 2,
        max_total: 3,
    }
}

fn decision(id: &str, approve: bool, now: i64) -> Decision<'_> {
    Decision {
        id,
        approve,
        reviewer: "alice",
        reason: if approve { "ok" } else { "too risky" },
        now,
        usable_until: now + 900,
    }
}

#[tokio::test]
async fn approvals_attach_retries_bound_queues_are_used_once_and_expire() {
    let now = 1_800_000_000;
    for (store, location, _dir) in both().await {
        let at = location.display();
        let first = store
            .hold(&new_hold("apv_1", "f1", "a", now))
            .await
            .unwrap();
        assert!(
            matches!(first, Held::Created(ref a) if a.status == ApprovalStatus::Pending),
            "{at}"
        );
        let retry = store
            .hold(&new_hold("apv_2", "f1", "a", now + 60))
            .await
            .unwrap();
        assert!(
            matches!(retry, Held::Attached(ref a) if a.id == "apv_1"),
            "{at}: {retry:?}"
        );
        store
            .hold(&new_hold("apv_3", "f2", "a", now))
            .await
            .unwrap();
        let full = store
            .hold(&new_hold("apv_4", "f3", "a", now))
            .await
            .unwrap();
        assert!(
            matches!(full, Held::Full(ref why) if why.contains("agent a")),
            "{at}: {full:?}"
        );
        store
            .hold(&new_hold("apv_5", "f4", "b", now))
            .await
            .unwrap();
        let full = store
            .hold(&new_hold("apv_6", "f5", "c", now))
            .await
            .unwrap();
        assert!(
            matches!(full, Held::Full(ref why) if why.contains("queue")),
            "{at}: {full:?}"
        );
        assert_eq!(
            store
                .approvals(ApprovalStatus::Pending, 10)
                .await
                .unwrap()
                .len(),
            3
        );

        let approved = store
            .decide(&decision("apv_1", true, now + 5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(approved.reviewer.as_deref(), Some("alice"), "{at}");
        let again = store
            .decide(&decision("apv_1", false, now + 6))
            .await
            .unwrap();
        assert_eq!(again.unwrap_err(), "approval apv_1 is approved", "{at}");
        assert!(store.consume("apv_1").await.unwrap(), "{at}");
        assert!(!store.consume("apv_1").await.unwrap(), "{at}: used once");
        let fresh = store
            .hold(&new_hold("apv_7", "f1", "a", now + 10))
            .await
            .unwrap();
        assert!(
            matches!(fresh, Held::Created(_)),
            "{at}: a used approval does not attach"
        );

        store
            .decide(&decision("apv_3", false, now + 5))
            .await
            .unwrap()
            .unwrap();
        let denied = store
            .hold(&new_hold("apv_8", "f2", "a", now + 20))
            .await
            .unwrap();
        assert!(
            matches!(denied, Held::Attached(ref a) if a.status == ApprovalStatus::Denied),
            "{at}: a retry of a denied request finds the denial"
        );
        assert_eq!(
            store.expire_approvals(now + 901).await.unwrap(),
            1,
            "{at}: apv_5"
        );
        let late = store
            .decide(&decision("apv_5", true, now + 902))
            .await
            .unwrap();
        assert_eq!(late.unwrap_err(), "approval apv_5 is expired", "{at}");
        assert!(
            store
                .decide(&decision("apv_x", true, now))
                .await
                .unwrap()
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_through_one_proxy_wakes_a_request_held_by_another() {
    let url = StoreLocation::Postgres(fresh_postgres().await);
    let a = Store::open(&url, Role::Proxy).await.unwrap();
    let b = Store::open(&url, Role::Proxy).await.unwrap();
    let now = super::now();
    a.hold(&new_hold("apv_9", "f9", "x", now)).await.unwrap();
    let mut changes = a.changes();
    // The listener bumps the counter once it listens.
    tokio::time::timeout(
        std::time::Duration::from_secs(5),
        changes.wait_for(|n| *n > 0),
    )
    .await
    .unwrap()
    .unwrap();
    changes.borrow_and_update();
    b.decide(&decision("apv_9", true, now))
        .await
        .unwrap()
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), changes.changed())
        .await
        .expect("NOTIFY reached the other store")
        .unwrap();
    let seen = a.approval("apv_9").await.unwrap().unwrap();
    assert_eq!(seen.status, ApprovalStatus::Approved);
}

#[tokio::test]
async fn a_second_reservation_under_one_request_id_is_refused_and_holds_nothing() {
    for (store, location, _dir) in both().await {
        let at = location.display();
        store
            .reserve("same", &[charge("b", 1_000)], 100, LATER)
            .await
            .unwrap()
            .unwrap();
        assert!(
            store
                .reserve("same", &[charge("b", 1_000)], 200, LATER)
                .await
                .is_err(),
            "{at}"
        );
        assert_eq!(
            store.balance("b", WINDOW).await.unwrap(),
            Balance {
                spent: 0,
                reserved: 100
            },
            "{at}: the refused one left nothing behind"
        );
    }
}
