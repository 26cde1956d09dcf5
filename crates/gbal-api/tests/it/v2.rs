//! API v2: every row of API.md's `POST /{grn}/balance` table, and the routing rows.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gbal_core::{GmsError, Outcome, Submission};
use gbal_testkit::gms_rules::Case;
use serde_json::json;

use crate::support::sandbox::*;
use crate::support::*;

#[tokio::test]
async fn balance_is_200_with_a_self_link() {
    let app = TestApp::sandbox().await;
    let reply = app
        .call(v2_post(&token(&caller("v2-200")), GRN_BALANCE_2, CODE))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.text(),
        r#"{"_links":{"self":{"href":"/customs/guarantees/26GB0000010000039/balance"}},"balance":1234.56,"currency":"GBP"}"#
    );
    assert_schema(
        "v2",
        "post-get-guarantee-balance-response-ok-schema.json",
        &reply.json(),
    );
    let reply = app
        .call(v2_post(&token(&caller("v2-200")), GRN_BALANCE_3, "ac01"))
        .await;
    assert!(
        reply.text().contains(r#""balance":262626,"#),
        "{}",
        reply.text()
    );
}

#[tokio::test]
async fn grn_rules() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v2-grn"));
    for grn in [
        "26GB00000100000",
        "26gb0000010000012",
        "2XGB0000010000012",
        "26GB000001000001X",
        "26GB00000100000123",
    ] {
        app.call(v2_post(&token, grn, CODE)).await.assert(
            400,
            json!({"code": "BAD_REQUEST", "message": "The guarantee reference number is not in the correct format."}),
        );
    }
    app.call(v2_post(&token, "26FR0000010000012", CODE)).await.assert(
        400,
        json!({"code": "BAD_REQUEST", "message": "The guarantee reference number must be for a GB or XI guarantee."}),
    );
}

#[tokio::test]
async fn access_code_absent_or_not_a_string() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v2-absent"));
    for body in [
        "{}",
        r#"{"accessCode":1234}"#,
        r#"{"accessCode":null}"#,
        "[]",
        r#""AC01""#,
        "{not json",
    ] {
        app.call(v2_post_raw(Some(&token), GRN_BALANCE, body))
            .await
            .assert(
                400,
                json!({"code": "BAD_REQUEST", "message": "The access code was not supplied."}),
            );
    }
}

#[tokio::test]
async fn access_code_format_is_refused_without_echoing_it() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v2-format"));
    for code in ["ABC", "ABCDE", "AB-1", "QX9é"] {
        let reply = app.call(v2_post(&token, GRN_BALANCE, code)).await;
        reply.assert(
            400,
            json!({"code": "BAD_REQUEST", "message": "Access code must be four alphanumeric characters."}),
        );
        assert!(!reply.text().contains(code));
    }
}

#[tokio::test]
async fn unsupported_guarantee_type_is_400() {
    let app = TestApp::sandbox().await;
    app.call(v2_post(&token(&caller("v2-type")), GRN_TYPE_2, CODE)).await.assert(
        400,
        json!({"code": "INVALID_GUARANTEE_TYPE", "message": "Guarantee type is not supported."}),
    );
}

#[tokio::test]
async fn unknown_grn_or_wrong_access_code_is_404() {
    let app = TestApp::sandbox().await;
    let body = json!({"code": "NOT_FOUND", "message": "The guarantee reference number or access code did not match an existing guarantee."});
    app.call(v2_post(&token(&caller("v2-404")), GRN_UNKNOWN, CODE))
        .await
        .assert(404, body.clone());
    app.call(v2_post(&token(&caller("v2-404")), GRN_BALANCE, "ZZ99"))
        .await
        .assert(404, body);
}

#[tokio::test]
async fn same_caller_and_grn_within_60_s_is_throttled() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v2-429"));
    assert_eq!(
        app.call(v2_post(&token, GRN_BALANCE, CODE)).await.status,
        200
    );
    let reply = app.call(v2_post(&token, GRN_BALANCE, CODE)).await;
    reply.assert(
        429,
        json!({"code": "MESSAGE_THROTTLED_OUT", "message": "The request for the API is throttled as you have exceeded your quota."}),
    );
    assert!((1..=60).contains(&reply.retry_after()));
    // The lock is per (caller, GRN) whatever the version.
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(reply.status, 429, "{}", reply.text());
    assert_eq!(
        reply.text(),
        r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#
    );
}

#[tokio::test]
async fn a_caller_over_its_rate_is_throttled() {
    let parts = Parts::sqlite().await;
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |c| {
        c.rate_limit.per_second = 1;
        c.rate_limit.burst = 1;
    })
    .await;
    let token = token(&caller("v2-rate"));
    assert_eq!(
        app.call(v2_post(&token, GRN_BALANCE, CODE)).await.status,
        200
    );
    let reply = app.call(v2_post(&token, GRN_BALANCE_2, CODE)).await;
    reply.assert(
        429,
        json!({"code": "MESSAGE_THROTTLED_OUT", "message": "The request for the API is throttled as you have exceeded your quota."}),
    );
    assert_eq!(reply.retry_after(), 1);
}

