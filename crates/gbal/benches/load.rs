//! End-to-end load benchmark: the real `gbal serve` on PostgreSQL, driven over HTTP, next to
//! `pgbench` running the durable two-commit SQL of one request in the same run.
//!
//! Three modes: `v2-eis` (API v2 `POST /{grn}/balance`, the phase-5 JSON calls to a standalone
//! `gbal gms-sim` as the GB and XI instances: the production path), `embedded` (API v1
//! `POST /balances`, the built-in GMS simulator) and `ncts-xml` (API v1, IE034 over HTTP to a
//! standalone `gbal gms-sim`, replies posted back to gbal's internal listener). Every request
//! has its own caller (a distinct token `sub`), so neither the once-a-minute rule nor the
//! per-caller rate applies; GMS's per-TIN query limit is raised out of the way.
//!
//! Both sides get the same: `GBAL_LOAD_CLIENTS` HTTP clients against gbal, which has as many
//! database connections, and as many pgbench clients. pgbench runs, for every mode, what the
//! store does for a request whose reply comes later (`gbal_testkit::pgbench::Work::ReplyLater`:
//! the lock and the pending request in one statement, then the completion and its
//! notification, each commit waiting for the WAL): the durable two-commit bound. Each side is
//! warmed up before it is measured. Throughput counts only answers of the expected kind (200
//! with a balance); any other answer is an error, counted and printed apart. For each mode it
//! runs `GBAL_LOAD_ROUNDS` (at least 3) alternating rounds of gbal's maximum throughput
//! (closed loop) and pgbench's rate, on emptied tables each, and prints every round with its
//! ratio, gbal's CPU time per check (the process's user and system time over the checks
//! answered; the standalone simulator's beside it) and the medians; then the database
//! statements per check (the database's commits over 3 s of checks, from
//! `pg_stat_database`), latency percentiles at half the median throughput (open loop,
//! measured from each request's scheduled start), errors, and gbal's peak RSS.
//!
//! ```sh
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres cargo bench -p gbal --bench load
//! ```
//! Knobs: `GBAL_LOAD_MODES` (`v2-eis,embedded,ncts-xml`), `GBAL_LOAD_SECS` (15, per side and round),
//! `GBAL_LOAD_CLIENTS` (16, on both sides), `GBAL_LOAD_ROUNDS` (3), `GBAL_LOAD_SOAK_SECS` (0;
//! 600 runs the soak: half the maximum throughput for that long, RSS sampled every 10 s,
//! growth reported between minute 2 and the end).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gbal_testkit::pgbench;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde::Serialize;
use sqlx::Connection as _;

const SECRET: &str = "load-benchmark-secret-0123456789abcdefghijklmnop";
const REPLY_TOKEN: &str = "load-benchmark-reply-token";
const GMS_TOKEN: &str = "load-benchmark-gms-token";
const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";
/// Clients on each side (HTTP clients and gbal's database connections; pgbench's clients).
const CLIENTS: usize = 16;
/// Alternating rounds of (gbal, pgbench), at the least.
const MIN_ROUNDS: usize = 3;
/// Each side's warm-up.
const WARM_UP: Duration = Duration::from_secs(2);

/// Sandbox guarantees that answer with a balance at once: (GRN, TIN, access code).
const GUARANTEES: [(&str, &str, &str); 7] = [
    ("26GB0000010000012", "GB954131533000", "AC01"),
    ("26GB0000010000021", "GB954131533000", "AC01"),
    ("26GB0000010000039", "GB954131533000", "AC01"),
    ("26GB0000010000047", "GB123456789000", "AB12"),
    ("26XI0000010000010", "XI954131533000", "AC01"),
    ("26XI0000010000028", "GB954131533000", "AC01"),
    ("26XI0000010000036", "XI954131533000", "AC01"),
];

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iss: &'a str,
    aud: &'a str,
    scope: &'a str,
    exp: i64,
}

