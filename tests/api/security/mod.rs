//! Security: hostile input and slow clients against the running server, each answered with a
//! 4xx in the JSON error shape, never a 5xx, a panic or a hang.

mod hostile_input;