#[tokio::test]
async fn gms_query_limit_is_throttled_and_other_ie906_is_a_functional_error() {
    let parts = Parts::sqlite().await;
    let app = TestApp::build(
        parts,
        FakeGms::new(|query| {
            let case = if query.grn.as_str() == GRN_BALANCE {
                Case::QueryLimit
            } else {
                Case::TinMismatch
            };
            Ok(Submission::Answered(Outcome::FunctionalError {
                errors: case.errors(),
            }))
        }),
        |_| {},
    )
    .await;
    let reply = app
        .call(v2_post(&token(&caller("v2-ql")), GRN_BALANCE, CODE))
        .await;
    reply.assert_code(429, "MESSAGE_THROTTLED_OUT");
    assert!(reply.retry_after() >= 1);
    let reply = app
        .call(v2_post(&token(&caller("v2-ql")), GRN_BALANCE_2, CODE))
        .await;
    reply.assert(
        400,
        json!({
            "code": "FUNCTIONAL_ERROR",
            "message": "The request was rejected by the guarantee management system",
            "errors": [{"errorType": 12, "errorPointer": "GRR(1).OTG(1).TIN"}]
        }),
    );
}

#[tokio::test]
async fn accept_missing_or_another_version_is_406() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v2-406"));
    for accept in [None, Some(V1), Some("application/json")] {
        let mut request = v2_post(&token, GRN_BALANCE, CODE);
        request.headers_mut().remove("accept");
        if let Some(accept) = accept {
            request
                .headers_mut()
                .insert("accept", accept.parse().unwrap());
        }
        app.call(request).await.assert(
            406,
            json!({"code": "ACCEPT_HEADER_INVALID", "message": "The Accept header must be set to application/vnd.hmrc.2.0+json to use this resource."}),
        );
    }
}

#[tokio::test]
async fn no_answer_within_v2_wait_is_504() {
    let mut parts = Parts::sqlite().await;
    parts.balance.v2_wait = Duration::from_millis(200);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    app.call(v2_post(&token(&caller("v2-504")), GRN_NO_REPLY, CODE)).await.assert(
        504,
        json!({"code": "GATEWAY_TIMEOUT", "message": "The guarantee management system did not answer in time"}),
    );
    // A reply within the wait is the balance (the delayed guarantee answers after 2 s).
    let mut parts = Parts::sqlite().await;
    parts.balance.v2_wait = Duration::from_secs(5);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let reply = app
        .call(v2_post(&token(&caller("v2-504")), GRN_DELAYED, CODE))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[tokio::test]
async fn the_v1_rows_413_415_502_503_500() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("v2-5xx"));
    let mut request = v2_post(&token, GRN_BALANCE, CODE);
    request
        .headers_mut()
        .insert("content-type", "application/xml".parse().unwrap());
    app.call(request)
        .await
        .assert_code(415, "UNSUPPORTED_MEDIA_TYPE");
    let big = format!(
        r#"{{"accessCode":"AC01","pad":"{}"}}"#,
        "x".repeat(16 * 1024)
    );
    app.call(v2_post_raw(Some(&token), GRN_BALANCE, &big))
        .await
        .assert_code(413, "REQUEST_ENTITY_TOO_LARGE");
    app.call(v2_post(&token, GRN_IE917, CODE))
        .await
        .assert_code(502, "BAD_GATEWAY");
    app.call(v2_post(&token, GRN_MALFORMED, CODE))
        .await
        .assert_code(502, "BAD_GATEWAY");
    let reply = app.call(v2_post(&token, GRN_503, CODE)).await;
    reply.assert_code(503, "SERVICE_UNAVAILABLE");
    assert!(reply.retry_after() >= 1);

    let parts = Parts::sqlite().await;
    let app = TestApp::build(parts, FakeGms::new(|_| Err(GmsError::TimedOut)), |_| {}).await;
    app.call(v2_post(&token, GRN_BALANCE, CODE))
        .await
        .assert_code(504, "GATEWAY_TIMEOUT");
    let parts = Parts::sqlite().await;
    let app = TestApp::build(
        parts,
        FakeGms::new(|_| Err(GmsError::Internal("bug".into()))),
        |_| {},
    )
    .await;
    app.call(v2_post(&token, GRN_BALANCE, CODE)).await.assert(
        500,
        json!({"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error"}),
    );
}

#[tokio::test]
async fn other_methods_are_405_and_unknown_paths_404() {
    let app = TestApp::sandbox().await;
    let token = token(&caller("routes"));
    for (method, path) in [
        ("GET", format!("{BASE}/{GRN_BALANCE}/balance")),
        ("DELETE", format!("{BASE}/balances")),
        (
            "PUT",
            format!("{BASE}/balances/22b9899e-24ee-48e6-a189-97d1f45391c4"),
        ),
        ("POST", "/livez".to_owned()),
    ] {
        let request = Request::builder()
            .method(method)
            .uri(&path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let reply = app.call(request).await;
        reply.assert_code(405, "METHOD_NOT_ALLOWED");
        assert!(reply.header("allow").is_some(), "{method} {path}");
    }
    for path in [
        "/",
        "/customs",
        &format!("{BASE}/nothing"),
        &format!("{BASE}/{GRN_BALANCE}/balance/x"),
        "/balances",
    ] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        app.call(request).await.assert(
            404,
            json!({"code": "NOT_FOUND", "message": "URI not found"}),
        );
    }
}
