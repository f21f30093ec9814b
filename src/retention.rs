//! The data lifecycle: with `retention.days` set, a background sweep deletes sessions not
//! updated for that many days, in small batches (short transactions that never hold many row
//! locks), on one instance at a time (a PostgreSQL advisory lock taken by each batch).

use crate::configuration::RetentionSettings;
use crate::stats::Stats;
use crate::storage::{Store, loggable};

/// Runs the sweep every `settings.sweep_interval` until the task is dropped; does nothing
/// when `settings.days` is 0 (keep forever).
pub(crate) async fn sweep_forever(store: Store, stats: Stats, settings: RetentionSettings) {
    if settings.days == 0 {
        return;
    }
    let days = i32::try_from(settings.days).unwrap_or(i32::MAX);
    let period = settings.sweep_interval;
    // Not at once: a starting instance may still be migrating.
    let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        loop {
            match store.sweep_batch(days, settings.batch_size).await {
                Ok(deleted) => {
                    stats.record_retention_deleted(deleted);
                    if deleted < u64::try_from(settings.batch_size).unwrap_or(u64::MAX) {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        error = loggable(&anyhow::Error::new(error)),
                        "retention sweep failed; trying again later"
                    );
                    break;
                }
            }
        }
    }
}
