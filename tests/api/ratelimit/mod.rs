//! Rate limiting: the limiter on real Redis and in process, header formats and the client IP
//! (`limiter`), batches of concurrent checks (`batching`), and the chat limit over HTTP across
//! instances (`chatkit`).

mod batching;
mod chatkit;
mod limiter;
