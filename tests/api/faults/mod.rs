//! Fault tests: each dependency fails while 16–50 clients keep using the real HTTP server, and
//! each test asserts the outcome — what the clients saw during the fault, and how the service
//! recovered without a restart. Dependencies that are killed run as throwaway processes on free
//! ports (`crate::support::services`); external services are the local fakes of the feature tests.
//!
//! Run: `cargo test --test api faults:: -- --nocapture` (each test prints what it measured).
//! Results are recorded in docs/RELIABILITY.md.

mod jwks;
mod load;
mod model;
mod origin;
mod postgres;
mod redis;
