//! Fault tests of the real binaries: `gbal serve` on the `ncts-xml` transport, talking to a
//! `gbal gms-sim` process that posts its replies back to gbal's internal listener.
//!
//! - GMS down: the breaker opens, calls fail fast with 503 and `Retry-After` without reaching
//!   GMS, `/readyz` stays 200, and calls go through again once GMS is back (no restart);
//! - a reply after `sync_wait`: 202, then `GET` gives the balance;
//! - a reply that never comes: pending until it expires (its expiry brought forward by the
//!   database's clock, which measures it), then 404 and the row is gone;
//! - PostgreSQL stopped under load (a private cluster, `pg_ctl stop -m immediate`, then
//!   `pg_ctl start`): 503s, `/readyz` 503, nothing hangs past its timeout, recovery without
//!   a restart, and every 202 still readable afterwards;
//! - gbal killed with SIGKILL while requests are pending, restarted on the same database and
//!   internal port: the late replies complete them.
//!
//! Every test runs on a database of its own (`gbal_fault_<random>` on the shared server, or
//! the private cluster) and is bounded in time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gbal_testkit::{TestDatabase, with_database};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::process::{Server, Sim, dev_token, free_port, http_client, wait_ready_at};

const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";
pub const REPLY_TOKEN: &str = "fault-test-reply-token-0123456789";
const TIN: &str = "GB954131533000";
/// Answered at once by the sandbox: 262626 GBP.
const GRN_BALANCE: &str = "26GB0000010000012";
/// Answered 2 s late by the sandbox: 10000 GBP.
const GRN_LATE: &str = "26GB0000090000011";
/// Never answered by the sandbox.
const GRN_NO_REPLY: &str = "26GB0000090000029";

/// What one POST or GET came back with.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub elapsed: Duration,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn retry_after(&self) -> Option<u64> {
        self.header("retry-after").and_then(|v| v.parse().ok())
    }
}

async fn answer(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let started = Instant::now();
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    Ok(Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        elapsed: started.elapsed(),
    })
}

/// POST a v1 check.
pub async fn post_v1(
    client: &reqwest::Client,
    public: &str,
    token: &str,
    grn: &str,
) -> Result<Answer, reqwest::Error> {
    answer(
        client
            .post(format!("{public}/customs/guarantees/balances"))
            .bearer_auth(token)
            .header("Accept", V1)
            .json(&json!({"taxIdentifier": TIN, "guaranteeReference": grn, "accessCode": "AC01"})),
    )
    .await
}

/// GET a v1 balance request.
pub async fn get_v1(
    client: &reqwest::Client,
    public: &str,
    token: &str,
    id: &str,
) -> Result<Answer, reqwest::Error> {
    answer(
        client
            .get(format!("{public}/customs/guarantees/balances/{id}"))
            .bearer_auth(token)
            .header("Accept", V1),
    )
    .await
}

/// The environment of a `gbal serve` on ncts-xml, PostgreSQL at `database_url`, posting
/// IE034s to `gms_url`, with its internal listener on `internal_port` (0: any).
pub fn ncts_env(
    database_url: &str,
    gms_url: &str,
    internal_port: u16,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("DATABASE_URL", database_url.to_owned()),
        ("GBAL_GMS__TRANSPORT", "ncts-xml".to_owned()),
        ("GBAL_GMS__URL", gms_url.to_owned()),
        ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN.to_owned()),
        (
            "GBAL_INTERNAL__LISTEN",
            format!("127.0.0.1:{internal_port}"),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

/// Starts `gbal serve` off the async worker threads (it blocks until gbal says where it
/// listens).
pub async fn start_gbal(env: Vec<(String, String)>) -> Server {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start(&env)
    })
    .await
    .expect("gbal serve started")
}

/// Starts `gbal gms-sim` off the async worker threads.
pub async fn start_sim(listen: String, args: Vec<String>) -> Sim {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Sim::start(&listen, &args)
    })
    .await
    .expect("gbal gms-sim started")
}

