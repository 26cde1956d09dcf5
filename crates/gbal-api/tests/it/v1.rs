//! API v1: every row of API.md's `POST /balances` and `GET /balances/{balanceId}` tables.

use std::sync::Arc;
use std::time::Duration;

use gbal_core::{BalanceRequestId, CallerId, GmsError, MessageId, NctsError, Outcome};
use gbal_testkit::gms_rules::Case;
use serde_json::json;
use time::macros::datetime;

use crate::support::sandbox::*;
use crate::support::*;

#[tokio::test]
async fn balance_within_sync_wait_is_200_with_exact_digits() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-200"));
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        r#"{"response":{"balance":12345678.9,"currency":"GBP"}}"#
    );
    assert_schema(
        "v1",
        "post-balance-request-success-response-schema.json",
        &reply.json(),
    );

    let reply = app
        .call(v1_post(&token, "GB123456789000", GRN_50000, "AB12"))
        .await;
    assert_eq!(
        reply.text(),
        r#"{"response":{"balance":50000,"currency":"GBP"}}"#
    );
}

#[tokio::test]
async fn ie906_is_400_functional_error() {
    let app = TestApp::sandbox().await;
    let reply = app
        .call(v1_post(&token(&caller("v1-906")), TIN, GRN_BALANCE, "ZZ99"))
        .await;
    reply.assert(
        400,
        json!({
            "code": "FUNCTIONAL_ERROR",
            "message": "The request was rejected by the guarantee management system",
            "response": {"errors": [{"errorType": 12, "errorPointer": "GRR(1).ACC(1).Access code"}]}
        }),
    );
    assert_schema(
        "v1",
        "post-balance-request-functional-error-response-schema.json",
        &reply.json(),
    );

    // An unknown TIN carries 26 RC1.TIN too, but with 12 RC1.TIN: a functional error.
    let reply = app
        .call(v1_post(
            &token(&caller("v1-906")),
            "GB111111111111",
            GRN_BALANCE,
            CODE,
        ))
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json()["response"]["errors"],
        serde_json::from_str::<serde_json::Value>(&Case::UnknownTin.json()).unwrap()
    );
}

#[tokio::test]
async fn unsupported_type_keeps_its_reason() {
    let app = TestApp::sandbox().await;
    let reply = app
        .call(v1_post(&token(&caller("v1-r261")), TIN, GRN_TYPE_2, CODE))
        .await;
    reply.assert(
        400,
        json!({
            "code": "FUNCTIONAL_ERROR",
            "message": "The request was rejected by the guarantee management system",
            "response": {"errors": [{"errorType": 14, "errorPointer": "GRR(1).GQY(1).Query identifier", "errorReason": "R261"}]}
        }),
    );
}

#[tokio::test]
async fn query_limit_only_is_400_functional_error_with_its_error_list() {
    // As HMRC's v1 error table says: a v1 client reads error type 26 from the list.
    let app = TestApp::sandbox().await;
    let reply = app
        .call(v1_post(
            &token(&caller("v1-ql")),
            TIN_QUERY_LIMIT,
            GRN_BALANCE,
            CODE,
        ))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(
        reply.text(),
        r#"{"code":"FUNCTIONAL_ERROR","message":"The request was rejected by the guarantee management system","response":{"errors":[{"errorType":26,"errorPointer":"RC1.TIN"}]}}"#
    );
    assert_eq!(reply.header("retry-after"), None);
}

/// HMRC's v1 429 body, byte for byte: nothing else in it.
const TOO_MANY_REQUESTS: &str = r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#;

