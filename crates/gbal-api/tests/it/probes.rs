//! Probes, request ids, metrics.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gbal_core::{BalanceRequestId, TrackerError};
use serde_json::json;

use crate::support::sandbox::*;
use crate::support::*;

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn livez_and_readyz() {
    let app = TestApp::sandbox().await;
    let reply = app.call(get("/livez")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"status": "UP"}));
    let reply = app.call(get("/readyz")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"status": "READY"}));

    app.state.start_draining();
    let reply = app.call(get("/readyz")).await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
    assert!(reply.retry_after() >= 1);
    assert_eq!(app.call(get("/livez")).await.status, 200);
}

/// A store that never answers.
async fn hanging() -> Arc<FakeTracker> {
    let store = FakeTracker::in_memory().await;
    store.hang_all();
    store
}

/// A store that is down.
async fn down() -> Arc<FakeTracker> {
    let store = FakeTracker::in_memory().await;
    store.fail_all(|| TrackerError::Unavailable("connection refused".into()));
    store
}

#[tokio::test]
async fn readyz_needs_the_store_within_the_timeout() {
    let store = hanging().await;
    let parts = Parts::on(store.clone());
    let gms = FakeGms::new(|_| unreachable!());
    let app = TestApp::build(parts, gms, |c| {
        c.readiness_timeout = Duration::from_millis(100)
    })
    .await;
    assert_eq!(app.call(get("/livez")).await.status, 200);
    assert_eq!(
        store.calls(Method::Ping),
        0,
        "/livez never touches the store"
    );
    app.call(get("/readyz"))
        .await
        .assert_code(503, "SERVICE_UNAVAILABLE");

    let parts = Parts::on(down().await);
    let app = TestApp::build(parts, FakeGms::new(|_| unreachable!()), |_| {}).await;
    app.call(get("/readyz"))
        .await
        .assert_code(503, "SERVICE_UNAVAILABLE");
    // A store that is down is 503 for the API too, with Retry-After; never 500.
    let reply = app
        .call(v1_post(&token(&caller("down")), TIN, GRN_BALANCE, CODE))
        .await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
    assert!(!reply.text().contains("refused"));
    let reply = app
        .call(v1_get(
            &token(&caller("down")),
            &BalanceRequestId::new().to_string(),
        ))
        .await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
}

#[tokio::test]
async fn a_request_that_takes_too_long_is_503() {
    let mut parts = Parts::on(hanging().await);
    parts.balance.sync_wait = Duration::from_millis(100);
    parts.balance.v2_wait = Duration::from_millis(100);
    let app = TestApp::build(parts, FakeGms::new(|_| unreachable!()), |c| {
        c.request_timeout = Duration::from_millis(200);
    })
    .await;
    let reply = app
        .call(v2_post(&token(&caller("slow")), GRN_BALANCE, CODE))
        .await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
    assert!(reply.retry_after() >= 1);
}

#[tokio::test]
async fn request_ids_are_kept_when_well_formed_and_made_otherwise() {
    let app = TestApp::sandbox().await;
    let mut request = get("/livez");
    request
        .headers_mut()
        .insert("x-request-id", "abc-123".parse().unwrap());
    assert_eq!(
        app.call(request).await.header("x-request-id"),
        Some("abc-123")
    );

    for bad in ["has space", &"x".repeat(65), "semi;colon"] {
        let mut request = get("/livez");
        request
            .headers_mut()
            .insert("x-request-id", bad.parse().unwrap());
        let reply = app.call(request).await;
        let id = reply.header("x-request-id").unwrap();
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    }
    let reply = app.call(get("/nothing-here")).await;
    assert!(uuid::Uuid::parse_str(reply.header("x-request-id").unwrap()).is_ok());
    // Errors carry it too.
    let reply = app.call(v1_post_raw(None, "{}")).await;
    assert!(reply.header("x-request-id").is_some());
}

