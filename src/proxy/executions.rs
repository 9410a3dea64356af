//! Execution ids the agent cannot mint. An `execution`-window budget bounds one run of an agent;
//! if the agent could name a fresh execution for every call, the window would never fill. So the
//! proxy signs the ids it issues (`gatehouse exec` asks for one): `exec-<random>-<time>-<mac>`,
//! the mac an HMAC-SHA256 over agent, random part and time under a key only the proxy's user can
//! read (`execution-key` in the CA folder, mode 0600). Agents that an execution budget covers must
//! present a signed id; every agent is capped in how many new executions it starts per hour.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::hmac;

/// The key file in the CA folder.
pub const KEY_FILE: &str = "execution-key";

/// Why the execution key could not be had.
#[derive(Debug, thiserror::Error)]
#[error("execution key {path}: {reason}")]
pub struct KeyError {
    /// The key file.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

/// The key execution ids are signed with.
pub struct ExecutionKey(hmac::Key);

impl std::fmt::Debug for ExecutionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExecutionKey(***)")
    }
}

impl ExecutionKey {
    /// The key in `dir`, made (mode 0600) when there is none; refused when others can read it.
    pub fn load_or_create(dir: &Path) -> Result<ExecutionKey, KeyError> {
        let path = dir.join(KEY_FILE);
        let fail = |reason: String| KeyError {
            path: path.clone(),
            reason,
        };
        let bytes = crate::secret::private_file(&path, || {
            crate::random::random_hex(32)
                .map(String::into_bytes)
                .map_err(|_| "no randomness".to_string())
        })
        .map_err(|e| fail(format!("{e} (anyone who reads it can mint executions)")))?;
        let text = String::from_utf8(bytes).map_err(|e| fail(e.to_string()))?;
        let text = text.trim();
        if text.len() < 32 {
            return Err(fail("too short (at least 32 characters)".into()));
        }
        Ok(ExecutionKey(hmac::Key::new(
            hmac::HMAC_SHA256,
            text.as_bytes(),
        )))
    }

    /// A fresh execution id for `agent`, signed.
    pub fn issue(&self, agent: &str) -> Result<String, KeyError> {
        let random = crate::random::random_hex(8).map_err(|_| KeyError {
            path: PathBuf::from(KEY_FILE),
            reason: "no randomness".into(),
        })?;
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let body = format!("{random}-{time:x}");
        Ok(format!("exec-{body}-{}", self.mac(agent, &body)))
    }

    /// Whether `execution` is an id this key issued for `agent`.
    pub fn verify(&self, agent: &str, execution: &str) -> bool {
        let Some(rest) = execution.strip_prefix("exec-") else {
            return false;
        };
        let Some((body, mac)) = rest.rsplit_once('-') else {
            return false;
        };
        let Ok(given) = hex_decode(mac) else {
            return false;
        };
        let expected = self.tag(agent, body);
        bool::from(subtle::ConstantTimeEq::ct_eq(&given[..], &expected[..]))
    }

    /// The first 128 bits of the HMAC: plenty against forgery, short enough for a user name.
    fn tag(&self, agent: &str, body: &str) -> Vec<u8> {
        let full = hmac::sign(&self.0, &message(agent, body));
        full.as_ref()[..16].to_vec()
    }

    fn mac(&self, agent: &str, body: &str) -> String {
        hex::encode(self.tag(agent, body))
    }
}

fn message(agent: &str, body: &str) -> Vec<u8> {
    let mut message = agent.as_bytes().to_vec();
    message.push(0);
    message.extend_from_slice(body.as_bytes());
    message
}

/// Lower-case hex only: one id has one spelling, or its case variants would be fresh executions
/// that all verify.
fn hex_decode(text: &str) -> Result<Vec<u8>, ()> {
    let canonical = text
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if text.len() != 32 || !canonical {
        return Err(());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|_| ()))
        .collect()
}

/// How many new executions each agent started this hour, bounded by the cap.
pub struct ExecutionCounter {
    cap: usize,
    seen: Mutex<HashMap<String, (u64, HashSet<String>)>>,
}

impl ExecutionCounter {
    /// At most `cap` new executions per agent per clock hour.
    pub fn new(cap: usize) -> ExecutionCounter {
        ExecutionCounter {
            cap,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Notes `execution` of `agent`; `false` when it is new and the agent's hour is full.
    pub fn admit(&self, agent: &str, execution: &str) -> bool {
        let hour = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 3600)
            .unwrap_or_default();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let (at, ids) = seen.entry(agent.to_string()).or_default();
        if *at != hour {
            *at = hour;
            ids.clear();
        }
        if ids.contains(execution) {
            return true;
        }
        if ids.len() >= self.cap {
            return false;
        }
        ids.insert(execution.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn only_issued_ids_verify_and_only_for_their_agent() {
        let dir = tempfile::tempdir().unwrap();
        let key = ExecutionKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let id = key.issue("bot").unwrap();
        assert!(id.len() <= 128, "{id}");
        assert!(key.verify("bot", &id));
        assert!(!key.verify("other", &id), "bound to its agent");
        let flipped = if id.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{flipped}", &id[..id.len() - 1]);
        assert!(!key.verify("bot", &forged));
        let (head, mac) = id.rsplit_once('-').unwrap();
        let shouted = format!("{head}-{}", mac.to_ascii_uppercase());
        assert!(
            shouted == id || !key.verify("bot", &shouted),
            "a case variant of an issued id is not another execution"
        );
        for bad in ["exec-1", "run-42", "exec-aa-bb-cc", "", "exec-x-y-zz"] {
            assert!(!key.verify("bot", bad), "{bad}");
        }
        let again = ExecutionKey::load_or_create(dir.path()).unwrap();
        assert!(again.verify("bot", &id), "the same key after a restart");
        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(ExecutionKey::load_or_create(dir.path()).is_err());
    }

    #[test]
    fn new_executions_are_capped_per_agent() {
        let counter = ExecutionCounter::new(2);
        assert!(counter.admit("a", "e1"));
        assert!(counter.admit("a", "e2"));
        assert!(counter.admit("a", "e1"), "a known execution goes on");
        assert!(!counter.admit("a", "e3"));
        assert!(counter.admit("b", "e3"), "each agent has its own cap");
    }
}