#[tokio::test]
async fn no_reply_within_sync_wait_is_202_then_pending_then_balance() {
    let mut parts = Parts::sqlite().await;
    parts.balance.sync_wait = Duration::from_millis(300);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let token = token(&caller("v1-202"));

    // The sandbox's delayed guarantee answers after 2 s.
    let reply = app.call(v1_post(&token, TIN, GRN_DELAYED, CODE)).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let body = reply.json();
    let id = body["balanceId"].as_str().unwrap().to_owned();
    let href = format!("{BASE}/balances/{id}");
    assert_eq!(
        body,
        json!({"_links": {"self": {"href": href}}, "balanceId": id})
    );
    assert_eq!(reply.header("location"), Some(href.as_str()));
    assert_schema(
        "v1",
        "post-balance-request-pending-response-schema.json",
        &body,
    );

    let pending = app.call(v1_get(&token, &id)).await;
    assert_eq!(pending.status, 200);
    let body = pending.json();
    assert_eq!(body["_links"]["self"]["href"], href);
    assert_eq!(body["request"]["balanceId"], id);
    assert_eq!(body["request"]["taxIdentifier"], TIN);
    assert_eq!(body["request"]["guaranteeReference"], GRN_DELAYED);
    assert!(body["request"].get("completedAt").is_none());
    assert!(body["request"].get("response").is_none());
    assert_schema("v1", "get-balance-request-response-schema.json", &body);

    let done = poll_until_completed(&app, &token, &id).await;
    let body = done.json();
    assert_eq!(
        body["request"]["response"],
        json!({"status": "SUCCESS", "balance": 10000, "currency": "GBP"})
    );
    assert!(done.text().contains(r#""balance":10000,"#));
    assert!(
        body["request"]["completedAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_schema("v1", "get-balance-request-response-schema.json", &body);
    assert_schema(
        "v1",
        "balance-request-success-schema.json",
        &body["request"]["response"],
    );
}

/// GET until the request shows its outcome (generously bounded: the reply is "eventually"),
/// at a client's pace, within the caller's request rate.
pub async fn poll_until_completed(app: &TestApp, token: &str, id: &str) -> Reply {
    gbal_testkit::eventually_some_every(
        Duration::from_secs(30),
        Duration::from_millis(200),
        &format!("request {id} completed"),
        || async {
            let reply = app.call(v1_get(token, id)).await;
            assert_eq!(reply.status, 200, "{}", reply.text());
            reply.json()["request"]
                .get("response")
                .is_some()
                .then_some(reply)
        },
    )
    .await
}

#[tokio::test]
async fn delayed_reply_within_sync_wait_is_200() {
    let app = TestApp::sandbox().await;
    let reply = app
        .call(v1_post(&token(&caller("v1-late")), TIN, GRN_DELAYED, CODE))
        .await;
    assert_eq!(
        reply.text(),
        r#"{"response":{"balance":10000,"currency":"GBP"}}"#
    );
}

#[tokio::test]
async fn invalid_json_is_reported_by_path() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-json"));
    let cases = [
        (
            r#"{"taxIdentifier":"GB1","guaranteeReference":"X1"}"#,
            json!({"$.accessCode": ["Missing path"]}),
        ),
        (
            r#"{"taxIdentifier":"GB1","guaranteeReference":"X1","accessCode":1234}"#,
            json!({"$.accessCode": ["String value expected"]}),
        ),
        (
            r#"{"taxIdentifier":null,"guaranteeReference":"X1","accessCode":"AC01"}"#,
            json!({"$.taxIdentifier": ["String value expected"]}),
        ),
        (
            "{}",
            json!({"$.accessCode": ["Missing path"], "$.guaranteeReference": ["Missing path"], "$.taxIdentifier": ["Missing path"]}),
        ),
        (
            r#""""#,
            json!({"$.accessCode": ["Missing path"], "$.guaranteeReference": ["Missing path"], "$.taxIdentifier": ["Missing path"]}),
        ),
        ("{not json", json!({"$": ["Invalid JSON"]})),
    ];
    for (body, errors) in cases {
        let reply = app.call(v1_post_raw(Some(&token), body)).await;
        reply.assert(
            400,
            json!({"code": "INVALID_REQUEST_JSON", "message": "Invalid request JSON", "errors": errors}),
        );
    }
    // Extra fields are ignored.
    let reply = app
        .call(v1_post_raw(
            Some(&token),
            &json!({"taxIdentifier": TIN, "guaranteeReference": GRN_BALANCE_3, "accessCode": CODE, "extra": [1]})
                .to_string(),
        ))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn field_rules_are_all_reported_in_order() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-fields"));
    let reply = app
        .call(v1_post(
            &token,
            "########################",
            "##############",
            "#",
        ))
        .await;
    let error = |code: &str, message: &str, reason: &str| json!({"code": code, "message": message, "reason": reason});
    reply.assert(
        400,
        json!({
            "code": "BAD_REQUEST",
            "message": "Bad request",
            "errors": [
                error("INVALID_TAX_IDENTIFIER", "Invalid tax identifier value", "Tax identifier has a maximum length of 17 characters"),
                error("INVALID_TAX_IDENTIFIER", "Invalid tax identifier value", "Tax identifier must be alphanumeric"),
                error("INVALID_GUARANTEE_REFERENCE", "Invalid guarantee reference value", "Guarantee reference must be alphanumeric"),
                error("INVALID_ACCESS_CODE", "Invalid access code value", "Access code must be 4 characters in length"),
                error("INVALID_ACCESS_CODE", "Invalid access code value", "Access code must be alphanumeric"),
            ]
        }),
    );
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, "ABC")).await;
    reply.assert(
        400,
        json!({"code": "BAD_REQUEST", "message": "Bad request", "errors": [
            error("INVALID_ACCESS_CODE", "Invalid access code value", "Access code must be 4 characters in length")
        ]}),
    );
    let reply = app.call(v1_post(&token, "", "", "AC01")).await;
    assert_eq!(
        reply.json()["errors"],
        json!([
            error(
                "INVALID_TAX_IDENTIFIER",
                "Invalid tax identifier value",
                "Tax identifier must not be empty"
            ),
            error(
                "INVALID_GUARANTEE_REFERENCE",
                "Invalid guarantee reference value",
                "Guarantee reference must not be empty"
            ),
        ])
    );
}

#[tokio::test]
async fn same_caller_and_grn_within_60_s_is_429_api_rate_limit() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-lock"));
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.text(), TOO_MANY_REQUESTS);
    assert!((1..=60).contains(&reply.retry_after()));
    // Another GRN, or another caller, is not limited.
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE_2, CODE))
            .await
            .status,
        200
    );
    let other = crate::support::token(&caller("v1-lock-other"));
    assert_eq!(
        app.call(v1_post(&other, TIN, GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn the_cluster_lock_refuses_what_another_replica_took() {
    // Two apps (replicas) on one store: the in-process limiter of the second knows nothing.
    let first = Parts::sqlite().await;
    let tracker = Arc::clone(&first.tracker);
    let gms = first.simulator();
    let a = TestApp::build(first, gms, |_| {}).await;
    let second = Parts::on(tracker);
    let gms = second.simulator();
    let b = TestApp::build(second, gms, |_| {}).await;
    let token = token(&caller("v1-cluster"));
    assert_eq!(
        a.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await.status,
        200
    );
    let reply = b.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.text(), TOO_MANY_REQUESTS);
    assert!((1..=60).contains(&reply.retry_after()));
}

#[tokio::test]
async fn caller_over_its_rate_is_429_client_rate_limit() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 1;
    })
    .await;
    let token = token(&caller("v1-rate"));
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE_2, CODE)).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.text(), TOO_MANY_REQUESTS);
    assert_eq!(reply.retry_after(), 1);
}

