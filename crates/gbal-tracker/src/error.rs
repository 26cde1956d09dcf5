//! How store errors become [`TrackerError`]s.
//!
//! Policy: anything that says "the store cannot be reached or did not answer in time" (pool
//! timeouts, I/O, TLS, a server shutting down or refusing connections, a busy SQLite file)
//! is [`TrackerError::Unavailable`], so callers can answer 503 and retry; a unique violation
//! on insert is [`TrackerError::DuplicateId`]; a row that does not decode is
//! [`TrackerError::Corrupt`]; the rest is [`TrackerError::Other`].

use gbal_core::TrackerError;

/// Maps an sqlx error to the tracker's error.
pub(crate) fn from_sqlx(error: sqlx::Error) -> TrackerError {
    match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => TrackerError::Unavailable(error.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => TrackerError::DuplicateId,
        sqlx::Error::Database(db) if is_unavailable(db.as_ref()) => {
            TrackerError::Unavailable(error.to_string())
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            TrackerError::Corrupt(error.to_string())
        }
        _ => TrackerError::Other(error.to_string()),
    }
}

/// Whether a database error means "not now" (the server is going away, overloaded, or
/// timed the statement out) rather than "wrong".
pub(crate) fn is_unavailable(error: &dyn sqlx::error::DatabaseError) -> bool {
    is_unavailable_code(error.code().as_deref())
}

/// Database error codes that mean "not now" rather than "wrong".
fn is_unavailable_code(code: Option<&str>) -> bool {
    let Some(code) = code else { return false };
    // PostgreSQL: class 08 connection exceptions, 53 insufficient resources (too many
    // connections, out of memory or disk), 57P01-57P05 shutdown / cannot connect now /
    // idle session timeout, 57014 statement timeout, 40001/40P01 serialization failure and
    // deadlock.
    code.starts_with("08")
        || code.starts_with("53")
        || code.starts_with("57P")
        || matches!(code, "57014" | "40001" | "40P01")
        // SQLite (an extended result code, never five characters like PostgreSQL's):
        // primary code 5 BUSY or 6 LOCKED.
        || (code.len() < 5 && matches!(code.parse::<i32>().map(|c| c & 0xff), Ok(5 | 6)))
}

/// The error for a store that did not answer within the operation deadline.
pub(crate) fn timed_out(after: std::time::Duration) -> TrackerError {
    TrackerError::Unavailable(format!("the request store did not answer within {after:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable() {
        for error in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            assert!(matches!(from_sqlx(error), TrackerError::Unavailable(_)));
        }
        assert!(matches!(
            from_sqlx(sqlx::Error::RowNotFound),
            TrackerError::Other(_)
        ));
    }

    #[test]
    fn unavailable_codes() {
        for code in ["08006", "57P01", "57P03", "53300", "57014", "5", "517", "6"] {
            assert!(is_unavailable_code(Some(code)), "{code}");
        }
        for code in ["23505", "42P01", "19", "2067"] {
            assert!(!is_unavailable_code(Some(code)), "{code}");
        }
        assert!(!is_unavailable_code(None));
    }
}
