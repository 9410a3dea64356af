//! A real HTTPS (and plain HTTP) origin on loopback: echo, server-sent events, a slow answer and a
//! WebSocket echo.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::pki::TestPki;

type Body = BoxBody<Bytes, Infallible>;

/// A running origin.
pub struct Origin {
    pub addr: SocketAddr,
    /// Released by a test to let `/sse` send its last event.
    pub sse_release: Arc<Notify>,
    /// Notified when a `/slow` request has arrived.
    pub slow_started: Arc<Notify>,
    /// What `/mirror` and `/mirror-sse` received: path with query, and body.
    pub received: Arc<Mutex<Vec<(String, Bytes)>>>,
    /// Set to `true` by a test to let `/held/v1/messages` answer (it waits until then).
    pub gate: Arc<tokio::sync::watch::Sender<bool>>,
}

/// What the routes share with the test.
struct Shared {
    release: Arc<Notify>,
    started: Arc<Notify>,
    received: Arc<Mutex<Vec<(String, Bytes)>>>,
    gate: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Origin {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// HTTPS origin (h2 and HTTP/1.1 by ALPN) with the test PKI's certificate.
pub async fn start_tls(pki: &TestPki) -> Origin {
    start(Some(TlsAcceptor::from(pki.server_config.clone()))).await
}

/// HTTPS origin on another loopback address (`127.0.0.2`...), for tests that tell destinations
/// apart by address.
pub async fn start_tls_on(pki: &TestPki, ip: &str) -> Origin {
    start_on(Some(TlsAcceptor::from(pki.server_config.clone())), ip).await
}

/// Plain HTTP/1.1 origin.
pub async fn start_plain() -> Origin {
    start(None).await
}

async fn start(tls: Option<TlsAcceptor>) -> Origin {
    start_on(tls, "127.0.0.1").await
}

/// An origin (HTTPS with `pki`, or plain HTTP without) on a socket the test bound itself (in a
/// network namespace of its own, say).
pub async fn start_on_listener(pki: Option<&TestPki>, listener: std::net::TcpListener) -> Origin {
    listener.set_nonblocking(true).unwrap();
    let tls = pki.map(|pki| TlsAcceptor::from(pki.server_config.clone()));
    serve(tls, TcpListener::from_std(listener).unwrap())
}

async fn start_on(tls: Option<TlsAcceptor>, ip: &str) -> Origin {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    serve(tls, listener)
}

fn serve(tls: Option<TlsAcceptor>, listener: TcpListener) -> Origin {
    let addr = listener.local_addr().unwrap();
    let sse_release = Arc::new(Notify::new());
    let slow_started = Arc::new(Notify::new());
    let received = Arc::new(Mutex::new(Vec::new()));
    let gate = Arc::new(tokio::sync::watch::Sender::new(false));
    let shared = Arc::new(Shared {
        release: sse_release.clone(),
        started: slow_started.clone(),
        received: received.clone(),
        gate: gate.clone(),
    });
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tls = tls.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(route(req, shared).await) }
                });
                match tls {
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(stream).await else {
                            return;
                        };
                        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                        let io = TokioIo::new(stream);
                        if h2 {
                            let _ = http2::Builder::new(TokioExecutor::new())
                                .serve_connection(io, service)
                                .await;
                        } else {
                            let _ = http1::Builder::new()
                                .serve_connection(io, service)
                                .with_upgrades()
                                .await;
                        }
                    }
                    None => {
                        let io = TokioIo::new(stream);
                        let _ = http1::Builder::new()
                            .serve_connection(io, service)
                            .with_upgrades()
                            .await;
                    }
                }
            });
        }
    });
    Origin {
        addr,
        sse_release,
        slow_started,
        received,
        gate,
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into()).boxed()
}

