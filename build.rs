//! Rebuilds the crate when the sample book changes: `include_dir!` compiles `sample-book/`
//! into the binary but cannot tell cargo about the files it read (on stable Rust).

fn main() {
    println!("cargo:rerun-if-changed=sample-book");
    println!("cargo:rerun-if-changed=build.rs");
}
