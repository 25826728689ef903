//! study-mode-api: the backend of the study-mode AI tutor.
//!
//! `main.rs` parses the command line and calls [`startup::Application`], the composition root;
//! everything else lives in the modules below, one folder per feature. The layers, from the
//! ground up (a module imports only modules on lower lines; `scripts/check-layers` enforces it):
//!
//! 1. `config` — reading variables (a leaf)
//! 2. `telemetry` — logs, request ids, the metrics registry
//! 3. `db`, `redis`, `outbound` — connections to the database and to Redis; the outbound HTTP
//!    clients' common builder (extra CA roots)
//! 4. `content` — lessons, their sources and caches, modes, suggestions
//! 5. `auth`, `ratelimit` — who asks, and whether they may
//! 6. `turn` — the reply contract between the ChatKit server and the tutor
//! 7. `metering` — credit metering of model calls (check, deduct, release; the outbox)
//! 8. `tutor`, `chatkit`, `health` — what is said; the protocol server; readiness
//! 9. `legacy` — importing the Python service's database (`import-legacy`)
//! 10. `error` — the edge's error type and every feature error's mapping to it
//! 11. `state` — the router state as `FromRef` sub-states
//! 12. `http` — the HTTP edge: routes, extractors, middleware, the accept loop
//! 13. `settings`, `cli` — the whole configuration composed from its owners; the command line
//! 14. `startup` — the composition root (imported only by `main.rs` and the tests)

pub mod config;
pub mod telemetry;

pub mod db;
pub mod outbound;
pub mod redis;

pub mod content;

pub mod auth;
pub mod ratelimit;

pub mod turn;

pub mod metering;

pub mod chatkit;
pub mod health;
pub mod tutor;

pub mod legacy;

pub mod error;
pub mod state;

pub mod http;

pub mod cli;
pub mod settings;

pub mod startup;

/// The crate version, reported by `/health` and `/`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
