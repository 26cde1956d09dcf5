//! `/readyz` reuses the store's answer for about a second: a flood of probes costs the
//! database about one ping a second, whether the store is up or down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use gbal_core::TrackerError;

use crate::support::*;

fn readyz() -> Request<Body> {
    Request::get("/readyz").body(Body::empty()).unwrap()
}

/// Floods `/readyz` for `secs` seconds (20 probes at once, every 20 ms) and returns the
/// statuses.
async fn flood(app: &Arc<TestApp>, secs: f64) -> Vec<u16> {
    let started = Instant::now();
    let mut statuses = Vec::new();
    while started.elapsed().as_secs_f64() < secs {
        let probes: Vec<_> = (0..20)
            .map(|_| {
                let app = Arc::clone(app);
                tokio::spawn(async move { app.call(readyz()).await.status.as_u16() })
            })
            .collect();
        for p in probes {
            statuses.push(p.await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    statuses
}

#[tokio::test]
async fn a_flood_of_readyz_pings_the_store_about_once_a_second() {
    let store = FakeTracker::in_memory().await;
    let parts = Parts::on(store.clone());
    let gms = parts.simulator();
    let app = Arc::new(TestApp::build(parts, gms, |_| {}).await);

    let statuses = flood(&app, 2.5).await;
    assert!(statuses.len() >= 400, "{} probes", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let pings = store.calls(Method::Ping);
    assert!(
        (1..=4).contains(&pings),
        "{} probes in 2.5 s pinged the store {pings} times",
        statuses.len()
    );

    // A store that is down is remembered the same way: 503 without a ping per probe.
    store.fail(Method::Ping, Times::Always, || {
        TrackerError::Unavailable("connection refused".into())
    });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = store.calls(Method::Ping);
    let statuses = flood(&app, 1.5).await;
    assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");
    let pings = store.calls(Method::Ping) - before;
    assert!((1..=3).contains(&pings), "{pings} pings while down");

    // Draining is 503 at once, whatever the store last said.
    store.clear(Method::Ping);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.call(readyz()).await.status, 200);
    app.state.start_draining();
    assert_eq!(app.call(readyz()).await.status, 503);
}
