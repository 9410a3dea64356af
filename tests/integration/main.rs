//! Integration tests: real sockets on port 0, real TLS with CAs the tests generate, real clients.

mod support;

mod approvals;
mod architecture;
mod audit_trail;
mod audit_verify;
mod bounded_sockets;
mod bounds;
mod budgets;
mod cli;
mod credentials;
mod curl;
mod dashboard;
mod evasions;
mod forwarding;
mod fronting;
mod geo;
mod guard;
mod identity;
mod ledger_crash;
mod limits;
mod malformed;
mod metering;
mod pii;
mod pii_places;
mod policy;
mod python;
mod recognition;
mod records;
mod response;
mod shutdown;
mod toolchain;
mod trust;
mod tunnel;
mod unjudged;
mod websocket;
