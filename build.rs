//! `sqlx::migrate!` embeds `migrations/` when it compiles; cargo does not
//! look at that folder by itself, so a new migration would be left out of
//! an incremental build.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
