//! What the telemetry tests run against: the OTLP/HTTP receiver (a Python child process), an
//! OpenAI-shaped HTTPS origin that records trace headers, and a proxy child process exporting as
//! the `OTEL_*` variables a test gives it say.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::support::{ProxySpec, TestPki};

pub(super) const POLICY: &str = "rules:
  - id: allow-connect
    trigger: connect
    effect: allow
  - id: deny-blocked
    trigger: connect
    match: { hosts: [blocked.test, '*.blocked.test'] }
    effect: deny
    message: this host is off limits
  - id: no-forbidden-path
    trigger: http.request
    match: { paths: ['/v1/forbidden'] }
    effect: deny
  - id: hold-held-path
    trigger: http.request
    match: { paths: ['/v1/held'] }
    effect: hold
  - id: allow-requests
    trigger: http.request
    effect: allow
    redact: { kinds: [email], style: mask }
  - id: allow-llm
    trigger: llm.request
    effect: allow
    redact: { kinds: [email], style: mask }
";

/// An agent's trace: its trace id and the span the proxy's span hangs under.
pub(super) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(super) const PARENT_ID: &str = "00f067aa0ba902b7";

/// Personal data and secrets an agent sends in every place a request has; none may be exported.
pub(super) const EMAIL: &str = "jane.roe.telemetry@example.com";
pub(super) const CARD: &str = "4111 1111 1111 1111";
pub(super) const HEADER_SECRET: &str = "ghp_R8x2Kq9LmZ4vT7wY1bN3cD5fG6hJ0kP2sQ4u";
pub(super) const BEARER: &str = "sk-proj-Z9y8X7w6V5u4T3s2R1q0PpOoNnMmLlKk";
pub(super) const QUERY_SECRET: &str = "qs-7f3a9c1e5b2d8f4a6c0e";
pub(super) const MESSAGE: &str = "Summarise the quarterly numbers for Rosalind";

/// The receiver: a child process writing what it decodes to a file.
pub(super) struct Receiver {
    _child: tokio::process::Child,
    port: u16,
    pub(super) output: PathBuf,
}

impl Receiver {
    pub(super) async fn start(dir: &std::path::Path) -> Receiver {
        let output = dir.join("otlp.jsonl");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/otlp/receiver.py");
        let mut child = tokio::process::Command::new(crate::support::python())
            .arg(script)
            .arg(&output)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the OTLP receiver starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver says its port")
            .unwrap()
            .expect("the receiver runs");
        let port = line.strip_prefix("port ").unwrap().parse().unwrap();
        Receiver {
            _child: child,
            port,
            output,
        }
    }

    pub(super) fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything received so far, as decoded.
    pub(super) fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every span received so far, each with its resource's attributes under `resource`.
    pub(super) fn spans(&self) -> Vec<Value> {
        let mut spans = Vec::new();
        for record in self.records().iter().filter(|r| r["path"] == "/v1/traces") {
            for resource in as_array(&record["body"]["resource_spans"]) {
                for scope in as_array(&resource["scope_spans"]) {
                    for span in as_array(&scope["spans"]) {
                        let mut span = span.clone();
                        span["resource"] = resource["resource"]["attributes"].clone();
                        spans.push(span);
                    }
                }
            }
        }
        spans
    }

    /// Every metric received so far.
    pub(super) fn metrics(&self) -> Vec<Value> {
        let mut metrics = Vec::new();
        for record in self.records().iter().filter(|r| r["path"] == "/v1/metrics") {
            for resource in as_array(&record["body"]["resource_metrics"]) {
                for scope in as_array(&resource["scope_metrics"]) {
                    metrics.extend(as_array(&scope["metrics"]).iter().cloned());
                }
            }
        }
        metrics
    }

