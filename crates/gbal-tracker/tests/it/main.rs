//! gbal-tracker's integration tests, in one binary. PostgreSQL tests run against
//! `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`), each in a database
//! of its own; they are never skipped.

mod clock;
mod connections;
mod expiry_job;
mod fixture;
mod migrations;
mod outage;
mod plans;
mod proxy;
mod replicas;
mod store;
mod suite;

/// Runs every suite test on each store: PostgreSQL, a SQLite file, SQLite in memory.
macro_rules! on_every_store {
    ($($test:ident),* $(,)?) => {
        mod postgres_suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::store::on_postgres(crate::suite::$test).await;
                }
            )*
        }
        mod sqlite_file_suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::store::on_sqlite_file(crate::suite::$test).await;
                }
            )*
        }
        mod sqlite_memory_suite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    crate::store::on_sqlite_memory(crate::suite::$test).await;
                }
            )*
        }
    };
}

on_every_store!(
    insert_then_read,
    duplicate_id_is_refused,
    complete_stores_each_outcome,
    identical_repeat_is_duplicate,
    different_outcome_conflicts_and_changes_nothing,
    unknown_message_id_is_not_found,
    expired_request_is_not_found,
    another_caller_sees_nothing,
    nothing_is_read_past_expiry,
    wait_wakes_on_completion,
    wait_times_out_with_the_pending_request,
    locks,
    lock_and_insert_records_only_under_a_free_lock,
    complete_matching_stores_only_a_matching_reply,
    a_watch_sees_a_completion_that_came_before_the_wait,
    expire_deletes_only_expired_rows_in_batches,
    pending_counts_live_requests_without_an_outcome,
    concurrent_inserts_get_distinct_ids,
    concurrent_completions_store_once,
    concurrent_lock_attempts_admit_one,
    concurrent_expiry_jobs_delete_each_row_once,
    expiry_job_runs_until_cancelled,
    release_frees_only_its_own_lock_and_pending_request,
    insert_completed_records_an_answered_request,
    a_wait_ends_with_nothing_once_its_request_expired,
);
