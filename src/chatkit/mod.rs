//! The ChatKit protocol server: request and event types (serde twins of `openai-chatkit`
//! 1.6.5), the dispatcher, the event stream and the thread store on [`crate::store`].
//!
//! Owns: the wire format of `POST /chatkit`, item ids, persistence order and event order.
//! Must not know how replies are produced (see [`crate::tutor::turn`]).
