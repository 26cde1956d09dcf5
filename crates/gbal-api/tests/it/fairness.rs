//! One caller cannot take the replica from the others: the body deadline, the caller's own
//! requests in flight, and the replica's places taken only after authentication and the
//! caller's own limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gbal_core::BalanceRequestId;
use serde_json::json;

use crate::support::sandbox::*;
use crate::support::served::{Raw, Served, client};
use crate::support::*;

/// The head of a v2 check by `token` (none: no `Authorization`) announcing a 100-byte body,
/// and its first byte.
fn slow_v2_head(token: Option<&str>) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "POST {BASE}/{GRN_BALANCE}/balance HTTP/1.1\r\nHost: gbal\r\n{auth}Accept: {V2}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    )
    .into_bytes()
}

#[tokio::test]
async fn a_body_that_does_not_arrive_within_the_body_timeout_is_400_and_its_connection_closed() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.public_connections.body_timeout = Duration::from_millis(500);
        c.internal_connections.body_timeout = Duration::from_millis(500);
    })
    .await;
    let served = Served::start(app.state.clone()).await;

    let mut conn = Raw::open(served.public).await;
    let started = Instant::now();
    conn.send(&slow_v2_head(Some(&token(&caller("slow")))))
        .await;
    assert_eq!(conn.status(Duration::from_secs(5)).await, Ok(Some(400)));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
    assert!(
        conn.closed_within(Duration::from_secs(3)).await.is_some(),
        "the connection of a body that timed out is closed"
    );

    // A GMS reply trickled on the internal listener ends the same way.
    let mut conn = Raw::open(served.internal).await;
    conn.send(
        format!(
            "POST /balances/MDTP-GUA-000000000000000000000000 HTTP/1.1\r\nHost: gbal\r\n\
             Authorization: Bearer {REPLY_TOKEN}\r\nX-Message-Type: IE037\r\n\
             Content-Type: application/xml\r\nContent-Length: 1000\r\n\r\n<?xml"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(conn.status(Duration::from_secs(5)).await, Ok(Some(400)));

    // A body that arrives in time is read as ever.
    let reply = client()
        .post(served.url(&format!("{BASE}/{GRN_BALANCE}/balance")))
        .bearer_auth(token(&caller("in-time")))
        .header("accept", V2)
        .json(&json!({"accessCode": CODE}))
        .send()
        .await
        .expect("a check");
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn one_callers_slow_bodies_do_not_stop_other_callers() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.max_in_flight = 4;
        c.rate_limit.max_in_flight = 2;
        c.rate_limit.per_second = 100;
        c.rate_limit.burst = 100;
        c.public_connections.body_timeout = Duration::from_secs(3);
    })
    .await;
    let served = Served::start(app.state.clone()).await;
    let attacker = token(&caller("slow-attacker"));

    // Eight slow bodies with the attacker's token, four without a token.
    let mut slow = Vec::new();
    for i in 0..12 {
        let mut conn = Raw::open(served.public).await;
        let with_token = i < 8;
        conn.send(&slow_v2_head(with_token.then_some(attacker.as_str())))
            .await;
        slow.push(tokio::spawn(async move {
            let started = Instant::now();
            let status = conn.status(Duration::from_secs(10)).await;
            (with_token, status, started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile the others' checks are served, each at once, none shed.
    let others = client();
    for i in 0..6 {
        let started = Instant::now();
        let reply = others
            .post(served.url(&format!("{BASE}/{GRN_BALANCE}/balance")))
            .bearer_auth(token(&caller(&format!("bystander-{i}"))))
            .header("accept", V2)
            .json(&json!({"accessCode": CODE}))
            .send()
            .await
            .expect("a check");
        assert_eq!(reply.status(), 200, "another caller's check {i}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "another caller waited {:?}",
            started.elapsed()
        );
    }

    let mut statuses = Vec::new();
    for s in slow {
        let (with_token, status, took) = s.await.unwrap();
        statuses.push((with_token, status, took));
    }
    let count = |tokened: bool, status: u16| {
        statuses
            .iter()
            .filter(|(t, s, _)| *t == tokened && *s == Ok(Some(status)))
            .count()
    };
    // Two of the attacker's bodies held its two places until their deadline; the other six
    // were refused at once as over its own limit, without a place of the replica's.
    assert_eq!(count(true, 400), 2, "{statuses:?}");
    assert_eq!(count(true, 429), 6, "{statuses:?}");
    // Without a token: 401 before the body is read.
    assert_eq!(count(false, 401), 4, "{statuses:?}");
    for (_, status, took) in &statuses {
        if *status != Ok(Some(400)) {
            assert!(*took < Duration::from_secs(2), "{status:?} after {took:?}");
        }
    }
}

#[tokio::test]
async fn one_callers_get_flood_is_throttled_and_other_callers_are_not() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 5;
        c.rate_limit.burst = 5;
    })
    .await;
    let served = Served::start(app.state.clone()).await;
    let id = BalanceRequestId::new().to_string();
    let url = served.url(&format!("{BASE}/balances/{id}"));
    let attacker = token(&caller("poller"));
    let started = Instant::now();
    let flood: Vec<_> = (0..60)
        .map(|_| {
            let (url, attacker) = (url.clone(), attacker.clone());
            tokio::spawn(async move {
                client()
                    .get(url)
                    .bearer_auth(attacker)
                    .header("accept", V1)
                    .send()
                    .await
                    .map_or(0, |r| r.status().as_u16())
            })
        })
        .collect();
    let others = client();
    for i in 0..5 {
        let status = others
            .get(&url)
            .bearer_auth(token(&caller(&format!("polite-{i}"))))
            .header("accept", V1)
            .send()
            .await
            .expect("a GET")
            .status();
        assert_eq!(
            status, 404,
            "another caller's GET is answered, not throttled"
        );
    }
    let mut statuses = Vec::new();
    for f in flood {
        statuses.push(f.await.unwrap());
    }
    let served_count = statuses.iter().filter(|s| **s == 404).count();
    let allowed = 5 + 5 * started.elapsed().as_secs_f64().ceil() as usize;
    assert!(
        served_count <= allowed,
        "{served_count} of the flood served; its rate allows {allowed}"
    );
    assert!(
        statuses.iter().all(|s| *s == 404 || *s == 429),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_caller_past_its_requests_in_flight_is_refused_and_others_are_served() {
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_secs(2);
    let gms = parts.simulator();
    let app = Arc::new(
        TestApp::build(parts, gms, |c| {
            c.rate_limit.max_in_flight = 1;
        })
        .await,
    );
    let busy = token(&caller("busy"));
    let waiting = {
        let (app, busy) = (Arc::clone(&app), busy.clone());
        tokio::spawn(async move { app.call(v1_post(&busy, TIN, GRN_NO_REPLY, CODE)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let reply = app
        .call(v1_get(&busy, &BalanceRequestId::new().to_string()))
        .await;
    reply.assert(
        429,
        json!({"code": "TOO_MANY_REQUESTS", "message": "Too many requests"}),
    );
    assert_eq!(reply.retry_after(), 1);
    app.call(v2_post(&busy, GRN_BALANCE, CODE))
        .await
        .assert_code(429, "MESSAGE_THROTTLED_OUT");
    // Another caller is served meanwhile.
    assert_eq!(
        app.call(v2_post(&token(&caller("other")), GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
    assert_eq!(waiting.await.unwrap().status, 202);
    // Its place is free again.
    assert_eq!(
        app.call(v2_post(&busy, GRN_BALANCE_2, CODE)).await.status,
        200
    );
}

#[tokio::test]
async fn the_replicas_places_are_taken_after_authentication_and_the_callers_own_limits() {
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_secs(2);
    let gms = parts.simulator();
    let app = Arc::new(
        TestApp::build(parts, gms, |c| {
            c.max_in_flight = 1;
            c.rate_limit.max_in_flight = 1;
        })
        .await,
    );
    let holder = token(&caller("holder"));
    let waiting = {
        let (app, holder) = (Arc::clone(&app), holder.clone());
        tokio::spawn(async move { app.call(v1_post(&holder, TIN, GRN_NO_REPLY, CODE)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The replica's one place is taken: without a token, 401 (authentication comes first);
    // the holder again, 429 (its own limit comes before the replica's); anyone else, 503.
    app.call(v1_post_raw(None, "{}"))
        .await
        .assert_code(401, "UNAUTHORIZED");
    let again = app.call(v1_post(&holder, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(again.status, 429, "{}", again.text());
    assert_eq!(
        again.text(),
        r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#
    );
    let shed = app
        .call(v2_post(&token(&caller("late")), GRN_BALANCE, CODE))
        .await;
    shed.assert_code(503, "SERVICE_UNAVAILABLE");
    assert_eq!(shed.retry_after(), 1);
    assert_eq!(waiting.await.unwrap().status, 202);
}
