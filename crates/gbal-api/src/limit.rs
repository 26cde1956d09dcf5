//! In-process rate limits, applied after the fields are read and before
//! `BalanceService::check`:
//! - per caller (governor): `per_second` sustained with a `burst`; refused as
//!   `CLIENT_RATE_LIMIT`;
//! - per (caller, GRN): a local mirror of the tracker's cluster-wide lock; refused as
//!   `API_RATE_LIMIT`.
//!
//! The once-a-minute rule holds across replicas because `check` takes the tracker's
//! cluster-wide lock on (caller, GRN), which refuses with the time left on it. The local mirror
//! only saves that round trip for a caller hammering one replica: it remembers, per pair, when
//! the cluster lock frees up, as learnt from the lock itself (taken now: free after the TTL;
//! refused: free after the time the lock reported). It is never a limiter of its own, so a
//! refused attempt extends nothing, here or in the cluster.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gbal_core::{CallerId, Grn};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateLimitConfig;
use crate::state::StartError;

/// Why a check was refused before it reached the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The caller is over its request rate.
    Client { retry_after: Duration },
    /// The caller asked about this GRN less than a lock TTL ago (on this replica).
    CallerGrn { retry_after: Duration },
}

/// The caller limiter and the mirror of the pair locks.
pub(crate) struct RateLimits {
    per_caller: DefaultKeyedRateLimiter<CallerId>,
    /// When each (caller, GRN) lock is known to free up.
    pair_locks: Mutex<HashMap<(CallerId, Grn), Instant>>,
    lock_ttl: Duration,
    clock: DefaultClock,
}

/// What the cluster lock said about a pair, as far as the check got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairLock {
    /// The check took the lock when it started.
    Taken { at: Instant },
    /// Someone holds it for `retry_after` more.
    Held { retry_after: Duration },
    /// Unknown (the store failed before or while locking).
    Unknown,
}

impl RateLimits {
    pub(crate) fn new(config: &RateLimitConfig, lock_ttl: Duration) -> Result<Self, StartError> {
        let invalid = |setting, reason: &str| StartError::InvalidSetting {
            setting,
            reason: reason.to_owned(),
        };
        let per_second = NonZeroU32::new(config.per_second)
            .ok_or_else(|| invalid("rate_limit.per_second", "must be at least 1"))?;
        let burst = NonZeroU32::new(config.burst)
            .ok_or_else(|| invalid("rate_limit.burst", "must be at least 1"))?;
        if lock_ttl.is_zero() {
            return Err(invalid("lock_ttl", "must be longer than zero"));
        }
        Ok(Self {
            per_caller: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            pair_locks: Mutex::new(HashMap::new()),
            lock_ttl,
            clock: DefaultClock::default(),
        })
    }

    /// Counts one check by `caller` about `grn`, or says why it must wait.
    pub(crate) fn check(&self, caller: &CallerId, grn: &Grn) -> Result<(), Refusal> {
        self.per_caller
            .check_key(caller)
            .map_err(|not_until| Refusal::Client {
                retry_after: not_until.wait_time_from(self.clock.now()),
            })?;
        let now = Instant::now();
        let locks = self.pair_locks.lock().unwrap_or_else(|p| p.into_inner());
        match locks.get(&(caller.clone(), grn.clone())) {
            Some(free_at) if *free_at > now => Err(Refusal::CallerGrn {
                retry_after: *free_at - now,
            }),
            _ => Ok(()),
        }
    }

    /// Remembers what the cluster lock said about (caller, GRN).
    pub(crate) fn learn(&self, caller: &CallerId, grn: &Grn, lock: PairLock) {
        let free_at = match lock {
            PairLock::Taken { at } => at + self.lock_ttl,
            PairLock::Held { retry_after } => Instant::now() + retry_after,
            PairLock::Unknown => return,
        };
        let mut locks = self.pair_locks.lock().unwrap_or_else(|p| p.into_inner());
        let slot = locks
            .entry((caller.clone(), grn.clone()))
            .or_insert(free_at);
        *slot = (*slot).max(free_at);
    }

    /// Forgets keys whose limits have fully replenished (call periodically).
    pub(crate) fn retain_recent(&self) {
        self.per_caller.retain_recent();
        let now = Instant::now();
        let pairs = {
            let mut locks = self.pair_locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.retain(|_, free_at| *free_at > now);
            // After a burst, give back what the table no longer needs (keeping room to grow).
            let live = locks.len();
            if locks.capacity() > 4 * live.max(1024) {
                locks.shrink_to(2 * live);
            }
            locks.len()
        };
        metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller")
            .set(self.per_caller.len() as f64);
        metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller_grn").set(pairs as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(s: &str) -> CallerId {
        CallerId::parse(s).unwrap()
    }

