//! The request record: one line per request and per CONNECT, with identity and outcome, and never
//! a credential, a query string or a body.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;

use crate::support::{ProxySpec, TestPki, TestProxy, origin};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn records(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The log of this whole test binary, captured once: tracing caches per-callsite interest across
/// threads, so a thread-local subscriber would miss events first seen by other tests.
fn captured_log() -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("only this test sets a subscriber");
        captured
    })
    .clone()
}

#[tokio::test]
async fn records_carry_identity_and_outcome_but_no_secrets() {
    let captured = captured_log();
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let token_dir = tempfile::tempdir().unwrap();
    let token_file = token_dir.path().join("bot.token");
    std::fs::write(&token_file, "tok-3f9a8b7c6d5e").unwrap();
    let spec = ProxySpec {
        identity: format!(
            "identity:\n  agents:\n    - id: bot\n      token_file: {}\n",
            token_file.display()
        ),
        upstream: "  idle_timeout: 300ms\n".into(),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let with_auth = reqwest::Proxy::all(proxy.url())
        .unwrap()
        .basic_auth("bot+run-9", "tok-3f9a8b7c6d5e");
    let client = proxy.client_with(with_auth, &proxy.ca_pem, true);

    let response = client
        .post(format!(
            "https://localhost:{}/users/jane.roe/echo?api_key=sk-query-secret",
            origin.port()
        ))
        .header("authorization", "Bearer sk-header-secret")
        .body("card 4111 1111 1111 1111")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await.unwrap();

    let cut = client
        .get(format!("https://localhost:{}/sse", origin.port()))
        .send()
        .await
        .unwrap();
    let mut stream = cut.bytes_stream();
    let _first = stream.next().await.unwrap().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let records = captured.records();
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["fields"]["message"] == "request" && r["fields"]["execution"] == "run-9")
        .collect();
    let echo = requests
        .iter()
        .find(|r| r["fields"]["method"] == "POST")
        .unwrap_or_else(|| panic!("the POST is recorded: {}", captured.text()));
    assert_eq!(echo["fields"]["agent"], "bot");
    assert_eq!(echo["fields"]["execution"], "run-9");
    assert_eq!(echo["fields"]["status"], 200);
    assert_eq!(echo["fields"]["outcome"], "forwarded");
    assert_eq!(echo["fields"]["path"], "/users/*/*");
    assert_eq!(echo["fields"]["destination"], origin.addr.to_string());
    assert!(echo["fields"]["response_bytes"].as_u64().unwrap() > 0);

    let sse = requests
        .iter()
        .find(|r| r["fields"]["path"] == "/sse")
        .expect("the stream is recorded");
    assert_eq!(sse["fields"]["outcome"], "cut", "{sse}");
    assert!(
        sse["fields"]["reason"].as_str().unwrap().contains("idle"),
        "{sse}"
    );

    let connects: Vec<&Value> = records
        .iter()
        .filter(|r| r["fields"]["message"] == "connect" && r["fields"]["execution"] == "run-9")
        .collect();
    assert!(!connects.is_empty());
    assert!(
        connects
            .iter()
            .all(|c| c["fields"]["outcome"] == "intercept" && c["fields"]["agent"] == "bot")
    );

    let text = captured.text();
    for secret in [
        "tok-3f9a8b7c6d5e",
        "sk-query-secret",
        "sk-header-secret",
        "4111 1111 1111 1111",
        "jane.roe",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` must never reach the log"
        );
    }
}
