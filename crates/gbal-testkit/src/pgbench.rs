//! `pgbench` running the tracker's own per-request SQL: the yardstick the benchmarks compare
//! gbal's throughput with (the database work of one request, with nothing else around it).
//! Used by the benchmarks of gbal-tracker and of the binary. A request's work depends on how
//! GMS answers ([`Work`]), so each benchmark compares with the work its requests do.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use gbal_tracker::postgres::{SESSION_ENABLE_SEQSCAN, sql};

/// `sql` with `$1`, `$2`, ... replaced by pgbench expressions; panics when the statement has
/// more parameters than `params` gives (its parameters changed, and the script must follow).
fn substitute(sql: &str, params: &[&str]) -> String {
    let beyond = format!("${}", params.len() + 1);
    assert!(
        !sql.contains(&beyond),
        "the statement takes {beyond} and more, the script gives {} parameters: {sql}",
        params.len()
    );
    let mut out = sql.to_owned();
    // From the highest number down, so `$1` never eats the start of `$12`.
    for (i, param) in params.iter().enumerate().rev() {
        out = out.replace(&format!("${}", i + 1), param);
    }
    out
}

/// What the store does for one v1 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// GMS's reply comes later (ncts-xml): take the lock and record the pending request in
    /// one statement, then complete it (checking its GRN) with its notification.
    ReplyLater,
    /// GMS answers within the call (eis-json, the embedded simulator): take the lock
    /// (committed without waiting for the disk), then record the request with its answer.
    AnsweredAtOnce,
}

/// The pgbench script of one request of [`Work::ReplyLater`] ([`script_for`]).
pub fn script() -> String {
    script_for(Work::ReplyLater)
}

/// The pgbench script of one request doing `work`, as the tracker runs it against a shared
/// database (its times measured by the database's clock: every "now" parameter NULL);
/// parameters drawn per transaction.
pub fn script_for(work: Work) -> String {
    if work == Work::AnsweredAtOnce {
        return answered_script();
    }
    // A random UUID made of two random 64-bit halves, and its first 12 bytes.
    let hex = "(lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))";
    let id = format!("{hex}::uuid");
    let message_id = format!("decode(left({hex}, 24), 'hex')");
    let key = "('bench/' || :client_id || '/' || :hi)";
    let grn = "'21GB3300BE0001067A001017'";
    let lock_and_insert = substitute(
        sql::LOCK_AND_INSERT,
        &[
            key,
            "NULL",
            // The lock's TTL, 60 s, in microseconds.
            "60000000",
            &id,
            &message_id,
            "'abcdefghijklmn'",
            "'client-1'",
            "1",
            grn,
            "'GB12345678900'",
            "NULL",
            "NULL",
            // The request's lifetime, 1 h, in microseconds.
            "3600000000",
        ],
    );
    let complete = substitute(
        sql::COMPLETE,
        &[
            &message_id,
            "'SUCCESS'",
            "'12345678.9'",
            "'GBP'",
            "NULL",
            "NULL",
            grn,
            "NULL",
        ],
    );
    format!(
        "\\set hi random(1, 9223372036854775806)\n\\set lo random(1, 9223372036854775806)\n\
         {lock_and_insert};\n{complete};\n"
    )
}

/// [`Work::AnsweredAtOnce`]: the lock on behalf of the request, then the answered request.
fn answered_script() -> String {
    let hex = "(lpad(to_hex(:hi::bigint), 16, '0') || lpad(to_hex(:lo::bigint), 16, '0'))";
    let id = format!("{hex}::uuid");
    let message_id = format!("decode(left({hex}, 24), 'hex')");
    let key = "('bench/' || :client_id || '/' || :hi)";
    let take_lock = substitute(sql::TAKE_LOCK, &[key, "NULL", "60000000", &id]);
    let insert_completed = substitute(
        sql::INSERT_COMPLETED,
        &[
            &id,
            &message_id,
            "'abcdefghijklmn'",
            "'client-1'",
            "1",
            "'21GB3300BE0001067A001017'",
            "'GB12345678900'",
            "NULL",
            "NULL",
            "3600000000",
            "'SUCCESS'",
            "'12345678.9'",
            "'GBP'",
            "NULL",
            "NULL",
        ],
    );
    format!(
        "\\set hi random(1, 9223372036854775806)\n\\set lo random(1, 9223372036854775806)\n\
         {take_lock};\n{insert_completed};\n"
    )
}

