//! The tutor: the model client against a fake model server speaking both OpenAI wire formats
//! and the offline tutor (`responder`), the model tutor through `POST /chatkit` (`chatkit`),
//! the production app end to end as a student meets it (`chat`), the model API over TLS and
//! HTTP/2 with a test CA (`h2`), and the model client's
//! measurements (`bench`, ignored by default).

mod bench;
mod chat;
mod chatkit;
mod h2;
mod responder;
mod walk;
mod walk_chatkit;
mod walk_model;