#[tokio::test]
async fn openapi_json_is_served() {
    let app = TestApp::sandbox().await;
    let reply = app.call(get("/openapi.json")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    // What it holds is checked against the contract in openapi.rs.
    assert_eq!(reply.json()["openapi"], "3.1.0");
}

#[tokio::test]
async fn a_configured_base_path_moves_the_api_and_its_links() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| c.base_path = "/gb/".to_owned()).await;
    let request = Request::post(format!("/gb/{GRN_BALANCE}/balance"))
        .header("accept", V2)
        .header("content-type", "application/json")
        .header(
            "authorization",
            format!("Bearer {}", token(&caller("base"))),
        )
        .body(Body::from(r#"{"accessCode":"AC01"}"#))
        .unwrap();
    let reply = app.call(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["_links"]["self"]["href"],
        format!("/gb/{GRN_BALANCE}/balance")
    );
    app.call(v2_post(&token(&caller("base")), GRN_BALANCE_2, CODE))
        .await
        .assert_code(404, "NOT_FOUND");
    let doc = app.call(get("/openapi.json")).await.json();
    assert!(doc["paths"].get("/gb/balances").is_some(), "{doc}");
}

#[tokio::test]
async fn metrics_are_rendered_on_the_internal_listener() {
    let mut parts = Parts::sqlite().await;
    parts.metrics = Some(metrics_render());
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 1;
    })
    .await;
    let token = token(&caller("metrics"));
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE_2, CODE))
            .await
            .status,
        429
    );
    assert_eq!(app.call(get("/nothing")).await.status, 404);

    let reply = app.call_internal(get("/metrics")).await;
    assert_eq!(reply.status, 200);
    let text = reply.text();
    for expected in [
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/customs/guarantees/balances",http_response_status_code="200"}"#,
        r#"http_server_request_duration_seconds_count{http_request_method="POST",http_route="/customs/guarantees/balances",http_response_status_code="429"}"#,
        r#"http_route="unmatched",http_response_status_code="404""#,
        r#"gbal_balance_outcomes_total{api_version="v1",outcome="success"}"#,
        r#"gbal_rate_limit_refusals_total{reason="client"}"#,
        "gbal_balance_checks_in_flight",
    ] {
        assert!(text.contains(expected), "{expected} is not in\n{text}");
    }
}

#[tokio::test]
async fn past_max_in_flight_balance_requests_are_shed_and_probes_still_answer() {
    let tracker = FakeTracker::in_memory().await;
    let mut parts = Parts::on(tracker.clone());
    parts.balance.sync_wait = Duration::from_secs(4);
    let gms = parts.simulator();
    let app = Arc::new(TestApp::build(parts, gms, |config| config.max_in_flight = 2).await);

    // Two checks wait for replies that never come, holding both places.
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let app = Arc::clone(&app);
            tokio::spawn(async move {
                let sub = caller("in-flight");
                app.call(v1_post(&token(&sub), TIN, GRN_NO_REPLY, CODE))
                    .await
            })
        })
        .collect();
    // Each has its place once it has recorded its request.
    gbal_testkit::eventually(Duration::from_secs(10), "both checks recorded", || {
        let inserted = tracker.calls(Method::Insert);
        async move { inserted == 2 }
    })
    .await;

    // The next balance request, of any kind, is refused at once: while both places are still
    // held, not once one frees up.
    let shed = app
        .call(v1_post(&token(&caller("shed")), TIN, GRN_BALANCE, CODE))
        .await;
    shed.assert_code(503, "SERVICE_UNAVAILABLE");
    assert_eq!(shed.retry_after(), 1);
    assert!(
        waiting.iter().all(|check| !check.is_finished()),
        "the refusal waited for a place to free up"
    );
    let v1_get = app
        .call(v1_get(
            &token(&caller("shed")),
            &gbal_core::BalanceRequestId::new().to_string(),
        ))
        .await;
    v1_get.assert_code(503, "SERVICE_UNAVAILABLE");
    // Probes are not balance requests.
    assert_eq!(app.call(get("/livez")).await.status, 200);
    assert_eq!(app.call(get("/readyz")).await.status, 200);

    for check in waiting {
        assert_eq!(check.await.unwrap().status, 202);
    }
    // Their places are free again.
    let served = app
        .call(v1_post(&token(&caller("shed")), TIN, GRN_BALANCE, CODE))
        .await;
    assert_eq!(served.status, 200, "{}", served.text());
}