    #[test]
    fn after_a_burst_the_pair_mirror_gives_its_room_back() {
        let limits = RateLimits::new(
            &RateLimitConfig {
                per_second: 100,
                burst: 100,
            },
            Duration::from_secs(60),
        )
        .unwrap();
        let grn = Grn::parse_v2("22GB0000010000313").unwrap();
        let brief = PairLock::Held {
            retry_after: Duration::from_millis(1),
        };
        for n in 0..20_000 {
            limits.learn(&caller(&format!("burst-{n}")), &grn, brief);
        }
        let capacity = |l: &RateLimits| l.pair_locks.lock().unwrap().capacity();
        assert!(capacity(&limits) >= 20_000);
        std::thread::sleep(Duration::from_millis(5));
        limits.retain_recent();
        assert_eq!(limits.pair_locks.lock().unwrap().len(), 0);
        assert!(capacity(&limits) < 20_000, "{}", capacity(&limits));
    }

    #[test]
    fn pair_mirror_follows_the_cluster_lock() {
        let limits = RateLimits::new(
            &RateLimitConfig {
                per_second: 100,
                burst: 100,
            },
            Duration::from_secs(60),
        )
        .unwrap();
        let grn = Grn::parse_v2("22GB0000010000313").unwrap();
        let other = Grn::parse_v2("22XI0000010000313").unwrap();
        // Nothing known: the cluster lock decides.
        assert_eq!(limits.check(&caller("a"), &grn), Ok(()));
        assert_eq!(limits.check(&caller("a"), &grn), Ok(()));
        limits.learn(&caller("a"), &grn, PairLock::Taken { at: Instant::now() });
        match limits.check(&caller("a"), &grn) {
            Err(Refusal::CallerGrn { retry_after }) => {
                assert!(
                    retry_after > Duration::from_secs(58) && retry_after <= Duration::from_secs(60)
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(limits.check(&caller("a"), &other), Ok(()));
        assert_eq!(limits.check(&caller("b"), &grn), Ok(()));
    }

    #[test]
    fn a_refusal_elsewhere_is_mirrored_without_extending_it() {
        let limits = RateLimits::new(
            &RateLimitConfig {
                per_second: 100,
                burst: 100,
            },
            Duration::from_secs(60),
        )
        .unwrap();
        let grn = Grn::parse_v2("22GB0000010000313").unwrap();
        // Another replica holds the lock for 150 ms more.
        limits.learn(
            &caller("a"),
            &grn,
            PairLock::Held {
                retry_after: Duration::from_millis(150),
            },
        );
        match limits.check(&caller("a"), &grn) {
            Err(Refusal::CallerGrn { retry_after }) => {
                assert!(retry_after <= Duration::from_millis(150))
            }
            other => panic!("{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            limits.check(&caller("a"), &grn),
            Ok(()),
            "free when the cluster lock is"
        );
        limits.learn(&caller("a"), &grn, PairLock::Unknown);
        assert_eq!(limits.check(&caller("a"), &grn), Ok(()));
        limits.retain_recent();
    }

    #[test]
    fn caller_limit_has_a_burst() {
        let limits = RateLimits::new(
            &RateLimitConfig {
                per_second: 1,
                burst: 2,
            },
            Duration::from_secs(60),
        )
        .unwrap();
        let grns = [
            "22GB0000010000313",
            "22GB0000010000314",
            "22GB0000010000315",
        ]
        .map(|g| Grn::parse_v2(g).unwrap());
        assert_eq!(limits.check(&caller("a"), &grns[0]), Ok(()));
        assert_eq!(limits.check(&caller("a"), &grns[1]), Ok(()));
        assert!(matches!(
            limits.check(&caller("a"), &grns[2]),
            Err(Refusal::Client { .. })
        ));
    }

    #[test]
    fn zero_settings_are_refused() {
        assert!(
            RateLimits::new(
                &RateLimitConfig {
                    per_second: 0,
                    burst: 1
                },
                Duration::from_secs(60)
            )
            .is_err()
        );
        assert!(
            RateLimits::new(
                &RateLimitConfig {
                    per_second: 1,
                    burst: 0
                },
                Duration::from_secs(60)
            )
            .is_err()
        );
        assert!(RateLimits::new(&RateLimitConfig::default(), Duration::ZERO).is_err());
    }
}