fn token(key: &EncodingKey, sub: &str) -> String {
    let claims = Claims {
        sub,
        iss: "gbal",
        aud: "gbal",
        scope: "common-transit-convention-guarantee-balance",
        exp: time::OffsetDateTime::now_utc().unix_timestamp() + 3600,
    };
    encode(&Header::new(Algorithm::HS256), &claims, key).expect("sign")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed on drop; its output is drained so it never blocks.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(args: &[&str], env: &[(&str, String)], ready_line: &str) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gbal"));
    cmd.args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn gbal");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    let (tx, rx) = std::sync::mpsc::channel();
    let ready_line = ready_line.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !sent && line.contains(&ready_line) {
                let _ = tx.send(());
                sent = true;
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = child.kill();
        panic!("gbal {args:?} did not start");
    }
    Proc(child)
}

/// Resident set size of a process, current and peak, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Clock ticks per second of `/proc/<pid>/stat`'s CPU times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU time (user and system, all threads) a process has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command's closing parenthesis start with the state (field 3);
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Duration::from_secs_f64((ticks(11) + ticks(12)) / clock_ticks())
}

/// Transactions committed so far in `database` (every statement gbal sends is one), read
/// from another database's connection so that reading them does not add to them.
async fn commits(admin: &mut sqlx::PgConnection, database: &str) -> i64 {
    sqlx::query_scalar("SELECT xact_commit FROM pg_stat_database WHERE datname = $1")
        .bind(database)
        .fetch_one(admin)
        .await
        .expect("pg_stat_database")
}

/// [`commits`] once the server has them all: a busy backend reports its counts at most once
/// a second and an idle one within ten seconds, so this waits that long first.
async fn settled_commits(admin: &mut sqlx::PgConnection, database: &str) -> i64 {
    tokio::time::sleep(Duration::from_secs(11)).await;
    commits(admin, database).await
}

struct Target {
    base: String,
    client: reqwest::Client,
    key: EncodingKey,
    mode: String,
    /// API v2 (`POST /{grn}/balance`) rather than v1 (`POST /balances`).
    v2: bool,
    next: AtomicU64,
}

impl Target {
    /// One balance check by a caller of its own; `Ok(())` for a 200 with a balance.
    async fn request(&self) -> Result<(), String> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let (grn, tin, code) = GUARANTEES[(i as usize) % GUARANTEES.len()];
        let token = token(&self.key, &format!("load-{}-{i}", self.mode));
        let request = if self.v2 {
            self.client
                .post(format!("{}/{grn}/balance", self.base))
                .header("Accept", V2)
                .body(format!(r#"{{"accessCode":"{code}"}}"#))
        } else {
            self.client
                .post(format!("{}/balances", self.base))
                .header("Accept", V1)
                .body(format!(
                    r#"{{"taxIdentifier":"{tin}","guaranteeReference":"{grn}","accessCode":"{code}"}}"#
                ))
        };
        let response = request
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| format!("body: {e}"))?;
        let expected: &[u8] = if self.v2 {
            br#","balance":"#
        } else {
            br#"{"response":{"balance":"#
        };
        if status == 200 && body.windows(expected.len()).any(|w| w == expected) {
            Ok(())
        } else {
            Err(format!("{status}: {}", String::from_utf8_lossy(&body)))
        }
    }
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

impl Tally {
    fn add(&mut self, latency: Duration, result: Result<(), String>) {
        match result {
            Ok(()) => self.latencies.push(latency),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    fn percentile(&mut self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }

    fn summary(&mut self) -> String {
        format!(
            "p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, {} errors{}",
            self.percentile(0.50),
            self.percentile(0.90),
            self.percentile(0.99),
            self.errors,
            self.first_error
                .as_ref()
                .map(|e| format!(" (first: {e})"))
                .unwrap_or_default()
        )
    }
}

/// Closed loop: `clients` workers, each sending as soon as its last answer came. The rate
/// counts the answers of the expected kind only.
async fn closed_loop(target: Arc<Target>, clients: usize, duration: Duration) -> (f64, Tally) {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (target, stop) = (target.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let result = target.request().await;
                    tally.add(t.elapsed(), result);
                }
                tally
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    for w in workers {
        tally.merge(w.await.expect("worker"));
    }
    let rate = tally.latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, tally)
}

/// Open loop: one request every `1/rate` s whatever the answers do; each latency counts from
/// the request's scheduled start, so a stall is not hidden by fewer requests being sent.
async fn open_loop(
    target: Arc<Target>,
    rate: f64,
    duration: Duration,
    mut sample: impl FnMut(Duration, Window),
) -> Tally {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut n: u32 = 0;
    let mut last_sample = Duration::ZERO;
    let in_flight = Arc::new(InFlight::default());
    loop {
        let due = interval * n;
        if due >= duration {
            break;
        }
        tokio::time::sleep_until((started + due).into()).await;
        let (target, tx, counted) = (target.clone(), tx.clone(), in_flight.clone());
        let scheduled = started + due;
        in_flight.start();
        tokio::spawn(async move {
            let result = target.request().await;
            let latency = scheduled.elapsed();
            counted.end(latency);
            let _ = tx.send((latency, result));
        });
        n += 1;
        if due - last_sample >= Duration::from_secs(10) {
            last_sample = due;
            sample(due, in_flight.take_window());
        }
    }
    drop(tx);
    let mut tally = Tally::default();
    while let Some((latency, result)) = rx.recv().await {
        tally.add(latency, result);
    }
    tally
}

/// Requests of the open loop in flight now, and the most at once and the slow ones since the
/// last sample.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicU64,
    peak: AtomicU64,
    slow: AtomicU64,
}

/// What a sampling window saw: the most requests in flight at once, and how many took longer
/// than [`SLOW`].
#[derive(Debug, Clone, Copy)]
struct Window {
    peak_in_flight: u64,
    slow: u64,
}

/// A request slower than this counts as slow in a [`Window`].
const SLOW: Duration = Duration::from_millis(100);

impl InFlight {
    fn start(&self) {
        let now = self.now.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak.fetch_max(now, Ordering::Relaxed);
    }