async fn route(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Body> {
    // `/fx/<fixture>/<any provider path>`: a provider's recorded answer, whatever was asked.
    if let Some(rest) = req.uri().path().strip_prefix("/fx/") {
        let name = rest.split('/').next().unwrap_or_default().to_string();
        let content_type = if name.ends_with(".sse") {
            "text/event-stream"
        } else {
            "application/json"
        };
        let _ = req.into_body().collect().await;
        return fixture(&name, content_type);
    }
    match req.uri().path() {
        "/sse" => sse(shared.release.clone()),
        "/mirror" | "/mirror-sse" | "/v1/chat/completions" => mirror(req, &shared).await,
        "/v1/messages" => {
            keep(req, &shared).await;
            fixture("anthropic.json", "application/json")
        }
        "/held/v1/messages" => {
            keep(req, &shared).await;
            let mut open = shared.gate.subscribe();
            let _ = tokio::time::timeout(Duration::from_secs(20), open.wait_for(|o| *o)).await;
            fixture("anthropic.json", "application/json")
        }
        "/held/v1/chat/completions" => {
            keep(req, &shared).await;
            held_chat_stream(shared.gate.subscribe())
        }
        "/bench/v1/chat/completions" => {
            let _ = req.into_body().collect().await;
            let path = format!(
                "{}/tests/data/usage/openai_chat.json",
                env!("CARGO_MANIFEST_DIR")
            );
            let mut response = Response::new(full(std::fs::read(path).unwrap()));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            response
        }
        "/openai/v1/chat/completions" => openai_stream(req, &shared).await,
        "/token-sse" => token_stream(req, &shared).await,
        "/v1/responses" => fixture("openai_responses_stream.sse", "text/event-stream"),
        "/slow" => {
            shared.started.notify_one();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            Response::new(full("slow done"))
        }
        "/ws" => websocket(req),
        // What a brokered request carried: the key headers and query as the origin saw them,
        // kept as `KEYS <path>` with a JSON body; answered with the same JSON (an echo).
        path if path.starts_with("/keyed/") => keyed(req, &shared).await,
        // An Anthropic stream cut after `message_start`: the body ends without `message_stop`.
        "/cut/v1/messages" => {
            keep(req, &shared).await;
            let text = std::fs::read_to_string(format!(
                "{}/tests/data/usage/anthropic_stream.sse",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let first = text.find("\n\n").map(|i| i + 2).unwrap_or(text.len());
            event_stream(text[..first].to_string())
        }
        "/answer" => {
            let _ = req.into_body().collect().await;
            let mut response = Response::new(full(vec![b'x'; 1024]));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            response
        }
        _ => echo(req).await,
    }
}

/// Keeps what it received and answers with the same bytes: whole as JSON (`/mirror`), or as
/// server-sent events cut every 4 bytes, so a placeholder spans several frames (`/mirror-sse`).
/// `/v1/chat/completions` mirrors too, so a test can send an LLM call and read what arrived.
async fn mirror(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    shared.received.lock().unwrap().push((target, body.clone()));
    if parts.uri.path() != "/mirror-sse" {
        let mut response = Response::new(full(body));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        return response;
    }
    let event = [b"data: ".as_slice(), &body, b"\n\n"].concat();
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = event
        .chunks(4)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
        frames,
    ))));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
    response
}

