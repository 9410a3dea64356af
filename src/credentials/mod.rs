//! The credential broker: the proxy, not the agent, holds the keys of upstream APIs. Config names,
//! per upstream host (and optionally path, agent or team), the credential put on a request after
//! it was judged and just before it is forwarded (`Authorization: Bearer`, `x-api-key`,
//! `x-goog-api-key`, Azure `api-key`, any header, or a query parameter). Whatever the agent sent
//! in the credential slots of that host is dropped; with `require: placeholder` a request that
//! does not carry the agreed placeholder there is refused, so an agent cannot bring a key (and an
//! account) of its own. The secret never reaches a log, record, metric or error, and an answer
//! that echoes it has it scrubbed ([`Scrub`]).

mod scrub;
mod source;

pub use scrub::Scrub;
pub use source::{SecretSource, SourceError};

use globset::GlobMatcher;
use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
use http::{HeaderMap, Uri};

use crate::policy::HostPattern;
use crate::secret::Secret;

/// What `gatehouse exec` sets the key variables of SDKs to, unless config names another.
pub const DEFAULT_PLACEHOLDER: &str = "gatehouse-placeholder";

/// Headers through which the APIs agents call take a key: all are dropped on a brokered host.
pub const KEY_HEADERS: [&str; 4] = ["authorization", "x-api-key", "x-goog-api-key", "api-key"];

/// The query parameter through which Google's APIs take a key: checked and dropped on a brokered
/// host whatever the slot.
pub const KEY_QUERY: &str = "key";

/// Headers that choose the account, project or workspace that pays and keeps the data: on a
/// brokered host the broker's key decides, so they are dropped.
pub const ACCOUNT_HEADERS: [&str; 4] = [
    "openai-organization",
    "openai-project",
    "anthropic-workspace-id",
    "x-goog-user-project",
];

/// Where a request goes, as the broker matches credentials.
#[derive(Debug, Clone, Copy)]
pub struct Destination<'a> {
    /// Over TLS: a key never goes out in clear text.
    pub https: bool,
    /// The host.
    pub host: &'a str,
    /// The port (a credential is for one port, 443 unless config says otherwise).
    pub port: u16,
    /// The path, canonical (the proxy refuses others before).
    pub path: &'a str,
}

/// Where a credential goes on the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A header; `prefix` comes before the secret (`Bearer ` for `Authorization`).
    Header {
        /// The header's name.
        name: HeaderName,
        /// Written before the secret.
        prefix: String,
    },
    /// A query parameter (Gemini's `key`).
    Query(String),
}

/// One brokered credential.
#[derive(Debug)]
pub struct Credential {
    /// The upstream hosts it is for.
    pub host: HostPattern,
    /// The port it is for.
    pub port: u16,
    /// Only requests to these paths, when given.
    pub path: Option<GlobMatcher>,
    /// Only this agent's requests, when given.
    pub agent: Option<String>,
    /// Only requests of this team's agents, when given.
    pub team: Option<String>,
    /// Where it goes.
    pub slot: Slot,
    /// The secret.
    pub source: SecretSource,
    /// What agents carry in its place.
    pub placeholder: String,
    /// Requests must carry the placeholder (no key of the agent's own).
    pub require_placeholder: bool,
    /// Variables `gatehouse exec` sets to the placeholder (besides the provider's usual ones).
    pub agent_env: Vec<String>,
}

/// Why a request to a brokered host was not forwarded. The secret is never part of one.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The agent brought a credential of its own.
    #[error(
        "requests to {host} carry the placeholder credential, not a key of the agent's own: \
         {slot} holds something else; the proxy puts the real key on"
    )]
    Foreign {
        /// The brokered host.
        host: String,
        /// The header or query parameter that held it.
        slot: String,
    },
    /// The placeholder is missing.
    #[error(
        "requests to {host} must carry the placeholder credential in {slot} (set by `gatehouse \
         exec`); the proxy puts the real key on"
    )]
    Missing {
        /// The brokered host.
        host: String,
        /// Where it belongs.
        slot: String,
    },
    /// A host that takes only brokered keys, asked for where no credential is brokered for it.
    #[error(
        "{host} takes only the keys the proxy holds, and none is brokered for this request (its \
         agent, team, path, port or scheme): a key of the agent's own is not forwarded"
    )]
    NotBrokered {
        /// The host.
        host: String,
    },
    /// A brokered host asked for without TLS: the key would travel in clear text.
    #[error("{host} takes a brokered credential, which never goes out without TLS: use https")]
    Cleartext {
        /// The brokered host.
        host: String,
    },
    /// The secret could not be read.
    #[error("the credential for {host} is unavailable ({source}); the request was not forwarded")]
    Unavailable {
        /// The brokered host.
        host: String,
        /// Why.
        source: SourceError,
    },
}

