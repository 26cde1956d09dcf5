//! Rebuilds the crate when what its compile-time SQL depends on changes: the migrations
//! (`sqlx::migrate!` embeds them), and where sqlx's query macros find the schema (the
//! committed query data in `.sqlx/`, the `.env` that makes them read it, the variables that
//! choose between it and a live database). The macros themselves tell cargo of none of these.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
    println!("cargo:rerun-if-changed=.sqlx");
    println!("cargo:rerun-if-changed=.env");
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE");
    println!("cargo:rerun-if-env-changed=SQLX_OFFLINE_DIR");
}
