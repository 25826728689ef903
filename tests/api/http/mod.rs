//! The HTTP surface outside ChatKit: health, readiness and metrics, the admin and webhook
//! routes, the OpenAPI document and `/docs`, the study page and content routes, the error
//! shape and CORS, the listener, the server process (graceful shutdown), and the documented
//! settings (README and `.env.example`).

mod admin;
mod docs;
mod errors;
mod health;
mod listener;
mod openapi;
mod server;
mod study;
