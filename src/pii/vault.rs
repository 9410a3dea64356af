//! Reversible pseudonyms: `<EMAIL_1>` stands for a value within one execution (an agent run), so
//! the provider never sees the value and the agent gets it back in the response. Values live in
//! memory only, bounded in sessions and values, and are forgotten when a session goes idle.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use regex::bytes::Regex;

use super::Kind;

/// Why a pseudonym could not be handed out.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The session holds as many values as it may.
    #[error(
        "the pseudonym vault of this execution is full ({0} values); the request is refused rather than forwarded unredacted"
    )]
    Full(usize),
}

#[derive(Default)]
struct Session {
    by_value: HashMap<(String, String), String>,
    by_name: HashMap<String, String>,
    counters: HashMap<String, u32>,
    last_used: Option<Instant>,
}

/// Pseudonyms per session (agent and execution).
pub struct Vault {
    sessions: Mutex<LruCache<String, Session>>,
    max_values: usize,
    idle: Duration,
}

impl Vault {
    /// A vault of at most `max_sessions` sessions of `max_values` values each, forgetting a
    /// session idle for `idle`.
    pub fn new(max_sessions: usize, max_values: usize, idle: Duration) -> Vault {
        let cap = NonZeroUsize::new(max_sessions.max(1)).unwrap_or(NonZeroUsize::MIN);
        Vault {
            sessions: Mutex::new(LruCache::new(cap)),
            max_values,
            idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The placeholder of `value` in `session` (the same value gets the same placeholder).
    pub fn pseudonym(
        &self,
        session: &str,
        kind: &Kind,
        value: &str,
        now: Instant,
    ) -> Result<String, VaultError> {
        let mut sessions = self.lock();
        let expired = sessions
            .peek(session)
            .and_then(|s| s.last_used)
            .is_some_and(|t| now.saturating_duration_since(t) > self.idle);
        if expired {
            sessions.pop(session);
        }
        let entry = sessions.get_or_insert_mut(session.to_string(), Session::default);
        entry.last_used = Some(now);
        let label = kind.label();
        let key = (label.clone(), value.to_string());
        if let Some(name) = entry.by_value.get(&key) {
            return Ok(format!("<{name}>"));
        }
        if entry.by_name.len() >= self.max_values {
            return Err(VaultError::Full(self.max_values));
        }
        let counter = entry.counters.entry(label.clone()).or_insert(0);
        *counter += 1;
        let name = format!("{label}_{counter}");
        entry.by_value.insert(key, name.clone());
        entry.by_name.insert(name.clone(), value.to_string());
        Ok(format!("<{name}>"))
    }

    /// A restorer for responses in `session`, if it holds any pseudonyms.
    pub fn restorer(&self, session: &str, json: bool) -> Option<Restorer> {
        self.names(session).map(|names| Restorer::new(names, json))
    }

    /// The pseudonyms of `session` as they stand now (taken when a request is redacted, so its
    /// answer is restored with the values it was given even if the session is evicted meanwhile).
    pub fn names(&self, session: &str) -> Option<Arc<HashMap<String, String>>> {
        let sessions = self.lock();
        let entry = sessions.peek(session)?;
        (!entry.by_name.is_empty()).then(|| Arc::new(entry.by_name.clone()))
    }

    /// Forgets a session (its execution ended).
    pub fn forget(&self, session: &str) {
        self.lock().pop(session);
    }

    /// Forgets every session idle for longer than the idle time.
    pub fn sweep(&self, now: Instant) {
        let mut sessions = self.lock();
        let stale: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| {
                s.last_used
                    .is_some_and(|t| now.saturating_duration_since(t) > self.idle)
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            sessions.pop(&key);
        }
    }

    /// How many sessions are held.
    pub fn sessions(&self) -> usize {
        self.lock().len()
    }
}

/// A placeholder, plain (`<EMAIL_1>`) or with `<` and `>` JSON-escaped as some encoders write them.
static PLACEHOLDER: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"<([A-Z][A-Z0-9_]*_[0-9]+)>|\\u003[cC]([A-Z][A-Z0-9_]*_[0-9]+)\\u003[eE]").ok()
});

