//! The internal reply route: every row of API.md's table.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use gbal_core::{
    BalanceRequest, BalanceRequestId, ErrorType, GuaranteeType, MessageId, NctsError,
    UniqueReference,
};
use gbal_ncts::{Header, Ie037, Ie906, Ie917, wrap_transit_request};
use serde_json::json;

use crate::support::sandbox::*;
use crate::support::*;

pub(crate) const PREFIX: &str = "MDTP-GUA-";

/// An app whose v1 checks answer 202 at once, and a pending request made through it.
pub(crate) async fn pending() -> (TestApp, String, BalanceRequest) {
    pending_on(Parts::sqlite().await).await
}

/// [`pending`] on the tracker of `parts`.
async fn pending_on(mut parts: Parts) -> (TestApp, String, BalanceRequest) {
    parts.balance.sync_wait = Duration::from_millis(20);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let sub = caller("reply");
    let reply = app
        .call(v1_post(&token(&sub), TIN, GRN_NO_REPLY, CODE))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let id: BalanceRequestId = reply.json()["balanceId"].as_str().unwrap().parse().unwrap();
    let request = app
        .tracker
        .get_by_message_id(id.message_id(), app.clock.now())
        .await
        .unwrap()
        .unwrap();
    (app, sub, request)
}

pub(crate) fn header(recipient: &str) -> Header {
    Header {
        sender: "NTA.GB".to_owned(),
        recipient: recipient.to_owned(),
        prepared_at: time::OffsetDateTime::now_utc(),
        message_ref: UniqueReference::random(),
    }
}

pub(crate) fn ie037(recipient: &str, grn: &str, balance: &str) -> String {
    Ie037 {
        balance: Some(balance.parse().unwrap()),
        ..ie037_of(recipient, grn)
    }
    .build()
    .unwrap()
}

/// An IE037 for `grn`, with a balance of 1.
fn ie037_of(recipient: &str, grn: &str) -> Ie037 {
    Ie037 {
        header: header(recipient),
        requester_tin: Some(TIN.to_owned()),
        guarantee_office: "GB000001".to_owned(),
        grn: grn.to_owned(),
        accepted_on: "20210114".to_owned(),
        guarantee_type: "1".parse::<GuaranteeType>().unwrap(),
        exposure: "0".parse().unwrap(),
        balance: Some("1".parse().unwrap()),
        currency: "GBP".parse().unwrap(),
    }
}

pub(crate) fn ie906(recipient: &str, original_ref: &str) -> String {
    Ie906 {
        header: header(recipient),
        original_ref: original_ref.to_owned(),
        errors: vec![NctsError::new(
            ErrorType::INCORRECT,
            "GRR(1).ACC(1).Access code",
        )],
    }
    .build()
}

pub(crate) fn ie917(recipient: &str, original_ref: &str) -> String {
    Ie917 {
        header: header(recipient),
        original_ref: original_ref.to_owned(),
        error: NctsError::new(ErrorType::new(15).unwrap(), "MesRecMES6"),
    }
    .build()
}

pub(crate) fn recipient_of(request: &BalanceRequest) -> String {
    request.message_id.recipient(PREFIX)
}

#[tokio::test]
async fn a_reply_is_stored_and_an_identical_duplicate_acknowledged() {
    let (app, sub, request) = pending().await;
    let recipient = recipient_of(&request);
    let xml = ie037(&recipient, GRN_NO_REPLY, "1234.50");
    let reply = app
        .call_internal(reply_post(&recipient, Some("IE037"), &xml))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.body.is_empty());
    // The recipient in upper case, the message wrapped: the same reply.
    let upper = format!("{PREFIX}{}", request.message_id.to_hex().to_uppercase());
    let wrapped = wrap_transit_request(&xml);
    let reply = app
        .call_internal(reply_post(&upper, Some("IE037"), &wrapped))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let got = app
        .call(v1_get(&token(&sub), &request.id.to_string()))
        .await;
    assert_eq!(
        got.json()["request"]["response"],
        json!({"status": "SUCCESS", "balance": 1234.5, "currency": "GBP"})
    );
}

