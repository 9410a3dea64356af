//! Budgets through real proxies: many concurrent calls against a budget with room for a few, on
//! SQLite and with two proxies sharing one PostgreSQL; spend kept across a restart; a stream the
//! agent abandons settled at its estimate.

use std::time::Duration;

use gatehouse::store::{Balance, Role, Store, StoreLocation};
use serde_json::{Value, json};

use crate::support::{ProxySpec, TestPki, TestProxy, origin::Origin};

pub(crate) const ALLOW: &str = "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: llm\n    trigger: llm.request\n    effect: allow\n";

/// The call every test sends: Anthropic, at most 1000 output tokens.
pub(crate) fn call_body() -> Vec<u8> {
    serde_json::to_vec(&json!({"model": "claude-sonnet-4-5", "max_tokens": 1000,
        "messages": [{"role": "user", "content": "summarise the open tickets"}]}))
    .unwrap()
}

/// The worst case the proxy reserves for `call_body`, nano-USD: input estimated at a token per 4
/// bytes ($3/M), plus 1000 output tokens ($15/M).
pub(crate) fn worst_nano() -> i64 {
    let input = call_body().len().div_ceil(4) as i64;
    (input * 3 + 1000 * 15) * 1000
}

/// The recorded Anthropic answer's cost: 25 input, 2000 cache reads, 100 cache writes, 120 output.
pub(crate) const ACTUAL_NANO: i64 = 2_850_000;

/// A proxy allowing LLM calls, keeping budgets in `store`, with one daily budget of `limit_nano`.
async fn proxy_with_budget(pki: &TestPki, store: &str, limit_nano: i64) -> TestProxy {
    let limit = rust_decimal::Decimal::new(limit_nano, 9);
    let spec = ProxySpec {
        policy: ALLOW.into(),
        extra: format!(
            "budget:\n  store: {store}\n  budgets:\n    - {{ id: shared-daily, limit_usd: '{limit}', window: day }}\n"
        ),
        ..Default::default()
    };
    TestProxy::start(pki, spec).await
}

