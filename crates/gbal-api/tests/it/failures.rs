//! What a GMS failure costs the caller, and when a check answers: a query that never reached
//! GMS gives the caller's minute back; one GMS may have acted on keeps it and answers with
//! what is still to come (v1 202 and its id, v2 504); a slow GMS with retries is answered
//! before the request's timeout; a request that vanishes during the wait is a 504, never a
//! 500.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gbal_core::{Balance, GmsError, MessageId, Outcome, Submission, Tracker};
use gbal_gms::{NctsXmlGms, Url};
use gbal_ncts::{Limits, parse_ie034};
use gbal_tracker::SqliteTracker;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::reply::ie037;
use crate::support::sandbox::*;
use crate::support::*;

/// The v1 and v2 504 body, byte for byte.
const GATEWAY_TIMEOUT: &str = r#"{"code":"GATEWAY_TIMEOUT","message":"The guarantee management system did not answer in time"}"#;

fn balance() -> Outcome {
    Outcome::Success(Balance {
        amount: "262626".parse().unwrap(),
        currency: "GBP".parse().unwrap(),
    })
}

/// A SQLite tracker in memory, and a handle on its pool.
async fn sqlite() -> (Arc<dyn Tracker>, sqlx::SqlitePool) {
    let tracker = SqliteTracker::in_memory().await.unwrap();
    let pool = tracker.pool().clone();
    (Arc::new(tracker), pool)
}

async fn count(pool: &sqlx::SqlitePool, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A GMS that cannot be reached for its first `down` queries, then answers with a balance.
fn down_then_up(down: usize) -> (Arc<FakeGms>, Arc<AtomicUsize>) {
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&asked);
    let gms = FakeGms::new(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < down {
            Err(GmsError::Unavailable {
                retry_after: Duration::from_secs(1),
                reason: "connection refused".to_owned(),
            })
        } else {
            Ok(Submission::Answered(balance()))
        }
    });
    (gms, asked)
}

#[tokio::test]
async fn a_query_that_never_reached_gms_gives_the_callers_minute_back() {
    let (tracker, pool) = sqlite().await;
    let (gms, asked) = down_then_up(2);
    let app = TestApp::build(Parts::on(tracker), gms, |_| {}).await;
    let token = token(&caller("never-reached"));
    // v1 records its request before asking (the FakeGms may reply later): it is removed with
    // the lock. v2 the same.
    for post in [
        v1_post(&token, TIN, GRN_BALANCE_3, CODE),
        v2_post(&token, GRN_BALANCE_3, CODE),
    ] {
        let refused = app.call(post).await;
        assert_eq!(refused.status, 503, "{}", refused.text());
        assert_eq!(refused.json()["code"], "SERVICE_UNAVAILABLE");
        assert_eq!(refused.retry_after(), 1);
        assert_eq!(count(&pool, "balance_requests").await, 0, "nothing kept");
        assert_eq!(count(&pool, "request_locks").await, 0, "the lock released");
    }
    // GMS is back: the same caller's retry, at once, is served (not 429).
    let served = app.call(v2_post(&token, GRN_BALANCE_3, CODE)).await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(served.json()["balance"], 262626);
    assert_eq!(asked.load(Ordering::SeqCst), 3);
    // The served check holds its lock, as any check does.
    let again = app.call(v1_post(&token, TIN, GRN_BALANCE_3, CODE)).await;
    assert_eq!(again.status, 429, "{}", again.text());
}

#[tokio::test]
async fn v2_over_a_transport_that_answers_within_the_call_keeps_only_the_lock() {
    // The embedded simulator answers this guarantee at once: a v2 check records no request;
    // a v1 check records its request once, answered.
    let (tracker, pool) = sqlite().await;
    let parts = Parts::on(tracker);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let token = token(&caller("lock-only"));
    let v2 = app.call(v2_post(&token, GRN_BALANCE, CODE)).await;
    assert_eq!(v2.status, 200, "{}", v2.text());
    assert_eq!(count(&pool, "balance_requests").await, 0);
    assert_eq!(count(&pool, "request_locks").await, 1);
    // The once-a-minute rule holds all the same, across versions.
    let refused = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(refused.status, 429, "{}", refused.text());

    let v1 = app.call(v1_post(&token, TIN, GRN_BALANCE_2, CODE)).await;
    assert_eq!(v1.status, 200, "{}", v1.text());
    let answered: (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(completed_at) FROM balance_requests WHERE status = 'SUCCESS'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(answered, (1, 1), "recorded once, with its answer");
    // A delayed guarantee's reply comes later: its v2 check records a request for it.
    let delayed = app.call(v2_post(&token, GRN_DELAYED, CODE)).await;
    assert_eq!(delayed.status, 200, "{}", delayed.text());
    assert_eq!(count(&pool, "balance_requests").await, 2);
}

/// A GMS stand-in that accepts every IE034 only after `delay`, and the ncts-xml adapter
/// reaching it with `request_timeout` and `attempts`.
async fn slow_gms(
    status: u16,
    delay: Duration,
    request_timeout: Duration,
    attempts: usize,
) -> (MockServer, Arc<NctsXmlGms>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status).set_delay(delay))
        .mount(&server)
        .await;
    let url = Url::parse(&format!("{}/movements/messages", server.uri())).unwrap();
    let mut upstream = defaults::upstream(url, "gms-token");
    upstream.request_timeout = request_timeout;
    upstream.retry.max_retries = attempts - 1;
    upstream.retry.min_delay = Duration::from_millis(50);
    upstream.retry.max_delay = Duration::from_millis(50);
    upstream.retry.total = Duration::from_secs(60);
    upstream.breaker.failure_threshold = 100;
    let gms = Arc::new(NctsXmlGms::new(defaults::ncts_xml(upstream)).unwrap());
    (server, gms)
}

