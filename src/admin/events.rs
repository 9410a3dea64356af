//! `GET /api/events`: server-sent events that push the dashboard what changes — each new decision,
//! each approval held or decided (`approval`), spend after a charge (`spend`) — so it never polls.
//!
//! One hub task turns what the audit trail writes and what the store signals into SSE frames,
//! rendered once and broadcast to every client through a bounded channel. Nothing here can block
//! the proxy: the trail's feed and the hub's channel drop the oldest items for a client that
//! falls behind, and that client is sent `resync` (reload everything). Clients are capped
//! ([`MAX_CLIENTS`]), get a heartbeat comment every [`HEARTBEAT`], and their streams end when
//! shutdown starts.
//!
//! Authentication: the bearer token like the rest of the API, or — because a browser's
//! `EventSource` cannot send headers — a ticket from `POST /api/events/ticket` (bearer token
//! required) in the query: random, single use, valid for [`TICKET_TTL`]. The admin token itself
//! never goes into a URL.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use super::AdminState;
use crate::audit::Written;
use crate::budget::Window;
use crate::store::{ApprovalStatus, SpendBy};

/// Concurrent event streams; more are refused with 503.
pub const MAX_CLIENTS: usize = 16;
/// Frames kept for the slowest client before it must resync.
const BUFFERED_FRAMES: usize = 256;
/// The largest frame sent; a bigger approval or spend report is announced without its data (the
/// dashboard fetches it), so the buffered frames stay bounded in bytes too.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// A comment line this often keeps proxies and browsers from closing an idle stream.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// How long a ticket can be redeemed.
const TICKET_TTL: Duration = Duration::from_secs(30);
/// Tickets outstanding at once; older ones are dropped first.
const MAX_TICKETS: usize = 64;
/// Changes are gathered this long before the store is asked (a burst of charges is one report).
const COALESCE: Duration = Duration::from_millis(250);
/// Pending approvals are also compared this often, for holds made by other proxies sharing the
/// store (PostgreSQL), which this process is not signalled about.
const RECHECK: Duration = Duration::from_secs(5);
/// Pending approvals a frame lists at most (the approvals API's default page).
const PENDING_LIMIT: i64 = 100;

type Body = BoxBody<Bytes, Infallible>;

/// The event streams' shared parts: the broadcast of frames, the client slots, the tickets.
pub struct Events {
    frames: broadcast::Sender<Arc<str>>,
    clients: Arc<Semaphore>,
    tickets: Mutex<HashMap<String, Instant>>,
    /// Tells the hub a client came (it watches the audit trail only while someone listens).
    arrived: Arc<Notify>,
}

impl Events {
    /// Starts the hub for `state`; it stops when `shutdown` is cancelled.
    pub fn start(state: Arc<AdminState>, shutdown: CancellationToken) -> Arc<Events> {
        let frames = broadcast::channel(BUFFERED_FRAMES).0;
        let arrived = Arc::new(Notify::new());
        tokio::spawn(hub(state, frames.clone(), arrived.clone(), shutdown));
        Arc::new(Events {
            frames,
            clients: Arc::new(Semaphore::new(MAX_CLIENTS)),
            tickets: Mutex::new(HashMap::new()),
            arrived,
        })
    }

    /// `POST /api/events/ticket` (the caller holds the bearer token): a single-use ticket.
    pub fn ticket(&self) -> Result<Value, (StatusCode, String)> {
        let ticket = crate::random::random_hex(16).map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "no randomness".to_string(),
            )
        })?;
        let mut tickets = self.tickets.lock().map_err(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "ticket table poisoned".to_string(),
            )
        })?;
        tickets.retain(|_, issued| issued.elapsed() < TICKET_TTL);
        if tickets.len() >= MAX_TICKETS
            && let Some(oldest) = tickets
                .iter()
                .min_by_key(|(_, at)| **at)
                .map(|(t, _)| t.clone())
        {
            tickets.remove(&oldest);
        }
        tickets.insert(ticket.clone(), Instant::now());
        Ok(json!({"ticket": ticket, "expires_in": TICKET_TTL.as_secs()}))
    }

    /// Whether `query` carries a live ticket; it is used up either way.
    fn redeem(&self, query: &str) -> bool {
        let Some(ticket) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "ticket")
            .map(|(_, v)| v.into_owned())
        else {
            return false;
        };
        let Ok(mut tickets) = self.tickets.lock() else {
            return false;
        };
        tickets
            .remove(&ticket)
            .is_some_and(|issued| issued.elapsed() < TICKET_TTL)
    }

    /// `GET /api/events`: the stream, for a caller with the bearer token (`bearer`) or a ticket in
    /// `query`; it ends when `shutdown` is cancelled.
    pub fn stream(&self, bearer: bool, query: &str, shutdown: CancellationToken) -> Response<Body> {
        if !bearer && !self.redeem(query) {
            return refused(
                StatusCode::UNAUTHORIZED,
                "a valid bearer token or events ticket is required",
            );
        }
        let Ok(slot) = self.clients.clone().try_acquire_owned() else {
            return refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many event streams are open",
            );
        };
        self.arrived.notify_one();
        let client = Client {
            frames: self.frames.subscribe(),
            shutdown,
            first: true,
            _slot: slot,
        };
        let stream = futures_util::stream::unfold(client, |mut client| async move {
            let frame = client.next().await?;
            Some((Ok::<_, Infallible>(Frame::data(frame)), client))
        });
        let mut response = Response::new(StreamBody::new(stream).boxed());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    }
}