#[tokio::test]
async fn a_different_outcome_is_409_and_changes_nothing() {
    let (app, sub, request) = pending().await;
    let recipient = recipient_of(&request);
    let first = ie906(&recipient, request.message_ref.as_str());
    assert_eq!(
        app.call_internal(reply_post(&recipient, Some("IE906"), &first))
            .await
            .status,
        200
    );
    let reply = app
        .call_internal(reply_post(
            &recipient,
            Some("IE037"),
            &ie037(&recipient, GRN_NO_REPLY, "1"),
        ))
        .await;
    reply.assert_code(409, "CONFLICT");
    let reply = app
        .call_internal(reply_post(
            &recipient,
            Some("IE917"),
            &ie917(&recipient, request.message_ref.as_str()),
        ))
        .await;
    reply.assert_code(409, "CONFLICT");
    let got = app
        .call(v1_get(&token(&sub), &request.id.to_string()))
        .await;
    assert_eq!(
        got.json()["request"]["response"]["status"],
        "FUNCTIONAL_ERROR"
    );
}

#[tokio::test]
async fn an_ie917_is_stored() {
    let (app, sub, request) = pending().await;
    let recipient = recipient_of(&request);
    let xml = ie917(&recipient, request.message_ref.as_str());
    assert_eq!(
        app.call_internal(reply_post(&recipient, Some("IE917"), &xml))
            .await
            .status,
        200
    );
    app.call(v1_get(&token(&sub), &request.id.to_string()))
        .await
        .assert_code(502, "BAD_GATEWAY");
}

