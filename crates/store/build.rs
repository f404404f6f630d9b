//! Rebuilds the crate when a migration changes, so `sqlx::migrate!` embeds the SQL as it is.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
