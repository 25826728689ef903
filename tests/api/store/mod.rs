//! Storage backends, once per backend: database pools and migrations (`database`), the cache
//! interface (`cache`), the thread store's shared suite (`threads`), PostgreSQL's group
//! commit (`group_commit`), and the Redis breaker's gauge (`breaker`).

mod breaker;
mod cache;
mod database;
mod group_commit;
mod threads;
