//! Three `gbal serve` replicas on one PostgreSQL database, with one `gbal gms-sim` behind a
//! small router run by the test:
//!
//! ```text
//!  replica i ──IE034──► router /from/{i}/movements/messages ──► simulator
//!                       (records X-Message-Sender → i)
//!  simulator ──reply──► router /balances/{recipient} ──► replica j ≠ i (the two others in turn)
//! ```
//!
//! So every reply lands on a replica that did not send the IE034 and knows nothing of the
//! request but its row in the shared database. Checked: every synchronous answer is still 200
//! (the completion wakes the waiter on the other replica), the once-a-minute rule holds
//! across replicas (also when the same caller races all three), and the expiry job runs on all
//! three without errors, deleting every row exactly once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use gbal_testkit::with_database;
use serde_json::{Value, json};

use crate::faults::{REPLY_TOKEN, start_gbal, start_sim};
use crate::process::{Server, dev_token, http_client, wait_ready_at};

const V1: &str = "application/vnd.hmrc.1.0+json";
const V2: &str = "application/vnd.hmrc.2.0+json";
const REPLICAS: usize = 3;

/// One reply the router passed on.
#[derive(Debug, Clone)]
struct Forward {
    recipient: String,
    from: Option<usize>,
    to: usize,
    status: u16,
}

/// The router between the replicas and the simulator.
#[derive(Debug, Default)]
struct Relay {
    client: reqwest::Client,
    simulator: OnceLock<String>,
    /// Internal listeners of the replicas.
    replicas: OnceLock<Vec<String>>,
    /// Recipient id (X-Message-Sender of the IE034) → the replica that sent it.
    senders: Mutex<HashMap<String, usize>>,
    /// IE034s per sending replica.
    ie034s: Mutex<BTreeMap<usize, usize>>,
    forwards: Mutex<Vec<Forward>>,
    turn: AtomicUsize,
}

fn forwarded_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = headers.clone();
    for hop in ["host", "content-length", "connection", "transfer-encoding"] {
        out.remove(hop);
    }
    out
}

async fn relay_answer(result: Result<reqwest::Response, reqwest::Error>) -> Response {
    match result {
        Ok(response) => {
            let status =
                StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut headers = response.headers().clone();
            for hop in ["content-length", "connection", "transfer-encoding"] {
                headers.remove(hop);
            }
            let body = response.bytes().await.unwrap_or_default();
            (status, headers, body).into_response()
        }
        Err(e) => (StatusCode::BAD_GATEWAY, format!("router: {e}")).into_response(),
    }
}

/// An IE034 from replica `i`: remember who sent it, pass it to the simulator.
async fn ie034(
    State(relay): State<Arc<Relay>>,
    Path(i): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(sender) = headers
        .get("x-message-sender")
        .and_then(|v| v.to_str().ok())
    else {
        return (StatusCode::BAD_REQUEST, "router: no X-Message-Sender").into_response();
    };
    relay
        .senders
        .lock()
        .expect("senders")
        .insert(sender.to_ascii_lowercase(), i);
    *relay.ie034s.lock().expect("ie034s").entry(i).or_default() += 1;
    let url = format!(
        "{}/movements/messages",
        relay.simulator.get().expect("simulator")
    );
    let sent = relay
        .client
        .post(url)
        .headers(forwarded_headers(&headers))
        .body(body)
        .send()
        .await;
    relay_answer(sent).await
}

/// A reply from the simulator: pass it to a replica other than the one that sent the IE034.
async fn reply(
    State(relay): State<Arc<Relay>>,
    Path(recipient): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let from = relay
        .senders
        .lock()
        .expect("senders")
        .get(&recipient.to_ascii_lowercase())
        .copied();
    let turn = relay.turn.fetch_add(1, Ordering::SeqCst);
    // Unknown sender: still deliver (to replica 0), and the test fails on the record.
    let to = from.map_or(0, |from| (from + 1 + turn % (REPLICAS - 1)) % REPLICAS);
    let replicas = relay.replicas.get().expect("replicas");
    let sent = relay
        .client
        .post(format!("{}/balances/{recipient}", replicas[to]))
        .headers(forwarded_headers(&headers))
        .body(body)
        .send()
        .await;
    let status = sent.as_ref().map_or(0, |r| r.status().as_u16());
    relay.forwards.lock().expect("forwards").push(Forward {
        recipient,
        from,
        to,
        status,
    });
    relay_answer(sent).await
}

async fn start_relay() -> (Arc<Relay>, String, tokio::task::JoinHandle<()>) {
    let relay = Arc::new(Relay {
        client: http_client(Duration::from_secs(10)),
        ..Relay::default()
    });
    let app = Router::new()
        .route("/from/{i}/movements/messages", post(ie034))
        .route("/balances/{recipient}", post(reply))
        .with_state(Arc::clone(&relay));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the router");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("router");
    });
    (relay, url, task)
}

