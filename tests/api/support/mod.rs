//! What the tests run on: the harness that starts the real server (`app`), the deterministic
//! echo responder of the protocol tests (`echo`; its two unit tests are the only tests here),
//! the ChatKit test client and its conformance oracle (`chatkit_client`), and local fakes of
//! the outside services — the SSO (`sso`), GitHub (`github`), the model API (`model`), the metering API (`metering`) with its
//! recorded streams (`transcripts`), throwaway PostgreSQL and Redis servers (`services`), and a CA made at test time for fakes over
//! TLS (`tls`).

pub mod app;
pub mod chatkit_client;
pub mod echo;
pub mod github;
pub mod metering;
pub mod model;
pub mod services;
pub mod sso;
pub mod tls;
pub mod transcripts;
