//! The one integration-test binary: every test starts the real server (see `helpers`) and talks
//! to it over HTTP, against real PostgreSQL/Redis or the embedded backends. Organised by route
//! and by subsystem.

mod helpers;

mod admin;
mod auth;
mod auth_sso;
mod cache;
mod chatkit_auth;
mod chatkit_client;
mod chatkit_conformance;
mod chatkit_http;
mod chatkit_isolation;
mod chatkit_store;
mod chatkit_streams;
mod content;
mod content_bench;
mod content_fake_github;
mod content_warm_cache;
mod docs;
mod errors;
mod faults;
mod health;
mod listener;
mod openapi;
mod ratelimit;
mod security;
mod server;
mod services;
mod store;
mod study;
mod suggestions;
mod tutor;
mod tutor_chat;
