//! When a failed attempt is tried again: the next of `webhooks.retry_delays_ms`, stretched by up
//! to 10 % so that events that failed together are not all retried in the same instant, and
//! never sooner than the endpoint's `Retry-After`.

use std::time::Duration;

/// The most a `Retry-After` may push an attempt back: an endpoint must not be able to park an
/// event for good.
const LONGEST_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// How long to wait after failed attempt number `attempt` (from 1), or `None` when it was the
/// last the schedule allows.
pub(super) fn wait_after_failure(
    delays: &[Duration],
    attempt: i32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let delay = delays.get(usize::try_from(attempt.checked_sub(1)?).ok()?)?;
    let jittered = delay.mul_f64(1.0 + rand::random::<f64>() * 0.1);
    Some(match retry_after {
        Some(asked) => jittered.max(asked.min(LONGEST_RETRY_AFTER)),
        None => jittered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAYS: [Duration; 2] = [Duration::from_secs(5), Duration::from_secs(300)];

    #[test]
    fn each_failure_waits_the_next_delay_with_at_most_a_tenth_more() {
        for (attempt, delay) in [(1, DELAYS[0]), (2, DELAYS[1])] {
            let wait = wait_after_failure(&DELAYS, attempt, None).unwrap();
            assert!(wait >= delay && wait <= delay.mul_f64(1.1), "{wait:?}");
        }
        assert_eq!(wait_after_failure(&DELAYS, 3, None), None);
        assert_eq!(wait_after_failure(&[], 1, None), None);
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_day() {
        let hour = Duration::from_secs(3600);
        assert_eq!(wait_after_failure(&DELAYS, 1, Some(hour)), Some(hour));
        let year = Duration::from_secs(365 * 24 * 3600);
        assert_eq!(
            wait_after_failure(&DELAYS, 1, Some(year)),
            Some(LONGEST_RETRY_AFTER)
        );
    }
}
