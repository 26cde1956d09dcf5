//! The tracker's per-request work against PostgreSQL, next to `pgbench` running the same SQL.
//!
//! One "request" is what a balance check costs the store: take its (caller, GRN) lock,
//! record the request, complete it (the update and its NOTIFY). The benchmark runs it with
//! `GBAL_BENCH_CLIENTS` (16) concurrent clients for `GBAL_BENCH_SECS` (10) seconds through
//! `PgTracker`, then runs `pgbench -n -M prepared -c 16 -j 2 -T 10` with a script made from
//! the very statements the tracker sends, and prints both rates and their ratio. Each run
//! starts on empty, vacuumed tables in a fresh database, dropped at the end.
//!
//! `cargo bench -p gbal-tracker --bench tracker_vs_pgbench`; `DATABASE_URL` names a server
//! where the role may create databases (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! `GBAL_PG_BIN` the folder holding `pgbench` (default: `/usr/lib/postgresql/*/bin`, then PATH).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gbal_core::outcome::Balance;
use gbal_core::{
    ApiVersion, BalanceRequestId, CallerId, Completion, Grn, LockOutcome, NewBalanceRequest,
    Outcome, Tin, Tracker, UniqueReference,
};
use gbal_tracker::postgres::sql;
use gbal_tracker::{PG_MIGRATOR, PgConfig, PgTracker};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Executor};
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
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(run(url, &settings));
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

async fn run(admin_url: String, settings: &Settings) {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(&admin_url)
        .await
        .expect("PostgreSQL at DATABASE_URL answers");
    let name = format!("gbal_bench_{}", uuid::Uuid::now_v7().simple());
    admin
        .execute(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .expect("the role may create databases");
    let options: PgConnectOptions = admin_url.parse().expect("a valid DATABASE_URL");
    let url = database_url(&admin_url, options.get_host(), options.get_port(), &name);

    let raw = PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect to the benchmark database");
    PG_MIGRATOR.run(&raw).await.expect("migrations apply");
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
        let listening = PgTracker::connect(&url, &PgConfig::default()).expect("a valid URL");
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
    admin
        .execute(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .await
        .expect("drop the benchmark database");
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

/// How many requests `PgTracker` made, and in how long.
async fn tracker_run(url: &str, settings: &Settings) -> (u64, Duration) {
    let (duration, clients, pool_size) = (settings.duration, settings.clients, settings.pool_size);
    let config = PgConfig {
        max_connections: pool_size,
        acquire_timeout: Duration::from_secs(10),
        ..PgConfig::default()
    };
    let tracker = Arc::new(PgTracker::connect(url, &config).expect("a valid URL"));
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
                    let lock = tracker
                        .acquire_lock(&key, now, Duration::from_secs(60))
                        .await
                        .expect("acquire_lock");
                    assert_eq!(lock, LockOutcome::Acquired);
                    let new = request(now, &caller, &grn, &tin);
                    tracker.insert(&new).await.expect("insert");
                    let completion = tracker
                        .complete(new.message_id(), &outcome, now)
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

/// `sql` with `$1`, `$2`, ... replaced by pgbench expressions.
fn substitute(sql: &str, params: &[&str]) -> String {
    let mut out = sql.to_owned();
    // From the highest number down, so `$1` never eats the start of `$12`.
    for (i, param) in params.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), param);
    }
    assert!(!out.contains('$'), "every parameter is replaced: {out}");
    out
}

/// The pgbench script: the tracker's own three statements, parameters drawn per transaction.
fn pgbench_script() -> String {
    // A random UUID made of two random 64-bit halves, and its first 12 bytes.
    let hex = "(lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))";
    let id = format!("{hex}::uuid");
    let message_id = format!("decode(left({hex}, 24), 'hex')");
    let key = "('bench/' || :client_id || '/' || :hi)";
    let lock = substitute(
        sql::TAKE_LOCK,
        &[key, "now()", "(now() + interval '60 seconds')"],
    );
    let insert = substitute(
        sql::INSERT,
        &[
            &id,
            &message_id,
            "'abcdefghijklmn'",
            "'client-1'",
            "1::smallint",
            "'21GB3300BE0001067A001017'",
            "'GB12345678900'",
            "now()",
            "(now() + interval '1 hour')",
        ],
    );
    let complete = substitute(
        sql::COMPLETE,
        &[
            &message_id,
            "'SUCCESS'",
            "'12345678.9'",
            "'GBP'",
            "NULL",
            "now()",
        ],
    );
    format!(
        "\\set hi random(1, 9223372036854775806)\n\\set lo random(1, 9223372036854775806)\n\
         {lock};\n{insert};\n{complete};\n"
    )
}

fn pgbench_binary() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("GBAL_PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = versions.flatten().map(|v| v.path().join("bin")).collect();
        found.sort();
        dirs.extend(found.into_iter().rev());
    }
    dirs.into_iter()
        .map(|d| d.join("pgbench"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("pgbench"))
}

/// Transactions per second of pgbench running [`pgbench_script`].
fn pgbench_rate(url: &str, settings: &Settings) -> f64 {
    let (duration, clients) = (settings.duration, settings.clients);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let script = dir.path().join("request.sql");
    let text = pgbench_script();
    if std::env::var_os("GBAL_BENCH_SHOW_SCRIPT").is_some() {
        println!("pgbench script:\n{text}");
    }
    std::fs::write(&script, text).expect("write the pgbench script");
    let mut command = Command::new(pgbench_binary());
    if let Some(value) = &settings.synchronous_commit {
        command.env("PGOPTIONS", format!("-c synchronous_commit={value}"));
    }
    let output = command
        .args(["-n", "-M", "prepared", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(duration.as_secs().to_string())
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .expect("run pgbench");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pgbench failed:\n{stdout}\n{stderr}"
    );
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
        .unwrap_or("");
    if !failed.contains(": 0 ") && !failed.is_empty() {
        panic!("pgbench transactions failed: {failed}\n{stderr}");
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .unwrap_or_else(|| panic!("no tps in pgbench's output:\n{stdout}\n{stderr}"))
}

/// `url` pointing at another host, port and database; user and parameters kept.
fn database_url(url: &str, host: &str, port: u16, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    let query = path.split_once('?').map(|(_, q)| format!("?{q}"));
    format!(
        "{scheme}://{}{host}:{port}/{database}{}",
        user.unwrap_or_default(),
        query.unwrap_or_default()
    )
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
