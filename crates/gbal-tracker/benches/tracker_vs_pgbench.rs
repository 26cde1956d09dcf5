//! The tracker's per-request work against PostgreSQL, next to `pgbench` running the same SQL.
//!
//! One "request" is what a balance check costs the store: take its (caller, GRN) lock and
//! record the request (one statement), complete it checking its GRN (the update and its
//! NOTIFY). The benchmark runs it with
//! `GBAL_BENCH_CLIENTS` (16) concurrent clients for `GBAL_BENCH_SECS` (10) seconds through
//! `PgTracker`, then runs `pgbench -n -M prepared -c 16 -j 2 -T 10` with a script made from
//! the very statements the tracker sends, and prints both rates and their ratio. Each run
//! starts on empty, vacuumed tables in a fresh database, dropped at the end.
//!
//! `cargo bench -p gbal-tracker --bench tracker_vs_pgbench`; `DATABASE_URL` names a server
//! where the role may create databases (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `GBAL_PG_BIN` the folder holding `pgbench` (default: `/usr/lib/postgresql/*/bin`, then PATH).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gbal_core::outcome::Balance;
use gbal_core::{
    ApiVersion, BalanceRequestId, CallerId, Completion, Grn, LockOutcome, NewBalanceRequest,
    Outcome, ReplyMatch, Tin, Tracker, UniqueReference,
};
use gbal_testkit::{TestDatabase, pgbench};
use gbal_tracker::{PgConfig, PgTracker};
use sqlx::Executor;
use sqlx::postgres::PgPool;
use time::OffsetDateTime;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let settings = Settings {
        duration: Duration::from_secs(env_or("GBAL_BENCH_SECS", 10)),
        clients: env_or("GBAL_BENCH_CLIENTS", 16),
        pool_size: env_or("GBAL_BENCH_POOL", env_or("GBAL_BENCH_CLIENTS", 16)),
        rounds: env_or("GBAL_BENCH_ROUNDS", 3).max(1),
        synchronous_commit: std::env::var("GBAL_BENCH_SYNCHRONOUS_COMMIT").ok(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(&settings));
}

/// What the benchmark runs.
#[derive(Debug)]
struct Settings {
    /// How long each side runs, per round.
    duration: Duration,
    /// Concurrent clients on each side.
    clients: u32,
    /// The tracker's pool size.
    pool_size: u32,
    /// Rounds of (tracker, pgbench); the machine is shared, so one round is noisy.
    rounds: u32,
    /// A session `synchronous_commit` for both sides (e.g. `off`, to compare CPU and
    /// protocol costs rather than WAL flushes); the server's default when unset.
    synchronous_commit: Option<String>,
}

async fn run(settings: &Settings) {
    let db = TestDatabase::migrated("gbal_bench").await;
    let (name, url) = (db.name.clone(), db.url.clone());
    let raw = db.pool().await;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sync = settings
        .synchronous_commit
        .as_deref()
        .unwrap_or("server default");
    println!(
        "tracker vs pgbench: {} clients, {} round(s) of {}s each side, {cpus} CPUs, \
         synchronous_commit {sync}, database {name}",
        settings.clients,
        settings.rounds,
        settings.duration.as_secs()
    );

    let tracker_url = match &settings.synchronous_commit {
        Some(value) => {
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options[synchronous_commit]={value}")
        }
        None => url.clone(),
    };
    let (mut gbal_requests, mut gbal_secs) = (0u64, 0f64);
    let (mut pgbench_requests, mut pgbench_secs) = (0f64, 0f64);
    for round in 1..=settings.rounds {
        reset(&raw).await;
        let cpu = cpu_times();
        let (requests, elapsed) = tracker_run(&tracker_url, settings).await;
        let gbal_cpu = cpu_times().own - cpu.own;
        let gbal = requests as f64 / elapsed.as_secs_f64();
        gbal_requests += requests;
        gbal_secs += elapsed.as_secs_f64();

        reset(&raw).await;
        // A replica listens during pgbench too: delivering the notifications is part of
        // the server's work in both runs.
        let listening = PgTracker::connect(&url, &pg_config(1)).expect("a valid URL");
        listening.until_listening().await;
        let cpu = cpu_times();
        let pgbench = pgbench_rate(&url, settings);
        let pgbench_cpu = cpu_times().children - cpu.children;
        drop(listening);
        pgbench_requests += pgbench * settings.duration.as_secs_f64();
        pgbench_secs += settings.duration.as_secs_f64();
        // pgbench's rows are real requests too: every one recorded and completed.
        let (rows, completed): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status = 'SUCCESS') FROM balance_requests",
        )
        .fetch_one(&raw)
        .await
        .expect("count pgbench's requests");
        assert_eq!(
            rows, completed,
            "pgbench completed every request it recorded"
        );
        println!(
            "round {round}: gbal PgTracker (pool {}) {gbal:.0} requests/s ({requests}), \
             pgbench {pgbench:.0} transactions/s ({rows}), ratio {:.1}%; \
             client CPU per request: gbal {:.0} us, pgbench {:.0} us",
            settings.pool_size,
            gbal / pgbench * 100.0,
            gbal_cpu.as_secs_f64() * 1e6 / requests as f64,
            pgbench_cpu.as_secs_f64() * 1e6 / rows.max(1) as f64,
        );
    }
    let gbal = gbal_requests as f64 / gbal_secs;
    let pgbench = pgbench_requests / pgbench_secs;
    println!("gbal PgTracker: {gbal:.0} requests/s");
    println!("pgbench -M prepared, same SQL: {pgbench:.0} transactions/s");
    println!(
        "ratio gbal / pgbench: {:.1}% (target: at least 80%)",
        gbal / pgbench * 100.0
    );

    raw.close().await;
    db.drop_database().await;
}