#[tokio::test]
async fn a_second_check_within_the_minute_is_refused_from_the_replicas_memory() {
    let store = gbal_testkit::FakeTracker::in_memory().await;
    let parts = Parts::on(store.clone());
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let token = token(&caller("v1-mirror"));
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
    for _ in 0..3 {
        let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.text(), TOO_MANY_REQUESTS);
        assert!((1..=60).contains(&reply.retry_after()));
    }
    // Only the first check reached the store's lock.
    assert_eq!(store.calls(gbal_testkit::Method::AcquireLock), 1);
}

#[tokio::test]
async fn a_caller_over_its_rate_is_429_on_get_too_before_anything_else_is_read() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 1;
    })
    .await;
    let token = token(&caller("v1-get-rate"));
    let id = BalanceRequestId::new().to_string();
    app.call(v1_get(&token, &id))
        .await
        .assert_code(404, "NOT_FOUND");
    let reply = app.call(v1_get(&token, &id)).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.text(), TOO_MANY_REQUESTS);
    assert_eq!(reply.retry_after(), 1);
    // Counted right after authentication: neither Accept nor the body is looked at.
    let mut request = v1_post_raw(Some(&token), "{not json");
    request.headers_mut().remove("accept");
    let reply = app.call(request).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_eq!(reply.text(), TOO_MANY_REQUESTS);
    // Other callers are not limited by it.
    let other = crate::support::token(&caller("v1-get-rate-other"));
    app.call(v1_get(&other, &id))
        .await
        .assert_code(404, "NOT_FOUND");
}

