//! The limits a request meets right after authentication, in this order (the `Caller`
//! extractor takes them on every public API route, `GET` included):
//!
//! 1. the caller's request rate (governor, in process, per replica): `per_second` sustained
//!    with a `burst`;
//! 2. the caller's requests in flight: at most `max_in_flight` of one caller at once;
//! 3. the replica's balance requests in flight ([`ReplicaInFlight`], `public.max_in_flight`).
//!
//! The first two are refused as `CLIENT_RATE_LIMIT` (v1) or `MESSAGE_THROTTLED_OUT` (v2), the
//! third with 503. A caller over its own limits never holds a place of the replica's, and an
//! unauthenticated request holds none at all, so one caller cannot take the replica's capacity
//! from the others: it holds at most its own `max_in_flight` places, each for at most the body
//! deadline while its body arrives.
//!
//! The other limit a caller meets, once a minute per (caller, GRN), is the tracker's
//! cluster-wide lock, taken by `BalanceService::check`; a replica's memory of it is the
//! tracker's decorator `gbal_tracker::LockMirror`, not the HTTP layer's business.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gbal_core::CallerId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{RateLimitConfig, Setting};
use crate::error::StartError;

/// The request rate and the requests in flight of each caller.
pub(crate) struct CallerLimits {
    per_caller: DefaultKeyedRateLimiter<CallerId>,
    clock: DefaultClock,
    in_flight: Arc<Mutex<HashMap<CallerId, u32>>>,
    max_in_flight: u32,
}

/// One request of a caller being served: counted in the caller's requests in flight until
/// it is dropped.
#[derive(Debug)]
pub(crate) struct CallerPermit {
    caller: CallerId,
    in_flight: Arc<Mutex<HashMap<CallerId, u32>>>,
}

impl Drop for CallerPermit {
    fn drop(&mut self) {
        let mut counts = lock(&self.in_flight);
        if let Some(count) = counts.get_mut(&self.caller) {
            *count -= 1;
            // A caller with nothing in flight is forgotten: the map holds only callers being
            // served, so its size follows the requests in flight.
            if *count == 0 {
                counts.remove(&self.caller);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CallerLimits {
    pub(crate) fn new(config: &RateLimitConfig) -> Result<Self, StartError> {
        let at_least_one = |setting: Setting, value| {
            NonZeroU32::new(value).ok_or_else(|| StartError::InvalidSetting {
                setting: setting.name(),
                reason: "must be at least 1".to_owned(),
            })
        };
        let per_second = at_least_one(Setting::RatePerSecond, config.per_second)?;
        let burst = at_least_one(Setting::RateBurst, config.burst)?;
        let max_in_flight = at_least_one(Setting::CallerMaxInFlight, config.max_in_flight)?;
        Ok(Self {
            per_caller: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            clock: DefaultClock::default(),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            max_in_flight: max_in_flight.get(),
        })
    }

    /// Counts one request by `caller`, or says how long it must wait.
    pub(crate) fn check(&self, caller: &CallerId) -> Result<(), Duration> {
        self.per_caller
            .check_key(caller)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// A place among `caller`'s requests in flight, or `None` when all its places are taken.
    pub(crate) fn enter(&self, caller: &CallerId) -> Option<CallerPermit> {
        let mut counts = lock(&self.in_flight);
        let count = counts.entry(caller.clone()).or_insert(0);
        if *count >= self.max_in_flight {
            return None;
        }
        *count += 1;
        drop(counts);
        Some(CallerPermit {
            caller: caller.clone(),
            in_flight: Arc::clone(&self.in_flight),
        })
    }

    /// Forgets the callers whose limits have fully replenished (call periodically).
    pub(crate) fn retain_recent(&self) {
        self.per_caller.retain_recent();
        metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller")
            .set(self.per_caller.len() as f64);
    }
}

/// The balance requests this replica serves at once, up to `public.max_in_flight`: past it a
/// replica sheds load instead of piling up requests (and memory) behind a slow database or
/// GMS.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaInFlight {
    permits: Arc<Semaphore>,
}

impl ReplicaInFlight {
    /// Room for `max` requests at once (at least one).
    pub(crate) fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }

    /// A place, or `None` at once when every place is taken.
    pub(crate) fn enter(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.permits).try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(s: &str) -> CallerId {
        CallerId::parse(s).unwrap()
    }

    fn limits(per_second: u32, burst: u32, max_in_flight: u32) -> RateLimitConfig {
        RateLimitConfig {
            per_second,
            burst,
            max_in_flight,
        }
    }

    #[test]
    fn caller_limit_has_a_burst_and_is_per_caller() {
        let limits = CallerLimits::new(&limits(1, 2, 1)).unwrap();
        assert_eq!(limits.check(&caller("a")), Ok(()));
        assert_eq!(limits.check(&caller("a")), Ok(()));
        let wait = limits.check(&caller("a")).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(limits.check(&caller("b")), Ok(()));
        limits.retain_recent();
    }

    #[test]
    fn a_caller_has_its_own_places_in_flight_and_gets_them_back() {
        let limits = CallerLimits::new(&limits(1, 1, 2)).unwrap();
        let first = limits.enter(&caller("a")).expect("a first place");
        let second = limits.enter(&caller("a")).expect("a second place");
        assert!(limits.enter(&caller("a")).is_none(), "a third is refused");
        let other = limits
            .enter(&caller("b"))
            .expect("another caller is not affected");
        drop(first);
        let again = limits
            .enter(&caller("a"))
            .expect("a place freed is taken again");
        drop((second, other, again));
        assert!(
            lock(&limits.in_flight).is_empty(),
            "nobody in flight, nobody held"
        );
    }

    #[test]
    fn the_replica_sheds_past_its_places() {
        let replica = ReplicaInFlight::new(1);
        let held = replica.enter().expect("a place");
        assert!(replica.enter().is_none());
        drop(held);
        assert!(replica.enter().is_some());
    }

    #[test]
    fn zero_settings_are_refused() {
        assert!(CallerLimits::new(&limits(0, 1, 1)).is_err());
        assert!(CallerLimits::new(&limits(1, 0, 1)).is_err());
        assert!(CallerLimits::new(&limits(1, 1, 0)).is_err());
    }
}