#[tokio::test]
async fn an_ie034_that_timed_out_after_sending_keeps_its_request_and_lock() {
    // GMS takes the IE034 but answers the POST after gbal gave up (outcome unknown); its
    // reply comes later, on the internal listener.
    let (server, gms) = slow_gms(202, Duration::from_secs(5), Duration::from_millis(300), 1).await;
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_millis(200);
    parts.balance.v2_wait = Duration::from_millis(200);
    let app = TestApp::build(parts, gms, |_| {}).await;
    let sub = caller("timed-out");
    let token = token(&sub);

    // v1: 202 with the id, as for any answer still to come.
    let pending = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(pending.status, 202, "{}", pending.text());
    let id = pending.json()["balanceId"].as_str().unwrap().to_owned();
    assert_eq!(
        pending.header("location"),
        Some(format!("{BASE}/balances/{id}").as_str())
    );
    // The lock stays: GMS may have acted on the query.
    let again = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(again.status, 429, "{}", again.text());
    // GMS's reply, to the recipient the IE034 named, completes the request: GET shows it.
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1, "sent once, not resent");
    let ie034 = parse_ie034(&sent[0].body, &Limits::default()).expect("the IE034");
    let recipient = ie034.sender.clone();
    assert_eq!(
        MessageId::parse_recipient("MDTP-GUA-", &recipient).unwrap(),
        id.parse::<gbal_core::BalanceRequestId>()
            .unwrap()
            .message_id()
    );
    let reply = ie037(&recipient, GRN_BALANCE, "12345678.90");
    let posted = app
        .call_internal(reply_post(&recipient, Some("IE037"), &reply))
        .await;
    assert_eq!(posted.status, 200, "{}", posted.text());
    let got = app.call(v1_get(&token, &id)).await;
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        got.json()["request"]["response"],
        serde_json::json!({"status": "SUCCESS", "balance": 12345678.9, "currency": "GBP"})
    );

    // v2: 504, and the lock stays there too.
    let v2 = app.call(v2_post(&token, GRN_BALANCE_2, CODE)).await;
    assert_eq!(v2.status, 504, "{}", v2.text());
    assert_eq!(v2.text(), GATEWAY_TIMEOUT);
    let again = app.call(v2_post(&token, GRN_BALANCE_2, CODE)).await;
    assert_eq!(again.status, 429, "{}", again.text());
}

#[tokio::test]
async fn a_slow_gms_with_retries_is_answered_before_the_request_timeout() {
    // Each attempt takes 1.5 s to be refused with a 503 and is retried: left alone, the
    // submission alone would run past the 6 s request timeout (five attempts, 7.5 s).
    let request_timeout = Duration::from_secs(6);
    let (server, gms) =
        slow_gms(503, Duration::from_millis(1500), Duration::from_secs(10), 5).await;
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_secs(5);
    parts.balance.v2_wait = Duration::from_secs(5);
    let app = TestApp::build(parts, gms, |c| c.request_timeout = request_timeout).await;
    let token = token(&caller("slow-gms"));
    for post in [
        v1_post(&token, TIN, GRN_BALANCE, CODE),
        v2_post(&token, GRN_BALANCE_2, CODE),
    ] {
        let started = Instant::now();
        let answer = app.call(post).await;
        let took = started.elapsed();
        // Answered by the check itself, before the timeout layer's last-resort 503 at 6 s.
        assert!(took < request_timeout, "answered after {took:?}");
        match answer.status.as_u16() {
            // The last attempt was cut at the deadline: GMS may have acted (v1 202, v2 504).
            202 => assert!(answer.json()["balanceId"].is_string()),
            504 => assert_eq!(answer.text(), GATEWAY_TIMEOUT),
            // No retry could start before the deadline: the IE034 never got through.
            503 => assert!(answer.retry_after() >= 1),
            other => panic!("{other}: {}", answer.text()),
        }
    }
    assert!(
        server.received_requests().await.unwrap().len() >= 4,
        "the retries were made"
    );
}

#[tokio::test]
async fn a_request_that_expires_during_its_wait_ends_as_504_never_500() {
    // GMS accepts; while the check waits, the expiry job deletes its request (as it would
    // one past its expires_at).
    let (tracker, pool) = sqlite().await;
    let mut parts = Parts::on(Arc::clone(&tracker));
    parts.balance.sync_wait = Duration::from_secs(2);
    parts.balance.v2_wait = Duration::from_secs(2);
    let app = TestApp::build(parts, FakeGms::new(|_| Ok(Submission::Accepted)), |_| {}).await;
    let token = token(&caller("expired-mid-wait"));
    for post in [
        v1_post(&token, TIN, GRN_BALANCE, CODE),
        v2_post(&token, GRN_BALANCE_2, CODE),
    ] {
        let sweeper = {
            let (tracker, pool) = (Arc::clone(&tracker), pool.clone());
            tokio::spawn(async move {
                gbal_testkit::eventually(Duration::from_secs(10), "the request recorded", || {
                    let pool = pool.clone();
                    async move { count(&pool, "balance_requests").await == 1 }
                })
                .await;
                let later = time::OffsetDateTime::now_utc() + time::Duration::days(1);
                gbal_tracker::expire_all(tracker.as_ref(), later, 100)
                    .await
                    .unwrap()
            })
        };
        let answer = app.call(post).await;
        assert!(sweeper.await.unwrap() >= 1, "the sweep deleted the request");
        assert_eq!(answer.status, 504, "{}", answer.text());
        assert_eq!(answer.text(), GATEWAY_TIMEOUT);
    }
}