#[tokio::test]
async fn the_token_is_required() {
    let (app, _, request) = pending().await;
    let recipient = recipient_of(&request);
    let xml = ie037(&recipient, GRN_NO_REPLY, "1");
    for authorization in [
        None,
        Some("Bearer wrong-token-0123456789abcd"),
        Some("Bearer reply-token-0123456789abcdeF"),
        Some(REPLY_TOKEN),
    ] {
        let mut request = reply_post(&recipient, Some("IE037"), &xml);
        request.headers_mut().remove("authorization");
        if let Some(a) = authorization {
            request
                .headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let reply = app.call_internal(request).await;
        reply.assert_code(401, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn the_message_type_header_must_name_a_reply() {
    let (app, _, request) = pending().await;
    let recipient = recipient_of(&request);
    let xml = ie037(&recipient, GRN_NO_REPLY, "1");
    for message_type in [None, Some("IE034"), Some("ie037"), Some("IE038"), Some("")] {
        app.call_internal(reply_post(&recipient, message_type, &xml)).await.assert(
            400,
            json!({"code": "BAD_REQUEST", "message": "Missing or incorrect X-Message-Type header"}),
        );
    }
}

#[tokio::test]
async fn schema_errors_are_listed() {
    let (app, _, request) = pending().await;
    let recipient = recipient_of(&request);
    let ie037_xml = ie037(&recipient, GRN_NO_REPLY, "1");
    // The root does not match the header.
    let reply = app
        .call_internal(reply_post(&recipient, Some("IE906"), &ie037_xml))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    let body = reply.json();
    assert_eq!(body["code"], "SCHEMA_VALIDATION");
    assert_eq!(body["message"], "Error while validating IE906 message");
    let first = &body["errors"][0];
    assert!(first["lineNumber"].as_u64().unwrap() >= 1);
    assert!(first["columnNumber"].as_u64().unwrap() >= 1);
    assert!(first["message"].is_string());
    assert_eq!(first.as_object().unwrap().len(), 3);

    for broken in [
        "not xml at all".to_owned(),
        ie037_xml.replace("<MesTypMES20>GB037A</MesTypMES20>", ""),
        ie037_xml.replace("<BalEXP3>1</BalEXP3>", "<BalEXP3>1.234</BalEXP3>"),
    ] {
        let reply = app
            .call_internal(reply_post(&recipient, Some("IE037"), &broken))
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert_eq!(reply.json()["code"], "SCHEMA_VALIDATION");
        assert_eq!(
            reply.json()["message"],
            "Error while validating IE037 message"
        );
        assert!(!reply.json()["errors"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_schema_valid_ie037_without_a_balance_is_400_and_changes_nothing() {
    let (app, sub, request) = pending().await;
    let recipient = recipient_of(&request);
    let without_balance = Ie037 {
        balance: None,
        ..ie037_of(&recipient, GRN_NO_REPLY)
    }
    .build()
    .unwrap();
    assert!(!without_balance.contains("BalEXP3"));
    // Valid by the schema (xmllint agrees: the example message of this case in gbal-ncts).
    gbal_ncts::validate(
        without_balance.as_bytes(),
        gbal_ncts::MessageKind::Ie037,
        &gbal_ncts::Limits::default(),
    )
    .expect("schema-valid");
    for sent in [
        without_balance.clone(),
        wrap_transit_request(&without_balance),
    ] {
        let reply = app
            .call_internal(reply_post(&recipient, Some("IE037"), &sent))
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text());
        assert_eq!(
            reply.text(),
            r#"{"code":"BAD_REQUEST","message":"Unable to parse required values from IE037 message"}"#
        );
    }
    // The request still waits for its reply.
    let still = app
        .call(v1_get(&token(&sub), &request.id.to_string()))
        .await;
    assert_eq!(still.status, 200, "{}", still.text());
    assert!(
        still.json()["request"].get("response").is_none(),
        "{}",
        still.text()
    );
}

#[tokio::test]
async fn doctype_and_entities_are_refused() {
    let (app, _, request) = pending().await;
    let recipient = recipient_of(&request);
    let xml = ie037(&recipient, GRN_NO_REPLY, "1");
    let with_doctype =
        format!("<?xml version=\"1.0\"?>\n<!DOCTYPE CD037A [<!ENTITY x \"1\">]>\n{xml}");
    let reply = app
        .call_internal(reply_post(&recipient, Some("IE037"), &with_doctype))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["code"], "SCHEMA_VALIDATION");
    let with_entity = xml.replace("<BalEXP3>1</BalEXP3>", "<BalEXP3>&x;</BalEXP3>");
    let reply = app
        .call_internal(reply_post(&recipient, Some("IE037"), &with_entity))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
}

#[tokio::test]
async fn a_reply_naming_another_request_is_400() {
    let (app, _, request) = pending().await;
    replies_naming_another_request_are_refused(&app, &request).await;
}

#[tokio::test]
async fn a_reply_naming_another_request_is_400_on_postgres() {
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker = db.tracker().await;
    tracker.until_listening().await;
    let (app, _, request) = pending_on(Parts::on(Arc::new(tracker))).await;
    replies_naming_another_request_are_refused(&app, &request).await;
    db.drop_database().await;
}

/// Every way a reply can name a request it does not belong to is refused, before and after
/// the request is completed (a mismatch is reported ahead of a duplicate or a conflict).
async fn replies_naming_another_request_are_refused(app: &TestApp, request: &BalanceRequest) {
    let recipient = recipient_of(request);
    let other = MessageId::from_bytes([7; 12]).recipient(PREFIX);
    let cases = [
        ("IE037", ie037(&other, GRN_NO_REPLY, "1"), "MesRecMES6"),
        ("IE037", ie037("NOT-OURS", GRN_NO_REPLY, "1"), "MesRecMES6"),
        (
            "IE037",
            ie037(&recipient, GRN_BALANCE, "1"),
            "guarantee reference",
        ),
        (
            "IE906",
            ie906(&recipient, "aaaaaaaaaaaaaa"),
            "OriMesIdeMES22",
        ),
        (
            "IE917",
            ie917(&recipient, "aaaaaaaaaaaaaa"),
            "OriMesIdeMES22",
        ),
    ];
    for (message_type, xml, names) in &cases {
        let reply = app
            .call_internal(reply_post(&recipient, Some(message_type), xml))
            .await;
        reply.assert_code(400, "BAD_REQUEST");
        assert!(
            reply.json()["message"].as_str().unwrap().contains(names),
            "{}",
            reply.text()
        );
    }
    // Nothing was recorded.
    let stored = app
        .tracker
        .get_by_message_id(request.message_id, app.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert!(stored.outcome.is_none());

    // The right reply, in another case of the GRN, is stored; the wrong ones are still
    // refused as such, not as duplicates or conflicts.
    let right = ie037(&recipient, &GRN_NO_REPLY.to_ascii_lowercase(), "1");
    let reply = app
        .call_internal(reply_post(&recipient, Some("IE037"), &right))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    for (message_type, xml, names) in &cases {
        let reply = app
            .call_internal(reply_post(&recipient, Some(message_type), xml))
            .await;
        reply.assert_code(400, "BAD_REQUEST");
        assert!(
            reply.json()["message"].as_str().unwrap().contains(names),
            "{}",
            reply.text()
        );
    }
    let again = app
        .call_internal(reply_post(&recipient, Some("IE037"), &right))
        .await;
    assert_eq!(
        again.status,
        200,
        "an identical duplicate: {}",
        again.text()
    );
}

#[tokio::test]
async fn an_unknown_recipient_is_404() {
    let (app, _, _) = pending().await;
    for recipient in [
        format!("{PREFIX}{}", "ab".repeat(12)),
        format!("{PREFIX}{}", "AB".repeat(12)),
    ] {
        let xml = ie037(&recipient, GRN_NO_REPLY, "1");
        app.call_internal(reply_post(&recipient, Some("IE037"), &xml)).await.assert(
            404,
            json!({"code": "NOT_FOUND", "message": format!("The balance request with message identifier {recipient} was not found")}),
        );
    }
}

#[tokio::test]
async fn a_malformed_recipient_is_400_whatever_else_is_wrong() {
    let (app, _, request) = pending().await;
    let hex = recipient_of(&request)[PREFIX.len()..].to_owned();
    for recipient in [
        // Not hex, too short, too long.
        format!("{PREFIX}X2b{}", &hex[3..]),
        "MDTP-GUA-xyz".to_owned(),
        format!("{PREFIX}{hex}0"),
        format!("{PREFIX}{}", &hex[1..]),
        // No prefix, or another service's prefix.
        hex.clone(),
        format!("MDTP-ARR-{hex}"),
        format!("MDTP-DEP-{hex}"),
        format!("mdtp-gua-{hex}"),
    ] {
        let xml = ie037(&recipient, GRN_NO_REPLY, "1");
        // Refused before the message type or the message is looked at.
        for message_type in [Some("IE037"), None] {
            let reply = app
                .call_internal(reply_post(&recipient, message_type, &xml))
                .await;
            assert_eq!(reply.status, 400, "{recipient}: {}", reply.text());
            assert_eq!(
                reply.text(),
                r#"{"code":"BAD_REQUEST","message":"Cannot parse parameter recipient as a message identifier value"}"#,
                "{recipient}"
            );
        }
    }
    // The request the well-formed recipient names still waits.
    assert!(
        app.tracker
            .get_by_message_id(request.message_id, app.clock.now())
            .await
            .unwrap()
            .unwrap()
            .outcome
            .is_none()
    );
}

#[tokio::test]
async fn an_expired_recipient_is_404() {
    let mut parts = Parts::sqlite().await;
    let clock = TestClock::at(time::OffsetDateTime::now_utc());
    parts.clock = clock.clone();
    parts.balance.sync_wait = Duration::from_millis(20);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let reply = app
        .call(v1_post(&token(&caller("expired")), TIN, GRN_NO_REPLY, CODE))
        .await;
    let id: BalanceRequestId = reply.json()["balanceId"].as_str().unwrap().parse().unwrap();
    let recipient = id.message_id().recipient(PREFIX);
    clock.advance(Duration::from_secs(3601));
    let xml = ie037(&recipient, GRN_NO_REPLY, "1");
    app.call_internal(reply_post(&recipient, Some("IE037"), &xml))
        .await
        .assert_code(404, "NOT_FOUND");
}

#[tokio::test]
async fn bodies_over_1_mib_are_413() {
    let (app, _, request) = pending().await;
    let recipient = recipient_of(&request);
    let big = format!(
        "{}<!-- {} -->",
        ie037(&recipient, GRN_NO_REPLY, "1"),
        "x".repeat(1024 * 1024)
    );
    app.call_internal(reply_post(&recipient, Some("IE037"), &big))
        .await
        .assert_code(413, "REQUEST_ENTITY_TOO_LARGE");
}

#[tokio::test]
async fn the_internal_listener_has_no_public_routes() {
    let (app, _, _) = pending().await;
    let request = Request::post(format!("{BASE}/balances"))
        .body(Body::empty())
        .unwrap();
    app.call_internal(request)
        .await
        .assert_code(404, "NOT_FOUND");
    let request = Request::get("/balances/x").body(Body::empty()).unwrap();
    app.call_internal(request)
        .await
        .assert_code(405, "METHOD_NOT_ALLOWED");
}
