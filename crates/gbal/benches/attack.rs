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

/// An attack by name, run at a scale.
type Attack = (&'static str, fn(Scale));

/// Runs one attack on a runtime of its own.
fn run(attack: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(attack);
}

fn main() -> std::process::ExitCode {
    let only = std::env::var("GBAL_ATTACK_ONLY").unwrap_or_default();
    let wanted = |name: &str| only.is_empty() || only.split(',').any(|n| n.trim() == name);
    let scale = match std::env::var("GBAL_ATTACK_SCALE").as_deref() {
        Ok("short") => Scale::short(),
        _ => Scale::long(),
    };
    println!("attack battery, {scale:?}");
    let attacks: [Attack; 9] = [
        ("label_flood", |s| run(battery::label_flood(s))),
        ("half_sent_headers", |s| run(battery::half_sent_headers(s))),
        ("connection_flood", |s| run(battery::connection_flood(s))),
        ("slow_bodies", |s| run(battery::slow_bodies(s))),
        ("get_polling_flood", |s| run(battery::get_polling_flood(s))),
        ("oversized_input", |_| run(battery::oversized_input())),
        ("http2_not_served", |_| run(battery::http2_not_served())),
        ("grn_case_changes", |_| run(battery::grn_case_changes())),
        ("invisible_caller_ids", |_| {
            run(battery::invisible_caller_ids())
        }),
    ];
    // One after the other, each against its own gbal; a broken bound is reported (the panic
    // message says which) and the next attack still runs.
    let mut failed = Vec::new();
    for (name, attack) in attacks {
        if wanted(name) && std::thread::spawn(move || attack(scale)).join().is_err() {
            failed.push(name);
        }
    }
    if failed.is_empty() {
        println!("attack battery: every bound held");
        std::process::ExitCode::SUCCESS
    } else {
        println!("attack battery: bounds broken by {failed:?}");
        std::process::ExitCode::FAILURE
    }
}
