//! Two gbal instances on one PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use gbal_core::BalanceConfig;
use serde_json::json;

use crate::http_flow::{
    GRN_FAST, GRN_HALF, Gbal, Listeners, Simulator, http, v1_post_http, v2_post_http,
};
use crate::support::*;

#[tokio::test]
async fn a_reply_to_the_other_instance_still_answers_the_waiting_post() {
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker_a = Arc::new(db.tracker().await);
    let tracker_b = Arc::new(db.tracker().await);
    tracker_a.until_listening().await;
    tracker_b.until_listening().await;
    let listeners_a = Listeners::bind().await;
    let listeners_b = Listeners::bind().await;
    // GMS sends every reply to B.
    let simulator = Simulator::start(listeners_b.internal_addr()).await;
    // A wait long enough that an answer before its end can only come from the wake-up: the
    // final re-read happens when it runs out.
    let sync_wait = Duration::from_secs(20);
    let balance = BalanceConfig {
        sync_wait,
        v2_wait: Duration::from_secs(5),
        ..defaults::balance()
    };
    let a = Gbal::start(listeners_a, tracker_a, &simulator.url, balance).await;
    let b = Gbal::start(listeners_b, tracker_b, &simulator.url, balance).await;
    let client = reqwest::Client::new();

    // A sends the IE034; the reply (after 500 ms) reaches B; A's waiting POST answers.
    let started = std::time::Instant::now();
    let reply = http(v1_post_http(&client, &a, &caller("cluster"), GRN_HALF)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.text,
        r#"{"response":{"balance":50000,"currency":"GBP"}}"#
    );
    assert!(
        started.elapsed() < sync_wait,
        "woken by the notification, not the final re-read at the end of the wait"
    );

    let reply = http(v2_post_http(&client, &a, &caller("cluster"), GRN_FAST)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    a.shut_down().await;
    b.shut_down().await;
    drop(simulator);
    db.drop_database().await;
}

#[tokio::test]
async fn once_a_minute_holds_across_instances() {
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker_a = Arc::new(db.tracker().await);
    let tracker_b = Arc::new(db.tracker().await);
    tracker_a.until_listening().await;
    tracker_b.until_listening().await;
    let listeners_a = Listeners::bind().await;
    let listeners_b = Listeners::bind().await;
    let simulator = Simulator::start(listeners_a.internal_addr()).await;
    let balance = BalanceConfig {
        sync_wait: Duration::from_secs(5),
        ..defaults::balance()
    };
    let a = Gbal::start(listeners_a, tracker_a, &simulator.url, balance).await;
    let b = Gbal::start(listeners_b, tracker_b, &simulator.url, balance).await;
    let client = reqwest::Client::new();
    let sub = caller("alternate");

    assert_eq!(
        http(v1_post_http(&client, &a, &sub, GRN_FAST)).await.status,
        200
    );
    for (instance, name) in [(&b, "B"), (&a, "A"), (&b, "B again")] {
        let reply = http(v1_post_http(&client, instance, &sub, GRN_FAST)).await;
        assert_eq!(reply.status, 429, "{name}: {}", reply.text);
        assert_eq!(
            reply.body,
            json!({"code": "TOO_MANY_REQUESTS", "message": "Too many requests"})
        );
        let retry: u64 = reply.retry_after.as_deref().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{name}: {retry}");
        let reply = http(v2_post_http(&client, instance, &sub, GRN_FAST)).await;
        assert_eq!(reply.status, 429, "{name} (v2): {}", reply.text);
        assert_eq!(reply.body["code"], "MESSAGE_THROTTLED_OUT");
    }
    // Another caller, same GRN, on B: its own window.
    assert_eq!(
        http(v1_post_http(
            &client,
            &b,
            &caller("alternate-other"),
            GRN_FAST
        ))
        .await
        .status,
        200
    );

    a.shut_down().await;
    b.shut_down().await;
    drop(simulator);
    db.drop_database().await;
}

#[tokio::test]
async fn instances_whose_clocks_are_minutes_apart_share_one_minute_and_the_requests() {
    // Lock windows and expiry are the database's: A runs ten minutes ahead of B.
    let db = TestDatabase::migrated("gbal_api").await;
    let now = time::OffsetDateTime::now_utc();
    let app = |clock: Arc<TestClock>| {
        let db = &db;
        async move {
            let mut parts = Parts::on(Arc::new(db.tracker().await));
            parts.clock = clock;
            parts.balance.sync_wait = Duration::from_millis(200);
            let gms = parts.simulator();
            TestApp::build(parts, gms, |_| {}).await
        }
    };
    let ahead = TestClock::at(now + time::Duration::minutes(5));
    let a = app(Arc::clone(&ahead)).await;
    let b = app(TestClock::at(now - time::Duration::minutes(5))).await;
    use crate::support::sandbox::{CODE, GRN_BALANCE, GRN_NO_REPLY, TIN};
    let sub = caller("skewed");
    let token = token(&sub);

    // B, ten minutes behind, takes the lock; A, whose clock says it lapsed long ago, is
    // refused for the lock's time left by the database's clock: at most its 60 s.
    assert_eq!(b.call(v2_post(&token, GRN_BALANCE, CODE)).await.status, 200);
    let refused = a.call(v2_post(&token, GRN_BALANCE, CODE)).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert!(
        (50..=60).contains(&refused.retry_after()),
        "Retry-After {}",
        refused.retry_after()
    );
    // A request B made is A's to read, and its lifetime is the database's: neither A's
    // clock ten minutes ahead, nor two hours more of it, expire it.
    let pending = b.call(v1_post(&token, TIN, GRN_NO_REPLY, CODE)).await;
    assert_eq!(pending.status, 202, "{}", pending.text());
    let id = pending.json()["balanceId"].as_str().unwrap().to_owned();
    assert_eq!(a.call(v1_get(&token, &id)).await.status, 200);
    ahead.advance(Duration::from_secs(2 * 3600));
    assert_eq!(a.call(v1_get(&token, &id)).await.status, 200);
    db.drop_database().await;
}