fn reply_args(internal: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--reply-to".to_owned(),
        internal.to_owned(),
        "--reply-token".to_owned(),
        REPLY_TOKEN.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

/// A simulator replying to a gbal whose internal listener will be on a reserved port, then
/// that gbal.
async fn sim_and_gbal(
    database_url: &str,
    sim_extra: &[&str],
    gbal_extra: &[(&str, &str)],
) -> (Sim, Server, u16) {
    let internal_port = free_port();
    let sim = start_sim(
        "127.0.0.1:0".to_owned(),
        reply_args(&format!("http://127.0.0.1:{internal_port}"), sim_extra),
    )
    .await;
    let env = ncts_env(database_url, &sim.messages_url(), internal_port, gbal_extra);
    let server = start_gbal(env).await;
    wait_ready_at(&server.public, Duration::from_secs(20)).await;
    (sim, server, internal_port)
}

fn is_pending(body: &Value) -> bool {
    let request = &body["request"];
    request.is_object() && request.get("completedAt").is_none() && request.get("response").is_none()
}

/// Polls GET until the request is completed, and returns that answer.
async fn until_completed(
    client: &reqwest::Client,
    public: &str,
    token: &str,
    id: &str,
    within: Duration,
) -> Answer {
    // At a client's pace, within the caller's request rate.
    let pace = Duration::from_millis(200);
    gbal_testkit::eventually_some_every(
        within,
        pace,
        &format!("request {id} completed"),
        || async {
            let got = get_v1(client, public, token, id).await.expect("GET");
            assert_eq!(got.status, 200, "GET {id}: {:?}", got.body);
            (!is_pending(&got.body)).then_some(got)
        },
    )
    .await
}

fn assert_balance(got: &Answer, id: &str, balance: Value, currency: &str) {
    let request = &got.body["request"];
    assert_eq!(request["balanceId"], id, "{:?}", got.body);
    assert!(request["completedAt"].is_string(), "{:?}", got.body);
    assert_eq!(
        request["response"],
        json!({"status": "SUCCESS", "balance": balance, "currency": currency}),
        "{:?}",
        got.body
    );
}

/// `(pending, all)` rows of the request table.
async fn row_counts(db: &TestDatabase) -> (i64, i64) {
    let pool = db.pool().await;
    let counts: (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE completed_at IS NULL), count(*) FROM balance_requests",
    )
    .fetch_one(&pool)
    .await
    .expect("count the requests");
    pool.close().await;
    counts
}

// ---------------------------------------------------------------------------------------
// GMS down