#[tokio::test]
async fn accept_missing_or_another_version_is_406() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-406"));
    let body = json!({"code": "ACCEPT_HEADER_INVALID", "message": "The accept header is missing or invalid"});
    for accept in [
        None,
        Some(V2),
        Some("application/json"),
        Some("application/vnd.hmrc.1x0+json"),
    ] {
        let mut request = v1_post(&token, TIN, GRN_BALANCE, CODE);
        request.headers_mut().remove("accept");
        if let Some(accept) = accept {
            request
                .headers_mut()
                .insert("accept", accept.parse().unwrap());
        }
        app.call(request).await.assert(406, body.clone());
        let mut request = v1_get(&token, &BalanceRequestId::new().to_string());
        request.headers_mut().remove("accept");
        if let Some(accept) = accept {
            request
                .headers_mut()
                .insert("accept", accept.parse().unwrap());
        }
        app.call(request).await.assert(406, body.clone());
    }
}

#[tokio::test]
async fn content_type_not_json_is_415_and_big_bodies_413() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-415"));
    let mut request = v1_post(&token, TIN, GRN_BALANCE, CODE);
    request
        .headers_mut()
        .insert("content-type", "text/plain".parse().unwrap());
    app.call(request)
        .await
        .assert_code(415, "UNSUPPORTED_MEDIA_TYPE");
    let mut request = v1_post(&token, TIN, GRN_BALANCE, CODE);
    request.headers_mut().remove("content-type");
    app.call(request)
        .await
        .assert_code(415, "UNSUPPORTED_MEDIA_TYPE");

    let big = format!(r#"{{"taxIdentifier":"{}"}}"#, "A".repeat(17 * 1024));
    app.call(v1_post_raw(Some(&token), &big))
        .await
        .assert_code(413, "REQUEST_ENTITY_TOO_LARGE");
}

#[tokio::test]
async fn ie917_or_gms_refused_or_garbled_is_502() {
    let app = TestApp::sandbox().await;
    let body = json!({"code": "BAD_GATEWAY", "message": "The guarantee management system could not process the request"});
    for grn in [GRN_IE917, GRN_MALFORMED] {
        let reply = app
            .call(v1_post(&token(&caller("v1-502")), TIN, grn, CODE))
            .await;
        reply.assert(502, body.clone());
    }
    let parts = Parts::sqlite().await;
    let app = TestApp::build(
        parts,
        FakeGms::new(|_| Err(GmsError::Rejected { status: 400 })),
        |_| {},
    )
    .await;
    let reply = app
        .call(v1_post(&token(&caller("v1-502")), TIN, GRN_BALANCE, CODE))
        .await;
    reply.assert(502, body);
}

#[tokio::test]
async fn gms_unavailable_is_503_with_retry_after() {
    let app = TestApp::sandbox().await;
    let reply = app
        .call(v1_post(&token(&caller("v1-503")), TIN, GRN_503, CODE))
        .await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
    assert!(reply.retry_after() >= 1);

    let parts = Parts::sqlite().await;
    let app = TestApp::build(
        parts,
        FakeGms::new(|_| {
            Err(GmsError::Unavailable {
                retry_after: Duration::from_secs(30),
                reason: "circuit open".to_owned(),
            })
        }),
        |_| {},
    )
    .await;
    let reply = app
        .call(v1_post(&token(&caller("v1-503")), TIN, GRN_BALANCE, CODE))
        .await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
    assert_eq!(reply.retry_after(), 30);
    assert!(!reply.text().contains("circuit"), "5xx bodies are opaque");
}

