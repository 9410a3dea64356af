//! Gatehouse: an egress proxy that puts policy-as-code between AI agents and everything they call.
//!
//! Agents send their traffic through Gatehouse (`HTTPS_PROXY`) and trust its local CA. Gatehouse
//! terminates TLS, turns each request into facts, decides, forwards, and records. The module map
//! and the rules of which module may import which are in `ARCHITECTURE.md`; a test
//! (`tests/integration/architecture.rs`) holds the code to them.
//!
//! # The life of a request
//!
//! [`pipeline::Pipeline`] runs these steps in this order, one call each; every step is owned by
//! the module named.
//!
//! | # | step | owner | what it decides |
//! |---|---|---|---|
//! | 1 | accept | [`proxy`] | CONNECT or absolute-form; `Proxy-Authorization` → agent identity |
//! | 2 | connect rules | [`policy`], [`audit::Judge`] | host-level verdict before any TLS work: refuse, relay, or intercept |
//! | 3 | TLS | [`proxy::tls`] | leaf certificate for the SNI, minted from the CA and cached; h2 or HTTP/1.1 |
//! | 4 | inspect | [`inspect`] | bounded, decoded body; LLM, tool and data calls recognised; else uninspected |
//! | 5 | detect | [`pii`] | personal data and secrets, as kinds and counts |
//! | 6 | locate | [`geo`] | the checked addresses the proxy will connect to, and where they are |
//! | 7 | evaluate | [`policy`], [`audit::Judge`] | one [`policy::Verdict`] from all applying rules, recorded before it is enforced |
//! | 8 | reserve | [`budget::Ledger`] | rate limits, pauses, breakers, the call's worst case reserved in every budget |
//! | 9 | approve | [`approval`] | a held request waits for a person (approved, denied, 408 to retry) |
//! | 10 | redact | [`pii`] | the obligations applied to body and query |
//! | 11 | forward | [`proxy::upstream`] | pooled upstream client, TLS verified against real roots |
//! | 12 | respond | [`stream`], [`budget`], [`policy`] | response rules; streams back, usage metered, pseudonyms restored, settled once |
//! | 13 | record | [`audit`] | decisions before forwarding, the outcome (status, tokens, cost) after |
//!
//! Around it: [`admin`] serves the admin API, `/metrics` ([`metrics`]) and the dashboard;
//! [`telemetry`] exports a span per request and the GenAI metrics over OTLP when asked to;
//! [`reload`] keeps the policy folder and the geo database current; [`toolchain`] holds the
//! command-line tools.

#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod approval;
pub mod audit;
pub mod body;
pub mod budget;
pub mod config;
pub mod credentials;
pub mod error;
pub mod firewall;
pub mod gateway;
pub mod geo;
pub mod inspect;
pub mod json_text;
pub mod launch;
pub mod metrics;
pub mod pii;
pub mod pipeline;
pub mod policy;
pub mod proxy;
pub mod random;
pub mod reload;
pub mod secret;
pub mod socket;
pub mod sqlite;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod toolchain;
pub mod yaml;

pub use app::Gatehouse;
pub use config::Config;