/// Empty, vacuumed tables and a checkpoint, so each run starts alike.
async fn reset(raw: &PgPool) {
    for statement in [
        "TRUNCATE balance_requests, request_locks",
        "VACUUM ANALYZE balance_requests",
        "VACUUM ANALYZE request_locks",
        "CHECKPOINT",
    ] {
        raw.execute(statement).await.expect("reset the tables");
    }
}

fn request(at: OffsetDateTime, caller: &CallerId, grn: &Grn, tin: &Tin) -> NewBalanceRequest {
    NewBalanceRequest {
        id: BalanceRequestId::new(),
        message_ref: UniqueReference::random(),
        caller: caller.clone(),
        api_version: ApiVersion::V1,
        grn: grn.clone(),
        tin: Some(tin.clone()),
        requested_at: at,
        expires_at: at + time::Duration::HOUR,
    }
}

/// A pool of `max_connections` that waits for a connection as long as the load needs and bounds
/// statements the way a replica does.
fn pg_config(max_connections: u32) -> PgConfig {
    PgConfig {
        max_connections,
        acquire_timeout: Duration::from_secs(10),
        statement_timeout: Duration::from_secs(5),
    }
}

/// How many requests `PgTracker` made, and in how long.
async fn tracker_run(url: &str, settings: &Settings) -> (u64, Duration) {
    let (duration, clients, pool_size) = (settings.duration, settings.clients, settings.pool_size);
    let tracker = Arc::new(PgTracker::connect(url, &pg_config(pool_size)).expect("a valid URL"));
    tracker.until_listening().await;
    let outcome = Outcome::Success(Balance {
        amount: "12345678.90".parse().expect("an amount"),
        currency: "GBP".parse().expect("a currency"),
    });
    let caller = CallerId::parse("client-1").expect("a caller");
    let grn = Grn::parse_v1("21GB3300BE0001067A001017").expect("a GRN");
    let tin = Tin::parse("GB12345678900").expect("a TIN");

    // Open every connection before the clock starts, as pgbench does.
    let warm: Vec<_> = (0..pool_size)
        .map(|_| {
            let tracker = Arc::clone(&tracker);
            tokio::spawn(async move { tracker.ping().await })
        })
        .collect();
    for task in warm {
        task.await.expect("warm-up").expect("ping");
    }

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (tracker, stop, done) =
                (Arc::clone(&tracker), Arc::clone(&stop), Arc::clone(&done));
            let (outcome, caller, grn, tin) =
                (outcome.clone(), caller.clone(), grn.clone(), tin.clone());
            tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let now = OffsetDateTime::now_utc();
                    let key = format!("bench/{client}/{n}");
                    let new = request(now, &caller, &grn, &tin);
                    let lock = tracker
                        .lock_and_insert(&key, now, Duration::from_secs(60), &new)
                        .await
                        .expect("lock_and_insert");
                    assert_eq!(lock, LockOutcome::Acquired);
                    let completion = tracker
                        .complete_matching(
                            new.message_id(),
                            &outcome,
                            &ReplyMatch::Grn(grn.as_str().to_owned()),
                            now,
                        )
                        .await
                        .expect("complete");
                    assert!(matches!(completion, Completion::Stored(_)));
                    n += 1;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    for task in tasks {
        task.await.expect("a client");
    }
    (counted, elapsed)
}

/// Transactions per second of pgbench running the tracker's SQL.
fn pgbench_rate(url: &str, settings: &Settings) -> f64 {
    if std::env::var_os("GBAL_BENCH_SHOW_SCRIPT").is_some() {
        println!("pgbench script:\n{}", pgbench::script());
    }
    pgbench::rate(
        url,
        settings.clients,
        settings.duration,
        settings.synchronous_commit.as_deref(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// CPU time (user + system) of this process and of its finished children.
#[derive(Debug, Clone, Copy)]
struct CpuTimes {
    own: Duration,
    children: Duration,
}

/// Reads `/proc/self/stat` (Linux; zeros elsewhere).
fn cpu_times() -> CpuTimes {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) and its closing parenthesis.
    let fields: Vec<u64> = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    // utime, stime, cutime, cstime are fields 14-17 of the whole line: 11-14 after ')'.
    let ticks = |i: usize| fields.get(i).copied().unwrap_or(0);
    // USER_HZ is 100 on Linux.
    let time = |t: u64| Duration::from_millis(t * 10);
    CpuTimes {
        own: time(ticks(11) + ticks(12)),
        children: time(ticks(13) + ticks(14)),
    }
}