/// Longest placeholder form held back between chunks (`\u003cCREDIT_CARD_1234\u003e` and more).
const MAX_HELD: usize = 96;

/// Puts originals back in place of placeholders in a response that arrives in pieces (SSE): only
/// the bytes that could still complete a placeholder are held back, never the whole stream.
pub struct Restorer {
    names: Arc<HashMap<String, String>>,
    json: bool,
    pending: Vec<u8>,
}

impl Restorer {
    /// Restores the placeholders in `names`; `json` escapes originals for JSON strings (JSON and
    /// SSE responses).
    pub fn new(names: Arc<HashMap<String, String>>, json: bool) -> Restorer {
        Restorer {
            names,
            json,
            pending: Vec::new(),
        }
    }

    /// The restored bytes of the stream so far; what might still complete a placeholder waits.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(chunk);
        let hold = held_from(&self.pending);
        let ready: Vec<u8> = self.pending.drain(..hold).collect();
        self.restore(&ready)
    }

    /// Whatever was held back, restored, at the end of the stream.
    pub fn finish(&mut self) -> Vec<u8> {
        let rest = std::mem::take(&mut self.pending);
        self.restore(&rest)
    }

    fn restore(&self, bytes: &[u8]) -> Vec<u8> {
        let Some(pattern) = PLACEHOLDER.as_ref() else {
            return bytes.to_vec();
        };
        pattern
            .replace_all(bytes, |caps: &regex::bytes::Captures<'_>| {
                let name = caps
                    .get(1)
                    .or_else(|| caps.get(2))
                    .and_then(|m| std::str::from_utf8(m.as_bytes()).ok());
                match name.and_then(|n| self.names.get(n)) {
                    Some(original) if self.json => {
                        let quoted = serde_json::to_string(original).unwrap_or_default();
                        quoted.as_bytes()[1..quoted.len().saturating_sub(1).max(1)].to_vec()
                    }
                    Some(original) => original.as_bytes().to_vec(),
                    None => caps[0].to_vec(),
                }
            })
            .into_owned()
    }
}

/// Where the bytes that could still become a placeholder start (`buf.len()` if none).
fn held_from(buf: &[u8]) -> usize {
    let window = buf.len().saturating_sub(MAX_HELD);
    for start in (window..buf.len()).rev() {
        if matches!(buf[start], b'<' | b'\\') && could_complete(&buf[start..]) {
            // An earlier opener may own this one (`\u003cEMAIL_1\u003`): keep the earliest.
            let earlier = (window..start)
                .rev()
                .find(|&s| matches!(buf[s], b'<' | b'\\') && could_complete(&buf[s..]));
            return earlier.unwrap_or(start);
        }
    }
    buf.len()
}

/// Whether `tail` is an unfinished placeholder: an opener (or part of one), a name, and at most
/// part of a closer.
fn could_complete(tail: &[u8]) -> bool {
    const ESCAPED_OPEN: &[u8] = b"\\u003c";
    const ESCAPED_CLOSE: &[u8] = b"\\u003e";
    let name_char = |c: &u8| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_';
    let (rest, escaped) = if tail[0] == b'<' {
        (&tail[1..], false)
    } else {
        let n = tail.len().min(ESCAPED_OPEN.len());
        if !tail[..n].eq_ignore_ascii_case(&ESCAPED_OPEN[..n]) {
            return false;
        }
        if tail.len() <= ESCAPED_OPEN.len() {
            return true;
        }
        (&tail[ESCAPED_OPEN.len()..], true)
    };
    let name_len = rest.iter().take_while(|c| name_char(c)).count();
    let after = &rest[name_len..];
    if after.is_empty() {
        return true;
    }
    escaped
        && after.len() < ESCAPED_CLOSE.len()
        && after.eq_ignore_ascii_case(&ESCAPED_CLOSE[..after.len()])
}
