//! What an agent cannot talk its way around: execution ids it did not get from the proxy, provider
//! endpoints the proxy does not meter, LLM calls without an output limit, streams cut before their
//! last event, and an approval stretched over a request that differs from the one approved.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use gatehouse::Config;
use gatehouse::store::{Balance, Role, Store, StoreLocation};
use serde_json::{Value, json};

use crate::support::{ProxySpec, TestPki, TestProxy, connect_tunnel, origin};

/// Connects anywhere; allows plain requests and LLM calls.
const ALLOW_ALL_AND_LLM: &str = "rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: requests
    trigger: http.request
    effect: allow
  - id: llm
    trigger: llm.request
    effect: allow
";

/// Connects anywhere; allows LLM calls only.
const ALLOW_LLM: &str = "rules:
  - id: connect-all
    trigger: connect
    effect: allow
  - id: llm
    trigger: llm.request
    effect: allow
";

/// The outcome records of `proxy`'s audit trail once there are at least `count` of them.
async fn outcomes(proxy: &TestProxy, count: usize) -> Vec<Value> {
    let mut found = Vec::new();
    for _ in 0..200 {
        found = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|r| r["record"] == "outcome")
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "expected {count} outcome records, found {}: {found:?}",
        found.len()
    );
}

/// The paths (or `KEYS <path>`) the origin kept, in order.
fn received_paths(origin: &origin::Origin) -> Vec<String> {
    origin
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(p, _)| p.clone())
        .collect()
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// The execution id `gatehouse env --agent AGENT` (the real binary, on `proxy`'s config) issues.
fn issued(proxy: &TestProxy, agent: &str) -> String {
    let output = std::process::Command::new(crate::support::binary())
        .args(["env", "--agent", agent, "--config"])
        .arg(&proxy.config_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "gatehouse env: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("export GATEHOUSE_EXECUTION_ID='"))
        .and_then(|rest| rest.strip_suffix('\''))
        .unwrap_or_else(|| panic!("no execution id in: {text}"))
        .to_string();
    assert!(id.starts_with("exec-"), "{id}");
    assert!(
        text.contains(&format!("export HTTPS_PROXY='http://{agent}+{id}:")),
        "the proxy URL carries the signed id: {text}"
    );
    id
}

/// `GET url` (plain HTTP) through `proxy` as `user` with `token`; status and body.
async fn get_as(proxy: &TestProxy, user: &str, token: &str, url: &str) -> (u16, String) {
    let auth = reqwest::Proxy::all(proxy.url())
        .unwrap()
        .basic_auth(user, token);
    let response = proxy
        .client_with(auth, &proxy.ca_pem, true)
        .get(url)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 407 {
        assert_eq!(
            response.headers()["proxy-authenticate"],
            "Basic realm=\"gatehouse\""
        );
    }
    (status, response.text().await.unwrap())
}

/// An agent whose budgets count executions cannot name a fresh execution of its own: a made-up id,
/// a signed id with one character changed and an id signed for another agent all get 407 with the
/// reason, over plain HTTP and CONNECT; the id `gatehouse env` issued is accepted, and new ones
/// stop at `identity.max_new_executions_per_hour`. A config whose execution budget has no budget
/// of another window beside it does not load, and says which budget.
#[tokio::test]
async fn a_forged_execution_id_is_refused_where_executions_are_counted() {
    let pki = TestPki::new();
    let plain = origin::start_plain().await;
    let tls = origin::start_tls(&pki).await;
    let tokens = tempfile::tempdir().unwrap();
    let bot_token = tokens.path().join("bot.token");
    let helper_token = tokens.path().join("helper.token");
    std::fs::write(&bot_token, "bot-s3cret\n").unwrap();
    std::fs::write(&helper_token, "helper-s3cret\n").unwrap();
    let identity = format!(
        "identity:\n  allow_anonymous: false\n  max_new_executions_per_hour: 2\n  agents:\n    - id: bot\n      token_file: {}\n    - id: helper\n      token_file: {}\n",
        bot_token.display(),
        helper_token.display()
    );
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            identity: identity.clone(),
            extra: "budget:\n  budgets:\n    - { id: per-run, limit_usd: '1', window: execution }\n    - { id: daily, limit_usd: '10', window: day }\n".into(),
            ..Default::default()
        },
    )
    .await;
    let url = format!("http://127.0.0.1:{}/echo", plain.port());

    let genuine = issued(&proxy, "bot");
    let for_helper = issued(&proxy, "helper");
    let last = genuine.chars().last().unwrap();
    let tampered = format!(
        "{}{}",
        &genuine[..genuine.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let lookalike = "exec-0123456789abcdef-6650a1b2-00000000000000000000000000000000";
    for forged in [
        "exec-forged",
        "run-42",
        lookalike,
        tampered.as_str(),
        for_helper.as_str(),
    ] {
        let (status, body) = get_as(&proxy, &format!("bot+{forged}"), "bot-s3cret", &url).await;
        assert_eq!(status, 407, "{forged}: {body}");
        assert!(
            body.contains("execution id not issued by this proxy"),
            "{forged}: {body}"
        );
        assert!(!body.contains("s3cret"), "tokens never echo back: {body}");
    }
    let target = format!("localhost:{}", tls.port());
    let (status, head, _) = connect_tunnel(
        proxy.addr,
        &target,
        Some(&basic("bot+exec-forged:bot-s3cret")),
    )
    .await;
    assert_eq!(status, 407, "CONNECT with a forged id: {head}");

    let (status, body) = get_as(&proxy, &format!("bot+{genuine}"), "bot-s3cret", &url).await;
    assert_eq!(status, 200, "the id the proxy issued: {body}");
    let (status, head, _) = connect_tunnel(
        proxy.addr,
        &target,
        Some(&basic(&format!("bot+{genuine}:bot-s3cret"))),
    )
    .await;
    assert_eq!(status, 200, "CONNECT with the issued id: {head}");
    let (status, body) = get_as(
        &proxy,
        &format!("helper+{for_helper}"),
        "helper-s3cret",
        &url,
    )
    .await;
    assert_eq!(status, 200, "helper's own id is helper's: {body}");
    let (status, body) = get_as(&proxy, "bot", "bot-s3cret", &url).await;
    assert_eq!(status, 200, "no execution id at all is accepted: {body}");

    // Two new executions an hour: `genuine` was the first, the refused ids never counted.
    let second = issued(&proxy, "bot");
    let (status, body) = get_as(&proxy, &format!("bot+{second}"), "bot-s3cret", &url).await;
    assert_eq!(status, 200, "the second new execution: {body}");
    let third = issued(&proxy, "bot");
    let (status, body) = get_as(&proxy, &format!("bot+{third}"), "bot-s3cret", &url).await;
    assert_eq!(status, 407, "the third new execution this hour: {body}");
    assert!(body.contains("more new executions this hour"), "{body}");
    let (status, body) = get_as(&proxy, &format!("bot+{genuine}"), "bot-s3cret", &url).await;
    assert_eq!(status, 200, "a known execution goes on: {body}");

    // An execution budget alone, or beside a budget that covers someone else, does not load.
    for (budgets, agent) in [
        (
            "    - { id: per-run, limit_usd: '1', window: execution }\n",
            "bot",
        ),
        (
            "    - { id: per-run, agent: bot, limit_usd: '1', window: execution }\n    - { id: helper-daily, agent: helper, limit_usd: '10', window: day }\n",
            "bot",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let spec = ProxySpec {
            identity: identity.clone(),
            extra: format!("budget:\n  budgets:\n{budgets}"),
            ..Default::default()
        };
        let yaml = spec.yaml(&pki, &dir.path().join("certs"), "127.0.0.1:0");
        let message = match Config::from_yaml(&yaml, "test.yaml") {
            Ok(_) => panic!("an execution budget without a sibling loaded:\n{budgets}"),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains("budget `per-run` counts executions of agent")
                && message.contains(&format!("`{agent}`"))
                && message.contains("no budget of another window"),
            "{message}"
        );
    }
}

/// Sends `method url` through `proxy` with an optional JSON body; status, the proxy's error code
/// header (if any) and body.
async fn call(
    proxy: &TestProxy,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Option<String>, String) {
    let mut request = proxy.client(true).request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let code = response
        .headers()
        .get("x-gatehouse-error")
        .map(|v| v.to_str().unwrap().to_string());
    (status, code, response.text().await.unwrap())
}

/// Under a budget, a provider endpoint the proxy cannot meter (a batch job, deleting a model) is
/// refused by the proxy and never reaches the provider; listing models, counting tokens and a
/// recognised chat completion pass. A rule with `allow_unmetered: true` lets exactly its endpoint
/// through, and no budget covering the agent means nothing to refuse.
#[tokio::test]
async fn an_unmetered_provider_endpoint_is_refused_under_a_budget() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let base = format!("https://127.0.0.1:{}", origin.port());
    let batch = json!({"input_file_id": "file-1", "endpoint": "/v1/chat/completions",
                       "completion_window": "24h"});
    let everyone = "budget:\n  provider_hosts: ['127.0.0.1']\n  budgets:\n    - { id: daily, limit_usd: '10', window: day }\n";
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: ALLOW_ALL_AND_LLM.into(),
            extra: everyone.into(),
            ..Default::default()
        },
    )
    .await;

    let (status, code, text) = call(
        &proxy,
        reqwest::Method::POST,
        &format!("{base}/keyed/v1/batches"),
        Some(batch.clone()),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(
        code.as_deref(),
        Some("forbidden"),
        "the proxy's answer: {text}"
    );
    assert!(
        text.contains(
            "POST /keyed/v1/batches on 127.0.0.1 is an LLM provider endpoint the proxy does not \
             meter, and a budget covers this agent"
        ) && text.contains("allow_unmetered: true"),
        "{text}"
    );
    let (status, _, text) = call(
        &proxy,
        reqwest::Method::DELETE,
        &format!("{base}/keyed/v1/models/ft-mine"),
        None,
    )
    .await;
    assert_eq!(status, 403, "only reading models is free: {text}");
    assert!(text.contains("does not meter"), "{text}");
    assert!(
        received_paths(&origin).is_empty(),
        "nothing refused reached the provider: {:?}",
        received_paths(&origin)
    );

    let (status, _, text) = call(
        &proxy,
        reqwest::Method::GET,
        &format!("{base}/keyed/v1/models"),
        None,
    )
    .await;
    assert_eq!(status, 200, "listing models costs nothing: {text}");
    let (status, _, text) = call(
        &proxy,
        reqwest::Method::POST,
        &format!("{base}/keyed/v1/messages/count_tokens"),
        Some(
            json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "counting tokens costs nothing: {text}");
    let (status, _, text) = call(
        &proxy,
        reqwest::Method::POST,
        &format!("{base}/v1/chat/completions"),
        Some(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})),
    )
    .await;
    assert_eq!(status, 200, "a metered call: {text}");
    assert_eq!(
        received_paths(&origin),
        [
            "KEYS /keyed/v1/models",
            "KEYS /keyed/v1/messages/count_tokens",
            "/v1/chat/completions"
        ]
    );

    let unmetered_batches = format!(
        "{ALLOW_ALL_AND_LLM}  - id: batches-unmetered
    trigger: http.request
    when: request.path == '/keyed/v1/batches'
    effect: allow
    allow_unmetered: true
"
    );
    let allowed = TestProxy::start(
        &pki,
        ProxySpec {
            policy: unmetered_batches,
            extra: everyone.into(),
            ..Default::default()
        },
    )
    .await;
    let (status, _, text) = call(
        &allowed,
        reqwest::Method::POST,
        &format!("{base}/keyed/v1/batches"),
        Some(batch.clone()),
    )
    .await;
    assert_eq!(status, 200, "the rule says so: {text}");
    assert_eq!(
        received_paths(&origin).last().map(String::as_str),
        Some("KEYS /keyed/v1/batches")
    );
    let (status, _, text) = call(
        &allowed,
        reqwest::Method::POST,
        &format!("{base}/keyed/v1/images/generations"),
        Some(json!({"model": "gpt-image-1", "prompt": "a cat"})),
    )
    .await;
    assert_eq!(status, 403, "the rule names only batches: {text}");
    assert!(text.contains("does not meter"), "{text}");

    let someone_else = TestProxy::start(
        &pki,
        ProxySpec {
            policy: ALLOW_ALL_AND_LLM.into(),
            extra: "budget:\n  provider_hosts: ['127.0.0.1']\n  budgets:\n    - { id: theirs, agent: other-bot, limit_usd: '10', window: day }\n".into(),
            ..Default::default()
        },
    )
    .await;
    let before = received_paths(&origin).len();
    let (status, _, text) = call(
        &someone_else,
        reqwest::Method::POST,
        &format!("{base}/keyed/v1/batches"),
        Some(batch),
    )
    .await;
    assert_eq!(status, 200, "no budget covers this agent: {text}");
    assert_eq!(received_paths(&origin).len(), before + 1);
}