    /// Waits (at most 15 s) until `done` holds for the spans received.
    pub(super) async fn spans_until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "spans never arrived; received: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

pub(super) fn as_array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A span's (or data point's) attribute as text: strings as they are, numbers in decimal,
/// arrays joined with `,`.
pub(super) fn attr(item: &Value, key: &str) -> Option<String> {
    let found = as_array(&item["attributes"])
        .iter()
        .find(|a| a["key"] == key)?;
    Some(text(&found["value"]))
}

pub(super) fn text(value: &Value) -> String {
    if let Some(s) = value["string_value"].as_str() {
        return s.to_string();
    }
    if let Some(i) = value["int_value"].as_str() {
        return i.to_string();
    }
    if let Some(d) = value["double_value"].as_f64() {
        return d.to_string();
    }
    if let Some(b) = value["bool_value"].as_bool() {
        return b.to_string();
    }
    as_array(&value["array_value"]["values"])
        .iter()
        .map(text)
        .collect::<Vec<_>>()
        .join(",")
}

/// An id as hex (the receiver's JSON has bytes in base64).
pub(super) fn hex_id(value: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the origin saw of each request: its path, `traceparent` and `tracestate`.
pub(super) type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

/// An HTTPS origin answering OpenAI chat completions (JSON, or a stream when asked), recording
/// the trace headers each request arrived with.
pub(super) async fn openai_origin(pki: &TestPki) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let acceptor = TlsAcceptor::from(pki.server_config.clone());
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let service = service_fn(move |req| {
                    let record = record.clone();
                    async move { Ok::<_, Infallible>(answer(req, &record).await) }
                });
                let io = TokioIo::new(stream);
                if h2 {
                    let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(io, service).await;
                } else {
                    let builder = hyper::server::conn::http1::Builder::new();
                    let _ = builder.serve_connection(io, service).await;
                }
            });
        }
    });
    (addr, seen)
}

pub(super) type Body = BoxBody<Bytes, Infallible>;

pub(super) async fn answer(req: Request<Incoming>, seen: &Seen) -> Response<Body> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let entry = (
        req.uri().path().to_string(),
        header("traceparent"),
        header("tracestate"),
    );
    seen.lock().unwrap().push(entry);
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let call: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = "gpt-4o-mini-2024-07-18";
    let usage = json!({"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17});
    if call["stream"] != true {
        let answer = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"},
                         "finish_reason": "stop"}],
            "usage": usage,
        });
        return Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(answer.to_string())).boxed())
            .unwrap();
    }
    let chunk = |delta: Value, finish: Value| {
        let event = json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {event}\n\n")
    };
    let mut events = vec![
        chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
        chunk(json!({"content": "lo"}), Value::Null),
        chunk(json!({}), json!("length")),
    ];
    let last = json!({"id": "chatcmpl-2", "object": "chat.completion.chunk", "model": model,
                      "choices": [], "usage": usage});
    events.push(format!("data: {last}\n\n"));
    events.push("data: [DONE]\n\n".to_string());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(8);
    tokio::spawn(async move {
        for event in events {
            tokio::time::sleep(Duration::from_millis(30)).await;
            if tx.send(Ok(Frame::data(Bytes::from(event)))).await.is_err() {
                return;
            }
        }
    });
    let stream = tokio_stream_of(rx);
    Response::builder()
        .header("content-type", "text/event-stream")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap()
}

/// The receiving end of `rx` as a stream of frames.
pub(super) fn tokio_stream_of(
    rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    })
}

/// A proxy child process exporting as `env` says, an OpenAI-shaped origin, and clients.
pub(super) struct Setup {
    pub(super) dir: tempfile::TempDir,
    _child: tokio::process::Child,
    pub(super) pki: TestPki,
    pub(super) proxy: SocketAddr,
    pub(super) admin: SocketAddr,
    pub(super) origin: SocketAddr,
    pub(super) seen: Seen,
    pub(super) client: reqwest::Client,
}

impl Setup {
    pub(super) async fn start(env: &[(&str, String)]) -> Setup {
        Setup::relaying(env, &[]).await
    }

