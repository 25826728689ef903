//! Lesson content: loading through the real loader against a fake GitHub or the sample book,
//! suggestions, the `warm-cache` command, and the content measurements (ignored by default).

mod bench;
mod lessons;
mod suggestions;
mod warm_cache;
