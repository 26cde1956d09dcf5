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

    // A completed request written, the store closed, then opened again from the file.
    let at = crate::fixture::now();
    let new = crate::fixture::request_at(at);
    tracker.insert(&new).await.expect("insert");
    tracker
        .complete(new.message_id(), &crate::fixture::balance("12.5"), at)
        .await
        .expect("complete");
    tracker.pool().close().await;
    drop(tracker);

    let again = SqliteTracker::open(&path).await.expect("reopen");
    again.migrate().await.expect("migrate the existing file");
    let read = again
        .get(new.id, &new.caller, at)
        .await
        .expect("read")
        .expect("the request written before is there");
    assert_eq!(read.id, new.id);
    assert_eq!(read.grn, new.grn);
    assert_eq!(read.tin, new.tin);
    assert_eq!(read.requested_at, at);
    assert_eq!(read.completed_at, Some(at));
    assert_eq!(read.outcome, Some(crate::fixture::balance("12.5")));
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(again.pool())
        .await
        .unwrap();
    assert_eq!(
        applied,
        SQLITE_MIGRATOR.iter().count() as i64,
        "each migration recorded once, not again on reopening"
    );
}