    fn end(&self, latency: Duration) {
        self.now.fetch_sub(1, Ordering::Relaxed);
        if latency > SLOW {
            self.slow.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take_window(&self) -> Window {
        Window {
            peak_in_flight: self
                .peak
                .swap(self.now.load(Ordering::Relaxed), Ordering::Relaxed),
            slow: self.slow.swap(0, Ordering::Relaxed),
        }
    }
}

/// Empties the request tables and checkpoints, so that gbal and pgbench each start from the
/// same state (no bloated indexes, no pending WAL to flush).
async fn reset(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to the bench database");
    for statement in [
        "TRUNCATE balance_requests, request_locks",
        "VACUUM ANALYZE balance_requests",
        "VACUUM ANALYZE request_locks",
        "CHECKPOINT",
    ] {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .expect("reset the tables");
    }
}

fn database_url(admin: &str, database: &str) -> String {
    let (head, _) = admin.rsplit_once('/').expect("a database URL with a path");
    format!("{head}/{database}")
}

/// The median of `values` (sorted in place).
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// pgbench doing `work` on `url` for `duration` with `clients` clients, off the async threads.
async fn pgbench_rate(work: pgbench::Work, url: &str, clients: usize, duration: Duration) -> f64 {
    let url = url.to_owned();
    let clients = u32::try_from(clients).expect("a client count");
    tokio::task::spawn_blocking(move || pgbench::rate_for(work, &url, clients, duration, None))
        .await
        .expect("pgbench task")
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run_mode(
    mode: &str,
    admin: &str,
    clients: usize,
    rounds: usize,
    secs: u64,
    soak: u64,
) -> f64 {
    let database = format!(
        "gbal_load_{}",
        gbal_core::BalanceRequestId::new().message_id().to_hex()
    );
    let mut admin_conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to DATABASE_URL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin_conn)
        .await
        .expect("create the database");
    let url = database_url(admin, &database);

    let (public, internal, sim) = (free_port(), free_port(), free_port());
    let mut env = vec![
        ("DATABASE_URL", url.clone()),
        ("GBAL_PUBLIC__LISTEN", format!("127.0.0.1:{public}")),
        ("GBAL_INTERNAL__LISTEN", format!("127.0.0.1:{internal}")),
        ("GBAL_AUTH__HS256_SECRET", SECRET.to_owned()),
        ("GBAL_RATE_LIMIT__PER_SECOND", "100000".to_owned()),
        ("GBAL_RATE_LIMIT__BURST", "100000".to_owned()),
        ("GBAL_SIMULATOR__QUERY_LIMIT", "1000000000".to_owned()),
        // As many database connections as there are HTTP clients and pgbench clients.
        ("GBAL_DATABASE__MAX_CONNECTIONS", clients.to_string()),
    ];
    let v2 = mode == "v2-eis";
    if v2 {
        env.push(("GBAL_GMS__TRANSPORT", "eis-json".to_owned()));
        // The GB and XI instances are one standalone simulator.
        for (url, token) in [
            ("GBAL_GMS__EIS__GB__URL", "GBAL_GMS__EIS__GB__TOKEN"),
            ("GBAL_GMS__EIS__XI__URL", "GBAL_GMS__EIS__XI__TOKEN"),
        ] {
            env.push((url, format!("http://127.0.0.1:{sim}")));
            env.push((token, GMS_TOKEN.to_owned()));
        }
    }
    let standalone = mode == "ncts-xml" || v2;
    let _simulator = standalone.then(|| {
        if !v2 {
            env.push(("GBAL_GMS__TRANSPORT", "ncts-xml".to_owned()));
            env.push((
                "GBAL_GMS__URL",
                format!("http://127.0.0.1:{sim}/movements/messages"),
            ));
            env.push(("GBAL_GMS__TOKEN", GMS_TOKEN.to_owned()));
            env.push(("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN.to_owned()));
        }
        let listen = format!("127.0.0.1:{sim}");
        let reply_to = format!("http://127.0.0.1:{internal}");
        spawn(
            &[
                "gms-sim",
                "--listen",
                &listen,
                "--reply-to",
                &reply_to,
                "--query-limit",
                "1000000000",
            ],
            &[
                ("GBAL_SIM_REPLY_TOKEN", REPLY_TOKEN.to_owned()),
                ("GBAL_SIM_TOKEN", GMS_TOKEN.to_owned()),
            ],
            "GMS simulator listening",
        )
    });
    let gbal = spawn(&["serve"], &env, "public API:");
    let pid = gbal.0.id();

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let target = Arc::new(Target {
        base: format!("http://127.0.0.1:{public}/customs/guarantees"),
        client,
        key: EncodingKey::from_secret(SECRET.as_bytes()),
        mode: mode.to_owned(),
        v2,
        next: AtomicU64::new(0),
    });
    // The yardstick of every mode: pgbench running the durable two-commit SQL of a request
    // whose reply comes later (the lock and the pending request, then the completion and
    // its notification), each commit waiting for the WAL.
    let work = pgbench::Work::ReplyLater;
    let sim_pid = _simulator.as_ref().map(|p| p.0.id());
    // Warm up each side: connections, prepared statements, the first pages of every index
    // (pgbench's once, on the database gbal's rounds then share).
    let _ = closed_loop(target.clone(), clients, WARM_UP).await;
    reset(&url).await;
    let _ = pgbench_rate(work, &url, clients, WARM_UP).await;

    // Alternating rounds: gbal, then pgbench on the same emptied tables, while gbal is idle
    // but still listening.
    let duration = Duration::from_secs(secs);
    let (mut gbal_rates, mut pgbench_rates, mut ratios, mut cpus) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        reset(&url).await;
        let (cpu_before, sim_before) = (cpu_time(pid), sim_pid.map(cpu_time));
        let (rate, mut tally) = closed_loop(target.clone(), clients, duration).await;
        let checks = tally.latencies.len() as u64 + tally.errors;
        let cpu_us = (cpu_time(pid) - cpu_before).as_secs_f64() * 1e6 / checks.max(1) as f64;
        let sim_cpu = sim_pid
            .zip(sim_before)
            .map(|(p, before)| {
                format!(
                    ", simulator {:.0} µs",
                    (cpu_time(p) - before).as_secs_f64() * 1e6 / checks.max(1) as f64
                )
            })
            .unwrap_or_default();
        let error_rate = tally.errors as f64 / duration.as_secs_f64();
        reset(&url).await;
        let tps = pgbench_rate(work, &url, clients, duration).await;
        println!(
            "{mode}: round {round}/{rounds}: gbal {rate:.0} balances/s ({clients} clients, {secs} s; \
             errors {error_rate:.1}/s: {}), CPU per check: gbal {cpu_us:.0} µs{sim_cpu}; pgbench \
             {tps:.0} transactions/s ({clients} clients): {:.1}%",
            tally.summary(),
            rate / tps * 100.0
        );
        gbal_rates.push(rate);
        pgbench_rates.push(tps);
        ratios.push(rate / tps * 100.0);
        cpus.push(cpu_us);
    }
    let max_rate = median(&mut gbal_rates);
    let tps = median(&mut pgbench_rates);
    let ratio = median(&mut ratios);
    let cpu_us = median(&mut cpus);
    let target_ratio = match mode {
        "v2-eis" => 100.0,
        "embedded" => 90.0,
        _ => 50.0,
    };
    println!(
        "{mode}: median of {rounds} rounds: gbal {max_rate:.0} balances/s, pgbench {tps:.0} \
         transactions/s with the durable two-commit per-request SQL; gbal / pgbench {ratio:.1}% \
         (each round's ratio: {}; target at least {target_ratio:.0}%); gbal CPU per check \
         {cpu_us:.0} µs{}",
        ratios
            .iter()
            .map(|r| format!("{r:.1}%"))
            .collect::<Vec<_>>()
            .join(", "),
        if v2 { " (target at most 120 µs)" } else { "" }
    );

    // Statements per check: the database's commits over a few seconds of checks, once the
    // server has counted them all (every statement gbal sends commits on its own).
    reset(&url).await;
    let before = settled_commits(&mut admin_conn, &database).await;
    let (_, tally) = closed_loop(target.clone(), clients, Duration::from_secs(3)).await;
    let after = settled_commits(&mut admin_conn, &database).await;
    let checks = tally.latencies.len() as u64 + tally.errors;
    println!(
        "{mode}: database statements per check {:.2} ({} commits for {checks} checks){}",
        (after - before) as f64 / checks.max(1) as f64,
        after - before,
        if v2 { " (target 1)" } else { "" }
    );

    let half = max_rate / 2.0;
    reset(&url).await;
    let mut at_half = open_loop(target.clone(), half, duration, |_, _| {}).await;
    println!(
        "{mode}: at half the median ({half:.0} requests/s, open loop, {secs} s): {}",
        at_half.summary()
    );

    if soak > 0 {
        let mut samples: Vec<(Duration, f64)> = Vec::new();
        let mut soak_tally = open_loop(
            target.clone(),
            half,
            Duration::from_secs(soak),
            |at, window| {
                let (rss, _) = rss_mb(pid);
                samples.push((at, rss));
                println!(
                    "{mode}: soak {:>4} s: RSS {rss:.1} MB; in the last 10 s: at most {} requests in flight, {} slower than {} ms",
                    at.as_secs(),
                    window.peak_in_flight,
                    window.slow,
                    SLOW.as_millis()
                );
            },
        )
        .await;
        let (rss_end, _) = rss_mb(pid);
        let at_2min = samples
            .iter()
            .find(|(at, _)| *at >= Duration::from_secs(120))
            .map_or(f64::NAN, |s| s.1);
        println!(
            "{mode}: soak {soak} s at {half:.0} requests/s: {}; RSS at minute 2 {at_2min:.1} MB, at the end {rss_end:.1} MB, growth {:+.1}% (target under 10%)",
            soak_tally.summary(),
            (rss_end - at_2min) / at_2min * 100.0
        );
    }
    let (_, peak) = rss_mb(pid);
    println!("{mode}: gbal peak RSS {peak:.1} MB (target under 100 MB)");

    drop(gbal);
    drop(_simulator);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut admin_conn)
    .await
    .expect("drop the database");
    max_rate
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing: run only for real.
    if !std::env::args().any(|a| a == "--bench") {
        println!("load benchmark: run it with `cargo bench -p gbal --bench load`");
        return;
    }
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let modes =
        std::env::var("GBAL_LOAD_MODES").unwrap_or_else(|_| "v2-eis,embedded,ncts-xml".to_owned());
    let secs = env_or("GBAL_LOAD_SECS", 15u64);
    let clients = env_or("GBAL_LOAD_CLIENTS", CLIENTS);
    let rounds = env_or("GBAL_LOAD_ROUNDS", MIN_ROUNDS).max(MIN_ROUNDS);
    let soak = env_or("GBAL_LOAD_SOAK_SECS", 0u64);
    println!(
        "gbal load benchmark: {} CPUs, modes {modes}, {clients} clients on each side, {rounds} \
         rounds of {secs} s per side",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for mode in modes.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        runtime.block_on(run_mode(mode, &admin, clients, rounds, secs, soak));
    }
}