    /// As [`Setup::start`], relaying CONNECTs to `tunnel_hosts` without interception.
    pub(super) async fn relaying(env: &[(&str, String)], tunnel_hosts: &[&str]) -> Setup {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = TestPki::new();
        let (origin, seen) = openai_origin(&pki).await;
        let dir = tempfile::tempdir().unwrap();
        let admin = {
            let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            free.local_addr().unwrap()
        };
        let spec = ProxySpec {
            policy: POLICY.into(),
            tunnel_hosts: tunnel_hosts.iter().map(|h| h.to_string()).collect(),
            extra: format!("admin:\n  listen: {admin}\n"),
            ..Default::default()
        };
        let mut yaml = spec.yaml(&pki, &dir.path().join("certs"), "127.0.0.1:0");
        yaml.push_str("log:\n  format: json\n");
        let config = dir.path().join("gatehouse.yaml");
        std::fs::write(&config, yaml).unwrap();
        let (child, proxy) = spawn_with_env(&config, env).await;
        let ca = std::fs::read_to_string(dir.path().join("certs/gatehouse-ca.pem")).unwrap();
        let client = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://{proxy}")).unwrap())
            .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()])
            .http1_only()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Setup {
            dir,
            _child: child,
            pki,
            proxy,
            admin,
            origin,
            seen,
            client,
        }
    }

    /// The `OTEL_*` variables of a proxy exporting to `receiver`, quickly.
    pub(super) fn exporting_to(receiver: &Receiver) -> Vec<(&'static str, String)> {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL", "300".into()),
            ("OTEL_SERVICE_NAME", "gatehouse-under-test".into()),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=test".into(),
            ),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "authorization=Bearer collector-key".into(),
            ),
        ]
    }

    /// An OpenAI chat completion through the proxy, `stream`ed or not, with `traceparent` when
    /// given; the answer's status and body.
    pub(super) async fn chat(&self, stream: bool, traceparent: Option<&str>) -> (u16, String) {
        let body = json!({"model": "gpt-4o-mini", "stream": stream, "max_tokens": 20,
                          "messages": [{"role": "user", "content": format!("{MESSAGE}, mail {EMAIL}")}]});
        let mut request = self
            .client
            .post(format!(
                "https://localhost:{}/v1/chat/completions",
                self.origin.port()
            ))
            .json(&body);
        if let Some(traceparent) = traceparent {
            request = request.header("traceparent", traceparent);
        }
        let answer = request.send().await.expect("the proxy answers");
        let status = answer.status().as_u16();
        (status, answer.text().await.unwrap())
    }

    /// The admin listener's `/metrics`.
    pub(super) async fn prometheus(&self) -> String {
        let token = std::fs::read_to_string(self.dir.path().join("certs/admin-token")).unwrap();
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let answer = client
            .get(format!("http://{}/metrics", self.admin))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.text().await.unwrap()
    }

    /// The trace headers the origin saw on its `n`-th request.
    pub(super) fn seen(&self, n: usize) -> (Option<String>, Option<String>) {
        let seen = self.seen.lock().unwrap();
        let (_, traceparent, tracestate) = seen[n].clone();
        (traceparent, tracestate)
    }
}

/// `gatehouse run --config CONFIG` with `env` added to its environment; its address once it
/// listens.
pub(super) async fn spawn_with_env(
    config: &std::path::Path,
    env: &[(&str, String)],
) -> (tokio::process::Child, SocketAddr) {
    let mut command = tokio::process::Command::new(crate::support::binary());
    command
        .args(["run", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("proxy logs its address")
            .unwrap()
            .expect("proxy is running");
        if line.contains("gatehouse listening") {
            let record: Value = serde_json::from_str(&line).unwrap();
            break record["fields"]["addr"].as_str().unwrap().parse().unwrap();
        }
    };
    // The rest of the log is read (and dropped) so the proxy never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, addr)
}

pub(super) fn chat_spans(spans: &[Value]) -> Vec<&Value> {
    spans
        .iter()
        .filter(|s| attr(s, "gen_ai.operation.name").as_deref() == Some("chat"))
        .collect()
}
