//! OpenTelemetry against a real OTLP/HTTP receiver (`tests/data/otlp/receiver.py`, decoding with
//! `opentelemetry-proto`): the GenAI and `gatehouse.*` attributes of LLM calls (streamed and not),
//! refusals with their effect and rule, `traceparent` continued and passed upstream (and what an
//! agent's `traceparent` may not do), no personal data or secret in anything exported, the GenAI
//! metrics over OTLP and on `/metrics`, a dead collector costing requests nothing, and
//! `OTEL_SDK_DISABLED=true` exporting nothing. The proxy runs as a child process: the `OTEL_*`
//! variables are its environment.

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

use crate::support::{ProxySpec, TestPki, connect_tunnel};

const POLICY: &str = "rules:
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
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// Personal data and secrets an agent sends in every place a request has; none may be exported.
const EMAIL: &str = "jane.roe.telemetry@example.com";
const CARD: &str = "4111 1111 1111 1111";
const HEADER_SECRET: &str = "ghp_R8x2Kq9LmZ4vT7wY1bN3cD5fG6hJ0kP2sQ4u";
const BEARER: &str = "sk-proj-Z9y8X7w6V5u4T3s2R1q0PpOoNnMmLlKk";
const QUERY_SECRET: &str = "qs-7f3a9c1e5b2d8f4a6c0e";
const MESSAGE: &str = "Summarise the quarterly numbers for Rosalind";

/// The receiver: a child process writing what it decodes to a file.
struct Receiver {
    _child: tokio::process::Child,
    port: u16,
    output: PathBuf,
}

impl Receiver {
    async fn start(dir: &std::path::Path) -> Receiver {
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

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything received so far, as decoded.
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.output)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Every span received so far, each with its resource's attributes under `resource`.
    fn spans(&self) -> Vec<Value> {
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
    fn metrics(&self) -> Vec<Value> {
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
    async fn spans_until(&self, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
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

fn as_array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A span's (or data point's) attribute as text: strings as they are, numbers in decimal,
/// arrays joined with `,`.
fn attr(item: &Value, key: &str) -> Option<String> {
    let found = as_array(&item["attributes"])
        .iter()
        .find(|a| a["key"] == key)?;
    Some(text(&found["value"]))
}

fn text(value: &Value) -> String {
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
fn hex_id(value: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.as_str().unwrap_or_default())
        .unwrap();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the origin saw of each request: its path, `traceparent` and `tracestate`.
type Seen = Arc<Mutex<Vec<(String, Option<String>, Option<String>)>>>;

/// An HTTPS origin answering OpenAI chat completions (JSON, or a stream when asked), recording
/// the trace headers each request arrived with.
async fn openai_origin(pki: &TestPki) -> (SocketAddr, Seen) {
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

type Body = BoxBody<Bytes, Infallible>;

async fn answer(req: Request<Incoming>, seen: &Seen) -> Response<Body> {
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
fn tokio_stream_of(
    rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|frame| (frame, rx))
    })
}

/// A proxy child process exporting as `env` says, an OpenAI-shaped origin, and clients.
struct Setup {
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
    pki: TestPki,
    proxy: SocketAddr,
    admin: SocketAddr,
    origin: SocketAddr,
    seen: Seen,
    client: reqwest::Client,
}

impl Setup {
    async fn start(env: &[(&str, String)]) -> Setup {
        Setup::relaying(env, &[]).await
    }

    /// As [`Setup::start`], relaying CONNECTs to `tunnel_hosts` without interception.
    async fn relaying(env: &[(&str, String)], tunnel_hosts: &[&str]) -> Setup {
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
    fn exporting_to(receiver: &Receiver) -> Vec<(&'static str, String)> {
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
    async fn chat(&self, stream: bool, traceparent: Option<&str>) -> (u16, String) {
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
    async fn prometheus(&self) -> String {
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
    fn seen(&self, n: usize) -> (Option<String>, Option<String>) {
        let seen = self.seen.lock().unwrap();
        let (_, traceparent, tracestate) = seen[n].clone();
        (traceparent, tracestate)
    }
}

/// `gatehouse run --config CONFIG` with `env` added to its environment; its address once it
/// listens.
async fn spawn_with_env(
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

fn chat_spans(spans: &[Value]) -> Vec<&Value> {
    spans
        .iter()
        .filter(|s| attr(s, "gen_ai.operation.name").as_deref() == Some("chat"))
        .collect()
}

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
        assert!(!a("gatehouse.cost.status").is_empty());
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
