//! The one integration-test binary: every test starts the real server (see `support::app`) and
//! talks to it over HTTP, against real PostgreSQL/Redis or the embedded backends. Organised by
//! feature, one folder each:
//!
//! - `support/`: the harness (starting apps), the echo responder, the ChatKit test client and
//!   its oracle, and the local fakes of outside services (SSO, GitHub, model API, throwaway
//!   PostgreSQL and Redis servers); no tests of its own but the echo responder's.
//! - `http/`: health, admin and webhook routes, OpenAPI and `/docs`, the study page, the error
//!   shape, the listener, the server process, and the documented settings.
//! - `chatkit/`: `POST /chatkit` — the protocol, conformance, isolation, streams.
//! - `content/`: lesson loading, suggestions, `warm-cache`, content measurements.
//! - `tutor/`: the tutor against a fake model, and through `POST /chatkit`.
//! - `auth/`: token verification against a fake SSO, and auth on `POST /chatkit`.
//! - `ratelimit/`: the limiter on Redis and in process, and the chat limit over HTTP.
//! - `store/`: database pools and migrations, the cache interface, the thread store.
//! - `legacy/`: `import-legacy` on databases in the Python service's layouts; the carry-over
//!   of an earlier version's schema.
//! - `metering/`: credit metering of model calls against a stand-in metering API.
//! - `faults/`: each dependency failing under load (`cargo test --test api faults::`).
//! - `security/`: hostile input and slow clients.

mod support;

mod auth;
mod chatkit;
mod content;
mod faults;
mod http;
mod legacy;
mod metering;
mod ratelimit;
mod security;
mod store;
mod tutor;
