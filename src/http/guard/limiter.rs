//! Keyed rate limits (governor's GCRA over a sharded map) whose keys are swept: every
//! [`SWEEP_EVERY`], the request that checks a limit first drops the keys whose state is
//! back to fresh (`retain_recent`) and gives the memory back (`shrink_to_fit`), so the
//! map holds only the keys used within about one replenishment period.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// How often a limiter's map is swept of keys back to a fresh state.
pub const SWEEP_EVERY: Duration = Duration::from_secs(10);

type Keyed<K> =
    RateLimiter<K, DashMapStateStore<K>, MonotonicClock, NoOpMiddleware<std::time::Instant>>;

/// `per_minute` checks a minute for each key, all of them available at once (a burst as
/// large as the minute's allowance), then one every `60 s / per_minute`.
pub struct Limiter<K: Hash + Eq + Clone> {
    limiter: Keyed<K>,
    last_sweep: Mutex<Instant>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    /// `None` when `per_minute` is 0 (the limit is off).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        let quota = Quota::per_minute(NonZeroU32::new(per_minute)?);
        Some(Limiter {
            limiter: RateLimiter::dashmap_with_clock(quota, MonotonicClock),
            last_sweep: Mutex::new(Instant::now()),
        })
    }

    /// Counts one for `key`; over the limit, how long until the next one is allowed.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.sweep_if_due();
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    fn sweep_if_due(&self) {
        let mut last = match self.last_sweep.try_lock() {
            Ok(last) => last,
            // Another request is sweeping (or the lock is poisoned: the next one sweeps).
            Err(_) => return,
        };
        if last.elapsed() >= SWEEP_EVERY {
            *last = Instant::now();
            self.sweep();
        }
    }

    /// Drops the keys whose state is back to fresh.
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// The keys held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// Lockouts held before the ended ones are dropped (each ends within `60 s / limit`, a
/// lookup drops an ended one too).
const LOCKOUTS_PRUNE_AT: usize = 10_000;

/// Failed authentications per client address, and the addresses locked out: one whose
/// failure went over the limit is refused, whatever its token, until its next failure
/// would be allowed again.
pub struct Failures {
    limiter: Limiter<IpAddr>,
    locked: Mutex<HashMap<IpAddr, Instant>>,
}

impl Failures {
    /// `None` when `per_minute` is 0 (the limit is off).
    pub fn per_minute(per_minute: u32) -> Option<Self> {
        Some(Failures { limiter: Limiter::per_minute(per_minute)?, locked: Mutex::default() })
    }

    fn locked(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        self.locked.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long `address` stays locked out, if it is.
    pub fn lockout(&self, address: IpAddr) -> Option<Duration> {
        let key = key(address);
        let mut locked = self.locked();
        let until = *locked.get(&key)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            locked.remove(&key);
            return None;
        }
        Some(left)
    }

    /// Counts a failed authentication from `address`; over the limit, locks the address
    /// out and answers for how long.
    pub fn fail(&self, address: IpAddr) -> Option<Duration> {
        let key = key(address);
        let wait = self.limiter.check(&key).err()?;
        let now = Instant::now();
        let mut locked = self.locked();
        if locked.len() >= LOCKOUTS_PRUNE_AT {
            locked.retain(|_, until| *until > now);
        }
        locked.insert(key, now + wait);
        Some(wait)
    }
}

/// The key of an address: an IPv4 address itself, an IPv6 address its /64 (one host
/// usually holds a whole /64, and could otherwise take a fresh allowance per address).
fn key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(prefix.into())
        }
        v4 => v4,
    }
}

/// A wait as whole seconds for `Retry-After`: rounded up, at least 1.
pub fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_minute_allowance_then_waits() {
        let limiter = Limiter::<u32>::per_minute(5).expect("on");
        for _ in 0..5 {
            assert_eq!(limiter.check(&1), Ok(()));
        }
        let wait = limiter.check(&1).expect_err("the sixth is over");
        assert!(wait > Duration::from_secs(11) && wait <= Duration::from_secs(12), "{wait:?}");
        assert_eq!(limiter.check(&2), Ok(()), "another key has its own allowance");
        assert!(Limiter::<u32>::per_minute(0).is_none(), "0 turns the limit off");
    }

    #[test]
    fn sweeping_drops_the_keys_back_to_fresh() {
        // 60,000 a minute: a key is fresh again one millisecond after its last check.
        let limiter = Limiter::<u32>::per_minute(60_000).expect("on");
        for key in 0..1_000 {
            assert_eq!(limiter.check(&key), Ok(()));
        }
        assert_eq!(limiter.len(), 1_000);
        std::thread::sleep(Duration::from_millis(20));
        limiter.sweep();
        assert_eq!(limiter.len(), 0);
    }

    #[test]
    fn an_address_over_its_failures_is_locked_out_until_one_is_allowed_again() {
        let failures = Failures::per_minute(3).expect("on");
        let address: IpAddr = "192.0.2.1".parse().expect("ip");
        for _ in 0..3 {
            assert_eq!(failures.fail(address), None);
            assert_eq!(failures.lockout(address), None);
        }
        let wait = failures.fail(address).expect("the fourth failure is over");
        let left = failures.lockout(address).expect("locked out");
        assert!(left <= wait && left > Duration::from_secs(19), "{left:?}");
        assert_eq!(failures.lockout("192.0.2.2".parse().expect("ip")), None);
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_64() {
        let failures = Failures::per_minute(1).expect("on");
        assert_eq!(failures.fail("2001:db8:1:2::1".parse().expect("ip")), None);
        assert!(failures.fail("2001:db8:1:2::ffff".parse().expect("ip")).is_some());
        assert!(failures.lockout("2001:db8:1:2:aaaa::1".parse().expect("ip")).is_some());
        assert_eq!(failures.lockout("2001:db8:1:3::1".parse().expect("ip")), None);
    }

    #[test]
    fn a_wait_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(11_001)), 12);
        assert_eq!(whole_seconds(Duration::from_secs(12)), 12);
    }
}
