//! Who keeps presenting bad tokens. An address that fails `limit` times within a window is
//! refused (429) without a database lookup until the window ends. Its failures are logged once
//! per window, at the first one, with the count of its previous window, instead of once each.
//! Tokens verified moments ago are answered from the cache before this is consulted, so a valid
//! token is never refused for its neighbours' failures.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::expiring::ExpiringMap;

/// The per-address record of failed authentications.
pub(super) struct Throttle {
    /// Failures in the address's current window.
    failures: ExpiringMap<IpAddr, u32>,
    /// The count of the address's latest window, kept longer, for the next log line.
    latest: ExpiringMap<IpAddr, u32>,
    limit: u32,
}

impl Throttle {
    pub(super) fn new(limit: u32, window: Duration, capacity: usize) -> Throttle {
        Throttle {
            failures: ExpiringMap::new(window, capacity),
            latest: ExpiringMap::new(window * 10, capacity),
            limit,
        }
    }

    /// `Some(wait)` when `address` has used up its failures for now.
    pub(super) fn refused(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.failures.get(&address, now)?;
        (failures >= self.limit).then(|| {
            self.failures
                .expires_at(&address, now)
                .map_or(Duration::ZERO, |expiry| expiry - now)
        })
    }

    /// Counts a failure of `address`.
    pub(super) fn failed(&self, address: IpAddr, now: Instant) {
        let count = self.failures.update(address, now, |count| *count += 1);
        let previous = self.latest.get(&address, now);
        self.latest.insert(address, count, now);
        if count == 1 {
            tracing::warn!(
                %address,
                failures_in_previous_window = previous.unwrap_or(0),
                "failed authentication; more from this address are counted, not logged, until its window ends"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_limit_until_the_window_ends() {
        let now = Instant::now();
        let throttle = Throttle::new(3, Duration::from_secs(60), 100);
        let (noisy, quiet): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(throttle.refused(noisy, now), None);
            throttle.failed(noisy, now);
        }
        let wait = throttle.refused(noisy, now).expect("throttled");
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(59));
        assert_eq!(throttle.refused(quiet, now), None);
        assert_eq!(throttle.refused(noisy, now + Duration::from_secs(61)), None);
    }
}
