//! The one integration-test binary: every test starts the real server (see `helpers`) and talks
//! to it over HTTP, against real PostgreSQL/Redis or the embedded backends. Organised by route
//! and by subsystem.

mod helpers;

mod admin;
mod cache;
mod content;
mod content_bench;
mod content_fake_github;
mod content_warm_cache;
mod docs;
mod errors;
mod health;
mod server;
mod store;
mod suggestions;
