//! Connection limits over real sockets, on both listeners: the header-read timeout, the idle
//! keep-alive timeout, the cap on open connections, the head's size and header count.

use std::time::Duration;

use gbal_api::ConnectionLimits;

use crate::support::served::{Raw, Served, raw_get};
use crate::support::*;

fn limits(change: impl Fn(&mut ConnectionLimits)) -> impl FnOnce(&mut gbal_api::ApiConfig) {
    move |config| {
        change(&mut config.public_connections);
        change(&mut config.internal_connections);
    }
}

async fn served(change: impl Fn(&mut ConnectionLimits)) -> (TestApp, Served) {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, limits(change)).await;
    let served = Served::start(app.state.clone()).await;
    (app, served)
}

#[tokio::test]
async fn a_half_sent_head_is_closed_within_the_header_timeout_on_both_listeners() {
    let (_app, served) = served(|l| {
        l.header_read_timeout = Duration::from_secs(1);
        l.idle_timeout = Duration::from_secs(30);
    })
    .await;
    for addr in [served.public, served.internal] {
        let mut conn = Raw::open(addr).await;
        conn.send(b"GET /livez HTTP/1.1\r\nHost: gbal\r\nX-Half: sent\r\n")
            .await;
        let closed = conn.closed_within(Duration::from_secs(6)).await;
        let closed =
            closed.unwrap_or_else(|| panic!("{addr}: a half-sent head still open after 6 s"));
        assert!(
            closed >= Duration::from_millis(800),
            "{addr}: closed after {closed:?}, before the header timeout"
        );
        // A fresh connection is served meanwhile and after.
        let mut fresh = Raw::open(addr).await;
        fresh.send(&raw_get("/livez")).await;
        assert!(
            matches!(
                fresh.status(Duration::from_secs(5)).await,
                Ok(Some(200 | 404))
            ),
            "{addr}: a fresh connection is served"
        );
    }
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let (_app, served) = served(|l| {
        l.header_read_timeout = Duration::from_secs(10);
        l.idle_timeout = Duration::from_millis(600);
    })
    .await;
    let mut conn = Raw::open(served.public).await;
    // Requests within the idle timeout of each other keep the connection.
    for _ in 0..3 {
        conn.send(&raw_get("/livez")).await;
        assert_eq!(conn.status(Duration::from_secs(5)).await, Ok(Some(200)));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    conn.send(&raw_get("/livez")).await;
    assert_eq!(conn.status(Duration::from_secs(5)).await, Ok(Some(200)));
    // Then nothing: closed after the idle timeout, long before the header timeout.
    let closed = conn
        .closed_within(Duration::from_secs(5))
        .await
        .expect("an idle connection is closed");
    assert!(
        closed >= Duration::from_millis(500) && closed < Duration::from_secs(4),
        "closed {closed:?} after its last answer"
    );

    // The internal listener too.
    let mut conn = Raw::open(served.internal).await;
    conn.send(&raw_get("/metrics")).await;
    assert_eq!(conn.status(Duration::from_secs(5)).await, Ok(Some(200)));
    assert!(conn.closed_within(Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn past_max_connections_new_ones_wait_and_an_open_health_connection_keeps_answering() {
    let (_app, served) = served(|l| {
        l.max_connections = 2;
        l.header_read_timeout = Duration::from_secs(30);
        l.idle_timeout = Duration::from_secs(30);
    })
    .await;
    for (addr, probes) in [
        (served.public, &["/livez", "/readyz"][..]),
        (served.internal, &["/metrics"][..]),
    ] {
        let probe = probes[0];
        let mut health = Raw::open(addr).await;
        health.send(&raw_get(probe)).await;
        assert_eq!(health.status(Duration::from_secs(5)).await, Ok(Some(200)));
        // A second connection takes the last place.
        let mut second = Raw::open(addr).await;
        second.send(&raw_get(probe)).await;
        assert_eq!(second.status(Duration::from_secs(5)).await, Ok(Some(200)));
        // A third is not served while both are open...
        let mut third = Raw::open(addr).await;
        third.send(&raw_get(probe)).await;
        assert_eq!(
            third.status(Duration::from_millis(700)).await,
            Err("no answer in time"),
            "{addr}: a connection past the cap was served"
        );
        // ...while the health connection keeps answering, /readyz included.
        for path in probes {
            health.send(&raw_get(path)).await;
            assert_eq!(
                health.status(Duration::from_secs(5)).await,
                Ok(Some(200)),
                "{addr}{path} on the open health connection"
            );
        }
        // One closes: the third is accepted and answered.
        drop(second);
        assert_eq!(
            third.status(Duration::from_secs(5)).await,
            Ok(Some(200)),
            "{addr}: the waiting connection is served once a place is free"
        );
    }
}

#[tokio::test]
async fn an_oversized_head_and_too_many_headers_are_431_on_both_listeners() {
    let (_app, served) = served(|l| {
        l.max_header_bytes = 4096;
        l.max_headers = 16;
    })
    .await;
    for addr in [served.public, served.internal] {
        let big = format!(
            "GET /livez HTTP/1.1\r\nHost: gbal\r\nX-Big: {}\r\n\r\n",
            "a".repeat(8192)
        );
        let mut conn = Raw::open(addr).await;
        conn.send(big.as_bytes()).await;
        assert_eq!(
            conn.status(Duration::from_secs(5)).await,
            Ok(Some(431)),
            "{addr}: an 8 KiB header"
        );

        let mut many = String::from("GET /livez HTTP/1.1\r\nHost: gbal\r\n");
        for i in 0..20 {
            many.push_str(&format!("X-H{i}: v\r\n"));
        }
        many.push_str("\r\n");
        let mut conn = Raw::open(addr).await;
        conn.send(many.as_bytes()).await;
        assert_eq!(
            conn.status(Duration::from_secs(5)).await,
            Ok(Some(431)),
            "{addr}: 21 headers"
        );

        // Within the bounds, a long bearer token included, it is served.
        let fits = format!(
            "GET /livez HTTP/1.1\r\nHost: gbal\r\nAuthorization: Bearer {}\r\n\r\n",
            "t".repeat(2048)
        );
        let mut conn = Raw::open(addr).await;
        conn.send(fits.as_bytes()).await;
        assert!(
            matches!(
                conn.status(Duration::from_secs(5)).await,
                Ok(Some(200 | 404))
            ),
            "{addr}: a head within the bounds"
        );
    }
}

#[tokio::test]
async fn http2_is_not_served() {
    let (_app, served) = served(|_| {}).await;
    let mut conn = Raw::open(served.public).await;
    conn.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    // An HTTP/1.1 refusal or a closed connection; never an HTTP/2 SETTINGS frame.
    let mut first = [0u8; 16];
    let read = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut conn.stream, &mut first),
    )
    .await
    .expect("an answer or a close");
    let n = read.unwrap_or(0);
    assert!(
        n == 0 || first[..n].starts_with(b"HTTP/1.1 "),
        "{:?}",
        String::from_utf8_lossy(&first[..n])
    );
}

#[tokio::test]
async fn stopping_lets_a_request_in_flight_finish_and_closes_idle_connections() {
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_secs(5);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let served = Served::start(app.state.clone()).await;
    let mut idle = Raw::open(served.public).await;
    idle.send(&raw_get("/livez")).await;
    assert_eq!(idle.status(Duration::from_secs(5)).await, Ok(Some(200)));

    // A check whose reply comes 2 s late is in flight when the server is told to stop.
    let url = served.url(&format!("{BASE}/balances"));
    let check = tokio::spawn(async move {
        crate::support::served::client()
            .post(url)
            .bearer_auth(token(&caller("stopping")))
            .header("accept", V1)
            .json(&serde_json::json!({
                "taxIdentifier": sandbox::TIN,
                "guaranteeReference": sandbox::GRN_DELAYED,
                "accessCode": sandbox::CODE,
            }))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = tokio::spawn(served.stop());
    assert!(
        idle.closed_within(Duration::from_secs(3)).await.is_some(),
        "an idle connection is closed on stop"
    );
    assert_eq!(check.await.unwrap().expect("answered"), 200);
    stopped.await.unwrap().expect("a clean stop");
}