#[tokio::test]
async fn anything_else_is_an_opaque_500() {
    let parts = Parts::sqlite().await;
    let app = TestApp::build(
        parts,
        FakeGms::new(|_| {
            Err(GmsError::Internal(
                "the IE034 failed its self-check".to_owned(),
            ))
        }),
        |_| {},
    )
    .await;
    let reply = app
        .call(v1_post(&token(&caller("v1-500")), TIN, GRN_BALANCE, CODE))
        .await;
    reply.assert(
        500,
        json!({"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error"}),
    );

    let parts = Parts::sqlite().await;
    let app = TestApp::build(
        parts,
        FakeGms::new(|_| panic!("a bug in an adapter")),
        |_| {},
    )
    .await;
    let reply = app
        .call(v1_post(&token(&caller("v1-500")), TIN, GRN_BALANCE, CODE))
        .await;
    reply.assert(
        500,
        json!({"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error"}),
    );
}

/// A pending request made at `at` by `sub` through the no-reply guarantee.
async fn pending_request(app: &TestApp, sub: &str) -> String {
    let reply = app
        .call(v1_post(&token(sub), TIN, GRN_NO_REPLY, CODE))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    reply.json()["balanceId"].as_str().unwrap().to_owned()
}

async fn app_at(at: time::OffsetDateTime) -> (TestApp, Arc<TestClock>) {
    let mut parts = Parts::sqlite().await;
    let clock = TestClock::at(at);
    parts.clock = clock.clone();
    parts.balance.sync_wait = Duration::from_millis(50);
    let gms = parts.simulator();
    (TestApp::build(parts, gms, |_| {}).await, clock)
}

fn message_id_of(id: &str) -> MessageId {
    id.parse::<BalanceRequestId>().unwrap().message_id()
}

#[tokio::test]
async fn get_shows_pending_balance_and_functional_error_with_rfc3339_times() {
    let (app, clock) = app_at(datetime!(2021-09-14 09:52:15 UTC)).await;
    let sub = caller("v1-get");
    let token = token(&sub);

    let id = pending_request(&app, &sub).await;
    let reply = app.call(v1_get(&token, &id)).await;
    reply.assert(
        200,
        json!({
            "_links": {"self": {"href": format!("{BASE}/balances/{id}")}},
            "request": {
                "balanceId": id,
                "taxIdentifier": TIN,
                "guaranteeReference": GRN_NO_REPLY,
                "requestedAt": "2021-09-14T09:52:15Z"
            }
        }),
    );

    clock.advance(Duration::from_secs(50));
    let balance = gbal_core::Balance {
        amount: "50000.00".parse().unwrap(),
        currency: "GBP".parse().unwrap(),
    };
    app.tracker
        .complete(
            message_id_of(&id),
            &Outcome::Success(balance),
            app.clock.now(),
        )
        .await
        .unwrap();
    let reply = app.call(v1_get(&token, &id)).await;
    reply.assert(
        200,
        json!({
            "_links": {"self": {"href": format!("{BASE}/balances/{id}")}},
            "request": {
                "balanceId": id,
                "taxIdentifier": TIN,
                "guaranteeReference": GRN_NO_REPLY,
                "requestedAt": "2021-09-14T09:52:15Z",
                "completedAt": "2021-09-14T09:53:05Z",
                "response": {"status": "SUCCESS", "balance": 50000, "currency": "GBP"}
            }
        }),
    );
    assert_schema(
        "v1",
        "get-balance-request-response-schema.json",
        &reply.json(),
    );

    // Another request, answered with an IE906.
    let sub2 = caller("v1-get-906");
    let token2 = crate::support::token(&sub2);
    let id2 = pending_request(&app, &sub2).await;
    let errors = vec![NctsError::new(
        gbal_core::ErrorType::new(14).unwrap(),
        "Foo.Bar(1).Baz",
    )];
    app.tracker
        .complete(
            message_id_of(&id2),
            &Outcome::FunctionalError { errors },
            app.clock.now(),
        )
        .await
        .unwrap();
    let reply = app.call(v1_get(&token2, &id2)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json()["request"]["response"],
        json!({"status": "FUNCTIONAL_ERROR", "errors": [{"errorType": 14, "errorPointer": "Foo.Bar(1).Baz"}]})
    );
    assert_schema(
        "v1",
        "get-balance-request-response-schema.json",
        &reply.json(),
    );
    assert_schema(
        "v1",
        "balance-request-functional-error-schema.json",
        &reply.json()["request"]["response"],
    );
}