/// POSTs `body` (JSON bytes) to `url` through `proxy`; the status.
async fn post_bytes(proxy: &TestProxy, url: &str, body: &[u8]) -> u16 {
    let response = proxy
        .client(true)
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.bytes().await.unwrap();
    status
}

/// A chat completion a budget covers that sets no output limit leaves with
/// `budget.default_max_output_tokens` in the field its provider reads (`max_tokens` for the
/// OpenAI-compatible API a local host is recognised as), and its reservation is bounded by it; a
/// call with its own limit (either field) leaves byte for byte as sent, and so does every call when
/// no budget covers the agent.
#[tokio::test]
async fn a_budgeted_call_without_an_output_limit_is_forwarded_with_one() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let url = format!("https://localhost:{}/v1/chat/completions", origin.port());
    let messages = json!([{"role": "user", "content": "list the open tickets"}]);
    let unlimited = serde_json::to_vec(&json!({"model": "gpt-4o", "messages": messages})).unwrap();
    let last_received = || origin.received.lock().unwrap().last().cloned().unwrap();

    let budgeted = TestProxy::start(
        &pki,
        ProxySpec {
            policy: ALLOW_LLM.into(),
            extra: "budget:\n  default_max_output_tokens: 777\n  budgets:\n    - { id: daily, limit_usd: '10', window: day }\n".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(post_bytes(&budgeted, &url, &unlimited).await, 200);
    let (path, sent) = last_received();
    assert_eq!(path, "/v1/chat/completions");
    let sent: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(sent["max_tokens"], 777, "{sent}");
    assert!(sent.get("max_completion_tokens").is_none(), "{sent}");
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(sent["messages"], messages, "nothing else changed");
    let outcome = &outcomes(&budgeted, 1).await[0];
    let reserved: f64 = outcome["budget"]["reserved_usd"]
        .as_str()
        .unwrap_or_else(|| panic!("a reservation: {outcome}"))
        .parse()
        .unwrap();
    // 777 output tokens at $10/M, plus a few dozen input tokens at $2.50/M (4096 would be $0.041).
    assert!(
        (0.00777..0.0085).contains(&reserved),
        "the reservation is bounded by the limit it set: {reserved}"
    );

    for own in [
        json!({"model": "gpt-4o", "max_tokens": 50, "messages": messages}),
        json!({"model": "gpt-4o", "max_completion_tokens": 60, "messages": messages}),
    ] {
        let bytes = serde_json::to_vec(&own).unwrap();
        assert_eq!(post_bytes(&budgeted, &url, &bytes).await, 200);
        assert_eq!(
            last_received().1,
            bytes,
            "a call with its own limit leaves as sent: {own}"
        );
    }

    for extra in [
        "budget:\n  default_max_output_tokens: 777\n",
        "budget:\n  default_max_output_tokens: 777\n  budgets:\n    - { id: theirs, agent: other-bot, limit_usd: '10', window: day }\n",
    ] {
        let unbudgeted = TestProxy::start(
            &pki,
            ProxySpec {
                policy: ALLOW_LLM.into(),
                extra: extra.into(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(post_bytes(&unbudgeted, &url, &unlimited).await, 200);
        assert_eq!(
            last_received().1,
            unlimited,
            "no budget covers the agent: the body is untouched ({extra})"
        );
    }
}

/// An Anthropic stream that ends right after `message_start` (one output token seen, no
/// `message_stop`) is settled at its reservation as an estimate, not at the usage seen; a whole
/// stream of the same call is settled at its actual cost. The ledger holds exactly both.
#[tokio::test]
async fn an_anthropic_stream_cut_after_message_start_settles_at_the_reservation() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: ALLOW_LLM.into(),
            extra: "budget:\n  budgets:\n    - { id: daily, limit_usd: '10', window: day }\n"
                .into(),
            ..Default::default()
        },
    )
    .await;
    let body = serde_json::to_vec(&json!({"model": "claude-sonnet-4-5", "max_tokens": 1000,
        "stream": true, "messages": [{"role": "user", "content": "summarise the open tickets"}]}))
    .unwrap();
    // Input at a token per 4 bytes ($3/M) and 1000 output tokens ($15/M), in nano-USD.
    let worst_nano = (body.len().div_ceil(4) as i64 * 3 + 1000 * 15) * 1000;
    let stream = |path: &str| {
        proxy
            .client(true)
            .post(format!("https://localhost:{}{path}", origin.port()))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
    };

    let whole = stream("/fx/anthropic_stream.sse/v1/messages")
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert!(whole.text().await.unwrap().contains("message_stop"));
    let complete = outcomes(&proxy, 1).await[0].clone();
    assert_eq!(complete["llm"]["cost_status"], "exact", "{complete}");
    assert_eq!(complete["budget"]["settled_as"], "actual", "{complete}");
    assert_eq!(complete["budget"]["settled_usd"], "0.00285", "{complete}");

    let cut = stream("/cut/v1/messages").await.unwrap();
    assert_eq!(cut.status(), 200);
    let text = cut.text().await.unwrap();
    assert!(
        text.contains("message_start") && !text.contains("message_stop"),
        "{text}"
    );
    assert_eq!(
        received_paths(&origin).last().map(String::as_str),
        Some("/cut/v1/messages")
    );
    let outcome = outcomes(&proxy, 2).await[1].clone();
    assert_eq!(outcome["llm"]["cost_status"], "estimated", "{outcome}");
    assert_eq!(
        outcome["llm"]["output_tokens"], 1,
        "the usage seen was message_start's: {outcome}"
    );
    let budget = &outcome["budget"];
    assert_eq!(budget["settled_as"], "estimate", "{outcome}");
    assert_eq!(budget["settled_usd"], budget["reserved_usd"], "{outcome}");
    let reserved = rust_decimal::Decimal::from_str(budget["reserved_usd"].as_str().unwrap())
        .unwrap()
        * rust_decimal::Decimal::from(1_000_000_000i64);
    assert_eq!(
        reserved,
        rust_decimal::Decimal::from(worst_nano),
        "reserved the worst case: {outcome}"
    );

    let ledger = Store::open(
        &StoreLocation::parse(&proxy.dir.path().join("budget.sqlite").display().to_string()),
        Role::Tool,
    )
    .await
    .unwrap();
    let day = gatehouse::budget::Window::Day.key(time::OffsetDateTime::now_utc(), None);
    let mut balance = Balance::default();
    for _ in 0..100 {
        balance = ledger.balance("daily", &day).await.unwrap();
        if balance.reserved == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        balance,
        Balance {
            spent: 2_850_000 + worst_nano,
            reserved: 0
        },
        "the whole stream at its cost, the cut one at its worst case"
    );
}

/// The pending approvals the admin API lists.
async fn pending(proxy: &TestProxy) -> Vec<Value> {
    let list: Value = proxy
        .admin_client()
        .get(format!("{}/api/approvals", proxy.admin_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["approvals"].as_array().unwrap().clone()
}

/// The summary of the pending approval `id`.
async fn summary_of(proxy: &TestProxy, id: &str) -> Value {
    pending(proxy)
        .await
        .into_iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("approval {id} is not pending"))["summary"]
        .clone()
}

/// An approval is for the request a person saw: the same request with an `X-HTTP-Method-Override`
/// header added is held on its own (a new approval, the origin never sees it), one that overrides
/// the method to `DELETE` is refused outright (400), while the request as approved goes through. Reviewers see every header, `Authorization` masked (its length and last four characters only), and
/// the whole body with personal data masked.
#[tokio::test]
async fn an_approval_does_not_carry_a_retry_with_an_added_method_override() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            policy: crate::approvals::POLICY.into(),
            ..Default::default()
        },
    )
    .await;
    let note = format!("{} END-OF-NOTE", "x".repeat(3000));
    let body = serde_json::to_vec(
        &json!({"order": 7, "amount": 1200, "customer": "jane.doe@example.com", "note": note}),
    )
    .unwrap();
    let send = |method_override: Option<&'static str>| {
        let mut request = proxy
            .client(true)
            .post(format!("https://localhost:{}/mirror", origin.port()))
            .header("content-type", "application/json")
            .header("authorization", "Bearer agent-own-token-1234")
            .body(body.clone());
        if let Some(method) = method_override {
            request = request.header("x-http-method-override", method);
        }
        request.send()
    };
    let approval_of = |response: &reqwest::Response| {
        response.headers()["x-gatehouse-approval"]
            .to_str()
            .unwrap()
            .to_string()
    };

    let first = send(None).await.unwrap();
    assert_eq!(first.status(), 408);
    let approved = approval_of(&first);
    let summary = summary_of(&proxy, &approved).await;
    let headers = &summary["headers"];
    assert_eq!(
        headers["authorization"], "[secret: 27 characters, ending …1234]",
        "the key is masked, not shown: {summary}"
    );
    assert_eq!(headers["content-type"], "application/json", "{summary}");
    assert!(headers.get("x-http-method-override").is_none(), "{summary}");
    let preview = summary["preview"].as_str().unwrap();
    assert!(
        preview.contains("END-OF-NOTE") && preview.len() > 3000,
        "the whole body: {preview}"
    );
    assert!(
        preview.contains("[EMAIL]") && !preview.contains("jane.doe"),
        "{preview}"
    );
    assert!(
        !summary.to_string().contains("agent-own-token-1234"),
        "{summary}"
    );
    let decided = proxy
        .admin_client()
        .post(format!(
            "{}/api/approvals/{approved}/approve",
            proxy.admin_url()
        ))
        .json(&json!({"reviewer": "ops", "reason": "refund checked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);

    let deleting = send(Some("DELETE")).await.unwrap();
    assert_eq!(
        deleting.status(),
        400,
        "an override to another method is refused"
    );
    let overridden = send(Some("POST")).await.unwrap();
    assert_eq!(
        overridden.status(),
        408,
        "another request waits for its own approval"
    );
    let other = approval_of(&overridden);
    assert_ne!(
        other, approved,
        "not the approval of the request without it"
    );
    assert!(
        origin.received.lock().unwrap().is_empty(),
        "the overridden request never left"
    );
    let summary = summary_of(&proxy, &other).await;
    let headers = &summary["headers"];
    assert_eq!(headers["x-http-method-override"], "POST", "{summary}");
    assert_eq!(
        headers["authorization"], "[secret: 27 characters, ending …1234]",
        "the key is masked, not shown: {summary}"
    );
    assert!(
        !summary.to_string().contains("agent-own-token-1234"),
        "{summary}"
    );

    let original = send(None).await.unwrap();
    assert_eq!(
        original.status(),
        200,
        "the request as approved goes through"
    );
    let echoed: Value = original.json().await.unwrap();
    assert_eq!(echoed["order"], 7);
    let received = origin.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1, "only the approved request left");
    assert_eq!(received[0].0, "/mirror");
    assert_eq!(received[0].1, body);
    assert_eq!(
        pending(&proxy)
            .await
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>(),
        [other],
        "the overridden request still waits for a person"
    );
}