/// A check to make.
#[derive(Debug, Clone)]
struct Check {
    grn: &'static str,
    tin: Option<&'static str>,
    access_code: &'static str,
    balance: Value,
    currency: &'static str,
}

fn check(
    grn: &'static str,
    tin: Option<&'static str>,
    access_code: &'static str,
    balance: Value,
    currency: &'static str,
) -> Check {
    Check {
        grn,
        tin,
        access_code,
        balance,
        currency,
    }
}

/// Sandbox guarantees GMS answers at once, v1 (with a TIN) and v2.
fn checks() -> Vec<Check> {
    let gb = Some("GB954131533000");
    vec![
        check("26GB0000010000012", gb, "AC01", json!(262626), "GBP"),
        check("26GB0000010000021", gb, "AC01", json!(12345678.9), "GBP"),
        check("26GB0000010000039", gb, "AC01", json!(1234.56), "GBP"),
        check(
            "26GB0000010000047",
            Some("GB123456789000"),
            "AB12",
            json!(50000),
            "GBP",
        ),
        check("26XI0000010000036", None, "AC01", json!(7500.25), "EUR"),
        check("26GB0000010000012", None, "ac01", json!(262626), "GBP"),
    ]
}

#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn ask(client: &reqwest::Client, public: &str, token: &str, check: &Check) -> Answer {
    let request = match check.tin {
        Some(tin) => client
            .post(format!("{public}/customs/guarantees/balances"))
            .header("Accept", V1)
            .json(&json!({"taxIdentifier": tin, "guaranteeReference": check.grn, "accessCode": check.access_code})),
        None => client
            .post(format!("{public}/customs/guarantees/{}/balance", check.grn))
            .header("Accept", V2)
            .json(&json!({"accessCode": check.access_code})),
    };
    let response = request.bearer_auth(token).send().await.expect("an answer");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let text = response.text().await.expect("body");
    Answer {
        status,
        retry_after,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

fn assert_balance(answer: &Answer, check: &Check) {
    assert_eq!(answer.status, 200, "{check:?}: {:?}", answer.body);
    if check.tin.is_some() {
        assert_eq!(
            answer.body,
            json!({"response": {"balance": check.balance, "currency": check.currency}})
        );
    } else {
        assert_eq!(answer.body["balance"], check.balance, "{:?}", answer.body);
        assert_eq!(answer.body["currency"], check.currency, "{:?}", answer.body);
    }
}

fn assert_api_rate_limited(answer: &Answer, v1: bool) {
    assert_eq!(answer.status, 429, "{:?}", answer.body);
    if v1 {
        assert_eq!(
            answer.body,
            json!({"code": "TOO_MANY_REQUESTS", "message": "Too many requests"})
        );
    } else {
        assert_eq!(answer.body["code"], "MESSAGE_THROTTLED_OUT");
    }
    let retry_after = answer.retry_after.expect("Retry-After");
    assert!(
        (45..=60).contains(&retry_after),
        "Retry-After {retry_after} for a 60 s lock"
    );
}

/// What one replica's JSON log says about its expiry job.
#[derive(Debug, Default)]
struct ExpiryLog {
    sweeps: usize,
    deleted: u64,
    failures: Vec<String>,
    errors: Vec<String>,
}

fn expiry_log(lines: &[String]) -> ExpiryLog {
    let mut log = ExpiryLog::default();
    for line in lines {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let message = event["message"].as_str().unwrap_or_default();
        if event["level"] == "ERROR" {
            log.errors.push(line.clone());
        }
        if event["target"] != "gbal_tracker::expiry" {
            continue;
        }
        match message {
            "nothing expired" => log.sweeps += 1,
            "expired requests and locks deleted" => {
                log.sweeps += 1;
                log.deleted += event["deleted"].as_u64().expect("deleted");
            }
            m if m.contains("expiry sweep failed") => log.failures.push(line.clone()),
            _ => {}
        }
    }
    log
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_replies_to_another_replica_lock_and_expiry_hold() {
    with_database("gbal_fault", Duration::from_secs(55), |db| async move {
        let (relay, relay_url, _relay_task) = start_relay().await;
        let sim = start_sim(
            "127.0.0.1:0".to_owned(),
            vec![
                "--reply-to".to_owned(),
                relay_url.clone(),
                "--reply-token".to_owned(),
                REPLY_TOKEN.to_owned(),
            ],
        )
        .await;
        relay.simulator.set(sim.url.clone()).expect("set once");

        // The three replicas start together (their migrations take turns).
        let mut starting = tokio::task::JoinSet::new();
        for i in 0..REPLICAS {
            let env: Vec<(String, String)> = [
                ("DATABASE_URL", db.url.clone()),
                ("GBAL_GMS__TRANSPORT", "ncts-xml".to_owned()),
                (
                    "GBAL_GMS__URL",
                    format!("{relay_url}/from/{i}/movements/messages"),
                ),
                ("GBAL_INTERNAL__REPLY_TOKEN", REPLY_TOKEN.to_owned()),
                ("GBAL_BALANCE__SYNC_WAIT", "5s".to_owned()),
                ("GBAL_BALANCE__V2_WAIT", "5s".to_owned()),
                // GMS's retries (5 s) and the wait (5 s) fit, with the answer's margin.
                ("GBAL_PUBLIC__REQUEST_TIMEOUT", "12s".to_owned()),
                ("GBAL_EXPIRY__INTERVAL", "1s".to_owned()),
                ("GBAL_TELEMETRY__LOG_FORMAT", "json".to_owned()),
                ("RUST_LOG", "info,gbal_tracker::expiry=debug".to_owned()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
            starting.spawn(async move { (i, start_gbal(env).await) });
        }
        let mut started: Vec<(usize, Server)> = Vec::new();
        while let Some(done) = starting.join_next().await {
            started.push(done.expect("a replica started"));
        }
        started.sort_by_key(|(i, _)| *i);
        let mut replicas: Vec<Server> = started.into_iter().map(|(_, s)| s).collect();
        relay
            .replicas
            .set(replicas.iter().map(|r| r.internal.clone()).collect())
            .expect("set once");
        let publics: Vec<String> = replicas.iter().map(|r| r.public.clone()).collect();
        for public in &publics {
            wait_ready_at(public, Duration::from_secs(20)).await;
        }
        let client = http_client(Duration::from_secs(20));

        // 1. Synchronous answers, every reply on another replica: all 200.
        let checks = checks();
        let mut asked = tokio::task::JoinSet::new();
        let count = 30;
        for k in 0..count {
            let check = checks[k % checks.len()].clone();
            let public = publics[k % REPLICAS].clone();
            let client = client.clone();
            asked.spawn(async move {
                let token = dev_token(&format!("replica-caller-{k}"));
                let started = Instant::now();
                let answer = ask(&client, &public, &token, &check).await;
                (check, answer, started.elapsed())
            });
        }
        let mut slowest = Duration::ZERO;
        while let Some(done) = asked.join_next().await {
            let (check, answer, took) = done.expect("task");
            assert_balance(&answer, &check);
            slowest = slowest.max(took);
        }

        // 2. The once-a-minute rule, across replicas.
        let lock_check = checks[3].clone();
        let token = dev_token("lock-caller");
        assert_balance(
            &ask(&client, &publics[0], &token, &lock_check).await,
            &lock_check,
        );
        assert_api_rate_limited(&ask(&client, &publics[1], &token, &lock_check).await, true);
        assert_api_rate_limited(&ask(&client, &publics[2], &token, &lock_check).await, true);
        // v2 on the same GRN is the same (caller, GRN): refused too.
        let v2_same_grn = Check {
            grn: lock_check.grn,
            tin: None,
            access_code: lock_check.access_code,
            balance: lock_check.balance.clone(),
            currency: lock_check.currency,
        };
        assert_api_rate_limited(
            &ask(&client, &publics[2], &token, &v2_same_grn).await,
            false,
        );
        // Another GRN of the same caller is free.
        assert_balance(
            &ask(&client, &publics[1], &token, &checks[0]).await,
            &checks[0],
        );
        // The same caller racing all three replicas: exactly one check goes through.
        let race = checks[2].clone();
        let race_token = dev_token("race-caller");
        let mut racing = tokio::task::JoinSet::new();
        for public in &publics {
            let (client, public, token, race) = (
                client.clone(),
                public.clone(),
                race_token.clone(),
                race.clone(),
            );
            racing.spawn(async move { ask(&client, &public, &token, &race).await });
        }
        let mut race_answers = Vec::new();
        while let Some(done) = racing.join_next().await {
            race_answers.push(done.expect("task"));
        }
        let winners: Vec<&Answer> = race_answers.iter().filter(|a| a.status == 200).collect();
        assert_eq!(winners.len(), 1, "{race_answers:?}");
        assert_balance(winners[0], &race);
        for a in race_answers.iter().filter(|a| a.status != 200) {
            assert_api_rate_limited(a, true);
        }
        let accepted = count + 3;

        // 3. What the router saw: only accepted checks reached GMS, and every reply went to
        //    a replica other than its sender (each of the six such pairs used), and was taken.
        let forwards = gbal_testkit::eventually_some(
            Duration::from_secs(20),
            &format!("{accepted} replies forwarded"),
            || {
                let forwards = relay.forwards.lock().expect("forwards").clone();
                async move { (forwards.len() >= accepted).then_some(forwards) }
            },
        )
        .await;
        let ie034s = relay.ie034s.lock().expect("ie034s").clone();
        assert_eq!(ie034s.values().sum::<usize>(), accepted, "{ie034s:?}");
        assert_eq!(forwards.len(), accepted, "{forwards:?}");
        let mut pairs = BTreeSet::new();
        for f in &forwards {
            let from = f
                .from
                .unwrap_or_else(|| panic!("reply for an unknown sender: {f:?}"));
            assert_ne!(from, f.to, "a reply went back to its sender: {f:?}");
            assert_eq!(f.status, 200, "a replica refused a reply: {f:?}");
            pairs.insert((from, f.to));
        }
        assert_eq!(pairs.len(), REPLICAS * (REPLICAS - 1), "{pairs:?}");
        let recipients: BTreeSet<&str> = forwards.iter().map(|f| f.recipient.as_str()).collect();
        assert_eq!(recipients.len(), accepted, "one reply per request");

        // 4. Expiry: every row goes once it expires, each deleted exactly once, and the job
        //    runs on every replica without errors. A request lives at least a minute past its
        //    request's timeout; the rows' expiry is brought forward, by the database's clock,
        //    which measures it on every replica.
        let pool = db.pool().await;
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM balance_requests")
            .fetch_one(&pool)
            .await
            .expect("count");
        assert_eq!(rows, i64::try_from(accepted).expect("small"));
        let ttl = Duration::from_secs(2);
        sqlx::query("UPDATE balance_requests SET expires_at = now() + interval '2 seconds'")
            .execute(&pool)
            .await
            .expect("bring the expiry forward");
        let last_request = Instant::now();
        // Eventually: within the TTL, the 1 s expiry interval and a generous margin.
        gbal_testkit::eventually(
            ttl + Duration::from_secs(20),
            "every row expired and deleted",
            || async {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM balance_requests")
                    .fetch_one(&pool)
                    .await
                    .expect("count")
                    == 0
            },
        )
        .await;
        let emptied = last_request.elapsed();
        pool.close().await;
        // Until every deletion is logged and each replica has swept at least three times.
        let mut lines: Vec<Vec<String>> = replicas.iter().map(Server::output).collect();
        // Their output, held so that the wait below can be sent between threads.
        let outputs: Vec<std::sync::Mutex<std::sync::mpsc::Receiver<String>>> = replicas
            .iter_mut()
            .map(|r| {
                std::sync::Mutex::new(std::mem::replace(
                    &mut r.lines,
                    std::sync::mpsc::channel().1,
                ))
            })
            .collect();
        let total = u64::try_from(accepted).expect("small");
        gbal_testkit::eventually(
            Duration::from_secs(20),
            "every deletion logged, three sweeps on each replica",
            || {
                for (i, output) in outputs.iter().enumerate() {
                    lines[i].extend(output.lock().expect("a replica's output").try_iter());
                }
                let logs: Vec<ExpiryLog> = lines.iter().map(|l| expiry_log(l)).collect();
                let done = logs.iter().map(|l| l.deleted).sum::<u64>() >= total
                    && logs.iter().all(|l| l.sweeps >= 3);
                async move { done }
            },
        )
        .await;
        let mut deleted = 0;
        let mut sweeps = Vec::new();
        for (i, lines) in lines.iter().enumerate() {
            let log = expiry_log(lines);
            assert!(
                log.failures.is_empty(),
                "replica {i}'s expiry job failed: {:?}",
                log.failures
            );
            assert!(
                log.errors.is_empty(),
                "replica {i} logged errors: {:?}",
                log.errors
            );
            assert!(
                log.sweeps >= 3,
                "replica {i} swept {} times:\n{}",
                log.sweeps,
                lines.join("\n")
            );
            deleted += log.deleted;
            sweeps.push((log.sweeps, log.deleted));
        }
        assert_eq!(
            deleted,
            u64::try_from(accepted).expect("small"),
            "rows deleted by the three expiry jobs (sweeps, deleted): {sweeps:?}"
        );
        eprintln!(
            "three replicas: {accepted} checks (slowest {slowest:?}), IE034s by sender {ie034s:?}, \
             {} replies each to another replica, table empty {emptied:?} after the last request, \
             expiry (sweeps, deleted) by replica {sweeps:?}",
            forwards.len()
        );
        drop(sim);
    })
    .await;
}