/// One open stream: its place in the broadcast and its slot.
struct Client {
    frames: broadcast::Receiver<Arc<str>>,
    shutdown: CancellationToken,
    first: bool,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Client {
    /// The next bytes to send: `ready` first (the page loads its state then, so nothing between
    /// its load and its subscription is missed), then frames, heartbeats, and `resync` after a
    /// lag; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if std::mem::take(&mut self.first) {
            return Some(Bytes::from(frame("ready", &json!({})).to_string()));
        }
        // Shutdown first: otherwise frames still queued could win the draw again and again.
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => None,
            () = tokio::time::sleep(HEARTBEAT) => Some(Bytes::from_static(b": heartbeat\n\n")),
            received = self.frames.recv() => match received {
                Ok(frame) => Some(Bytes::copy_from_slice(frame.as_bytes())),
                Err(RecvError::Lagged(missed)) => {
                    Some(Bytes::from(frame("resync", &json!({"missed": missed})).to_string()))
                }
                Err(RecvError::Closed) => None,
            },
        }
    }
}

fn refused(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = Response::new(
        http_body_util::Full::new(Bytes::from(json!({"error": message}).to_string())).boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

/// An SSE frame: `event: <name>` and the JSON as one `data:` line (JSON text has no raw line
/// breaks, so it cannot end the frame or start another).
fn frame(name: &str, data: &Value) -> Arc<str> {
    Arc::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// `data` as an SSE frame, or `stub` when it is larger than [`MAX_FRAME_BYTES`].
fn bounded(name: &str, data: &Value, stub: &Value) -> Arc<str> {
    let full = frame(name, data);
    match full.len() <= MAX_FRAME_BYTES {
        true => full,
        false => frame(name, stub),
    }
}

/// Turns what the trail writes and the store signals into frames, until shutdown. It watches the
/// trail only while a client listens, so the proxy builds nothing for a feed nobody reads.
async fn hub(
    state: Arc<AdminState>,
    frames: broadcast::Sender<Arc<str>>,
    arrived: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let store = state.ledger.store();
    let mut written: Option<broadcast::Receiver<Written>> = None;
    let mut changes = store.changes();
    let mut holds = store.holds();
    let mut recheck = tokio::time::interval(RECHECK);
    // Ticks missed while nobody listened are not made up in a burst.
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: Option<BTreeMap<String, Value>> = None;
    let (mut approvals_due, mut spend_due) = (false, false);
    let mut flush_at = tokio::time::Instant::now();
    loop {
        let listened = frames.receiver_count() > 0;
        if !listened {
            // Nobody watches: nothing to compare against when someone does.
            (written, pending) = (None, None);
        } else if written.is_none() {
            written = Some(state.audit.watch());
        }
        let due = approvals_due || spend_due;
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = arrived.notified() => approvals_due = true,
            item = next_written(&mut written) => match item {
                Ok(Written::Decision(shown)) => {
                    let _ = frames.send(frame("decision", &shown));
                }
                Ok(Written::Charged) => spend_due = true,
                Err(RecvError::Lagged(missed)) => {
                    let _ = frames.send(frame("resync", &json!({"missed": missed})));
                }
                Err(RecvError::Closed) => return,
            },
            Ok(()) = changes.changed() => approvals_due = true,
            Ok(()) = holds.changed() => approvals_due = true,
            _ = recheck.tick(), if listened => approvals_due = true,
            () = tokio::time::sleep_until(flush_at), if due => {
                if listened {
                    if approvals_due {
                        approvals(&state, &frames, &mut pending).await;
                    }
                    if spend_due {
                        spend(&state, &frames).await;
                    }
                }
                (approvals_due, spend_due) = (false, false);
                continue;
            },
        }
        if !due && (approvals_due || spend_due) {
            flush_at = tokio::time::Instant::now() + COALESCE;
        }
    }
}

/// The next item of the trail's feed, or never while it is not watched.
async fn next_written(
    written: &mut Option<broadcast::Receiver<Written>>,
) -> Result<Written, RecvError> {
    match written {
        Some(written) => written.recv().await,
        None => std::future::pending().await,
    }
}

/// Compares the pending approvals with the last look: each new one is sent whole (`held`), each
/// one gone with how it ended (approved, denied, expired, used).
async fn approvals(
    state: &AdminState,
    frames: &broadcast::Sender<Arc<str>>,
    last: &mut Option<BTreeMap<String, Value>>,
) {
    let store = state.ledger.store();
    let now = match store
        .approvals(ApprovalStatus::Pending, PENDING_LIMIT)
        .await
    {
        Ok(list) => list,
        Err(e) => {
            tracing::warn!(error = %e, "event stream: pending approvals unreadable");
            return;
        }
    };
    let now: BTreeMap<String, Value> = now
        .iter()
        .map(|a| {
            let mut item = serde_json::to_value(a).unwrap_or(Value::Null);
            item["summary"] = serde_json::from_str(&a.summary).unwrap_or(Value::Null);
            (a.id.clone(), item)
        })
        .collect();
    // After nobody watched, every pending approval is news (the page upserts by id).
    let before = last.take().unwrap_or_default();
    for (id, item) in now.iter().filter(|(id, _)| !before.contains_key(*id)) {
        let stub = json!({"id": id, "status": "pending", "too_large": true});
        let _ = frames.send(bounded("approval", item, &stub));
    }
    for id in before.keys().filter(|id| !now.contains_key(*id)) {
        let ended = match store.approval(id).await {
            Ok(Some(a)) => json!({
                "id": a.id, "status": a.status.name(), "reviewer": a.reviewer,
                "reason": a.reason, "agent": a.agent,
            }),
            _ => json!({"id": id, "status": "gone"}),
        };
        let _ = frames.send(frame("approval", &ended));
    }
    *last = Some(now);
}

/// Today's spend grouped each way the dashboard offers, in one frame.
async fn spend(state: &AdminState, frames: &broadcast::Sender<Arc<str>>) {
    let mut reports = serde_json::Map::new();
    for (name, by) in [
        ("agent", SpendBy::Agent),
        ("team", SpendBy::Team),
        ("model", SpendBy::Model),
    ] {
        let report = crate::budget::spend_report(
            state.ledger.budgets(),
            state.ledger.store(),
            by,
            Window::Day,
        )
        .await;
        match report.map(|r| serde_json::to_value(r).unwrap_or(Value::Null)) {
            Ok(report) => reports.insert(name.to_string(), report),
            Err(e) => {
                tracing::warn!(error = %e, "event stream: spend unreadable");
                return;
            }
        };
    }
    let _ = frames.send(bounded(
        "spend",
        &Value::Object(reports),
        &json!({"too_large": true}),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Events {
        Events {
            frames: broadcast::channel(4).0,
            clients: Arc::new(Semaphore::new(1)),
            tickets: Mutex::new(HashMap::new()),
            arrived: Arc::new(Notify::new()),
        }
    }

    #[test]
    fn a_ticket_is_good_once_and_only_for_its_own_value() {
        let events = events();
        let ticket = events.ticket().unwrap()["ticket"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(ticket.len(), 32);
        assert!(!events.redeem("ticket=0123"));
        assert!(!events.redeem(""));
        assert!(events.redeem(&format!("ticket={ticket}")));
        assert!(!events.redeem(&format!("ticket={ticket}")), "used once");
    }

    #[test]
    fn outstanding_tickets_are_bounded() {
        let events = events();
        for _ in 0..MAX_TICKETS * 3 {
            events.ticket().unwrap();
        }
        assert!(events.tickets.lock().unwrap().len() <= MAX_TICKETS);
    }

    #[tokio::test]
    async fn a_client_that_fell_behind_is_told_to_resync_and_then_follows_again() {
        let (frames, receiver) = broadcast::channel(4);
        let mut client = Client {
            frames: receiver,
            shutdown: CancellationToken::new(),
            first: true,
            _slot: Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
        };
        for n in 0..10 {
            frames.send(frame("decision", &json!({"n": n}))).unwrap();
        }
        let ready = client.next().await.unwrap();
        assert!(ready.starts_with(b"event: ready\n"));
        let resync = client.next().await.unwrap();
        assert_eq!(&resync[..], b"event: resync\ndata: {\"missed\":6}\n\n");
        let next = client.next().await.unwrap();
        assert_eq!(&next[..], b"event: decision\ndata: {\"n\":6}\n\n");
        client.shutdown.cancel();
        for _ in 0..3 {
            if client.next().await.is_none() {
                return;
            }
        }
        panic!("the stream ends at shutdown");
    }

    #[test]
    fn a_frame_over_the_limit_is_sent_as_its_stub() {
        let big = json!({"preview": "x".repeat(MAX_FRAME_BYTES)});
        let sent = bounded("approval", &big, &json!({"id": "a1", "too_large": true}));
        assert_eq!(
            &*sent,
            "event: approval\ndata: {\"id\":\"a1\",\"too_large\":true}\n\n"
        );
        let line_break = json!({"reason": "two\nlines"});
        assert_eq!(
            frame("decision", &line_break).matches('\n').count(),
            3,
            "a line break inside data stays escaped"
        );
    }
}
