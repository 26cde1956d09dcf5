//! The tracker's statements find their rows through the right index even when their plans
//! were made while the tables were empty (a new database, or one the expiry job and vacuum
//! emptied): a prepared statement keeps its plan as the table grows.

use gbal_testkit::database::tracker_config;
use gbal_tracker::postgres::{session_options, sql};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use crate::store::with_pg;

const NOW: &str = "now()";
const MESSAGE_ID: &str = "'\\x000000000000000000000000'::bytea";
const ID: &str = "'00000000-0000-7000-8000-000000000000'::uuid";

/// Each statement that finds rows by a key or by expiry, its parameters' types, values to
/// explain it with, and the index it must use.
fn lookups() -> Vec<(&'static str, &'static str, Vec<&'static str>, &'static str)> {
    vec![
        (
            sql::COMPLETE,
            "bytea, text, text, text, text, timestamptz, text, text",
            vec![
                MESSAGE_ID,
                "'SUCCESS'",
                "'1'",
                "'GBP'",
                "NULL",
                NOW,
                "'GRN1'",
                "NULL",
            ],
            "balance_requests_message_id_key",
        ),
        (
            sql::BY_MESSAGE_ID,
            "bytea, timestamptz",
            vec![MESSAGE_ID, NOW],
            "balance_requests_message_id_key",
        ),
        (
            sql::BY_ID_FOR_CALLER,
            "uuid, text, timestamptz",
            vec![ID, "'client-1'", NOW],
            "balance_requests_pkey",
        ),
        (
            sql::BY_ID,
            "uuid, timestamptz",
            vec![ID, NOW],
            "balance_requests_pkey",
        ),
        (
            sql::LOCK_HOLDER,
            "text, timestamptz",
            vec!["'key'", NOW],
            "request_locks_pkey",
        ),
        (
            sql::RELEASE,
            "text, uuid, uuid",
            vec!["'key'", ID, ID],
            "request_locks_pkey",
        ),
        (
            sql::EXPIRE_REQUESTS,
            "timestamptz, bigint",
            vec![NOW, "100"],
            "balance_requests_expires_at",
        ),
        (
            sql::EXPIRE_LOCKS,
            "timestamptz, bigint",
            vec![NOW, "100"],
            "request_locks_expires_at",
        ),
        (
            sql::PENDING,
            "timestamptz",
            vec![NOW],
            "balance_requests_expires_at",
        ),
    ]
}

/// The generic plan (the one a prepared statement keeps) of `statement`, prepared as `name`
/// on `conn`.
async fn generic_plan(
    conn: &mut PgConnection,
    name: &str,
    statement: &str,
    types: &str,
    values: &[&str],
) -> String {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "PREPARE {name} ({types}) AS {statement}"
    )))
    .execute(&mut *conn)
    .await
    .expect("prepare");
    let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "EXPLAIN EXECUTE {name} ({})",
        values.join(", ")
    )))
    .fetch_all(&mut *conn)
    .await
    .expect("explain");
    lines.join("\n")
}

async fn session(options: &PgConnectOptions) -> PgConnection {
    let mut conn = PgConnection::connect_with(options).await.expect("connect");
    sqlx::query("SET plan_cache_mode = force_generic_plan")
        .execute(&mut conn)
        .await
        .unwrap();
    conn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lookup_takes_its_index_when_planned_on_empty_tables() {
    with_pg(|db| async move {
        let raw = db.pool().await;
        // Vacuumed empty: the planner knows the tables hold nothing.
        for table in ["balance_requests", "request_locks"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("VACUUM {table}")))
                .execute(&raw)
                .await
                .unwrap();
        }
        let options: PgConnectOptions = db.url.parse().unwrap();

        // What a plain session would keep for the completing statement: a scan of the whole
        // table, however large it grows.
        let mut plain = session(&options).await;
        let (statement, types, values, _) = &lookups()[0];
        let plan = generic_plan(&mut plain, "plain", statement, types, values).await;
        assert!(plan.contains("Seq Scan on balance_requests"), "{plan}");
        plain.close().await.unwrap();

        // The tracker's sessions take each lookup's own index.
        let mut tracker = session(&session_options(options, &tracker_config())).await;
        for (n, (statement, types, values, index)) in lookups().into_iter().enumerate() {
            let plan =
                generic_plan(&mut tracker, &format!("s{n}"), statement, types, &values).await;
            assert!(
                plan.contains(&format!("Index Scan using {index} ")),
                "{statement}\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{statement}\n{plan}");
        }
        tracker.close().await.unwrap();
        raw.close().await;
    })
    .await;
}
