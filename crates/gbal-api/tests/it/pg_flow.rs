//! The flows of API.md in process on the PostgreSQL tracker: v1 202, the reply on the internal
//! route, GET, duplicates and conflicts; v2; the lock.

use std::sync::Arc;
use std::time::Duration;

use gbal_core::{BalanceRequestId, Tracker};
use serde_json::json;

use crate::reply::{PREFIX, ie037, ie906};
use crate::support::sandbox::*;
use crate::support::*;

#[tokio::test]
async fn v1_pending_reply_get_duplicate_conflict_on_postgres() {
    let db = TestDatabase::migrated("gbal_api").await;
    let pg = db.tracker().await;
    pg.until_listening().await;
    let tracker: Arc<dyn Tracker> = Arc::new(pg);
    let mut parts = Parts::on(Arc::clone(&tracker));
    parts.balance.sync_wait = Duration::from_millis(200);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let sub = caller("pg-flow");
    let token = token(&sub);

    // 200 at once; 400 functional error; 429 on the lock.
    let reply = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(
        reply.text(),
        r#"{"response":{"balance":12345678.9,"currency":"GBP"}}"#
    );
    assert_eq!(
        app.call(v1_post(&token, TIN, GRN_BALANCE_2, "ZZ99"))
            .await
            .status,
        400
    );
    let again = app.call(v1_post(&token, TIN, GRN_BALANCE, CODE)).await;
    assert_eq!(again.status, 429, "{}", again.text());
    assert_eq!(
        again.text(),
        r#"{"code":"TOO_MANY_REQUESTS","message":"Too many requests"}"#
    );

    // 202, pending, then the reply through the internal route, then the balance.
    let reply = app.call(v1_post(&token, TIN, GRN_NO_REPLY, CODE)).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let id: BalanceRequestId = reply.json()["balanceId"].as_str().unwrap().parse().unwrap();
    let pending = app.call(v1_get(&token, &id.to_string())).await;
    assert!(pending.json()["request"].get("response").is_none());
    let request = tracker
        .get_by_message_id(id.message_id(), app.clock.now())
        .await
        .unwrap()
        .unwrap();
    let recipient = id.message_id().recipient(PREFIX);
    let xml = ie037(&recipient, GRN_NO_REPLY, "99.90");
    assert_eq!(
        app.call_internal(reply_post(&recipient, Some("IE037"), &xml))
            .await
            .status,
        200
    );
    assert_eq!(
        app.call_internal(reply_post(&recipient, Some("IE037"), &xml))
            .await
            .status,
        200
    );
    let conflicting = ie906(&recipient, request.message_ref.as_str());
    app.call_internal(reply_post(&recipient, Some("IE906"), &conflicting))
        .await
        .assert_code(409, "CONFLICT");
    let done = app.call(v1_get(&token, &id.to_string())).await;
    assert_eq!(
        done.json()["request"]["response"],
        json!({"status": "SUCCESS", "balance": 99.9, "currency": "GBP"})
    );
    assert_schema(
        "v1",
        "get-balance-request-response-schema.json",
        &done.json(),
    );
    // Another caller cannot see it.
    assert_eq!(
        app.call(v1_get(
            &crate::support::token(&caller("pg-other")),
            &id.to_string()
        ))
        .await
        .status,
        404
    );

    // v2 on the same store.
    let reply = app.call(v2_post(&token, GRN_BALANCE_3, CODE)).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    app.call(v2_post(&token, GRN_BALANCE_3, CODE))
        .await
        .assert_code(429, "MESSAGE_THROTTLED_OUT");
    db.drop_database().await;
}