/// The pgbench executable: in `GBAL_PG_BIN`, else the newest `/usr/lib/postgresql/*/bin`,
/// else on `PATH` ([`crate::pg_bin`]).
pub fn binary() -> PathBuf {
    crate::pg_bin::find_dir(&["pgbench"])
        .map_or_else(|| PathBuf::from("pgbench"), |dir| dir.join("pgbench"))
}

/// [`rate_for`] of [`Work::ReplyLater`].
pub fn rate(
    url: &str,
    clients: u32,
    duration: Duration,
    synchronous_commit: Option<&str>,
) -> Result<f64, String> {
    rate_for(Work::ReplyLater, url, clients, duration, synchronous_commit)
}

/// Runs [`script_for`] `work` with `pgbench -n -M prepared -j 2 -c <clients> -T <duration>`
/// against `url`, with the session settings of the tracker's connections, and returns its
/// transactions per second. `synchronous_commit` sets the session's setting when given.
pub fn rate_for(
    work: Work,
    url: &str,
    clients: u32,
    duration: Duration,
    synchronous_commit: Option<&str>,
) -> Result<f64, String> {
    let path = std::env::temp_dir().join(format!("gbal-pgbench-{}.sql", std::process::id()));
    std::fs::write(&path, script_for(work))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    let mut command = Command::new(binary());
    // The session settings of the tracker's own connections, and the one asked for.
    let mut pg_options = format!("-c enable_seqscan={SESSION_ENABLE_SEQSCAN}");
    if let Some(value) = synchronous_commit {
        pg_options.push_str(&format!(" -c synchronous_commit={value}"));
    }
    command.env("PGOPTIONS", pg_options);
    let output = command
        .args(["-n", "-M", "prepared", "-j", "2"])
        .arg("-c")
        .arg(clients.to_string())
        .arg("-T")
        .arg(duration.as_secs().max(1).to_string())
        .arg("-f")
        .arg(&path)
        .arg(url)
        .output();
    let _ = std::fs::remove_file(&path);
    let output = output.map_err(|e| format!("running pgbench: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("pgbench failed:\n{stdout}\n{stderr}"));
    }
    let failed = stdout
        .lines()
        .find(|l| l.starts_with("number of failed transactions"))
        .unwrap_or("");
    if !failed.is_empty() && !failed.contains(": 0 ") {
        return Err(format!("pgbench transactions failed: {failed}\n{stderr}"));
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|tps| tps.parse().ok())
        .ok_or_else(|| format!("no tps in pgbench's output:\n{stdout}\n{stderr}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::TestDatabase;

    use super::Work;

    #[test]
    fn every_parameter_is_replaced() {
        for work in [Work::ReplyLater, Work::AnsweredAtOnce] {
            let script = super::script_for(work);
            assert!(!script.contains('$'), "{script}");
            assert_eq!(script.matches(";\n").count(), 2);
        }
    }

    #[test]
    #[should_panic(expected = "the statement takes $3 and more")]
    fn a_statement_with_more_parameters_than_given_is_refused() {
        super::substitute("SELECT $1, $2, $3", &["1", "2"]);
    }

    /// Each script is what pgbench can run on gbal's schema: every transaction commits, and
    /// each leaves a completed request.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pgbench_runs_the_reply_later_script_on_gbal_s_schema() {
        pgbench_runs(Work::ReplyLater).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pgbench_runs_the_answered_at_once_script_on_gbal_s_schema() {
        pgbench_runs(Work::AnsweredAtOnce).await;
    }

    async fn pgbench_runs(work: Work) {
        let db = TestDatabase::migrated("gbal_pgbench").await;
        let url = db.url.clone();
        let rate = tokio::task::spawn_blocking(move || {
            super::rate_for(work, &url, 2, Duration::from_secs(1), None)
        })
        .await
        .expect("the pgbench task");
        let completed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM balance_requests WHERE status = 'SUCCESS'")
                .fetch_one(&db.pool().await)
                .await
                .expect("count the requests");
        db.drop_database().await;
        let rate = rate.unwrap_or_else(|e| panic!("{e}"));
        assert!(rate > 0.0, "{rate} transactions/s");
        assert!(completed > 0, "no request completed");
    }
}
