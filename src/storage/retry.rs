//! Bounded retries of transient database failures.
//!
//! Under contention PostgreSQL may abort a transaction with a serialization
//! failure (40001) or a deadlock (40P01), and a restart of the database drops
//! every connection. None of these is the client's fault and each usually
//! succeeds when tried again, so the whole transaction is re-run after a
//! jittered exponential backoff (jitter keeps retrying writers from meeting
//! again in lock step). After the last attempt the caller gets
//! [`StorageError::Unavailable`], which the HTTP edge turns into a 503 with
//! `Retry-After`.

use std::future::Future;
use std::time::Duration;

use tokio_postgres::error::SqlState;

use crate::storage::StorageError;

/// Told about every retry, so the layer that owns the counters can count them without this
/// layer knowing about metrics.
pub trait RetryObserver: Send + Sync {
    /// A transient failure with `cause` is about to be retried.
    fn retrying(&self, cause: TransientCause);
}

/// How often and how patiently to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// Delay before the first retry (before jitter).
    pub base_delay: Duration,
    /// Cap on any one delay.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// "Full jitter": a uniform delay in [0, min(cap, base * 2^retry)].
    fn delay_before(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << retry.min(16))
            .min(self.max_delay);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=micros))
    }
}

/// Runs `operation` until it succeeds, fails for good, or runs out of retries.
pub(super) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    observer: &dyn RetryObserver,
    mut operation: F,
) -> Result<T, StorageError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    let mut retry = 0;
    loop {
        let error = match operation().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let Some(cause) = transient_cause(&error) else {
            return Err(StorageError::Failed(error));
        };
        if retry >= policy.retries || cause == TransientCause::PoolTimeout {
            // A pool timeout has already waited its full bound; waiting again
            // would only stretch the time to a 503.
            return Err(StorageError::Unavailable(error));
        }
        observer.retrying(cause);
        tracing::warn!(
            cause = cause.label(),
            retry,
            error = crate::storage::loggable(&error),
            "retrying"
        );
        tokio::time::sleep(policy.delay_before(retry)).await;
        retry += 1;
    }
}

/// Why a failure is worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransientCause {
    /// SQLSTATE 40001.
    SerializationFailure,
    /// SQLSTATE 40P01.
    Deadlock,
    /// The server is shutting down or starting up (57P01..57P03).
    ServerRestarting,
    /// The connection broke or could not be opened.
    ConnectionLost,
    /// No pooled connection became free in time.
    PoolTimeout,
}

impl TransientCause {
    /// The label under which retries are counted.
    pub fn label(self) -> &'static str {
        match self {
            TransientCause::SerializationFailure => "40001",
            TransientCause::Deadlock => "40P01",
            TransientCause::ServerRestarting => "57P0x",
            TransientCause::ConnectionLost => "connection",
            TransientCause::PoolTimeout => "pool_timeout",
        }
    }
}

/// Finds a transient database failure anywhere in the error's chain.
pub(super) fn transient_cause(error: &anyhow::Error) -> Option<TransientCause> {
    error.chain().find_map(|cause| {
        if let Some(pool_error) = cause.downcast_ref::<deadpool_postgres::PoolError>() {
            return Some(match pool_error {
                deadpool_postgres::PoolError::Timeout(_) => TransientCause::PoolTimeout,
                _ => TransientCause::ConnectionLost,
            });
        }
        let db_error = cause.downcast_ref::<tokio_postgres::Error>()?;
        match db_error.code() {
            Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => {
                Some(TransientCause::SerializationFailure)
            }
            Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => {
                Some(TransientCause::Deadlock)
            }
            Some(code)
                if *code == SqlState::ADMIN_SHUTDOWN
                    || *code == SqlState::CRASH_SHUTDOWN
                    || *code == SqlState::CANNOT_CONNECT_NOW =>
            {
                Some(TransientCause::ServerRestarting)
            }
            Some(_) => None,
            None if db_error.is_closed() || is_io_failure(db_error) => {
                Some(TransientCause::ConnectionLost)
            }
            None => None,
        }
    })
}

fn is_io_failure(error: &tokio_postgres::Error) -> bool {
    std::error::Error::source(error).is_some_and(|source| source.is::<std::io::Error>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_but_stays_under_the_cap() {
        let policy = RetryPolicy {
            retries: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        for retry in 0..40 {
            let ceiling = Duration::from_millis(10 * (1u64 << retry.min(16))).min(policy.max_delay);
            assert!(policy.delay_before(retry) <= ceiling);
        }
    }

    #[test]
    fn a_plain_error_is_not_transient() {
        assert_eq!(transient_cause(&anyhow::anyhow!("boom")), None);
    }
}
