//! The attack battery, long: the same attacks as `tests/it/attacks.rs`, bigger and longer,
//! against the release `gbal serve`, each printing its figures (connections held, RSS before
//! and after, the other callers' p99) and asserting the same bounds.
//!
//! ```sh
//! cargo bench -p gbal --bench attack
//! ```
//! `GBAL_ATTACK_ONLY=<name>[,<name>...]` runs only the named attacks (`label_flood`,
//! `half_sent_headers`, `connection_flood`, `slow_bodies`, `get_polling_flood`,
//! `oversized_input`, `http2_not_served`, `grn_case_changes`, `invisible_caller_ids`); `GBAL_ATTACK_SCALE=short` runs
//! them at the tests' size, as a quick check of the benchmark itself. Everything runs on
//! loopback.

#[path = "../tests/it/attacks/battery.rs"]
mod battery;

use battery::Scale;

#[tokio::main]
async fn main() {
    let only = std::env::var("GBAL_ATTACK_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|n| n.trim() == name);
    let scale = match std::env::var("GBAL_ATTACK_SCALE").as_deref() {
        Ok("short") => Scale::short(),
        _ => Scale::long(),
    };
    println!("attack battery, {scale:?}");
    if wanted("label_flood") {
        battery::label_flood(scale).await;
    }
    if wanted("half_sent_headers") {
        battery::half_sent_headers(scale).await;
    }
    if wanted("connection_flood") {
        battery::connection_flood(scale).await;
    }
    if wanted("slow_bodies") {
        battery::slow_bodies(scale).await;
    }
    if wanted("get_polling_flood") {
        battery::get_polling_flood(scale).await;
    }
    if wanted("oversized_input") {
        battery::oversized_input().await;
    }
    if wanted("http2_not_served") {
        battery::http2_not_served().await;
    }
    if wanted("grn_case_changes") {
        battery::grn_case_changes().await;
    }
    if wanted("invisible_caller_ids") {
        battery::invisible_caller_ids().await;
    }
}