#[tokio::test]
async fn get_of_an_xml_error_is_502() {
    let (app, _) = app_at(datetime!(2021-09-14 09:52:15 UTC)).await;
    let sub = caller("v1-get-917");
    let id = pending_request(&app, &sub).await;
    let errors = vec![NctsError::new(
        gbal_core::ErrorType::new(15).unwrap(),
        "MesRecMES6",
    )];
    app.tracker
        .complete(
            message_id_of(&id),
            &Outcome::XmlError { errors },
            app.clock.now(),
        )
        .await
        .unwrap();
    app.call(v1_get(&token(&sub), &id)).await.assert(
        502,
        json!({"code": "BAD_GATEWAY", "message": "The guarantee management system could not process the request"}),
    );
}

#[tokio::test]
async fn get_of_unknown_expired_or_another_callers_request_is_404() {
    let (app, clock) = app_at(OffsetDateTimeNow::now()).await;
    let sub = caller("v1-404");
    let id = pending_request(&app, &sub).await;
    let not_found = |id: &str| json!({"code": "NOT_FOUND", "message": format!("The balance request with ID {id} was not found")});

    let unknown = BalanceRequestId::new().to_string();
    app.call(v1_get(&token(&sub), &unknown))
        .await
        .assert(404, not_found(&unknown));
    app.call(v1_get(&token(&caller("v1-404-other")), &id))
        .await
        .assert(404, not_found(&id));
    assert_eq!(app.call(v1_get(&token(&sub), &id)).await.status, 200);
    // Upper-case ids name the same request.
    assert_eq!(
        app.call(v1_get(&token(&sub), &id.to_uppercase()))
            .await
            .status,
        200
    );

    clock.advance(Duration::from_secs(3600));
    app.call(v1_get(&token(&sub), &id))
        .await
        .assert(404, not_found(&id));
}

struct OffsetDateTimeNow;

impl OffsetDateTimeNow {
    fn now() -> time::OffsetDateTime {
        let now = time::OffsetDateTime::now_utc();
        now.replace_nanosecond(0).unwrap()
    }
}

#[tokio::test]
async fn get_with_an_id_that_is_not_a_uuid_is_400() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v1-uuid"));
    for id in [
        "not-a-uuid",
        "22b9899e24ee48e6a18997d1f45391c4",
        "22b9899e-24ee-48e6-a189-97d1f45391cz",
    ] {
        app.call(v1_get(&token, id)).await.assert(
            400,
            json!({"code": "BAD_REQUEST", "message": "The balance request ID is not a valid UUID"}),
        );
    }
}

/// Answers with a balance and remembers the id of each request it was sent.
#[derive(Debug, Default)]
struct Remembering(std::sync::Mutex<Vec<BalanceRequestId>>);

#[async_trait::async_trait]
impl gbal_core::Gms for Remembering {
    async fn submit(
        &self,
        _: &gbal_core::BalanceQuery,
        context: &gbal_core::SubmitContext,
    ) -> Result<gbal_core::Submission, GmsError> {
        self.0.lock().unwrap().push(context.balance_id);
        Ok(gbal_core::Submission::Answered(Outcome::Success(
            gbal_core::Balance {
                amount: "1".parse().unwrap(),
                currency: "GBP".parse().unwrap(),
            },
        )))
    }

    fn transport(&self) -> &'static str {
        "remembering"
    }
}

#[tokio::test]
async fn a_v2_request_is_not_a_v1_resource() {
    // v2 never hands out ids; a v2 request looked up through v1 does not exist.
    let gms = Arc::new(Remembering::default());
    let app = TestApp::build(Parts::sqlite().await, gms.clone(), |_| {}).await;
    let sub = caller("v1-v2row");
    assert_eq!(
        app.call(v2_post(&token(&sub), GRN_BALANCE, CODE))
            .await
            .status,
        200
    );
    let id = gms.0.lock().unwrap()[0];
    let stored = app
        .tracker
        .get(id, &CallerId::parse(&sub).unwrap(), app.clock.now())
        .await
        .unwrap();
    assert!(stored.is_some(), "the v2 request is recorded");
    let reply = app.call(v1_get(&token(&sub), &id.to_string())).await;
    reply.assert_code(404, "NOT_FOUND");
}
