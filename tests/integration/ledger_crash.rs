//! `kill -9` of a real proxy process under load, on SQLite and on PostgreSQL: settlements are
//! written behind the answers in batches, so some die with the process; the restarted proxy
//! charges them from its audit file before serving. Every call a client got an answer for is then
//! in the ledger, once, with its decisions and outcome in the audit file.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gatehouse::store::{Role, Store, StoreLocation};
use serde_json::Value;

use crate::budgets::{ACTUAL_NANO, ALLOW, balance, call_body};
use crate::support::{ProxySpec, TestPki};

/// Concurrent clients.
const CLIENTS: usize = 4;
/// Answers received before the kill.
const BEFORE_KILL: usize = 60;

async fn kill_9_under_load_loses_no_answered_call(store: String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    origin.gate.send_replace(true);
    let dir = tempfile::tempdir().unwrap();
    let spec = ProxySpec {
        policy: ALLOW.into(),
        extra: format!(
            "budget:\n  store: {store}\n  budgets:\n    - {{ id: shared-daily, limit_usd: '100', window: day }}\n"
        ),
        ..Default::default()
    };
    let mut yaml = spec.yaml(&pki, &dir.path().join("certs"), "127.0.0.1:0");
    yaml.push_str("log:\n  format: json\n");
    let config = dir.path().join("gatehouse.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (mut child, addr, _log) = crate::support::spawn_gatehouse(&config).await;
    let ca = std::fs::read_to_string(dir.path().join("certs/gatehouse-ca.pem")).unwrap();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/v1/messages", origin.port());
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, url, answered) = (client.clone(), url.clone(), answered.clone());
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
                for _ in 0..1000 {
                    let sent = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(call_body())
                        .send()
                        .await;
                    let Ok(response) = sent else { return };
                    let whole = response.status() == 200 && response.bytes().await.is_ok();
                    if !whole || tokio::time::Instant::now() > deadline {
                        return;
                    }
                    answered.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while answered.load(Ordering::SeqCst) < BEFORE_KILL {
        assert!(tokio::time::Instant::now() < deadline, "the proxy answers");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    for client in clients {
        client.await.unwrap();
    }
    let answered = answered.load(Ordering::SeqCst);

    // The next start reconciles the ledger from the audit file before it serves.
    let (_next, _, _) = crate::support::spawn_gatehouse(&config).await;
    let audit = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let charged: Vec<&str> = records
        .iter()
        .filter(|r| r["record"] == "outcome" && r["ledger"]["nano"] == ACTUAL_NANO)
        .map(|r| r["request"].as_str().unwrap())
        .collect();
    let decided: HashSet<&str> = records
        .iter()
        .filter(|r| r.get("decision").is_some())
        .map(|r| r["request"].as_str().unwrap())
        .collect();
    assert!(
        charged.len() >= answered,
        "every answer the clients got has its outcome: {} of {answered}",
        charged.len()
    );
    assert!(
        charged.iter().all(|r| decided.contains(r)),
        "and its decisions"
    );
    let after = balance(&store).await;
    assert_eq!(
        after.spent,
        ACTUAL_NANO * charged.len() as i64,
        "each answered call charged once ({answered} answered, {} recorded)",
        charged.len()
    );
    assert!(after.spent >= ACTUAL_NANO * answered as i64);
    assert_eq!(after.reserved, 0, "the dead run's lease is released");
    let ledger = Store::open(&StoreLocation::parse(&store), Role::Tool)
        .await
        .unwrap();
    for request in charged {
        assert!(
            !ledger.settle(request, 0, None).await.unwrap(),
            "{request} is settled"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_answered_call_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("budget.sqlite").display().to_string();
    kill_9_under_load_loses_no_answered_call(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_answered_call_on_postgres() {
    kill_9_under_load_loses_no_answered_call(crate::support::fresh_postgres().await).await;
}