/// A "GMS" that accepts connections and never answers, counting them.
struct Blackhole {
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Blackhole {
    async fn bind(port: u16) -> Blackhole {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the blackhole on GMS's port");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(stream);
            }
        });
        Blackhole { accepted, task }
    }

    async fn close(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gms_down_opens_the_breaker_fails_fast_and_recovers_without_restart() {
    with_database("gbal_fault", Duration::from_secs(50), |db| async move {
        // Nothing listens on GMS's port: every call is refused.
        let gms_port = free_port();
        let open_for = Duration::from_secs(3);
        let env = ncts_env(
            &db.url,
            &format!("http://127.0.0.1:{gms_port}/movements/messages"),
            0,
            &[
                ("GBAL_GMS__BREAKER__FAILURES", "3"),
                ("GBAL_GMS__BREAKER__OPEN_FOR", "3s"),
                ("GBAL_GMS__RETRY__MAX_ATTEMPTS", "1"),
                ("GBAL_GMS__REQUEST_TIMEOUT", "5s"),
                ("GBAL_BALANCE__SYNC_WAIT", "2s"),
            ],
        );
        let mut server = start_gbal(env).await;
        let pid = server.pid();
        wait_ready_at(&server.public, Duration::from_secs(20)).await;
        let client = http_client(Duration::from_secs(15));
        let public = server.public.clone();
        let ready = || async {
            client
                .get(format!("{public}/readyz"))
                .send()
                .await
                .expect("readyz")
                .status()
                .as_u16()
        };

        // One caller asking about one GRN again and again: a check whose IE034 never reached
        // GMS releases its lock, so each retry is served (503 again, never 429). Retry-After is
        // a second while the breaker is closed, then its cool-down.
        let mut n = 0;
        let mut next_token = || {
            n += 1;
            dev_token(&format!("gms-down-{n}"))
        };
        let caller = dev_token("gms-down-one-caller");
        for i in 0..3 {
            let got = post_v1(&client, &public, &caller, GRN_BALANCE)
                .await
                .expect("POST");
            assert_eq!(got.status, 503, "refused call {i}: {:?}", got.body);
            assert_eq!(got.body["code"], "SERVICE_UNAVAILABLE");
            let retry_after = got.retry_after().expect("Retry-After");
            if i < 2 {
                assert_eq!(retry_after, 1, "the breaker is still closed");
            } else {
                assert!(
                    (2..=open_for.as_secs()).contains(&retry_after),
                    "the third failure opens the breaker for {open_for:?}: {retry_after}"
                );
            }
            assert_eq!(ready().await, 200, "/readyz must not follow GMS");
        }
        let opened = Instant::now();

        // The breaker is open: GMS's port now swallows connections without answering, so a
        // call that reached it would hang for gms.request_timeout (5 s). None reaches it.
        let blackhole = Blackhole::bind(gms_port).await;
        for i in 0..5 {
            let got = post_v1(&client, &public, &caller, GRN_BALANCE)
                .await
                .expect("POST");
            assert_eq!(
                got.status, 503,
                "call {i} with the breaker open: {:?}",
                got.body
            );
            assert_eq!(got.body["code"], "SERVICE_UNAVAILABLE");
            // A call that reached GMS would hang for gms.request_timeout (5 s).
            assert!(
                got.elapsed < Duration::from_secs(5),
                "call {i} with the breaker open took {:?}",
                got.elapsed
            );
            let retry_after = got.retry_after().expect("Retry-After");
            assert!(
                (1..=open_for.as_secs()).contains(&retry_after),
                "Retry-After {retry_after} with a {open_for:?} breaker"
            );
            assert_eq!(ready().await, 200, "/readyz must not follow GMS");
        }
        assert_eq!(
            blackhole.accepted.load(Ordering::SeqCst),
            0,
            "an open breaker must not call GMS"
        );
        blackhole.close().await;
        let logs = server.output().join("\n");
        assert!(logs.contains("GMS circuit open"), "{logs}");

        // GMS comes back on the same port: after the cool-down the same caller's retry goes
        // through (200, not 429: none of its refused checks kept the lock) and closes the
        // breaker; no restart.
        let _sim = start_sim(
            format!("127.0.0.1:{gms_port}"),
            reply_args(&server.internal, &[]),
        )
        .await;
        // At a client's pace, within the caller's request rate.
        let recovered = gbal_testkit::eventually_some_every(
            open_for + Duration::from_secs(20),
            Duration::from_millis(200),
            "GMS comes back into use",
            || {
                let token = caller.clone();
                let (client, public) = (&client, &public);
                async move {
                    let got = post_v1(client, public, &token, GRN_BALANCE)
                        .await
                        .expect("POST");
                    if got.status == 200 {
                        assert_eq!(
                            got.body,
                            json!({"response": {"balance": 262626, "currency": "GBP"}})
                        );
                        return Some(opened.elapsed());
                    }
                    assert_eq!(got.status, 503, "{:?}", got.body);
                    None
                }
            },
        )
        .await;
        // Not before the cool-down (the breaker's timer guarantees it; Retry-After rounds).
        assert!(
            recovered >= open_for - Duration::from_millis(300),
            "a call went through {recovered:?} after the breaker opened for {open_for:?}"
        );
        // Closed again: the next calls go through at once.
        for _ in 0..3 {
            let got = post_v1(&client, &public, &next_token(), GRN_BALANCE)
                .await
                .expect("POST");
            assert_eq!(got.status, 200, "{:?}", got.body);
        }
        assert!(server.is_running());
        assert_eq!(server.pid(), pid);
        eprintln!(
            "GMS down: breaker open for {open_for:?}, first success {recovered:?} after it opened"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Late and dropped replies

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_after_sync_wait_gives_202_then_get_gives_the_balance() {
    with_database("gbal_fault", Duration::from_secs(40), |db| async move {
        let (_sim, server, _) = sim_and_gbal(
            &db.url,
            &[],
            &[
                ("GBAL_BALANCE__SYNC_WAIT", "1s"),
                ("GBAL_BALANCE__V2_WAIT", "1s"),
            ],
        )
        .await;
        let client = http_client(Duration::from_secs(15));
        let token = dev_token("late-reply");

        // The sandbox answers this GRN 2 s late: after the 1 s wait.
        let posted = Instant::now();
        let got = post_v1(&client, &server.public, &token, GRN_LATE)
            .await
            .expect("POST");
        assert_eq!(got.status, 202, "{:?}", got.body);
        // Not before the wait ran out (a lower bound the wait's timer guarantees).
        assert!(
            got.elapsed >= Duration::from_millis(900),
            "the 202 took {:?} with a 1 s sync_wait",
            got.elapsed
        );
        let id = got.body["balanceId"]
            .as_str()
            .expect("balanceId")
            .to_owned();
        let path = format!("/customs/guarantees/balances/{id}");
        assert_eq!(got.header("location"), Some(path.as_str()));
        assert_eq!(got.body["_links"]["self"]["href"], path);

        let pending = get_v1(&client, &server.public, &token, &id)
            .await
            .expect("GET");
        assert_eq!(pending.status, 200);
        assert!(
            is_pending(&pending.body) || posted.elapsed() > Duration::from_secs(2),
            "completed before GMS replied: {:?}",
            pending.body
        );
        assert_eq!(pending.body["request"]["guaranteeReference"], GRN_LATE);
        assert_eq!(pending.body["request"]["taxIdentifier"], TIN);

        let done = until_completed(
            &client,
            &server.public,
            &token,
            &id,
            Duration::from_secs(10),
        )
        .await;
        assert_balance(&done, &id, json!(10000), "GBP");
        let completed_after = posted.elapsed();
        assert!(
            completed_after >= Duration::from_millis(1900),
            "completed {completed_after:?} after the POST: before GMS's 2 s reply"
        );
        // Another caller cannot see it.
        let other = get_v1(&client, &server.public, &dev_token("someone-else"), &id)
            .await
            .expect("GET");
        assert_eq!(other.status, 404);

        // v2 has no GET: the same late reply is a 504 there.
        let v2 = answer(
            client
                .post(format!(
                    "{}/customs/guarantees/{GRN_LATE}/balance",
                    server.public
                ))
                .bearer_auth(dev_token("late-reply-v2"))
                .header("Accept", V2)
                .json(&json!({"accessCode": "AC01"})),
        )
        .await
        .expect("v2 POST");
        assert_eq!(v2.status, 504, "{:?}", v2.body);
        assert_eq!(v2.body["code"], "GATEWAY_TIMEOUT");
        eprintln!(
            "late reply: 202 after {:?}, completed {completed_after:?} after the POST",
            got.elapsed
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dropped_reply_stays_pending_until_it_expires_then_404() {
    with_database("gbal_fault", Duration::from_secs(40), |db| async move {
        // balance.ttl is at least a minute past the request timeout; the request's expiry is
        // brought forward below instead, by the database's clock, which measures it.
        let ttl = Duration::from_secs(3);
        let (_sim, server, _) = sim_and_gbal(
            &db.url,
            &[],
            &[
                ("GBAL_BALANCE__SYNC_WAIT", "500ms"),
                ("GBAL_BALANCE__V2_WAIT", "500ms"),
                ("GBAL_EXPIRY__INTERVAL", "1s"),
            ],
        )
        .await;
        let client = http_client(Duration::from_secs(10));
        let token = dev_token("dropped-reply");

        let got = post_v1(&client, &server.public, &token, GRN_NO_REPLY)
            .await
            .expect("POST");
        assert_eq!(got.status, 202, "{:?}", got.body);
        let id = got.body["balanceId"].as_str().expect("balanceId").to_owned();
        let posted = Instant::now();
        let pool = db.pool().await;
        let shortened = sqlx::query(
            "UPDATE balance_requests SET expires_at = now() + $2::bigint * interval '1 millisecond' \
             WHERE id = $1::text::uuid",
        )
        .bind(&id)
        .bind(i64::try_from(ttl.as_millis()).expect("small"))
        .execute(&pool)
        .await
        .expect("bring the expiry forward");
        assert_eq!(shortened.rows_affected(), 1);
        pool.close().await;

        // Pending, readable, until its expiry; then 404 like an unknown id (eventually: within
        // the TTL and a generous margin).
        let gone = gbal_testkit::eventually_some_every(
            ttl + Duration::from_secs(15),
            Duration::from_millis(200),
            "GET answers 404 once the request expired",
            || {
                let (client, public, token, id) = (&client, &server.public, &token, &id);
                async move {
                    let seen = get_v1(client, public, token, id).await.expect("GET");
                    let at = posted.elapsed();
                    match seen.status {
                        200 => {
                            assert!(is_pending(&seen.body), "{:?}", seen.body);
                            None
                        }
                        404 => {
                            assert_eq!(
                                seen.body,
                                json!({"code": "NOT_FOUND", "message": format!("The balance request with ID {id} was not found")})
                            );
                            Some(at)
                        }
                        other => panic!("GET {id}: {other} {:?}", seen.body),
                    }
                }
            },
        )
        .await;
        // Never gone before its expiry: the database's now + ttl, read after `posted`.
        assert!(
            gone >= ttl,
            "gone too early: 404 {gone:?} after the POST, ttl {ttl:?}"
        );

        // The expiry job deletes the row (every second; eventually, with a generous margin).
        gbal_testkit::eventually(Duration::from_secs(20), "the expired row deleted", || async {
            row_counts(&db).await.1 == 0
        })
        .await;
        let logs = server.output().join("\n");
        assert!(!logs.contains("expiry sweep failed"), "{logs}");
        eprintln!("dropped reply: 404 from {gone:?} after its expiry was set (ttl {ttl:?})");
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// PostgreSQL stopped under load

/// A PostgreSQL cluster of the test's own, in a temporary folder, on a free port.
struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    /// A new cluster, started. Its programs come from `GBAL_PG_BIN`, else the newest
    /// `/usr/lib/postgresql/*/bin`, else `PATH`; without them the test fails saying so.
    fn init() -> PrivatePostgres {
        let bin = gbal_testkit::pg_bin::dir_with(&["initdb", "pg_ctl", "postgres"]);
        let dir = tempfile::tempdir().expect("temporary directory");
        // initdb and postgres refuse to run as root: run them as the postgres user then.
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_postgres {
            let chown = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(chown.success(), "chown postgres {}", dir.path().display());
        }
        let pg = PrivatePostgres {
            bin,
            dir,
            port: free_port(),
            as_postgres,
        };
        let data = pg.data();
        let out = pg.run(
            "initdb",
            &[
                "-D", &data, "-U", "postgres", "-A", "trust", "-N", "-E", "UTF8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()))
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let out = self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(Path::new(&log)).unwrap_or_default()
        );
    }

    fn stop_immediate(&self) {
        let out = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.run(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

/// One request of the load.
#[derive(Debug)]
struct Sample {
    started: Instant,
    grn: &'static str,
    token: String,
    result: Result<Answer, String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_load_gives_503s_and_recovers_without_restart() {
    let pg = match tokio::task::spawn_blocking(PrivatePostgres::init).await {
        Ok(pg) => pg,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("initdb: {e}"),
    };
    let pg = Arc::new(pg);
    let test = {
        let pg = Arc::clone(&pg);
        async move {
            let request_timeout = Duration::from_secs(4);
            // Two replicas: the load goes to the first, GMS's replies to the second, so every
            // completion reaches the waiting check through PostgreSQL's NOTIFY and the first
            // replica's LISTEN connection, which must come back by itself too.
            let extra = [
                ("GBAL_BALANCE__SYNC_WAIT", "1s"),
                ("GBAL_BALANCE__V2_WAIT", "1s"),
                ("GBAL_PUBLIC__REQUEST_TIMEOUT", "4s"),
                // GMS's retries and the wait fit the 4 s request timeout.
                ("GBAL_GMS__RETRY__MAX_ELAPSED", "1s"),
                ("GBAL_DATABASE__ACQUIRE_TIMEOUT", "1s"),
                ("GBAL_DATABASE__MAX_CONNECTIONS", "5"),
            ];
            let (sim, mut replier, _) = sim_and_gbal(&pg.url(), &[], &extra).await;
            let mut server = start_gbal(ncts_env(&pg.url(), &sim.messages_url(), 0, &extra)).await;
            wait_ready_at(&server.public, Duration::from_secs(20)).await;
            let (pid, replier_pid) = (server.pid(), replier.pid());
            let public = server.public.clone();

            // The load: four callers at a time, each request from a fresh caller (the
            // once-a-minute rule), each bounded well past gbal's own timeout so that a hang
            // shows up as a slow answer rather than a stuck test. Three ask for a balance GMS
            // answers at once (200), one for the one it answers 2 s late (202, then GET).
            let stop = Arc::new(AtomicBool::new(false));
            let samples = Arc::new(std::sync::Mutex::new(Vec::<Sample>::new()));
            let counter = Arc::new(AtomicUsize::new(0));
            let mut workers = Vec::new();
            for worker in 0..4 {
                let grn = if worker == 3 { GRN_LATE } else { GRN_BALANCE };
                let (stop, samples, counter, public) = (
                    Arc::clone(&stop),
                    Arc::clone(&samples),
                    Arc::clone(&counter),
                    public.clone(),
                );
                workers.push(tokio::spawn(async move {
                    let client = http_client(Duration::from_secs(15));
                    while !stop.load(Ordering::SeqCst) {
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let token = dev_token(&format!("pg-load-{n}"));
                        let started = Instant::now();
                        let result = post_v1(&client, &public, &token, grn)
                            .await
                            .map_err(|e| format!("{e:?}"));
                        samples.lock().expect("samples").push(Sample {
                            started,
                            grn,
                            token,
                            result,
                        });
                        // The load's pace, not a wait for anything.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }));
            }
            let client = http_client(Duration::from_secs(15));
            let readyz = || async {
                let started = Instant::now();
                let status = client
                    .get(format!("{public}/readyz"))
                    .send()
                    .await
                    .expect("readyz answers")
                    .status()
                    .as_u16();
                (status, started.elapsed())
            };

            // The load is being answered before the outage: 200s, and a 202 for the late reply.
            let answered = |grn: &str, status: u16, after: Option<Instant>| {
                samples.lock().expect("samples").iter().any(|s| {
                    s.grn == grn
                        && after.is_none_or(|t| s.started > t)
                        && matches!(&s.result, Ok(a) if a.status == status)
                })
            };
            gbal_testkit::eventually(
                Duration::from_secs(20),
                "a 200 and a 202 before the outage",
                || {
                    let ok = answered(GRN_BALANCE, 200, None) && answered(GRN_LATE, 202, None);
                    async move { ok }
                },
            )
            .await;
            assert_eq!(readyz().await.0, 200);

            // Stop PostgreSQL the hard way, for 4 s.
            let stopped = Instant::now();
            {
                let pg = Arc::clone(&pg);
                tokio::task::spawn_blocking(move || pg.stop_immediate())
                    .await
                    .expect("pg_ctl stop");
            }
            let mut ready_during = Vec::new();
            // The outage lasts 4 s (the scenario), probed every 200 ms meanwhile.
            while stopped.elapsed() < Duration::from_secs(4) {
                ready_during.push(readyz().await);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let restarted = Instant::now();
            {
                let pg = Arc::clone(&pg);
                tokio::task::spawn_blocking(move || pg.start())
                    .await
                    .expect("pg_ctl start");
            }
            let back = Instant::now();

            // Recovery by itself (eventually: 20 s): /readyz first, then checks.
            let recovery = Duration::from_secs(20);
            let ready_again = gbal_testkit::eventually_some(
                recovery,
                "/readyz 200 again after PostgreSQL's return",
                || async { (readyz().await.0 == 200).then(|| back.elapsed()) },
            )
            .await;
            let answered_after = |within: Option<Duration>| {
                let ok = samples.lock().expect("samples").iter().any(|s| {
                    s.started > back
                        && s.grn == GRN_BALANCE
                        && matches!(&s.result, Ok(a) if a.status == 200
                            && within.is_none_or(|w| a.elapsed < w))
                });
                async move { ok.then(|| back.elapsed()) }
            };
            let checks_again = gbal_testkit::eventually_some(
                recovery,
                "a check answered 200 after PostgreSQL's return",
                || answered_after(None),
            )
            .await;
            // Answered through NOTIFY again: before the 1 s wait ran out, which the re-read at
            // its end cannot do.
            let fast_again = gbal_testkit::eventually_some(
                recovery,
                "a check answered 200 before its 1 s wait ran out: the LISTEN connection is back",
                || answered_after(Some(Duration::from_secs(1))),
            )
            .await;
            // A late one answered 202 after the recovery too, then the load stops.
            gbal_testkit::eventually(recovery, "a 202 after the recovery", || {
                let ok = answered(GRN_LATE, 202, Some(back));
                async move { ok }
            })
            .await;
            stop.store(true, Ordering::SeqCst);
            for worker in workers {
                worker.await.expect("load worker");
            }
            let samples = std::mem::take(&mut *samples.lock().expect("samples"));

            // Readiness followed the database.
            assert!(
                ready_during.iter().any(|(status, _)| *status == 503),
                "/readyz never 503 while PostgreSQL was down: {ready_during:?}"
            );
            // The readiness check is bounded by public.readiness_timeout (1 s); a generous margin
            // for a slow machine, far below a hang (the client's 15 s).
            for (status, took) in &ready_during {
                assert!([200, 503].contains(status), "{ready_during:?}");
                assert!(*took < Duration::from_secs(6), "/readyz took {took:?}");
            }

            // Every request got an answer, by its deadline (public.request_timeout and a
            // generous margin, far below the client's 15 s), of an expected kind.
            let bound = request_timeout + Duration::from_secs(5);
            let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
            let mut slowest = Duration::ZERO;
            for s in &samples {
                let a = s.result.as_ref().unwrap_or_else(|e| {
                    panic!(
                        "a request got no answer ({:?} after the stop): {e}",
                        s.started.checked_duration_since(stopped)
                    )
                });
                *by_status.entry(a.status).or_default() += 1;
                slowest = slowest.max(a.elapsed);
                assert!(
                    a.elapsed <= bound,
                    "a request took {:?} (timeout {request_timeout:?}): {} {:?}",
                    a.elapsed,
                    a.status,
                    a.body
                );
                match a.status {
                    200 => {
                        let balance = if s.grn == GRN_LATE { 10000 } else { 262626 };
                        assert_eq!(
                            a.body,
                            json!({"response": {"balance": balance, "currency": "GBP"}})
                        );
                    }
                    202 => assert!(a.body["balanceId"].is_string(), "{:?}", a.body),
                    503 => {
                        assert_eq!(a.body["code"], "SERVICE_UNAVAILABLE", "{:?}", a.body);
                        assert!(a.retry_after().is_some(), "503 without Retry-After");
                    }
                    other => panic!(
                        "unexpected {other} {:?}, {:?} after the stop",
                        a.body,
                        s.started.checked_duration_since(stopped)
                    ),
                }
            }
            // Requests made well inside the outage are all 503.
            let inside: Vec<&Sample> = samples
                .iter()
                .filter(|s| {
                    s.started >= stopped + Duration::from_millis(1500)
                        && s.started + s.result.as_ref().map_or(Duration::ZERO, |a| a.elapsed)
                            < restarted
                })
                .collect();
            assert!(!inside.is_empty(), "no request inside the outage");
            for s in &inside {
                let a = s.result.as_ref().expect("answer");
                assert_eq!(a.status, 503, "inside the outage: {:?}", a.body);
            }
            let before = samples
                .iter()
                .filter(|s| {
                    s.started + s.result.as_ref().map_or(Duration::ZERO, |a| a.elapsed) < stopped
                })
                .collect::<Vec<_>>();
            assert!(
                before
                    .iter()
                    .all(|s| s.result.as_ref().is_ok_and(|a| a.status != 503)),
                "a 503 before the outage"
            );
            assert!(
                before
                    .iter()
                    .any(|s| s.result.as_ref().is_ok_and(|a| a.status == 200)),
                "no 200 before the outage"
            );

            // Accounting: every accepted request (202) is still readable, completed with its
            // balance or (when GMS's reply met the outage) pending until it expires. First,
            // until the replies GMS sends again after the outage have arrived.
            gbal_testkit::eventually(
                Duration::from_secs(20),
                "every 202 made outside the outage completed",
                || async {
                    for s in &samples {
                        let Ok(a) = &s.result else { continue };
                        let (true, Some(id)) = (a.status == 202, a.body["balanceId"].as_str())
                        else {
                            continue;
                        };
                        let met_the_outage =
                            s.started + Duration::from_millis(3500) >= stopped && s.started <= back;
                        let got = get_v1(&client, &public, &s.token, id).await.expect("GET");
                        if got.status == 200 && is_pending(&got.body) && !met_the_outage {
                            return false;
                        }
                    }
                    true
                },
            )
            .await;
            let (mut completed, mut still_pending) = (0, 0);
            for s in &samples {
                let Ok(a) = &s.result else { continue };
                if a.status != 202 {
                    continue;
                }
                let id = a.body["balanceId"].as_str().expect("balanceId");
                let got = get_v1(&client, &public, &s.token, id).await.expect("GET");
                assert_eq!(
                    got.status, 200,
                    "accepted request {id} lost: {:?}",
                    got.body
                );
                if is_pending(&got.body) {
                    // Only a reply due while the database was down may have been given up.
                    assert!(
                        s.started + Duration::from_millis(3500) >= stopped && s.started <= back,
                        "request {id}, made {:?} after the stop, is still pending",
                        s.started.checked_duration_since(stopped)
                    );
                    still_pending += 1;
                } else {
                    assert_balance(&got, id, json!(10000), "GBP");
                    completed += 1;
                }
            }
            assert!(completed > 0, "no 202 completed");
            // A reply that met the outage was answered 5xx (GMS tries again), never 4xx (GMS
            // would drop it).
            let sim_log: Vec<String> = sim.lines.try_iter().collect();
            let refused: Vec<&String> = sim_log
                .iter()
                .filter(|l| l.contains("reply refused by gbal"))
                .collect();
            assert!(refused.is_empty(), "{refused:?}");
            // The same process throughout.
            assert!(server.is_running() && replier.is_running(), "gbal exited");
            assert_eq!((server.pid(), replier.pid()), (pid, replier_pid));
            eprintln!(
                "PostgreSQL outage: {} requests {by_status:?} (slowest {slowest:?}), {} inside the outage; \
                 202s then completed {completed}, still pending {still_pending}; /readyz 200 again \
                 {ready_again:?}, a check 200 again {checks_again:?}, one within its 1 s wait {fast_again:?} \
                 after PostgreSQL's return",
                samples.len(),
                inside.len()
            );
        }
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("the PostgreSQL outage test finished within 60 s");
}

// ---------------------------------------------------------------------------------------
// SIGKILL with requests pending

const SLOW_DATASET: &str = r#"
[[guarantees]]
grn = "26GB0000010000100"
type = "1"
tin = "GB954131533000"
access_code = "AC01"
balance = "4321.50"
reply_delay = "5s"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_with_requests_pending_then_restart_late_replies_complete_them() {
    with_database("gbal_fault", Duration::from_secs(50), |db| async move {
        let dir = tempfile::tempdir().expect("dir");
        let dataset = dir.path().join("slow.toml");
        std::fs::write(&dataset, SLOW_DATASET).expect("write the dataset");
        let grn = "26GB0000010000100";
        let extra = [
            ("GBAL_BALANCE__SYNC_WAIT", "1s"),
            ("GBAL_BALANCE__V2_WAIT", "1s"),
            ("GBAL_PUBLIC__REQUEST_TIMEOUT", "3s"),
            // GMS's retries and the wait fit the 3 s request timeout.
            ("GBAL_GMS__RETRY__MAX_ELAPSED", "1s"),
        ];
        let (mut sim, mut server, internal_port) = sim_and_gbal(
            &db.url,
            &["--dataset", &dataset.display().to_string()],
            &extra,
        )
        .await;
        let client = http_client(Duration::from_secs(15));

        // Three requests answered 202 (GMS replies 5 s after each IE034)...
        let mut accepted = Vec::new();
        let mut posts = tokio::task::JoinSet::new();
        for i in 0..3 {
            let (client, public) = (client.clone(), server.public.clone());
            posts.spawn(async move {
                let token = dev_token(&format!("sigkill-{i}"));
                let got = post_v1(&client, &public, &token, grn).await.expect("POST");
                (token, got)
            });
        }
        while let Some(done) = posts.join_next().await {
            let (token, got) = done.expect("task");
            assert_eq!(got.status, 202, "{:?}", got.body);
            accepted.push((token, got.body["balanceId"].as_str().expect("id").to_owned()));
        }
        // ... and one still waiting when the process dies.
        let waiting = {
            let (client, public) = (client.clone(), server.public.clone());
            tokio::spawn(async move {
                post_v1(&client, &public, &dev_token("sigkill-waiting"), grn).await
            })
        };
        // Killed once that one's request is recorded.
        gbal_testkit::eventually(Duration::from_secs(20), "the fourth request recorded", || async {
            row_counts(&db).await.1 >= 4
        })
        .await;
        let killed = Instant::now();
        server.kill_hard();
        let cut = waiting.await.expect("task");
        assert!(cut.is_err(), "the waiting request was answered: {cut:?}");

        // Restart on the same database and internal port, before GMS's replies are due.
        let env = ncts_env(&db.url, &sim.messages_url(), internal_port, &extra);
        let server = start_gbal(env).await;
        wait_ready_at(&server.public, Duration::from_secs(20)).await;
        let restarted_after = killed.elapsed();
        for (token, id) in &accepted {
            let got = get_v1(&client, &server.public, token, id).await.expect("GET");
            assert_eq!(got.status, 200, "request {id} lost in the crash: {:?}", got.body);
        }
        for (token, id) in &accepted {
            let done =
                until_completed(&client, &server.public, token, id, Duration::from_secs(12)).await;
            assert_balance(&done, id, json!(4321.5), "GBP");
        }

        // None lost: every IE034 GMS took got its reply delivered, and every row is completed
        // or (at most the one cut before its IE034 went out) pending until it expires.
        let mut sim_log: Vec<String> = Vec::new();
        // The simulator's output, held so that the wait below can be sent between threads.
        let sim_lines = std::sync::Mutex::new(std::mem::replace(
            &mut sim.lines,
            std::sync::mpsc::channel().1,
        ));
        let settled = |(text, pending, all): &(String, i64, i64)| {
            let received = text.matches("IE034 received").count();
            let delivered = text.matches("reply delivered").count();
            // Four rows at most; one without an IE034 (cut before it went out) may stay pending.
            let unsent = i64::try_from(4usize.saturating_sub(received)).unwrap_or(0);
            received == delivered && *all >= 3 && *pending <= unsent.min(all - 3)
        };
        let state = gbal_testkit::until(
            Duration::from_secs(20),
            || {
                sim_log.extend(sim_lines.lock().expect("the simulator's output").try_iter());
                let text = sim_log.join("\n");
                let db = &db;
                async move {
                    let (pending, all) = row_counts(db).await;
                    (text, pending, all)
                }
            },
            settled,
        )
        .await;
        let (text, pending, all) = &state;
        let received = text.matches("IE034 received").count();
        let delivered = text.matches("reply delivered").count();
        assert!(
            settled(&state),
            "replies: {received} IE034s, {delivered} delivered; rows: {pending} pending of {all}\n{text}"
        );
        assert!(
            !text.contains("reply refused by gbal") && !text.contains("reply could not be delivered"),
            "{text}"
        );
        assert!(received >= 3, "{received} IE034s");
        let pool = db.pool().await;
        let stale: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM balance_requests WHERE completed_at IS NULL AND expires_at <= now()",
        )
        .fetch_one(&pool)
        .await
        .expect("count");
        pool.close().await;
        assert_eq!(stale, 0);
        eprintln!(
            "SIGKILL: restarted and ready {restarted_after:?} after the kill; {received} IE034s, {delivered} replies delivered"
        );
    })
    .await;
}
