//! In-process rate limits (governor), applied after the fields are read and before
//! `BalanceService::check`:
//! - per caller: `per_second` sustained with a `burst`; refused as `CLIENT_RATE_LIMIT`;
//! - per (caller, GRN): once per lock TTL; refused as `API_RATE_LIMIT`.
//!
//! Both live in this process only. The once-a-minute rule holds across replicas because
//! `check` then takes the tracker's cluster-wide lock on (caller, GRN), which refuses with the
//! time left on it. The in-process pair limiter only saves that round trip for a caller
//! hammering one replica. One consequence: when another replica holds the lock, this
//! replica's pair limiter has already counted the refused attempt and may refuse the pair for
//! up to one more TTL from then; the cluster lock itself is never extended by a refusal.

use std::num::NonZeroU32;
use std::time::Duration;

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

/// The two keyed limiters.
pub(crate) struct RateLimits {
    per_caller: DefaultKeyedRateLimiter<CallerId>,
    per_grn: DefaultKeyedRateLimiter<(CallerId, Grn)>,
    clock: DefaultClock,
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
        let pair = Quota::with_period(lock_ttl)
            .ok_or_else(|| invalid("lock_ttl", "must be longer than zero"))?
            .allow_burst(NonZeroU32::MIN);
        Ok(Self {
            per_caller: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            per_grn: RateLimiter::keyed(pair),
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
        self.per_grn
            .check_key(&(caller.clone(), grn.clone()))
            .map_err(|not_until| Refusal::CallerGrn {
                retry_after: not_until.wait_time_from(self.clock.now()),
            })
    }

    /// Forgets keys whose limits have fully replenished (call periodically).
    pub(crate) fn retain_recent(&self) {
        self.per_caller.retain_recent();
        self.per_grn.retain_recent();
        metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller")
            .set(self.per_caller.len() as f64);
        metrics::gauge!("gbal_rate_limit_keys", "limiter" => "caller_grn")
            .set(self.per_grn.len() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(s: &str) -> CallerId {
        CallerId::parse(s).unwrap()
    }

    #[test]
    fn pair_limit_is_once_per_ttl_and_per_pair() {
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
        assert_eq!(limits.check(&caller("a"), &grn), Ok(()));
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
