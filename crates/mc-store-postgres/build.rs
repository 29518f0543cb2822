//! Rebuilds the crate when a migration is added: `sqlx::migrate!()` embeds the
//! `migrations/` directory at compile time, but the compiler only watches files that
//! already existed.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