/// Sends `count` calls through each of `proxies` at once to the origin's held route; returns the
/// statuses once every refused call has answered and the allowed ones wait at the origin, after
/// opening the gate for them.
async fn concurrent_calls(origin: &Origin, proxies: &[&TestProxy], count: usize) -> Vec<u16> {
    let url = format!("https://localhost:{}/held/v1/messages", origin.port());
    let mut tasks = Vec::new();
    for proxy in proxies {
        let client = proxy.client(true);
        for _ in 0..count {
            let client = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(call_body())
                    .send()
                    .await
                    .unwrap();
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                status
            }));
        }
    }
    let total = tasks.len();
    // Every call has either reached the origin (and waits there) or been refused.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let finished = tasks.iter().filter(|t| t.is_finished()).count();
        let arrived = origin.received.lock().unwrap().len();
        if finished + arrived == total {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{finished} answered and {arrived} arrived of {total}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    origin.gate.send_replace(true);
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

pub(crate) async fn balance(store: &str) -> Balance {
    let store = Store::open(&StoreLocation::parse(store), Role::Tool)
        .await
        .unwrap();
    let day = gatehouse::budget::Window::Day.key(time::OffsetDateTime::now_utc(), None);
    store.balance("shared-daily", &day).await.unwrap()
}

/// Waits until every call settled (settlement on PostgreSQL runs in the background).
async fn settled(store: &str) -> Balance {
    for _ in 0..100 {
        let b = balance(store).await;
        if b.reserved == 0 {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    balance(store).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_calls_against_room_for_ten_never_overshoot() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    let limit = worst_nano() * 10 + worst_nano() / 2;
    let proxy = proxy_with_budget(&pki, &store, limit).await;

    let statuses = concurrent_calls(&origin, &[&proxy], 50).await;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((allowed, refused), (10, 40), "{statuses:?}");
    assert_eq!(origin.received.lock().unwrap().len(), 10);
    let after = settled(&store).await;
    assert_eq!(
        after,
        Balance {
            spent: 10 * ACTUAL_NANO,
            reserved: 0
        }
    );
    assert!(after.spent <= limit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_proxies_sharing_postgres_never_overshoot_together() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let store = crate::support::fresh_postgres().await;
    let limit = worst_nano() * 10 + worst_nano() / 2;
    let a = proxy_with_budget(&pki, &store, limit).await;
    let b = proxy_with_budget(&pki, &store, limit).await;

    let statuses = concurrent_calls(&origin, &[&a, &b], 25).await;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(allowed, 10, "{statuses:?}");
    assert!(
        statuses[..25].contains(&200) || statuses[25..].contains(&200),
        "some proxy forwarded"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        40,
        "{statuses:?}"
    );
    let after = settled(&store).await;
    assert_eq!(
        after,
        Balance {
            spent: 10 * ACTUAL_NANO,
            reserved: 0
        }
    );
}

#[tokio::test]
async fn spend_survives_a_restart_and_the_budget_stays_spent() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    origin.gate.send_replace(true);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    // Room for the worst case of one call, not two (once one is spent).
    let limit = worst_nano() + ACTUAL_NANO / 2;
    let url = format!("https://localhost:{}/held/v1/messages", origin.port());
    let send = |proxy: &TestProxy| {
        proxy
            .client(true)
            .post(&url)
            .header("content-type", "application/json")
            .body(call_body())
            .send()
    };
    let mut first = proxy_with_budget(&pki, &store, limit).await;
    assert_eq!(send(&first).await.unwrap().status(), 200);
    first.gatehouse.take().unwrap().shutdown().await;

    let second = proxy_with_budget(&pki, &store, limit).await;
    assert_eq!(
        send(&second).await.unwrap().status(),
        429,
        "the spend of the first run is still there"
    );
    assert_eq!(balance(&store).await.spent, ACTUAL_NANO);
    let report = std::process::Command::new(crate::support::binary())
        .args(["spend", "--by", "model", "--config"])
        .arg(&second.config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(report.status.success(), "{report:?}");
    assert!(
        text.contains("claude-sonnet-4-5") && text.contains("$0.00285") && text.contains("1 calls"),
        "{text}"
    );
    assert!(text.contains("shared-daily  everyone  day:"), "{text}");
}

#[tokio::test]
async fn a_stream_the_agent_abandons_settles_at_its_estimate() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    let proxy = proxy_with_budget(&pki, &store, 1_000_000_000).await;
    let mut response = proxy
        .client(true)
        .post(format!(
            "https://localhost:{}/held/v1/chat/completions",
            origin.port()
        ))
        .json(&json!({"model": "gpt-4o", "max_tokens": 50, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("Hel"));
    drop(response);

    let mut outcome = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let audit = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
        if let Some(line) = audit.lines().find(|l| l.contains("\"outcome\"")) {
            outcome = serde_json::from_str(line).unwrap();
            break;
        }
    }
    assert_eq!(outcome["outcome"], "abandoned", "{outcome}");
    assert_eq!(outcome["llm"]["cost_status"], "estimated", "{outcome}");
    let budget = &outcome["budget"];
    assert_eq!(budget["settled_as"], "estimate", "{outcome}");
    // Reserved with the input at a token a byte (no tokenizer on the way out), settled with it
    // counted by o200k: far fewer tokens than bytes; 50 output tokens at $10/M.
    let usd = |field: &str| -> f64 { budget[field].as_str().unwrap().parse().unwrap() };
    let body_bytes = 90.0;
    assert!(
        usd("reserved_usd") >= body_bytes * 2.5e-6 + 50.0 * 10e-6,
        "{outcome}"
    );
    assert!(usd("settled_usd") < usd("reserved_usd"), "{outcome}");
    assert!(
        usd("settled_usd") > 0.0005 && usd("settled_usd") < 0.0006,
        "{outcome}"
    );
    let after = settled(&store).await;
    assert_eq!(after.reserved, 0);
    assert!(after.spent > 0);
}

/// A proxy allowing LLM calls with `breakers` (YAML under `budget.breakers`) and its store.
async fn proxy_with_breakers(pki: &TestPki, store: &str, breakers: &str) -> TestProxy {
    let spec = ProxySpec {
        policy: ALLOW.into(),
        extra: format!("budget:\n  store: {store}\n  breakers:\n{breakers}"),
        ..Default::default()
    };
    TestProxy::start(pki, spec).await
}

async fn post(proxy: &TestProxy, url: &str, body: Vec<u8>) -> (u16, String) {
    let response = proxy
        .client(true)
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn the_loop_breaker_pauses_an_agent_repeating_itself_across_a_restart() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    origin.gate.send_replace(true);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    let breakers = "    loop: { repeats: 3, seconds: 60 }\n";
    let mut proxy = proxy_with_breakers(&pki, &store, breakers).await;
    let url = format!("https://localhost:{}/held/v1/messages", origin.port());
    for _ in 0..2 {
        assert_eq!(post(&proxy, &url, call_body()).await.0, 200);
    }
    let (status, text) = post(&proxy, &url, call_body()).await;
    assert_eq!(status, 429, "{text}");
    assert!(
        text.contains("loop breaker: the same request 3 times within 60 s"),
        "{text}"
    );
    let other = br#"{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"something else"}]}"#;
    let (status, text) = post(&proxy, &url, other.to_vec()).await;
    assert_eq!(
        status, 429,
        "the agent is paused, whatever it sends: {text}"
    );
    assert_eq!(origin.received.lock().unwrap().len(), 2);

    proxy.gatehouse.take().unwrap().shutdown().await;
    let proxy = proxy_with_breakers(&pki, &store, breakers).await;
    let (status, text) = post(&proxy, &url, other.to_vec()).await;
    assert_eq!(status, 429, "the pause is in the store: {text}");
    let resumed = std::process::Command::new(crate::support::binary())
        .args(["budget", "resume", "--agent", "anonymous", "--config"])
        .arg(&proxy.config_path)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&resumed.stdout).trim(),
        "agent:anonymous resumed",
        "{resumed:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(post(&proxy, &url, other.to_vec()).await.0, 200);
}

#[tokio::test]
async fn the_velocity_breaker_pauses_an_agent_spending_too_fast() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    origin.gate.send_replace(true);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    let proxy = proxy_with_breakers(
        &pki,
        &store,
        "    velocity: { usd: '0.005', seconds: 60 }\n",
    )
    .await;
    let url = format!("https://localhost:{}/held/v1/messages", origin.port());
    // $0.00285 each: the second settles $0.0057 within the minute.
    for _ in 0..2 {
        assert_eq!(post(&proxy, &url, call_body()).await.0, 200);
    }
    let (status, text) = post(&proxy, &url, call_body()).await;
    assert_eq!(status, 429, "{text}");
    assert!(
        text.contains("spend-velocity breaker: $0.0057 within 60 s"),
        "{text}"
    );
}

#[tokio::test]
async fn a_tripped_breaker_can_hold_calls_for_a_person_instead_of_refusing() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    origin.gate.send_replace(true);
    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("budget.sqlite").display().to_string();
    let spec = ProxySpec {
        policy: ALLOW.into(),
        extra: format!(
            "budget:\n  store: {store}\n  on_trip: hold\n  budgets:\n    - {{ id: daily, limit_usd: '1', window: day, breaker_at: '0.001' }}\napprovals:\n  wait: 300ms\n"
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let url = format!("https://localhost:{}/held/v1/messages", origin.port());
    // $0.00285 spent: past the breaker at $0.001.
    assert_eq!(post(&proxy, &url, call_body()).await.0, 200);
    let held = proxy
        .client(true)
        .post(&url)
        .header("content-type", "application/json")
        .body(call_body())
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 408);
    let id = held.headers()["x-gatehouse-approval"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = held.json().await.unwrap();
    assert!(
        body.to_string().contains("budget-breaker:daily"),
        "the breaker is named: {body}"
    );
    let approved = proxy
        .admin_client()
        .post(format!("{}/api/approvals/{id}/approve", proxy.admin_url()))
        .json(&json!({"reviewer": "ops"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 200);
    assert_eq!(
        post(&proxy, &url, call_body()).await.0,
        200,
        "approved once"
    );
    assert_eq!(origin.received.lock().unwrap().len(), 2);
    let ledger = Store::open(&StoreLocation::parse(&store), Role::Tool)
        .await
        .unwrap();
    let day = gatehouse::budget::Window::Day.key(time::OffsetDateTime::now_utc(), None);
    let mut spent = Balance::default();
    for _ in 0..50 {
        spent = ledger.balance("daily", &day).await.unwrap();
        if spent.reserved == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        spent,
        Balance {
            spent: 2 * ACTUAL_NANO,
            reserved: 0
        },
        "the attempt that waited and got 408 was never sent and cost nothing"
    );
}

/// `kill -9` of a proxy with a call in flight: the settled spend is in the store, the in-flight
/// call is held by the proxy's lease (a store shared by a fleet cannot tell it from a live one)
/// until the proxy starts again, reconciles its audit file and releases what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_settled_spend_and_strands_no_reservation() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("budget.sqlite").display().to_string();
    let spec = ProxySpec {
        policy: ALLOW.into(),
        extra: format!(
            "budget:\n  store: {store}\n  budgets:\n    - {{ id: shared-daily, limit_usd: '10', window: day }}\n"
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
    let url = |path: &str| format!("https://localhost:{}{path}", origin.port());
    let call = |path: &str| {
        client
            .post(url(path))
            .header("content-type", "application/json")
            .body(call_body())
            .send()
    };
    // One call settled; one waiting at the origin when the proxy dies.
    origin.gate.send_replace(true);
    let settled = call("/v1/messages").await.unwrap();
    assert_eq!(settled.status(), 200);
    settled.bytes().await.unwrap();
    // Settlement is written behind the answer: wait for its batch before the crash.
    for _ in 0..100 {
        if balance(&store).await.spent == ACTUAL_NANO {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    origin.gate.send_replace(false);
    let in_flight = tokio::spawn(call("/held/v1/messages"));
    while origin.received.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    assert!(
        in_flight.await.unwrap().is_err(),
        "the agent saw the proxy die"
    );

    let after_crash = balance(&store).await;
    assert_eq!(after_crash.spent, ACTUAL_NANO, "the settled call is kept");
    assert!(
        after_crash.reserved >= worst_nano(),
        "the in-flight call is still held: {after_crash:?}"
    );
    // The store's next owner reconciles the audit file, then releases what the dead run leased.
    let (_next, _, _) = crate::support::spawn_gatehouse(&config).await;
    assert_eq!(
        balance(&store).await,
        Balance {
            spent: ACTUAL_NANO,
            reserved: 0
        }
    );
}

/// The audit's outcome record of the one call `proxy` answered.
async fn outcome_of_the_call(proxy: &TestProxy) -> Value {
    for _ in 0..100 {
        let audit = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
        if let Some(line) = audit.lines().find(|l| l.contains("\"outcome\"")) {
            return serde_json::from_str(line).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no outcome record");
}

#[tokio::test]
async fn a_call_is_reserved_at_its_byte_bound_and_refused_only_if_its_exact_count_does_not_fit() {
    let pki = TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let url = format!(
        "https://localhost:{}/bench/v1/chat/completions",
        origin.port()
    );
    let prose = "The quick brown fox jumps over the lazy dog. ".repeat(90);
    let body = serde_json::to_vec(&json!({"model": "gpt-4o", "max_tokens": 10,
        "messages": [{"role": "user", "content": prose}]}))
    .unwrap();
    // gpt-4o at $2.50/M input and $10/M output: ~4,100 bytes bound the input at $0.0103 with the
    // output; o200k counts ~900 tokens, $0.0024 in all.
    let bound_usd = body.len() as f64 * 2.5e-6 + 10.0 * 10e-6;
    assert!(bound_usd > 0.01);

    let state = tempfile::tempdir().unwrap();
    let store = state.path().join("roomy.sqlite").display().to_string();
    let roomy = proxy_with_budget(&pki, &store, 1_000_000_000).await;
    assert_eq!(post(&roomy, &url, body.clone()).await.0, 200);
    let outcome = outcome_of_the_call(&roomy).await;
    let reserved: f64 = outcome["budget"]["reserved_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (reserved - bound_usd).abs() < 1e-9,
        "at the bound: {outcome}"
    );

    // Room for the exact worst case, not for the bound: the body is counted and the call leaves.
    let store = state.path().join("tight.sqlite").display().to_string();
    let tight = proxy_with_budget(&pki, &store, 5_000_000).await;
    let (status, answer) = post(&tight, &url, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    let outcome = outcome_of_the_call(&tight).await;
    let reserved: f64 = outcome["budget"]["reserved_usd"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reserved > 0.002 && reserved < 0.003, "counted: {outcome}");

    // Room for neither: refused, naming the exact worst case.
    let store = state.path().join("short.sqlite").display().to_string();
    let short = proxy_with_budget(&pki, &store, 2_000_000).await;
    let (status, answer) = post(&short, &url, body).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer.contains("may cost up to $0.002"), "{answer}");
}
