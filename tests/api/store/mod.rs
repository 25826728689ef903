//! Storage backends, once per backend: database pools and migrations (`database`), the cache
//! interface (`cache`), and the thread store's shared suite (`threads`).

mod cache;
mod database;
mod threads;