/// Who sends a request, as far as credentials care.
#[derive(Debug, Clone, Copy)]
pub struct Sender<'a> {
    /// Agent id.
    pub agent: &'a str,
    /// Its team.
    pub team: Option<&'a str>,
    /// Admitted without credentials. Where agents are declared, only a credential naming
    /// `agent: anonymous` is its: an agent could otherwise drop its token and still spend the
    /// operator's key outside its own budgets.
    pub anonymous: bool,
}

/// The brokered credentials, in config order: the first that matches a request is its credential.
#[derive(Debug, Default)]
pub struct Broker {
    credentials: Vec<Credential>,
    /// Agents are declared: the anonymous agent has only the credentials that name it.
    agents_declared: bool,
}

impl Broker {
    /// The broker of `credentials`.
    pub fn new(credentials: Vec<Credential>, agents_declared: bool) -> Broker {
        Broker {
            credentials,
            agents_declared,
        }
    }

    /// The credential of a request to `to` from `sender`, if one is brokered.
    pub fn find(&self, to: Destination<'_>, sender: Sender<'_>) -> Option<&Credential> {
        self.credentials.iter().find(|c| {
            c.host.matches(to.host)
                && c.port == to.port
                && c.path.as_ref().is_none_or(|p| p.is_match(to.path))
                && c.is_for(sender, self.agents_declared)
        })
    }

    /// Refuses a request to `to` from `sender` that brings a key of its own where a credential
    /// with `require: placeholder` is brokered, or that would take a brokered key out without TLS.
    pub fn check(
        &self,
        to: Destination<'_>,
        sender: Sender<'_>,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), BrokerError> {
        let Some(credential) = self.find(to, sender) else {
            // A host that takes only brokered keys takes no key of the agent's own either, on any
            // path, port or scheme, from any agent.
            let strict = self
                .credentials
                .iter()
                .find(|c| c.require_placeholder && c.host.matches(to.host));
            return match strict {
                Some(c) if c.foreign_slot(headers, query).is_some() => {
                    Err(BrokerError::NotBrokered {
                        host: to.host.to_string(),
                    })
                }
                _ => Ok(()),
            };
        };
        if !to.https {
            return Err(BrokerError::Cleartext {
                host: to.host.to_string(),
            });
        }
        credential.check(to.host, headers, query)
    }

    /// Puts the brokered credential (if any) on the request, just before it leaves, and asks for
    /// an answer the proxy can read: the [`Scrub`] takes the key out of it should it echo it.
    pub fn put_on(
        &self,
        to: Destination<'_>,
        sender: Sender<'_>,
        headers: &mut HeaderMap,
        uri: &mut Uri,
    ) -> Result<Option<Scrub>, BrokerError> {
        let Some(credential) = self.find(to, sender) else {
            return Ok(None);
        };
        if !to.https {
            return Err(BrokerError::Cleartext {
                host: to.host.to_string(),
            });
        }
        let secret = credential.apply(to.host, headers, uri)?;
        for name in ACCOUNT_HEADERS {
            headers.remove(name);
        }
        headers.remove(http::header::ACCEPT_ENCODING);
        Ok(Some(Scrub::new(&secret)))
    }

