//! Migrations and store set-up.

use gbal_core::Tracker;
use gbal_tracker::{PG_MIGRATOR, SQLITE_MIGRATOR, SqliteTracker};

use crate::store::with_pg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations_apply_once_and_are_recorded() {
    with_pg(|db| async move {
        let tracker = db.tracker().await;
        // Already applied by the test set-up: a second run changes nothing.
        tracker.migrate().await.expect("migrate again");
        let raw = db.pool().await;
        let applied: i64 =
            sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(&raw)
                .await
                .unwrap();
        assert_eq!(applied, PG_MIGRATOR.iter().count() as i64);
        // On an empty database the tracker creates everything itself.
        sqlx::query("DROP TABLE balance_requests, request_locks, _sqlx_migrations")
            .execute(&raw)
            .await
            .unwrap();
        tracker.migrate().await.expect("migrate an empty database");
        let new = crate::fixture::request_at(crate::fixture::now());
        tracker.insert(&new).await.expect("insert after migrating");
        raw.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_file_is_created_with_its_folder_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data").join("nested").join("gbal.sqlite");
    let tracker = SqliteTracker::open(&path).await.expect("open");
    tracker.migrate().await.expect("migrate");
    tracker.migrate().await.expect("migrate again");
    assert!(path.is_file());
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(tracker.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    tracker.ping().await.unwrap();
    assert!(SQLITE_MIGRATOR.iter().count() >= 1);
    drop(tracker);
    // Reopening finds the same data.
    let again = SqliteTracker::open(&path).await.expect("reopen");
    again.migrate().await.unwrap();
    again.ping().await.unwrap();
}
