//! Request locks: the arithmetic both stores share.

use std::time::Duration;

use gbal_core::{LockOutcome, TrackerError};
use time::OffsetDateTime;

/// When a lock taken at `now` for `ttl` lapses.
pub(crate) fn lock_expiry(
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<OffsetDateTime, TrackerError> {
    time::Duration::try_from(ttl)
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .ok_or_else(|| TrackerError::Other(format!("lock TTL {ttl:?} is out of range")))
}

/// The answer for a lock held until `expires_at`, asked at `now`.
pub(crate) fn held_until(expires_at: OffsetDateTime, now: OffsetDateTime) -> LockOutcome {
    LockOutcome::Held {
        retry_after: (expires_at - now).try_into().unwrap_or(Duration::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expiry_and_retry_after() {
        let now = datetime!(2026-11-05 10:00:00 UTC);
        let until = lock_expiry(now, Duration::from_secs(60)).unwrap();
        assert_eq!(until, datetime!(2026-11-05 10:01:00 UTC));
        assert_eq!(
            held_until(until, now + Duration::from_secs(15)),
            LockOutcome::Held {
                retry_after: Duration::from_secs(45)
            }
        );
        assert_eq!(
            held_until(now, until),
            LockOutcome::Held {
                retry_after: Duration::ZERO
            }
        );
        assert!(lock_expiry(now, Duration::MAX).is_err());
    }
}
