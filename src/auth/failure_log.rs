//! Who keeps presenting bad tokens, for the log only: an address's failures are logged once per
//! window, at the first one, with the count of its previous window, instead of once each.
//! Nothing here refuses anybody: a made-up token costs no lookup (`api_token`'s tags), and an
//! identity token's checks need no database, so a flood costs little and a valid token from the
//! same address (a corporate NAT, a load balancer) is never turned away for its neighbours.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::expiring::ExpiringMap;

/// The per-address record of failed authentications.
pub(super) struct FailureLog {
    /// Failures in the address's current window.
    failures: ExpiringMap<IpAddr, u32>,
    /// The count of the address's latest window, kept longer, for the next log line.
    latest: ExpiringMap<IpAddr, u32>,
}

impl FailureLog {
    pub(super) fn new(window: Duration, capacity: usize) -> FailureLog {
        FailureLog {
            failures: ExpiringMap::new(window, capacity),
            latest: ExpiringMap::new(window * 10, capacity),
        }
    }

    /// Counts a failure of `address`; true when it was logged.
    pub(super) fn failed(&self, address: IpAddr, now: Instant) -> bool {
        let count = self.failures.update(address, now, |count| *count += 1);
        let previous = self.latest.get(&address, now);
        self.latest.insert(address, count, now);
        let first_of_window = count == 1;
        if first_of_window {
            tracing::warn!(
                %address,
                failures_in_previous_window = previous.unwrap_or(0),
                "failed authentication; more from this address are counted, not logged, until its window ends"
            );
        }
        first_of_window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_logged_once_per_window() {
        let now = Instant::now();
        let log = FailureLog::new(Duration::from_secs(60), 100);
        let (noisy, quiet): (IpAddr, IpAddr) =
            ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let logged: Vec<bool> = (0..3).map(|_| log.failed(noisy, now)).collect();
        assert_eq!(logged, [true, false, false]);
        assert!(log.failed(quiet, now));
        assert!(log.failed(noisy, now + Duration::from_secs(61)));
    }
}
