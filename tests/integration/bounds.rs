//! Bounded resources: one agent must not take the proxy down for the others. Buffered body bytes
//! (global and per agent) over HTTP/2 streams framed by Python's `h2`, stalled bodies, the lists
//! conditions iterate. Sockets (connections per agent, idle tunnels, the admin listener) are in
//! `bounded_sockets`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::{ProxySpec, TestPki, TestProxy, origin, python};

const MIB: usize = 1024 * 1024;

/// One agent's HTTP/2 connection through the proxy: `streams` POSTs to `/mirror`, each declaring
/// a body of `length` bytes and sending none yet. Prints the answers that come without the body
/// (`{"early": {status: count}, "retry_after": [...], "max_streams": n}`) once `expect_early` arrived, waits for a
/// line on stdin, then sends the bodies of the streams still open and prints their answers
/// (`{"late": {status: count}}`).
const H2_FLOOD: &str = r#"
import base64, json, socket, ssl, sys, time
import h2.config, h2.connection, h2.events, h2.settings

proxy, target, auth, ca, streams, length, expect_early = sys.argv[1:8]
streams, length, expect_early = int(streams), int(length), int(expect_early)
host, port = proxy.rsplit(":", 1)
raw = socket.create_connection((host, int(port)), timeout=20)
token = base64.b64encode(auth.encode()).decode()
raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Basic {token}\r\n\r\n".encode())
head = b""
while b"\r\n\r\n" not in head:
    head += raw.recv(1)
assert head.startswith(b"HTTP/1.1 200"), head
context = ssl.create_default_context(cafile=ca)
context.set_alpn_protocols(["h2"])
sock = context.wrap_socket(raw, server_hostname=target.rsplit(":", 1)[0])
assert sock.selected_alpn_protocol() == "h2"
conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
conn.initiate_connection()
conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 2**31 - 1})
conn.increment_flow_control_window(2**30)
sock.sendall(conn.data_to_send())
status, retry_after, ended = {}, [], set()

def pump(timeout=20):
    sock.settimeout(timeout)
    data = sock.recv(1 << 20)
    if not data:
        raise SystemExit("connection closed")
    for event in conn.receive_data(data):
        if isinstance(event, h2.events.ResponseReceived):
            headers = dict(event.headers)
            status[event.stream_id] = int(headers[b":status"])
            if b"retry-after" in headers:
                retry_after.append(headers[b"retry-after"].decode())
        elif isinstance(event, h2.events.DataReceived):
            conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
            ended.add(event.stream_id)
    sock.sendall(conn.data_to_send())

ids = []
for _ in range(streams):
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/mirror"), (":scheme", "https"),
        (":authority", target), ("content-type", "application/octet-stream"),
        ("content-length", str(length))])
    ids.append(sid)
sock.sendall(conn.data_to_send())
deadline = time.time() + 20
while len(status) < expect_early and time.time() < deadline:
    pump()
def counts(sids):
    out = {}
    for sid in sids:
        out[str(status.get(sid, 0))] = out.get(str(status.get(sid, 0)), 0) + 1
    return out
early = [sid for sid in ids if sid in status]
print(json.dumps({"early": counts(early), "retry_after": retry_after,
    "max_streams": conn.remote_settings.max_concurrent_streams}), flush=True)
sys.stdin.readline()
pending = [sid for sid in ids if sid not in status]
body = b"x" * length
for sid in pending:
    sent = 0
    while sent < length:
        window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, length - sent)
        if window <= 0:
            pump()
            continue
        conn.send_data(sid, body[sent:sent + window], end_stream=sent + window == length)
        sent += window
        sock.sendall(conn.data_to_send())
deadline = time.time() + 20
while not all(sid in ended and sid in status for sid in pending) and time.time() < deadline:
    pump()
print(json.dumps({"late": counts(pending)}), flush=True)
"#;

