//! The audit trail holds every refusal the proxy makes on its own (407, 400, 413, 421, 431, the
//! network guard), and how relayed tunnels and WebSockets ended, with the bytes each way.

use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{
    ALLOW_WEBSOCKETS, ProxySpec, TestPki, TestProxy, connect_tunnel, h1_request, origin, tls_over,
};

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// Every record of the trail (decisions and the rest).
fn records(proxy: &TestProxy) -> Vec<Value> {
    std::fs::read_to_string(proxy.dir.path().join("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The first record `matches` picks, waiting up to 10 s for it (some are written as the
/// connection ends, after the agent has its answer).
async fn record_where(proxy: &TestProxy, matches: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        if let Some(found) = records(proxy).into_iter().find(&matches) {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all: Vec<String> = records(proxy).iter().map(Value::to_string).collect();
    panic!("no such record in\n{}", all.join("\n"));
}

async fn raw(proxy: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn every_refusal_the_proxy_makes_on_its_own_is_a_record() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let tokens = tempfile::tempdir().unwrap();
    let token_file = tokens.path().join("bot.token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let spec = ProxySpec {
        identity: format!(
            "identity:\n  allow_anonymous: false\n  agents:\n    - id: bot\n      token_file: {}\n",
            token_file.display()
        ),
        limits: "limits:\n  max_header_bytes: 8192\n  max_request_body_bytes: 1024\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    let auth = basic("bot:s3cret-token");

    // 407: a wrong token.
    let (status, _, _) = connect_tunnel(proxy.addr, &target, Some(&basic("bot:wrong"))).await;
    assert_eq!(status, 407);
    // 431: a head over the limit, refused by the HTTP parser before anything else reads it.
    let huge = format!(
        "GET http://{target}/ HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    assert!(
        raw(proxy.addr, huge.as_bytes())
            .await
            .starts_with("HTTP/1.1 431")
    );
    // 400: origin-form to a proxy.
    let origin_form = raw(proxy.addr, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(origin_form.starts_with("HTTP/1.1 400"), "{origin_form}");
    // 413: a body over the limit.
    let client = proxy.client_with(
        reqwest::Proxy::all(proxy.url())
            .unwrap()
            .basic_auth("bot", "s3cret-token"),
        &proxy.ca_pem,
        true,
    );
    let too_large = client
        .post(format!("https://{target}/echo"))
        .body(vec![b'a'; 4096])
        .send()
        .await
        .unwrap();
    assert_eq!(too_large.status(), 413);
    // 421: a Host inside the tunnel that is not the CONNECT target.
    let (status, _, stream) = connect_tunnel(proxy.addr, &target, Some(&auth)).await;
    assert_eq!(status, 200);
    let tls = tls_over(stream, "localhost", &proxy.ca_pem, &[b"http/1.1"]).await;
    let fronted = http::Request::get("/echo")
        .header("host", "elsewhere.example.com")
        .body(String::new())
        .unwrap();
    assert_eq!(h1_request(tls, fronted).await.0, 421);
    // 403: the network guard.
    let (status, _, _) = connect_tunnel(proxy.addr, "10.1.2.3:443", Some(&auth)).await;
    assert_eq!(status, 403);

    for (status, agent) in [
        (407, ""),
        (431, ""),
        (400, ""),
        (413, "bot"),
        (421, "bot"),
        (403, "bot"),
    ] {
        let decision = |r: &Value| r.get("record").is_none() && r["status"] == status;
        let record = record_where(&proxy, decision).await;
        assert_eq!(record["effect"], "deny", "{status}: {record}");
        assert_eq!(record["agent"], agent, "{status}: {record}");
        assert!(!record["reason"].as_str().unwrap().is_empty(), "{record}");
    }
    let text = std::fs::read_to_string(proxy.dir.path().join("audit.jsonl")).unwrap();
    assert!(!text.contains("s3cret-token") && !text.contains("aaaaaaaa"));
}

#[tokio::test]
async fn relayed_tunnels_and_websockets_get_a_record_of_the_bytes_each_way() {
    let pki = TestPki::new();
    let tls_origin = origin::start_tls(&pki).await;
    let plain_origin = origin::start_plain().await;
    let spec = ProxySpec {
        tunnel_hosts: vec!["localhost".into()],
        policy: ALLOW_WEBSOCKETS.into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;

    // A relayed tunnel: the agent pins the origin's own certificate.
    let pinned = proxy.client_with(reqwest::Proxy::all(proxy.url()).unwrap(), &pki.ca_pem, true);
    let response = pinned
        .get(format!("https://localhost:{}/echo", tls_origin.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response.bytes().await.unwrap());
    drop(pinned);
    let tunnel = record_where(&proxy, |r| r["record"] == "closed" && r["kind"] == "tunnel").await;
    assert_eq!(tunnel["host"], "localhost");
    assert_eq!(tunnel["port"], tls_origin.port());
    assert_eq!(tunnel["outcome"], "closed");
    assert!(tunnel["bytes_up"].as_u64().unwrap() > 100, "{tunnel}");
    assert!(tunnel["bytes_down"].as_u64().unwrap() > 500, "{tunnel}");

    // A WebSocket: written when the socket ends, not with its 101.
    let host = format!("127.0.0.1:{}", plain_origin.port());
    let mut ws = crate::support::websocket_via_proxy(proxy.addr, &host).await;
    ws.send(Message::text("hello")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("hello"));
    ws.send(Message::text("again!")).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("again!"));
    ws.close(None).await.unwrap();
    drop(ws);
    let socket = record_where(&proxy, |r| {
        r["record"] == "closed" && r["kind"] == "websocket"
    })
    .await;
    assert_eq!(socket["bytes_up"], 11, "{socket}");
    assert_eq!(socket["bytes_down"], 11, "{socket}");
    assert_eq!(socket["messages_up"], 2, "{socket}");
    assert_eq!(socket["messages_down"], 2, "{socket}");
    assert!(socket["request"].as_str().is_some_and(|r| !r.is_empty()));
    let upgrade = record_where(&proxy, |r| r["record"] == "outcome" && r["status"] == 101).await;
    assert_eq!(upgrade["request"], socket["request"]);
}

#[tokio::test]
async fn an_agent_sized_model_name_is_recorded_cut() {
    let (_pki, origin, proxy) = TestProxy::with_origin(crate::support::ALLOW_ALL).await;
    let client = proxy.client(true);
    let model = "m".repeat(2 << 20);
    let body = serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let response = client
        .post(format!(
            "https://localhost:{}/v1/chat/completions",
            origin.port()
        ))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success() || response.status().is_client_error());
    let size = std::fs::metadata(proxy.dir.path().join("audit.jsonl"))
        .unwrap()
        .len();
    assert!(
        size < 64 * 1024,
        "{size} bytes of audit for one 2 MB model name"
    );
    let recorded = record_where(&proxy, |r| r["llm"]["model"].is_string()).await;
    assert!(
        recorded["llm"]["model"]
            .as_str()
            .unwrap()
            .ends_with("…[cut, 2097152 bytes]")
    );
}
