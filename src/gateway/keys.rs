//! Gateway keys: which agent a request is from, read from the slot its SDK sends an API key in
//! (`Authorization: Bearer`, `x-api-key`, `x-goog-api-key`, `api-key`, or Google's `key` query
//! parameter). Keys are held as SHA-256 digests and compared in constant time against every one.

use http::HeaderMap;
use ring::digest::{SHA256, digest};
use subtle::ConstantTimeEq;

use super::GatewayError;
use crate::credentials::{KEY_HEADERS, KEY_QUERY};
use crate::proxy::identity::Identity;
use crate::secret::Secret;

/// One agent's gateway key, as config declares it.
#[derive(Debug, Clone)]
pub struct GatewayKey {
    /// The agent it names.
    pub identity: Identity,
    /// The key.
    pub key: Secret,
}

/// Every agent's gateway key: digests to compare, and the keys `gatehouse exec` hands out.
pub struct GatewayKeys {
    keys: Vec<([u8; 32], Identity)>,
    issued: Vec<GatewayKey>,
}

impl std::fmt::Debug for GatewayKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GatewayKeys({} keys)", self.keys.len())
    }
}

/// The key slots a request filled, once they all held one agent's gateway key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The agent.
    pub identity: Identity,
    /// The headers that held the key.
    pub headers: Vec<&'static str>,
    /// Whether the `key` query parameter held it.
    pub query: bool,
}

impl GatewayKeys {
    /// The digests of `keys`.
    pub fn new(keys: &[GatewayKey]) -> GatewayKeys {
        GatewayKeys {
            keys: keys
                .iter()
                .map(|k| (sha256(k.key.expose()), k.identity.clone()))
                .collect(),
            issued: keys.to_vec(),
        }
    }

    /// The (first) gateway key of `agent`, for `gatehouse exec --mode base-url`.
    pub fn key_of(&self, agent: &str) -> Option<&Secret> {
        self.issued
            .iter()
            .find(|k| k.identity.agent == agent)
            .map(|k| &k.key)
    }

    /// The agent whose key fills the request's key slots; `None` when no slot is filled. A slot
    /// holding anything but that agent's key refuses the request: 401 when no slot holds a gateway
    /// key, 403 when one does (the other holds a key of the agent's own, or another agent's).
    pub fn identify(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<Presented>, GatewayError> {
        let mut found: Vec<(String, Option<usize>)> = Vec::new();
        let mut filled_headers = Vec::new();
        for name in KEY_HEADERS {
            for value in headers.get_all(name) {
                found.push((format!("header `{name}`"), self.lookup(value.as_bytes())));
                if !filled_headers.contains(&name) {
                    filled_headers.push(name);
                }
            }
        }
        let in_query: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .filter(|(name, _)| name == KEY_QUERY)
            .map(|(_, value)| value.into_owned())
            .collect();
        for value in &in_query {
            let slot = format!("query parameter `{KEY_QUERY}`");
            found.push((slot, self.lookup(value.as_bytes())));
        }
        let Some(agent) = found.iter().find_map(|(_, agent)| *agent) else {
            return match found.is_empty() {
                true => Ok(None),
                false => Err(GatewayError::UnknownKey),
            };
        };
        if let Some((slot, _)) = found.iter().find(|(_, a)| *a != Some(agent)) {
            return Err(GatewayError::ForeignKey(slot.clone()));
        }
        Ok(Some(Presented {
            identity: self.keys[agent].1.clone(),
            headers: filled_headers,
            query: !in_query.is_empty(),
        }))
    }

    /// The index of the key `value` holds (bare or after `Bearer `), compared with every key.
    fn lookup(&self, value: &[u8]) -> Option<usize> {
        let value = String::from_utf8_lossy(value);
        let value = value.trim();
        let bare = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or(value, |(_, rest)| rest.trim());
        let presented = sha256(bare);
        let mut matched = None;
        for (i, (key, _)) in self.keys.iter().enumerate() {
            if bool::from(key.ct_eq(&presented)) {
                matched = Some(i);
            }
        }
        matched
    }
}

fn sha256(text: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, text.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(agent: &str) -> Identity {
        Identity {
            agent: agent.into(),
            team: None,
            env: None,
            execution: None,
            labels: Default::default(),
        }
    }

    fn keys() -> GatewayKeys {
        GatewayKeys::new(&[
            GatewayKey {
                identity: identity("coder"),
                key: Secret::new("gk-coder-0123456789abcdef".into()),
            },
            GatewayKey {
                identity: identity("writer"),
                key: Secret::new("gk-writer-0123456789abcdef".into()),
            },
        ])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_key_names_the_agent_in_whatever_slot_the_sdk_uses() {
        let keys = keys();
        for (name, value) in [
            ("authorization", "Bearer gk-coder-0123456789abcdef"),
            ("x-api-key", "gk-coder-0123456789abcdef"),
            ("x-goog-api-key", "gk-coder-0123456789abcdef"),
            ("api-key", "gk-coder-0123456789abcdef"),
        ] {
            let found = keys.identify(&headers(&[(name, value)]), None).unwrap();
            let found = found.unwrap();
            assert_eq!(found.identity.agent, "coder");
            assert_eq!(found.headers, vec![name]);
        }
        let found = keys
            .identify(
                &HeaderMap::new(),
                Some("alt=sse&key=gk-writer-0123456789abcdef"),
            )
            .unwrap()
            .unwrap();
        assert_eq!(found.identity.agent, "writer");
        assert!(found.query);
    }

    #[test]
    fn unknown_foreign_and_mixed_keys_are_refused() {
        let keys = keys();
        assert_eq!(keys.identify(&HeaderMap::new(), None), Ok(None));
        let unknown = headers(&[("authorization", "Bearer sk-proj-realkey")]);
        assert_eq!(keys.identify(&unknown, None), Err(GatewayError::UnknownKey));
        let foreign = headers(&[
            ("authorization", "Bearer gk-coder-0123456789abcdef"),
            ("x-api-key", "sk-ant-api03-realkey"),
        ]);
        assert!(matches!(
            keys.identify(&foreign, None),
            Err(GatewayError::ForeignKey(slot)) if slot == "header `x-api-key`"
        ));
        let two_agents = headers(&[
            ("x-api-key", "gk-coder-0123456789abcdef"),
            ("api-key", "gk-writer-0123456789abcdef"),
        ]);
        assert!(matches!(
            keys.identify(&two_agents, None),
            Err(GatewayError::ForeignKey(_))
        ));
        let in_query = headers(&[("x-goog-api-key", "gk-coder-0123456789abcdef")]);
        assert!(matches!(
            keys.identify(&in_query, Some("key=AIzaRealKey")),
            Err(GatewayError::ForeignKey(_))
        ));
    }
}