/// A running [`H2_FLOOD`].
struct Flood {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Flood {
    async fn start(
        proxy: &TestProxy,
        target: &str,
        auth: &str,
        (streams, length, expect_early): (usize, usize, usize),
    ) -> (Flood, serde_json::Value) {
        let ca = proxy.dir.path().join("certs/gatehouse-ca.pem");
        let mut child = tokio::process::Command::new(python())
            .args(["-c", H2_FLOOD, &proxy.addr.to_string(), target, auth])
            .arg(ca)
            .args([
                streams.to_string(),
                length.to_string(),
                expect_early.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut flood = Flood {
            child,
            lines: BufReader::new(stdout).lines(),
        };
        let early = flood.report().await;
        (flood, early)
    }

    async fn report(&mut self) -> serde_json::Value {
        let line = tokio::time::timeout(Duration::from_secs(40), self.lines.next_line())
            .await
            .expect("the h2 client reports in time")
            .unwrap()
            .expect("the h2 client printed its report (see its stderr)");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends the held bodies and reads their answers.
    async fn finish(mut self) -> serde_json::Value {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"go\n").await.unwrap();
        stdin.flush().await.unwrap();
        let late = self.report().await;
        let _ = self.child.wait().await;
        late
    }
}

fn token_agents(names: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap().keep();
    let mut identity = String::from("identity:\n  allow_anonymous: true\n  agents:\n");
    for name in names {
        let file = dir.join(format!("{name}.token"));
        std::fs::write(&file, format!("{name}-token\n")).unwrap();
        identity.push_str(&format!(
            "    - id: {name}\n      token_file: {}\n",
            file.display()
        ));
    }
    identity
}

/// An anonymous agent's small POST through the proxy.
async fn small_post(proxy: &TestProxy, url: &str) -> reqwest::Response {
    proxy
        .client(false)
        .post(url)
        .body(vec![b'y'; 1024])
        .send()
        .await
        .expect("the proxy answers")
}

#[tokio::test]
async fn h2_streams_past_an_agents_buffer_budget_get_429_while_another_agent_is_served() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        identity: token_agents(&["flood"]),
        limits: format!(
            "limits:\n  max_request_body_bytes: {MIB}\n  max_buffered_bytes_per_agent: {}\n  \
             max_buffered_bytes: {}\n  max_concurrent_streams: 64\n",
            4 * MIB,
            64 * MIB
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    // 20 streams of 1 MiB on one connection: the agent's 4 MiB admit four, the rest are refused
    // before a byte of their bodies is buffered.
    let (flood, early) = Flood::start(&proxy, &target, "flood:flood-token", (20, MIB, 16)).await;
    assert_eq!(early["early"], serde_json::json!({"429": 16}), "{early}");
    let retry_after = early["retry_after"].as_array().unwrap();
    assert_eq!(retry_after.len(), 16);
    assert!(retry_after.iter().all(|r| r == "1"), "{early}");
    assert_eq!(
        early["max_streams"], 64,
        "limits.max_concurrent_streams is announced"
    );
    // While the flooding agent holds its whole share, another agent is served.
    let url = format!("https://{target}/mirror");
    let response = small_post(&proxy, &url).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().len(), 1024);
    // The four admitted streams complete once their bodies come.
    let late = flood.finish().await;
    assert_eq!(late["late"], serde_json::json!({"200": 4}), "{late}");
}

#[tokio::test]
async fn over_the_global_buffer_budget_everyone_gets_503_until_bytes_are_released() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        identity: token_agents(&["flood", "flood2"]),
        limits: format!(
            "limits:\n  max_request_body_bytes: {MIB}\n  max_buffered_bytes_per_agent: {}\n  \
             max_buffered_bytes: {}\n",
            4 * MIB,
            5 * MIB
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let target = format!("localhost:{}", origin.port());
    let (first, early) = Flood::start(&proxy, &target, "flood:flood-token", (6, MIB, 2)).await;
    assert_eq!(early["early"], serde_json::json!({"429": 2}), "{early}");
    // The second agent is within its own share, but only 1 MiB is left for everyone.
    let (second, early) = Flood::start(&proxy, &target, "flood2:flood2-token", (3, MIB, 2)).await;
    assert_eq!(early["early"], serde_json::json!({"503": 2}), "{early}");
    let url = format!("https://{target}/mirror");
    let refused = small_post(&proxy, &url).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let text = refused.text().await.unwrap();
    assert!(text.contains("limits.max_buffered_bytes"), "{text}");
    // A GET buffers nothing and passes.
    let get = proxy.get(format!("https://{target}/answer")).await;
    assert_eq!(get.status(), 200);
    assert_eq!(first.finish().await["late"], serde_json::json!({"200": 4}));
    assert_eq!(second.finish().await["late"], serde_json::json!({"200": 1}));
    // Released: the others are served again.
    assert_eq!(small_post(&proxy, &url).await.status(), 200);
}

const LIST_POLICY: &str = r#"rules:
  - id: allow-connect
    trigger: connect
    effect: allow
  - id: allow-requests
    trigger: http.request
    effect: allow
  - id: allow-llm
    trigger: llm.request
    effect: allow
  - id: no-forbidden
    trigger: llm.request
    when: "llm.messages.exists(m, m.matches('forbidden-[0-9]+'))"
    effect: deny
  - id: long-talk
    trigger: llm.request
    when: "llm.message_count > 5000"
    effect: deny
"#;

#[tokio::test]
async fn long_lists_are_bounded_for_conditions_without_hiding_anything() {
    let (_pki, origin, proxy) = TestProxy::with_origin(LIST_POLICY).await;
    let url = format!("https://localhost:{}/v1/chat/completions", origin.port());
    let call = |messages: usize, last: &str, tools: usize| {
        let mut turns: Vec<serde_json::Value> = (0..messages)
            .map(|i| serde_json::json!({"role": "user", "content": format!("turn {i}")}))
            .collect();
        turns.push(serde_json::json!({"role": "user", "content": last}));
        let tools: Vec<serde_json::Value> = (0..tools)
            .map(|i| serde_json::json!({"type": "function", "function": {"name": format!("t{i}")}}))
            .collect();
        serde_json::json!({"model": "gpt-4o", "messages": turns, "tools": tools})
    };
    let client = proxy.client(true);
    let send = |body: serde_json::Value| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let response = client.post(url).json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    // Past the listed messages, the texts are joined into the last element: still seen.
    let (status, text) = send(call(1000, "say forbidden-42", 0)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("no-forbidden"), "{text}");
    let (status, text) = send(call(1000, "fine", 0)).await;
    assert_eq!(status, 200, "{text}");
    // The real count is a fact of its own.
    let (status, text) = send(call(6000, "fine", 0)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("long-talk"), "{text}");
    // More tools than conditions may iterate: not judged, so not forwarded.
    let (status, text) = send(call(1, "fine", 300)).await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("more than 256 tools"), "{text}");
    // A `stream` a loose server could read as true would stream while rules read `llm.stream`
    // as false: refused, whichever loose type it has.
    for loose in [
        serde_json::json!(1),
        serde_json::json!("true"),
        serde_json::json!({}),
    ] {
        let mut body = call(1, "fine", 0);
        body["stream"] = loose;
        let (status, text) = send(body).await;
        assert_eq!(status, 403, "{text}");
        assert!(text.contains("`stream` is not true or false"), "{text}");
    }
    let mut body = call(1, "fine", 0);
    body["stream"] = serde_json::Value::Null;
    assert_eq!(send(body).await.0, 200);
}

#[tokio::test]
async fn a_stalled_body_times_out_with_408_and_gives_its_reservation_back() {
    let pki = TestPki::new();
    let origin = origin::start_plain().await;
    let spec = ProxySpec {
        limits: format!(
            "limits:\n  max_request_body_bytes: {MIB}\n  max_buffered_bytes_per_agent: {MIB}\n  \
             client_body_timeout: 700ms\n"
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let url = format!("http://127.0.0.1:{}/mirror", origin.port());
    // Declares 1 MiB, sends ten bytes, then nothing.
    let mut staller = TcpStream::connect(proxy.addr).await.unwrap();
    let head = format!(
        "POST {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {MIB}\r\n\r\n0123456789"
    );
    staller.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The agent's whole share is reserved for the stalled body.
    let refused = small_post(&proxy, &url).await;
    assert_eq!(refused.status(), 429);
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), staller.read(&mut answer))
        .await
        .expect("the stalled request is answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("limits.client_body_timeout"), "{answer}");
    assert_eq!(small_post(&proxy, &url).await.status(), 200);
}

#[tokio::test]
async fn a_json_body_is_held_in_the_buffer_budget_as_the_proxy_holds_it_parsed() {
    let pki = TestPki::new();
    let origin = origin::start_tls(&pki).await;
    let spec = ProxySpec {
        limits: format!(
            "limits:\n  max_request_body_bytes: {MIB}\n  max_buffered_bytes_per_agent: {}\n  \
             max_buffered_bytes: {}\n",
            4 * MIB,
            64 * MIB
        ),
        ..Default::default()
    };
    let proxy = TestProxy::start(&pki, spec).await;
    let url = format!("https://localhost:{}/mirror", origin.port());
    let post = |body: String| {
        proxy
            .client(false)
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    // Under 1 MiB sent, but parsed a value of some 16 MiB, held as long as the request is.
    let dense = format!("{{\"a\": [{}0]}}", "0,".repeat(MIB / 2 - 16));
    let refused = post(dense).await.expect("the proxy answers");
    assert_eq!(refused.status(), 429);
    let text = refused.text().await.unwrap();
    assert!(
        text.contains("limits.max_buffered_bytes_per_agent"),
        "{text}"
    );
    // A body of the same size that parses into about as much is served.
    let plain = format!("{{\"a\": \"{}\"}}", "y".repeat(MIB - 16));
    let served = post(plain).await.expect("the proxy answers");
    assert_eq!(served.status(), 200);
}