/// A streamed chat completion as OpenAI sends it: the usage chunk only when the request asked for
/// it with `stream_options.include_usage`.
async fn openai_stream(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let body = keep(req, shared).await;
    let asked: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let path = format!(
        "{}/tests/data/usage/openai_chat_stream.sse",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let text = if asked["stream_options"]["include_usage"] == true {
        text
    } else {
        text.split("\n\n")
            .filter(|e| !e.contains("\"choices\":[],\"usage\""))
            .collect::<Vec<_>>()
            .join("\n\n")
    };
    event_stream(text)
}

/// Streams the first message's text back as OpenAI chat chunks of three characters each, the way
/// a model streams tokens: a placeholder arrives in pieces across events.
async fn token_stream(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let body = keep(req, shared).await;
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let text: Vec<char> = doc["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .collect();
    let mut events = String::new();
    for piece in text.chunks(3) {
        let token: String = piece.iter().collect();
        let chunk = serde_json::json!({"choices": [{"index": 0, "delta": {"content": token}}]});
        events.push_str(&format!("data: {chunk}\n\n"));
    }
    events.push_str("data: [DONE]\n\n");
    event_stream(events)
}

/// Keeps the credential headers and query of a request (`KEYS <path>`, JSON) and answers with
/// the same JSON.
async fn keyed(req: Request<Incoming>, shared: &Shared) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let _ = body.collect().await;
    let header = |name: &str| {
        parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let seen = serde_json::json!({
        "authorization": header("authorization"),
        "x-api-key": header("x-api-key"),
        "x-goog-api-key": header("x-goog-api-key"),
        "api-key": header("api-key"),
        "query": parts.uri.query(),
    });
    let bytes = Bytes::from(seen.to_string());
    shared
        .received
        .lock()
        .unwrap()
        .push((format!("KEYS {}", parts.uri.path()), bytes.clone()));
    let mut response = Response::new(full(bytes));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    response
}

/// Reads the body whole and keeps it (with the path) in what the origin received.
async fn keep(req: Request<Incoming>, shared: &Shared) -> Bytes {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    shared
        .received
        .lock()
        .unwrap()
        .push((parts.uri.path().to_string(), body.clone()));
    body
}

/// A `text/event-stream` answer of `events`.
fn event_stream(events: String) -> Response<Body> {
    let mut response = Response::new(full(events));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
    response
}

/// A provider's recorded answer from `tests/data/usage/`, sent in 16-byte frames.
fn fixture(name: &str, content_type: &'static str) -> Response<Body> {
    let path = format!("{}/tests/data/usage/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(path).unwrap();
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = bytes
        .chunks(16)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(futures_util::stream::iter(
        frames,
    ))));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type.parse().unwrap());
    response
}

/// Answers with what the origin saw: method, path, query, version, headers and body size.
async fn echo(req: Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let headers: BTreeMap<String, String> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let seen = serde_json::json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body_len": body.len(),
    });
    let mut response = Response::new(full(seen.to_string()));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    response
        .headers_mut()
        .insert("x-hop", "should-stay".parse().unwrap());
    response
        .headers_mut()
        .insert("connection", "x-origin-hop".parse().unwrap());
    response.headers_mut().insert(
        "x-origin-hop",
        "private to the origin's connection".parse().unwrap(),
    );
    response
}

/// One event now, the second only after the test releases it: a proxy that buffers would never
/// deliver the first.
fn sse(release: Arc<Notify>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let _ = tx
            .send(Ok(Frame::data(Bytes::from("data: first\n\n"))))
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(20), release.notified()).await;
        let _ = tx
            .send(Ok(Frame::data(Bytes::from("data: second\n\n"))))
            .await;
    });
    channel_stream(rx)
}

/// An OpenAI chat stream whose first chunk comes at once and whose end waits for the gate.
fn held_chat_stream(mut open: tokio::sync::watch::Receiver<bool>) -> Response<Body> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
    tokio::spawn(async move {
        let first = r#"data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"}}]}"#;
        let _ = tx
            .send(Ok(Frame::data(Bytes::from(format!("{first}\n\n")))))
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(20), open.wait_for(|o| *o)).await;
        let _ = tx
            .send(Ok(Frame::data(Bytes::from("data: [DONE]\n\n"))))
            .await;
    });
    channel_stream(rx)
}

fn websocket(mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        let mut response = Response::new(full("not a websocket request"));
        *response.status_mut() = StatusCode::BAD_REQUEST;
        return response;
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(full(""))
        .unwrap()
}

/// A `text/event-stream` response sending what arrives on `rx`.
fn channel_stream(
    rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, Infallible>>,
) -> Response<Body> {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
    response
}
