//! Lesson content: loading through the real loader against a fake GitHub or the sample book,
//! the binary alone serving its compiled-in book,
//! suggestions, the `warm-cache` command, and the content measurements (ignored by default).

mod bench;
mod embedded_book;
mod lessons;
mod suggestions;
mod warm_cache;
