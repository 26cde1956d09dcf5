//! A clock the test sets: [`gbal_core::Clock`] at a time of the test's choosing, moved only
//! when the test moves it.

use std::ops::AddAssign;
use std::sync::{Arc, Mutex};

use gbal_core::Clock;
use time::OffsetDateTime;

/// The time as a test sets it.
#[derive(Debug)]
pub struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    /// A clock showing `at`, shared (services take an `Arc<dyn Clock>`).
    pub fn at(at: OffsetDateTime) -> Arc<Self> {
        Arc::new(Self(Mutex::new(at)))
    }

    /// A clock showing the system time now, to the microsecond (what the stores keep).
    pub fn now() -> Arc<Self> {
        let now = OffsetDateTime::now_utc();
        let whole_micros = now
            .replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .expect("a whole number of microseconds");
        Self::at(whole_micros)
    }

    /// Sets the time.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().expect("the test clock") = at;
    }

    /// Moves the time on by `by` (a `std::time::Duration` or a `time::Duration`, which may
    /// be negative).
    pub fn advance<D>(&self, by: D)
    where
        OffsetDateTime: AddAssign<D>,
    {
        *self.0.lock().expect("the test clock") += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("the test clock")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    #[test]
    fn the_clock_moves_only_when_told() {
        let clock = TestClock::at(datetime!(2026-11-21 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-11-21 00:00 UTC));
        clock.advance(Duration::from_secs(90));
        clock.advance(time::Duration::hours(24));
        assert_eq!(clock.now(), datetime!(2026-11-22 00:01:30 UTC));
        clock.set(datetime!(2020-01-01 00:00 UTC));
        assert_eq!(clock.now(), datetime!(2020-01-01 00:00 UTC));
    }
}
