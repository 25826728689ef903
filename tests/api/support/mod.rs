//! What the tests run on, not tests themselves: the harness that starts the real server
//! (`app`), the ChatKit test client and its conformance oracle (`chatkit_client`), and local
//! fakes of the outside services — the SSO (`sso`), GitHub (`github`), the model API (`model`)
//! with its recorded streams (`transcripts`), and throwaway PostgreSQL and Redis servers
//! (`services`).

pub mod app;
pub mod chatkit_client;
pub mod github;
pub mod model;
pub mod services;
pub mod sso;
pub mod transcripts;
