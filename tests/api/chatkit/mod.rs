//! `POST /chatkit`, the ChatKit protocol: every request type over HTTP, the differential
//! conformance run against the reference server, per-user isolation, and streams under stress
//! (disconnects, shutdown, failing responders). Replies come from the echo responder or from
//! responders scripted by the tests.

mod book_client;
mod conformance;
mod http;
mod isolation;
mod streams;