    /// The header names the broker replaces on a request: an approval neither binds nor shows
    /// them.
    pub fn replaced(&self, to: Destination<'_>, sender: Sender<'_>) -> Vec<String> {
        self.find(to, sender)
            .map(|c| c.replaced_headers().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The credentials an agent's process may hold placeholders for: those of its agent or team
    /// or of no one in particular.
    pub fn of_sender<'a>(&'a self, sender: Sender<'a>) -> impl Iterator<Item = &'a Credential> {
        self.credentials
            .iter()
            .filter(move |c| c.is_for(sender, self.agents_declared))
    }
}

impl Credential {
    /// The first key slot of the request that holds something other than the placeholder.
    fn foreign_slot(&self, headers: &HeaderMap, query: Option<&str>) -> Option<String> {
        let header = self.replaced_headers().find(|name| {
            headers
                .get_all(*name)
                .iter()
                .any(|value| !self.is_placeholder(value.as_bytes()))
        });
        if let Some(name) = header {
            return Some(name.to_string());
        }
        self.key_params()
            .find(|param| {
                query_values(query, param)
                    .iter()
                    .any(|v| !self.is_placeholder(v.as_bytes()))
            })
            .map(|param| format!("query parameter `{param}`"))
    }

    /// Whether any key slot of the request is filled.
    fn carried(&self, headers: &HeaderMap, query: Option<&str>) -> bool {
        self.replaced_headers()
            .any(|name| headers.contains_key(name))
            || self
                .key_params()
                .any(|param| !query_values(query, param).is_empty())
    }

    /// Whether `sender` may have this credential put on its requests.
    fn is_for(&self, sender: Sender<'_>, agents_declared: bool) -> bool {
        let agent = match self.agent.as_deref() {
            Some(agent) => agent == sender.agent,
            None => !(sender.anonymous && agents_declared),
        };
        agent && self.team.as_deref().is_none_or(|t| Some(t) == sender.team)
    }

    /// Refuses a request that does not carry the placeholder where `require: placeholder` wants
    /// it, or that carries anything else in a key slot. SDKs differ in the slot they use (the
    /// Anthropic SDK sends `Authorization: Bearer`), so any slot may carry the placeholder.
    pub fn check(
        &self,
        host: &str,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), BrokerError> {
        if !self.require_placeholder {
            return Ok(());
        }
        if let Some(slot) = self.foreign_slot(headers, query) {
            return Err(BrokerError::Foreign {
                host: host.to_string(),
                slot,
            });
        }
        if self.carried(headers, query) {
            Ok(())
        } else {
            Err(BrokerError::Missing {
                host: host.to_string(),
                slot: self.slot_name(),
            })
        }
    }

    /// Puts the real credential on the request: every key header and key parameter is cleared,
    /// then the slot is set. Returns the secret, so the answer can be scrubbed of it.
    pub fn apply(
        &self,
        host: &str,
        headers: &mut HeaderMap,
        uri: &mut Uri,
    ) -> Result<Secret, BrokerError> {
        let unavailable = |source| BrokerError::Unavailable {
            host: host.to_string(),
            source,
        };
        let secret = self.source.current().map_err(unavailable)?;
        for name in KEY_HEADERS {
            headers.remove(name);
        }
        let query = uri.query().unwrap_or_default();
        let mut pairs: Vec<String> = query
            .split('&')
            .filter(|pair| !pair.is_empty() && !self.key_params().any(|p| names_param(pair, p)))
            .map(str::to_string)
            .collect();
        match &self.slot {
            Slot::Header { name, prefix } => {
                let mut value = HeaderValue::from_str(&format!("{prefix}{}", secret.expose()))
                    .map_err(|_| unavailable(SourceError::NotAHeader))?;
                value.set_sensitive(true);
                headers.insert(name.clone(), value);
            }
            Slot::Query(param) => {
                let encoded: String =
                    form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
                pairs.push(format!("{param}={encoded}"));
            }
        }
        if pairs.join("&") != query {
            *uri = with_pairs(uri, &pairs).ok_or_else(|| unavailable(SourceError::NotAHeader))?;
        }
        Ok(secret)
    }

    /// The query parameters that carry a key: the slot's, and Google's `key`.
    fn key_params(&self) -> impl Iterator<Item = &str> {
        let slot = match &self.slot {
            Slot::Query(param) => Some(param.as_str()),
            Slot::Header { .. } => None,
        };
        slot.into_iter().chain([KEY_QUERY])
    }

    /// The header names a reviewer and an approval's fingerprint leave out: the broker replaces them.
    pub fn replaced_headers(&self) -> impl Iterator<Item = &str> {
        KEY_HEADERS.iter().copied().chain(self.header_name())
    }

    fn header_name(&self) -> Option<&str> {
        match &self.slot {
            Slot::Header { name, .. } => Some(name.as_str()),
            Slot::Query(_) => None,
        }
    }

    fn slot_name(&self) -> String {
        match &self.slot {
            Slot::Header { name, .. } => format!("header `{name}`"),
            Slot::Query(param) => format!("query parameter `{param}`"),
        }
    }

    /// Whether `value` is the placeholder, bare or after an auth scheme (`Bearer placeholder`).
    fn is_placeholder(&self, value: &[u8]) -> bool {
        let value = String::from_utf8_lossy(value);
        let value = value.trim();
        let bare = value
            .split_once(' ')
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("basic")
            })
            .map_or(value, |(_, rest)| rest.trim());
        bare == self.placeholder
    }
}

/// Whether a query pair `name=value` (or bare `name`) names `param`, percent-decoded.
fn names_param(pair: &str, param: &str) -> bool {
    let name = pair.split('=').next().unwrap_or_default();
    form_urlencoded::parse(name.as_bytes())
        .next()
        .is_some_and(|(decoded, _)| decoded == param)
}

/// `uri` with its query made of `pairs` (none: no query).
fn with_pairs(uri: &Uri, pairs: &[String]) -> Option<Uri> {
    let mut parts = uri.clone().into_parts();
    let rebuilt = match pairs.is_empty() {
        true => uri.path().to_string(),
        false => format!("{}?{}", uri.path(), pairs.join("&")),
    };
    parts.path_and_query = Some(rebuilt.parse().ok()?);
    Uri::from_parts(parts).ok()
}

/// The values of `param` in `query`, percent-decoded.
fn query_values(query: Option<&str>, param: &str) -> Vec<String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| name == param)
        .map(|(_, value)| value.into_owned())
        .collect()
}

/// `Authorization` takes a bearer token; other headers take the secret as it is.
pub fn default_prefix(header: &HeaderName) -> &'static str {
    if header == AUTHORIZATION {
        "Bearer "
    } else {
        ""
    }
}

#[cfg(test)]
mod tests;
