//! study-mode-api: the backend of the study-mode AI tutor.
//!
//! `main.rs` parses the command line and calls [`app::Application`]; everything else lives in
//! the modules below, one folder per feature.

pub mod app;
pub mod auth;
pub mod cache;
pub mod chatkit;
pub mod cli;
pub mod config;
pub mod content;
pub mod error;
pub mod http;
pub mod ratelimit;
pub mod store;
pub mod telemetry;
pub mod tutor;

/// The crate version, reported by `/health` and `/`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
