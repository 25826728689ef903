//! Security: hostile input and slow clients against the running server, each answered with a
//! 4xx in the JSON error shape, never a 5xx, a panic or a hang; and the attacks of issue 17,
//! one module per defect, each asserting the fixed behaviour (each failed before its fix).

mod hostile_input;
mod metric_labels;
