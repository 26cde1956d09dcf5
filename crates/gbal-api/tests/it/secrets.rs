//! The access code leaves gbal only towards GMS: it is in no response, no log line and no
//! stored row. On PostgreSQL, with every log level captured.

use std::sync::Arc;
use std::time::Duration;

use gbal_core::Tracker;
use sqlx::Row;

use crate::support::sandbox::*;
use crate::support::*;

#[tokio::test]
async fn the_access_code_is_in_no_response_log_or_row() {
    let logs = gbal_testkit::logs::capture_global();
    let db = TestDatabase::migrated("gbal_api").await;
    let tracker: Arc<dyn Tracker> = Arc::new(db.tracker().await);
    let mut parts = Parts::on(tracker);
    parts.balance.sync_wait = Duration::from_millis(300);
    let gms = parts.simulator();
    let app = TestApp::build(parts, gms, |_| {}).await;
    let sub = caller("secrets");
    let token = token(&sub);

    // Codes GMS matches without regard to case (so they succeed) or that are wrong: each is a
    // string found nowhere else.
    let mut responses = Vec::new();
    responses.push(app.call(v1_post(&token, TIN, GRN_BALANCE, "aC01")).await);
    responses.push(app.call(v1_post(&token, TIN, GRN_BALANCE_2, "Qz7x")).await);
    responses.push(app.call(v1_post(&token, TIN, GRN_DELAYED, "Ac01")).await);
    responses.push(app.call(v1_post(&token, TIN, GRN_BALANCE_3, "Wq!9")).await);
    responses.push(app.call(v2_post(&token, GRN_50000, "aB12")).await);
    responses.push(app.call(v2_post(&token, "26XI0000010000010", "Jk5Y")).await);
    responses.push(app.call(v2_post(&token, "26XI0000010000028", "Jk5!")).await);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(statuses, [200, 400, 202, 400, 200, 404, 400]);
    let id = responses[2].json()["balanceId"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = crate::v1::poll_until_completed(&app, &token, &id).await;
    responses.push(done);
    tracing::info!("a line that proves logs are captured");

    let codes = ["aC01", "Qz7x", "Ac01", "Wq!9", "aB12", "Jk5Y", "Jk5!"];
    let logs_text = logs.text();
    assert!(logs_text.contains("a line that proves logs are captured"));
    assert!(
        logs_text.contains("request"),
        "the request spans are captured"
    );
    for code in codes {
        for response in &responses {
            assert!(
                !response.text().contains(code),
                "{code} in {}",
                response.text()
            );
            for (name, value) in &response.headers {
                assert!(
                    !value.to_str().unwrap_or_default().contains(code),
                    "{code} in {name}"
                );
            }
        }
        assert!(!logs_text.contains(code), "{code} is in the logs");
    }

    // Every row of every table, as text.
    let pool = db.pool().await;
    let tables: Vec<String> = sqlx::query(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<String, _>(0))
    .collect();
    assert!(!tables.is_empty());
    let mut dump = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM \"{table}\" t"
        )))
        .fetch_all(&pool)
        .await
        .unwrap();
        for row in rows {
            dump.push_str(&row.get::<String, _>(0));
            dump.push('\n');
        }
    }
    assert!(
        dump.contains(GRN_BALANCE),
        "the requests are stored: {dump}"
    );
    for code in codes {
        assert!(!dump.contains(code), "{code} is stored: {dump}");
    }
    pool.close().await;
    db.drop_database().await;
}
