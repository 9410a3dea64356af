//! OpenTelemetry against a real OTLP/HTTP receiver (`tests/data/otlp/receiver.py`, decoding with
//! `opentelemetry-proto`): the GenAI and `gatehouse.*` attributes of LLM calls (streamed and not),
//! refusals with their effect and rule, `traceparent` continued and passed upstream (and what an
//! agent's `traceparent` may not do), no personal data or secret in anything exported, the GenAI
//! metrics over OTLP and on `/metrics`, a dead collector costing requests nothing, and
//! `OTEL_SDK_DISABLED=true` exporting nothing. The proxy runs as a child process: the `OTEL_*`
//! variables are its environment.

mod harness;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::connect_tunnel;
use harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llm_calls_export_genai_spans_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path()).await;
    let setup = Setup::start(&Setup::exporting_to(&receiver)).await;
    let (status, body) = setup.chat(false, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = setup.chat(true, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[DONE]"), "{body}");
    let spans = receiver
        .spans_until(|spans| chat_spans(spans).len() >= 2)
        .await;
    for record in receiver.records() {
        assert_eq!(record["content_type"], "application/x-protobuf");
        assert_eq!(record["authorization"], "Bearer collector-key");
    }
    let chats = chat_spans(&spans);
    for span in &chats {
        assert_eq!(span["name"], "chat gpt-4o-mini");
        assert_eq!(span["kind"], "SPAN_KIND_CLIENT");
        let a = |key| attr(span, key).unwrap_or_else(|| panic!("{key} missing from {span:#}"));
        assert_eq!(a("gen_ai.provider.name"), "openai");
        assert_eq!(a("gen_ai.request.model"), "gpt-4o-mini");
        assert_eq!(a("gen_ai.response.model"), "gpt-4o-mini-2024-07-18");
        assert_eq!(a("gen_ai.usage.input_tokens"), "12");
        assert_eq!(a("gen_ai.usage.output_tokens"), "5");
        assert_eq!(a("http.request.method"), "POST");
        assert_eq!(a("server.address"), "localhost");
        assert_eq!(a("server.port"), setup.origin.port().to_string());
        assert_eq!(a("http.response.status_code"), "200");
        assert_eq!(a("gatehouse.agent"), "anonymous");
        assert_eq!(a("gatehouse.effect"), "allow");
        assert_eq!(a("gatehouse.outcome"), "forwarded");
        assert!(a("gatehouse.decision.rules").contains("allow-llm"));
        assert!(!a("gatehouse.policy.version").is_empty());
        assert!(!a("gatehouse.decision.id").is_empty());
        assert_eq!(a("gatehouse.pii.kinds"), "email");
        assert_eq!(a("gatehouse.pii.count.email"), "1");
        assert_eq!(a("gatehouse.redacted.count.email"), "1");
        assert_eq!(a("gatehouse.cost.status"), "exact");
        // 12 input tokens at $0.15/M and 5 output tokens at $0.60/M.
        let usd: f64 = a("gatehouse.cost.usd").parse().unwrap();
        assert!((usd - 0.000_004_8).abs() < 1e-12, "{usd}");
        let resource = json!({"attributes": span["resource"]});
        assert_eq!(
            attr(&resource, "service.name").as_deref(),
            Some("gatehouse-under-test")
        );
        assert_eq!(
            attr(&resource, "deployment.environment").as_deref(),
            Some("test")
        );
    }
    let streamed = |s: &&&Value| attr(s, "gen_ai.response.time_to_first_chunk").is_some();
    let (with_first, without): (Vec<_>, Vec<_>) = chats.iter().partition(streamed);
    assert_eq!((with_first.len(), without.len()), (1, 1));
    assert_eq!(
        attr(with_first[0], "gen_ai.response.finish_reasons").as_deref(),
        Some("length")
    );
    assert_eq!(
        attr(without[0], "gen_ai.response.finish_reasons").as_deref(),
        Some("stop")
    );
    // The GenAI metrics, over OTLP...
    let deadline = Instant::now() + Duration::from_secs(15);
    let names = [
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
    ];
    let metrics = loop {
        let metrics = receiver.metrics();
        let has = |name: &str| metrics.iter().any(|m| m["name"] == name);
        if names.iter().all(|n| has(n)) {
            break metrics;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never arrived: {metrics:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tokens = metrics
        .iter()
        .rfind(|m| m["name"] == "gen_ai.client.token.usage")
        .unwrap();
    assert_eq!(tokens["unit"], "{token}");
    let points = as_array(&tokens["histogram"]["data_points"]);
    for kind in ["input", "output"] {
        let point = points
            .iter()
            .find(|p| attr(p, "gen_ai.token.type").as_deref() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} tokens in {tokens:#}"));
        assert_eq!(
            attr(point, "gen_ai.provider.name").as_deref(),
            Some("openai")
        );
        assert_eq!(
            attr(point, "gen_ai.operation.name").as_deref(),
            Some("chat")
        );
        assert_eq!(point["count"], "2");
    }
    // ...and on the admin listener's /metrics.
    let text = setup.prometheus().await;
    for line in [
        r#"gen_ai_client_token_usage_count{gen_ai_operation_name="chat",gen_ai_provider_name="openai""#,
        r#"gen_ai_client_operation_duration_seconds_count{gen_ai_operation_name="chat""#,
        r#"gen_ai_client_operation_time_to_first_chunk_seconds_count{gen_ai_operation_name="chat""#,
        r#"gen_ai_token_type="output"} 2"#,
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_is_continued_and_propagated_but_decides_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path()).await;
    let setup = Setup::start(&Setup::exporting_to(&receiver)).await;
    // Sampled off by the agent: the proxy records the span all the same.
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-00");
    let (status, _) = setup.chat(false, Some(&traceparent)).await;
    assert_eq!(status, 200);
    let (upstream, tracestate) = setup.seen(0);
    let upstream = upstream.expect("the origin got a traceparent");
    let fields: Vec<&str> = upstream.split('-').collect();
    assert_eq!(fields.len(), 4, "{upstream}");
    assert_eq!(fields[1], TRACE_ID, "the trace continues upstream");
    assert_ne!(
        fields[2], PARENT_ID,
        "the proxy's span is the upstream's parent"
    );
    assert_eq!(fields[3], "01");
    assert_eq!(tracestate, None);
    let spans = receiver.spans_until(|s| !chat_spans(s).is_empty()).await;
    let span = chat_spans(&spans)[0];
    assert_eq!(hex_id(&span["trace_id"]), TRACE_ID);
    assert_eq!(hex_id(&span["parent_span_id"]), PARENT_ID);
    assert_eq!(hex_id(&span["span_id"]), fields[2]);
    // Malformed, repeated or with an agent's tracestate: never a failure; a trace of the proxy's.
    let malformed = [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".to_string(),
        format!("00-{TRACE_ID}-0000000000000000-01"),
        format!("00-{}-{PARENT_ID}-01", &TRACE_ID[..30]),
        "ff-00000000000000000000000000000000-0000000000000000-00".to_string(),
        "garbage".to_string(),
    ];
    for (n, bad) in malformed.iter().enumerate() {
        let (status, body) = setup.chat(false, Some(bad)).await;
        assert_eq!(status, 200, "{bad}: {body}");
        let (upstream, _) = setup.seen(n + 1);
        let upstream = upstream.expect("the proxy's own traceparent goes upstream");
        assert!(!upstream.contains(&TRACE_ID[..30]), "{bad} → {upstream}");
        assert_ne!(&upstream, bad);
    }
    let repeated = setup
        .client
        .post(format!(
            "https://localhost:{}/v1/chat/completions",
            setup.origin.port()
        ))
        .header("traceparent", &traceparent)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_ID}-01"))
        .header("tracestate", format!("agent={}", EMAIL.replace('@', "-")))
        .json(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(repeated.status(), 200);
    let (upstream, tracestate) = setup.seen(malformed.len() + 1);
    assert!(
        !upstream.unwrap().contains(TRACE_ID),
        "a repeated traceparent is not continued"
    );
    assert_eq!(tracestate, None, "the agent's tracestate is not passed on");
    let total = malformed.len() + 2;
    let spans = receiver.spans_until(|s| chat_spans(s).len() >= total).await;
    let continued = chat_spans(&spans)
        .iter()
        .filter(|s| hex_id(&s["trace_id"]) == TRACE_ID)
        .count();
    assert_eq!(
        continued, 1,
        "only the well-formed traceparent is continued"
    );
    for span in chat_spans(&spans) {
        assert!(span.get("trace_state").is_none_or(|t| t == ""), "{span:#}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_export_their_effect_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path()).await;
    let setup = Setup::relaying(&Setup::exporting_to(&receiver), &["localhost"]).await;
    let refused = setup
        .client
        .post(format!(
            "https://127.0.0.1:{}/v1/forbidden",
            setup.origin.port()
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (status, head, _) = connect_tunnel(setup.proxy, "blocked.test:443", None).await;
    assert_eq!(status, 403, "{head}");
    // Held for a person who never decides: the agent is told to retry, the span says how long
    // it waited.
    let held = setup
        .client
        .post(format!("https://127.0.0.1:{}/v1/held", setup.origin.port()))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), 408);
    // A relayed tunnel gets its span when it closes.
    let relayed = format!("localhost:{}", setup.origin.port());
    let (status, head, tunnel) = connect_tunnel(setup.proxy, &relayed, None).await;
    assert_eq!(status, 200, "{head}");
    // The origin's own certificate answers through the relay.
    let mut tls =
        crate::support::tls_over(tunnel, "localhost", &setup.pki.ca_pem, &[b"http/1.1"]).await;
    tokio::io::AsyncWriteExt::shutdown(&mut tls).await.unwrap();
    drop(tls);
    let spans = receiver
        .spans_until(|spans| {
            let rule = |s: &Value, r: &str| {
                attr(s, "gatehouse.decision.rules").is_some_and(|rules| rules.contains(r))
            };
            spans.iter().any(|s| rule(s, "no-forbidden-path"))
                && spans.iter().any(|s| rule(s, "hold-held-path"))
                && spans.iter().any(|s| rule(s, "deny-blocked"))
                && spans
                    .iter()
                    .any(|s| attr(s, "gatehouse.tunnel.bytes_up").is_some())
        })
        .await;
    let find = |rule: &str| {
        spans
            .iter()
            .find(|s| attr(s, "gatehouse.decision.rules").is_some_and(|r| r.contains(rule)))
            .unwrap()
    };
    let request = find("no-forbidden-path");
    assert_eq!(attr(request, "gatehouse.effect").as_deref(), Some("deny"));
    assert_eq!(
        attr(request, "http.response.status_code").as_deref(),
        Some("403")
    );
    assert_eq!(attr(request, "error.type").as_deref(), Some("forbidden"));
    assert_eq!(request["status"]["code"], "STATUS_CODE_ERROR");
    assert_eq!(request["name"], "POST");
    let held = find("hold-held-path");
    assert_eq!(attr(held, "gatehouse.effect").as_deref(), Some("hold"));
    assert_eq!(
        attr(held, "gatehouse.approval.decision").as_deref(),
        Some("pending")
    );
    let waited: f64 = attr(held, "gatehouse.approval.wait_seconds")
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.2..5.0).contains(&waited), "waited {waited}");
    assert_eq!(
        attr(held, "http.response.status_code").as_deref(),
        Some("408")
    );
    assert_eq!(
        attr(held, "error.type").as_deref(),
        Some("approval_pending")
    );
    let connect = find("deny-blocked");
    assert_eq!(connect["name"], "CONNECT");
    assert_eq!(attr(connect, "gatehouse.effect").as_deref(), Some("deny"));
    assert_eq!(
        attr(connect, "server.address").as_deref(),
        Some("blocked.test")
    );
    assert_eq!(attr(connect, "server.port").as_deref(), Some("443"));
    assert_eq!(
        attr(connect, "http.response.status_code").as_deref(),
        Some("403")
    );
    assert!(attr(connect, "gatehouse.decision.id").is_some());
    let tunnel = spans
        .iter()
        .find(|s| attr(s, "gatehouse.tunnel.bytes_up").is_some())
        .unwrap();
    assert_eq!(tunnel["name"], "CONNECT");
    assert_eq!(attr(tunnel, "gatehouse.effect").as_deref(), Some("allow"));
    assert_eq!(attr(tunnel, "server.address").as_deref(), Some("localhost"));
    let up: u64 = attr(tunnel, "gatehouse.tunnel.bytes_up")
        .unwrap()
        .parse()
        .unwrap();
    let down: u64 = attr(tunnel, "gatehouse.tunnel.bytes_down")
        .unwrap()
        .parse()
        .unwrap();
    assert!(up > 0 && down > 0, "{tunnel:#}");
    // How the relay saw the end depends on which side closed first.
    let outcome = attr(tunnel, "gatehouse.outcome").unwrap();
    assert!(["closed", "error"].contains(&outcome.as_str()), "{outcome}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_personal_data_or_secret_reaches_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path()).await;
    let setup = Setup::start(&Setup::exporting_to(&receiver)).await;
    let url = format!(
        "https://localhost:{}/v1/chat/completions?api_key={QUERY_SECRET}&card={}",
        setup.origin.port(),
        CARD.replace(' ', "")
    );
    for stream in [false, true] {
        let body = json!({"model": "gpt-4o-mini", "stream": stream, "user": EMAIL,
                          "messages": [{"role": "user",
                                        "content": format!("{MESSAGE}: {EMAIL}, card {CARD}, key {HEADER_SECRET}")}]});
        let answer = setup
            .client
            .post(&url)
            .header("authorization", format!("Bearer {BEARER}"))
            .header("x-debug-token", HEADER_SECRET)
            .header("x-contact", EMAIL)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    }
    // Nor a card number an agent puts in its execution id or a host name.
    let card = CARD.replace(' ', "");
    let proxy = reqwest::Proxy::all(format!("http://{}", setup.proxy))
        .unwrap()
        .basic_auth(&format!("anonymous+{card}"), "x");
    let ca = std::fs::read_to_string(setup.dir.path().join("certs/gatehouse-ca.pem")).unwrap();
    let marked = reqwest::Client::builder()
        .proxy(proxy)
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
        .http1_only()
        .build()
        .unwrap();
    let plain = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    let answer = marked.post(&url).json(&plain).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let host = format!("{card}.blocked.test:443");
    let (status, head, _) = connect_tunnel(setup.proxy, &host, None).await;
    assert_eq!(status, 403, "{head}");
    // A model name that is personal data is not exported either.
    let odd_model = json!({"model": EMAIL, "messages": [{"role": "user", "content": "hi"}]});
    let answer = setup
        .client
        .post(&url)
        .json(&odd_model)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let spans = receiver
        .spans_until(|s| chat_spans(s).len() >= 4 && s.iter().any(|s| s["name"] == "CONNECT"))
        .await;
    // Wait for a metrics export after the calls, too.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let exported = std::fs::read_to_string(&receiver.output).unwrap();
    assert!(exported.contains("gen_ai.usage.input_tokens"));
    assert!(exported.contains("gatehouse.pii.count.email"));
    for value in [
        EMAIL,
        "jane.roe",
        CARD,
        &CARD.replace(' ', ""),
        HEADER_SECRET,
        BEARER,
        QUERY_SECRET,
        MESSAGE,
        "Rosalind",
        "Hello",
    ] {
        assert!(!exported.contains(value), "{value} was exported");
    }
    let connect = spans.iter().find(|s| s["name"] == "CONNECT").unwrap();
    assert_eq!(attr(connect, "server.address").as_deref(), Some("redacted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_collector_neither_slows_nor_fails_requests() {
    // One collector accepts and never answers; the other is not there at all.
    let black_hole = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hole = black_hole.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = black_hole.accept().await {
            keep.lock().unwrap().push(stream);
        }
    });
    let closed = {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        free.local_addr().unwrap()
    };
    let env = [
        (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            format!("http://{hole}/v1/traces"),
        ),
        (
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("http://{closed}/v1/metrics"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "20".into()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "4".into()),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2".into()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "50".into()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "30000".into()),
    ];
    let setup = Setup::start(&env).await;
    let started = Instant::now();
    for n in 0..30 {
        let one = Instant::now();
        let (status, body) = setup.chat(n % 2 == 0, None).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            one.elapsed() < Duration::from_secs(2),
            "request {n} took {:?}",
            one.elapsed()
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "30 calls took {:?}",
        started.elapsed()
    );
    assert!(
        !held.lock().unwrap().is_empty(),
        "the exporter did try the black hole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_sdk_disabled_exports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(dir.path()).await;
    let mut env = Setup::exporting_to(&receiver);
    env.push(("OTEL_SDK_DISABLED", "true".into()));
    let setup = Setup::start(&env).await;
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    for stream in [false, true] {
        let (status, _) = setup.chat(stream, Some(&traceparent)).await;
        assert_eq!(status, 200);
    }
    // Untouched: without telemetry the agent's header goes on as it came.
    assert_eq!(setup.seen(0).0.as_deref(), Some(traceparent.as_str()));
    // Several export intervals pass.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(receiver.records().is_empty(), "{:#?}", receiver.records());
    // Prometheus still has the GenAI histograms.
    let text = setup.prometheus().await;
    assert!(
        text.contains("gen_ai_client_operation_duration_seconds_count"),
        "{text}"
    );
}
