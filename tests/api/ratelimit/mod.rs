//! Rate limiting: the limiter on real Redis and in process, header formats and the client IP
//! (`limiter`), and the chat limit over HTTP across instances (`chatkit`).

mod chatkit;
mod limiter;
