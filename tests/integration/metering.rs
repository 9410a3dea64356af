//! Metering through the proxy: an LLM answer's usage is read as it streams past (JSON or server-
//! sent events), priced in decimal, and recorded in the request's outcome.

use serde_json::{Value, json};

use crate::support::TestProxy;

const ALLOW: &str = "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: llm\n    trigger: llm.request\n    effect: allow\n";

/// An origin and a proxy allowing LLM calls, with `budget_yaml` (entries under `budget:`) and a
/// ledger of its own; the ledger's folder lives as long as the returned guard.
async fn budget_proxy(
    budget_yaml: &str,
) -> (
    crate::support::TestPki,
    crate::support::origin::Origin,
    TestProxy,
    tempfile::TempDir,
) {
    let pki = crate::support::TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let state = tempfile::tempdir().unwrap();
    let spec = crate::support::ProxySpec {
        policy: ALLOW.into(),
        extra: format!(
            "budget:\n  store: {}\n{budget_yaml}",
            state.path().join("budget.sqlite").display()
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    (pki, origin, proxy, state)
}

fn outcomes(proxy: &TestProxy) -> Vec<Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["record"] == "outcome")
        .collect()
}

#[tokio::test]
async fn llm_answers_are_metered_and_priced_in_the_outcome_record() {
    let (_pki, origin, proxy) = TestProxy::with_origin(ALLOW).await;
    let client = proxy.client(false);
    let base = format!("https://localhost:{}", origin.port());

    let claude = client
        .post(format!("{base}/v1/messages"))
        .json(
            &json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "refund order 7"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(claude.status(), 200);
    let answer: Value = claude.json().await.unwrap();
    assert_eq!(
        answer["usage"]["output_tokens"], 120,
        "the answer reaches the agent untouched"
    );

    let streamed = client
        .post(format!("{base}/v1/responses"))
        .json(&json!({"model": "o4-mini", "input": "hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let text = streamed.text().await.unwrap();
    assert!(text.contains("response.completed"));

    let unpriced = client
        .post(format!("{base}/v1/messages"))
        .json(&json!({"model": "claude-mystery-9", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unpriced.status(), 200);
    let _ = unpriced.bytes().await.unwrap();

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let llm: Vec<Value> = outcomes(&proxy)
        .into_iter()
        .map(|r| r["llm"].clone())
        .collect();
    assert_eq!(llm.len(), 3, "{llm:?}");
    assert_eq!(
        llm[0],
        json!({"model": "claude-sonnet-4-5-20250929", "priced_as": "claude-sonnet-4-5",
               "input_tokens": 25, "cached_input_tokens": 2000, "cache_write_tokens": 100,
               "output_tokens": 120, "cost_usd": "0.00285", "cost_status": "exact"})
    );
    assert_eq!(llm[1]["priced_as"], "o4-mini");
    assert_eq!(llm[1]["cost_usd"], "0.0004235");
    assert_eq!(
        (
            llm[1]["input_tokens"].as_u64(),
            llm[1]["cached_input_tokens"].as_u64()
        ),
        (Some(200), Some(100))
    );
    assert_eq!(llm[2]["cost_status"], "unpriced");
    assert!(llm[2]["cost_usd"].is_null());
    assert_eq!(
        llm[2]["output_tokens"], 120,
        "tokens are recorded even without a price"
    );
}

#[tokio::test]
async fn an_openai_stream_is_metered_even_when_the_client_did_not_ask_for_usage() {
    let (_pki, origin, proxy) = TestProxy::with_origin(ALLOW).await;
    let client = proxy.client(true);
    let url = format!(
        "https://localhost:{}/openai/v1/chat/completions",
        origin.port()
    );
    let call = |include_usage: Option<bool>| {
        let mut body = json!({"model": "gpt-4o-mini", "stream": true,
                              "messages": [{"role": "user", "content": "hi"}]});
        if let Some(include) = include_usage {
            body["stream_options"] = json!({"include_usage": include});
        }
        body
    };
    let plain = client.post(&url).json(&call(None)).send().await.unwrap();
    let plain = plain.text().await.unwrap();
    assert!(
        plain.contains("Hello") && plain.contains("[DONE]"),
        "{plain}"
    );
    assert!(
        !plain.contains("\"usage\":{"),
        "the chunk the client did not ask for is gone: {plain}"
    );

    let asked = client
        .post(&url)
        .json(&call(Some(true)))
        .send()
        .await
        .unwrap();
    let asked = asked.text().await.unwrap();
    assert!(
        asked.contains("\"usage\":{\"prompt_tokens\":20"),
        "kept when the client asked: {asked}"
    );

    let received = origin.received.lock().unwrap().clone();
    let sent: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "asked upstream on the client's behalf"
    );

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let llm: Vec<Value> = outcomes(&proxy)
        .into_iter()
        .map(|r| r["llm"].clone())
        .collect();
    assert_eq!(llm.len(), 2);
    for record in &llm {
        assert_eq!(record["cost_status"], "exact", "{record}");
        // 20 × 0.15 + 5 × 0.60 per million.
        assert_eq!(record["cost_usd"], "0.000006");
    }
}

#[tokio::test]
async fn budgets_reserve_before_forwarding_settle_to_the_real_cost_and_refuse_with_429() {
    let (_pki, origin, proxy, _state) = budget_proxy("  budgets:\n    - { id: tiny-daily, limit_usd: '0.005', window: day }\n    - { id: someone-else, agent: other-bot, limit_usd: '0.000001', window: day }\n").await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/v1/messages", origin.port());
    let call = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
                      "messages": [{"role": "user", "content": "refund order 7"}]});
    for _ in 0..2 {
        let ok = client.post(&url).json(&call).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        let _ = ok.bytes().await.unwrap();
    }
    // Spent 2 × $0.00285 = $0.0057 > $0.005: no room for a third call's worst case.
    let refused = client.post(&url).json(&call).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "error", "Anthropic-shaped: {body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("tiny-daily") && message.contains("day:"),
        "{message}"
    );
    assert_eq!(
        origin.received.lock().unwrap().len(),
        2,
        "the refused call never left"
    );

    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let budgets: Vec<Value> = outcomes(&proxy)
        .into_iter()
        .filter_map(|r| r.get("budget").cloned())
        .collect();
    assert_eq!(budgets.len(), 2, "{budgets:?}");
    for b in &budgets {
        assert_eq!(
            b["budgets"],
            json!(["tiny-daily"]),
            "only the budgets covering the agent"
        );
        assert_eq!(b["settled_as"], "actual");
        assert_eq!(b["settled_usd"], "0.00285");
    }
}

#[tokio::test]
async fn an_agent_paused_by_hand_is_refused_until_resumed() {
    let (_pki, origin, proxy, _state) =
        budget_proxy("  budgets:\n    - { id: roomy, limit_usd: '100', window: month }\n").await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/v1/messages", origin.port());
    let call = json!({"model": "claude-haiku-4-5", "max_tokens": 10, "messages": []});
    let gatehouse = |args: &[&str]| {
        let output = std::process::Command::new(crate::support::binary())
            .args(args)
            .arg("--config")
            .arg(&proxy.config_path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    gatehouse(&[
        "budget",
        "pause",
        "--agent",
        "anonymous",
        "--reason",
        "runaway loop",
    ]);
    // The proxy reads the pause state every second.
    let reread = std::time::Duration::from_millis(1300);
    tokio::time::sleep(reread).await;
    let paused = client.post(&url).json(&call).send().await.unwrap();
    assert_eq!(paused.status(), 429);
    let text = paused.text().await.unwrap();
    assert!(
        text.contains("paused") && text.contains("runaway loop"),
        "{text}"
    );
    assert!(gatehouse(&["budget", "status"]).contains("paused  agent:anonymous"));

    assert!(gatehouse(&["budget", "resume", "--agent", "anonymous"]).contains("resumed"));
    tokio::time::sleep(reread).await;
    let resumed = client.post(&url).json(&call).send().await.unwrap();
    assert_eq!(resumed.status(), 200);
    let _ = resumed.bytes().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let status = gatehouse(&["budget", "status"]);
    assert!(
        status.contains("roomy  everyone  month:") && status.contains("spent $0.00"),
        "{status}"
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let pki = crate::support::TestPki::new();
    let origin = crate::support::origin::start_tls(&pki).await;
    let spec = crate::support::ProxySpec {
        extra: "budget:\n  rate_limits:\n    - { per_minute: 2 }\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/echo", origin.port());
    for _ in 0..2 {
        assert_eq!(client.get(&url).send().await.unwrap().status(), 200);
    }
    let limited = client.get(&url).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["x-gatehouse-error"], "rate_limited");
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        limited
            .text()
            .await
            .unwrap()
            .contains("2 requests per minute")
    );
}

#[tokio::test]
async fn a_budget_breaker_trips_at_its_fraction_and_a_human_resets_it() {
    let (_pki, origin, proxy, _state) = budget_proxy(
        "  budgets:\n    - { id: guarded, limit_usd: '0.01', window: day, breaker_at: '0.5' }\n",
    )
    .await;
    let client = proxy.client(true);
    let url = format!("https://localhost:{}/v1/messages", origin.port());
    let call = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": []});
    for _ in 0..2 {
        let ok = client.post(&url).json(&call).send().await.unwrap();
        assert_eq!(ok.status(), 200);
        let _ = ok.bytes().await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    // $0.0057 spent ≥ half of $0.01: tripped, although the budget itself has room.
    let tripped = client.post(&url).json(&call).send().await.unwrap();
    assert_eq!(tripped.status(), 429);
    let text = tripped.text().await.unwrap();
    assert!(text.contains("breaker of budget `guarded`"), "{text}");
    let reset = std::process::Command::new(crate::support::binary())
        .args(["budget", "resume", "--budget", "guarded", "--config"])
        .arg(&proxy.config_path)
        .output()
        .unwrap();
    assert!(
        reset.status.success(),
        "{}",
        String::from_utf8_lossy(&reset.stderr)
    );
    let again = client.post(&url).json(&call).send().await.unwrap();
    assert_eq!(again.status(), 200, "reset by a human");
}

/// Every provider's recorded answer, streamed and not, priced exactly through a real proxy: the
/// expected figures are worked out by hand from the fixtures' usage and `config/prices.yaml`.
#[tokio::test]
async fn every_provider_is_priced_exactly_streamed_or_not() {
    let (_pki, origin, proxy) = TestProxy::with_origin(ALLOW).await;
    let client = proxy.client(false);
    let messages = json!([{"role": "user", "content": "hello"}]);
    // (fixture, provider path, request body, USD: tokens × USD per million)
    let cases = [
        // 176 × 2.50 + 1024 cached × 1.25 + 50 × 10.00
        (
            "openai_chat.json",
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": messages}),
            "0.00222",
        ),
        // 20 × 0.15 + 5 × 0.60
        (
            "openai_chat_stream.sse",
            "/v1/chat/completions",
            json!({"model": "gpt-4o-mini", "messages": messages, "stream": true,
                "stream_options": {"include_usage": true}}),
            "0.000006",
        ),
        // 200 × 2.00 + 100 cached × 0.50 + 40 × 8.00
        (
            "openai_responses.json",
            "/v1/responses",
            json!({"model": "gpt-4.1", "input": "hello"}),
            "0.00077",
        ),
        // 200 × 1.10 + 100 cached × 0.275 + 40 × 4.40
        (
            "openai_responses_stream.sse",
            "/v1/responses",
            json!({"model": "o4-mini", "input": "hello", "stream": true}),
            "0.0004235",
        ),
        // 8 × 0.02
        (
            "openai_embeddings.json",
            "/v1/embeddings",
            json!({"model": "text-embedding-3-small", "input": "hello"}),
            "0.00000016",
        ),
        // 25 × 3.00 + 2000 cache reads × 0.30 + 100 cache writes × 3.75 + 120 × 15.00
        (
            "anthropic.json",
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": messages}),
            "0.00285",
        ),
        (
            "anthropic_stream.sse",
            "/v1/messages",
            json!({"model": "claude-sonnet-4-5", "max_tokens": 200, "messages": messages,
                "stream": true}),
            "0.00285",
        ),
        // 300 × 0.30 + 200 cached × 0.075 + 200 (thinking included) × 2.50
        (
            "gemini.json",
            "/v1beta/models/gemini-2.5-flash:generateContent",
            json!({"contents": [{"parts": [{"text": "hello"}]}]}),
            "0.000605",
        ),
        // 500 × 0.30 + 200 × 2.50
        (
            "gemini_stream.sse",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            json!({"contents": [{"parts": [{"text": "hello"}]}]}),
            "0.00065",
        ),
    ];
    for (fixture, path, body, _) in &cases {
        let response = client
            .post(format!(
                "https://localhost:{}/fx/{fixture}{path}",
                origin.port()
            ))
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{fixture}");
        response.bytes().await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let priced: Vec<Value> = outcomes(&proxy)
        .into_iter()
        .filter_map(|r| r.get("llm").cloned())
        .collect();
    assert_eq!(priced.len(), cases.len(), "{priced:?}");
    for ((fixture, _, _, usd), record) in cases.iter().zip(&priced) {
        assert_eq!(record["cost_status"], "exact", "{fixture}: {record}");
        assert_eq!(record["cost_usd"], *usd, "{fixture}: {record}");
    }
}
