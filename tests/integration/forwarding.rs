//! Forwarding through the intercepting proxy: h1 and h2, plain HTTP, IP literals, streaming,
//! header hygiene, body limits and upstream TLS failures.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

#[tokio::test]
async fn https_over_http1_and_http2_reaches_the_origin() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let url = format!("https://localhost:{}/echo?x=1", origin.port());

    let h1 = proxy
        .client(true)
        .post(&url)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(h1.status(), 200);
    assert_eq!(h1.version(), reqwest::Version::HTTP_11);
    let seen: Value = h1.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["body_len"], 5);

    let h2 = proxy.client(false).get(&url).send().await.unwrap();
    assert_eq!(h2.status(), 200);
    assert_eq!(
        h2.version(),
        reqwest::Version::HTTP_2,
        "agent side negotiates h2"
    );
    let seen: Value = h2.json().await.unwrap();
    assert_eq!(
        seen["version"], "HTTP/2.0",
        "upstream side uses h2 when the origin offers it"
    );
}

#[tokio::test]
async fn hop_by_hop_and_proxy_credentials_never_reach_the_origin() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let proxy_with_auth = reqwest::Proxy::all(proxy.url())
        .unwrap()
        .basic_auth("anonymous+run-1", "");
    let client = proxy.client_with(proxy_with_auth, &proxy.ca_pem, true);
    let response = client
        .get(format!("http://127.0.0.1:{}/echo", origin.port()))
        .header("connection", "x-private-hop")
        .header("x-private-hop", "secret")
        .header("keep-alive", "timeout=5")
        .header("x-kept", "yes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-hop"], "should-stay");
    assert!(
        !response.headers().contains_key("x-origin-hop"),
        "headers the origin's Connection names stay on its connection"
    );
    let seen: Value = response.json().await.unwrap();
    let headers = seen["headers"].as_object().unwrap();
    for stripped in [
        "proxy-authorization",
        "x-private-hop",
        "keep-alive",
        "proxy-connection",
    ] {
        assert!(
            !headers.contains_key(stripped),
            "{stripped} must not be forwarded: {headers:?}"
        );
    }
    assert_eq!(headers["x-kept"], "yes");
    assert_eq!(headers["host"], format!("127.0.0.1:{}", origin.port()));
}

#[tokio::test]
async fn ip_literal_targets_get_a_leaf_with_an_ip_san() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let response = proxy
        .get(format!("https://127.0.0.1:{}/echo", origin.port()))
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn server_sent_events_arrive_event_by_event() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    for h1_only in [true, false] {
        let response = proxy
            .client(h1_only)
            .get(format!("https://localhost:{}/sse", origin.port()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let mut stream = response.bytes_stream();
        let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("the first event arrives while the origin still holds the second")
            .unwrap()
            .unwrap();
        assert_eq!(&first[..], b"data: first\n\n");
        origin.sse_release.notify_one();
        let mut rest = Vec::new();
        while let Some(chunk) = stream.next().await {
            rest.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(rest, b"data: second\n\n");
    }
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        limits: "limits:\n  max_request_body_bytes: 1024\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let url = format!("https://localhost:{}/echo", origin.port());
    let client = proxy.client(true);

    let declared = client
        .post(&url)
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 413);
    assert!(declared.text().await.unwrap().contains("exceeds the limit"));

    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 512])));
    let streamed = client
        .post(&url)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let status = streamed.status();
    assert_eq!(
        status,
        413,
        "a chunked body that grows past the limit is cut: {}",
        streamed.text().await.unwrap()
    );

    let small = client
        .post(&url)
        .body(vec![b'c'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
}

#[tokio::test]
async fn a_rule_may_let_uninspected_bodies_through_exactly_as_they_came() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let policy = "rules:\n  - id: connect-all\n    trigger: connect\n    effect: allow\n  - id: requests\n    trigger: http.request\n    effect: allow\n  - id: uploads-as-they-are\n    trigger: http.request\n    match: { paths: ['/echo/uploads'] }\n    effect: allow\n    allow_uninspected: true\n";
    let spec = ProxySpec {
        limits: "limits:\n  max_request_body_bytes: 1024\n".into(),
        policy: policy.into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let client = proxy.client(true);
    let uploads = format!("https://localhost:{}/echo/uploads", origin.port());

    let declared = client
        .post(&uploads)
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status(), 200);
    let seen: serde_json::Value = declared.json().await.unwrap();
    assert_eq!(seen["body_len"], 4096);

    let chunks =
        futures_util::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>(vec![b'b'; 512])));
    let streamed = client
        .post(&uploads)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let seen: serde_json::Value = streamed.json().await.unwrap();
    assert_eq!(
        seen["body_len"], 4096,
        "the part read and the rest of the stream"
    );

    let broken_gzip = client
        .post(&uploads)
        .header("content-encoding", "gzip")
        .body(b"not gzip at all".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(broken_gzip.status(), 200);
    let seen: serde_json::Value = broken_gzip.json().await.unwrap();
    assert_eq!(seen["body_len"], 15);
    assert_eq!(seen["headers"]["content-encoding"], "gzip");

    let elsewhere = client
        .post(format!("https://localhost:{}/echo", origin.port()))
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 413);
    let text = elsewhere.text().await.unwrap();
    assert!(text.contains("allow_uninspected"), "{text}");
}

#[tokio::test]
async fn an_upstream_failing_verification_gets_502_with_the_reason() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let proxy = TestProxy::start(
        &pki,
        ProxySpec {
            trust_origin: false,
            ..Default::default()
        },
    )
    .await;
    let response = proxy
        .get(format!("https://localhost:{}/echo", origin.port()))
        .await;
    assert_eq!(response.status(), 502);
    assert_eq!(response.headers()["x-gatehouse-error"], "bad_gateway");
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("upstream TLS failed") && message.contains("certificate"),
        "{message}"
    );
    assert_eq!(body["error"]["side"], "upstream");
}

#[tokio::test]
async fn plain_http_absolute_form_is_forwarded() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let response = proxy
        .client(true)
        .put(format!("http://localhost:{}/echo/plain", origin.port()))
        .body("x".repeat(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/echo/plain");
    assert_eq!(seen["body_len"], 4096);
}

#[tokio::test]
async fn upgrades_other_than_websocket_are_not_honoured() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let proxy = TestProxy::start(&pki, ProxySpec::default()).await;
    let response = proxy
        .client(true)
        .get(format!("http://127.0.0.1:{}/echo", origin.port()))
        .header("connection", "upgrade")
        .header("upgrade", "h2c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    let headers = seen["headers"].as_object().unwrap();
    assert!(!headers.contains_key("upgrade"), "{headers:?}");
}
