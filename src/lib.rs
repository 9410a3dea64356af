//! Gatehouse: an egress proxy that puts policy-as-code between AI agents and everything they call.
//!
//! Agents send their traffic through Gatehouse (`HTTPS_PROXY`) and trust its local CA. Gatehouse
//! terminates TLS, turns each request into facts, decides, forwards, and records.
//!
//! # The life of a request
//!
//! | # | step | owner | what it decides |
//! |---|---|---|---|
//! | 1 | accept | [`proxy`] | CONNECT or absolute-form; `Proxy-Authorization` → agent identity |
//! | 2 | connect rules | [`pipeline`] | host-level verdict before any TLS work: refuse, relay, or intercept |
//! | 3 | TLS | [`proxy::tls`] | leaf certificate for the SNI, minted from the CA and cached; h2 or HTTP/1.1 |
//! | 4 | inspect | [`pipeline`] | bounded body |
//! | 6 | locate | [`proxy::resolve`] | the checked address the proxy will really connect to (pinned) |
//! | 11 | forward | [`proxy::upstream`] | pooled upstream client, TLS verified against real roots |
//! | 12 | respond | [`proxy::upstream`] | the response streams through untouched in timing |
//! | 13 | record | [`pipeline`] | one record per request, also on error and cancel |
//!
//! Steps 5 (detect), 7 (evaluate), 8 (reserve), 9 (approve) and 10 (redact) arrive with the
//! policy, PII, budget and approval modules; see `../shared/DESIGN.md`.

pub mod app;
pub mod audit;
pub mod budget;
pub mod config;
pub mod error;
pub mod geo;
pub mod inspect;
pub mod launch;
pub mod pii;
pub mod pipeline;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod sqlite;
pub mod toolchain;

pub use app::Gatehouse;
pub use config::Config;
