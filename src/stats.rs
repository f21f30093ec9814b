//! Per-instance counters of what the serializer did and of the database
//! retries the instance made, mirrored into the process-wide `metrics` recorder.
//! The mirror exists because tests need exact figures for one instance even
//! when several instances share a process, while `/metrics` serves operators.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{counter, histogram};

use crate::metric_names as names;
use crate::storage::{RetryObserver, TransientCause};

/// A cheap handle to one instance's counters.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    updates_received: AtomicU64,
    updates_collapsed: AtomicU64,
    writes_applied: AtomicU64,
    writes_noop: AtomicU64,
    noop_reads: AtomicU64,
    retries: AtomicU64,
    actors_started: AtomicU64,
    reroutes: AtomicU64,
    token_lookups: AtomicU64,
    auth_failures: AtomicU64,
    retention_deleted: AtomicU64,
}

/// A point-in-time copy of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Update requests accepted.
    pub updates_received: u64,
    /// Updates answered without a write transaction of their own.
    pub updates_collapsed: u64,
    /// Write transactions that changed content.
    pub writes_applied: u64,
    /// Write transactions that found nothing to change.
    pub writes_noop: u64,
    /// Plain reads that confirmed a no-op batch.
    pub noop_reads: u64,
    /// Retries of transient failures.
    pub retries: u64,
    /// Session actors started.
    pub actors_started: u64,
    /// Updates re-sent because their actor stopped first.
    pub reroutes: u64,
    /// Token lookups in the database.
    pub token_lookups: u64,
    /// Requests refused for a bad token.
    pub auth_failures: u64,
    /// Sessions deleted by the retention sweep.
    pub retention_deleted: u64,
}

impl StatsSnapshot {
    /// Every write transaction, applied or not.
    pub fn write_transactions(&self) -> u64 {
        self.writes_applied + self.writes_noop
    }
}

impl Stats {
    /// Copies the current values.
    pub fn snapshot(&self) -> StatsSnapshot {
        let c = &self.inner;
        StatsSnapshot {
            updates_received: c.updates_received.load(Ordering::Relaxed),
            updates_collapsed: c.updates_collapsed.load(Ordering::Relaxed),
            writes_applied: c.writes_applied.load(Ordering::Relaxed),
            writes_noop: c.writes_noop.load(Ordering::Relaxed),
            noop_reads: c.noop_reads.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            actors_started: c.actors_started.load(Ordering::Relaxed),
            reroutes: c.reroutes.load(Ordering::Relaxed),
            token_lookups: c.token_lookups.load(Ordering::Relaxed),
            auth_failures: c.auth_failures.load(Ordering::Relaxed),
            retention_deleted: c.retention_deleted.load(Ordering::Relaxed),
        }
    }

    /// One update request was accepted.
    pub fn record_received(&self) {
        self.inner.updates_received.fetch_add(1, Ordering::Relaxed);
        counter!(names::UPDATES_RECEIVED).increment(1);
    }

    /// A batch of `size` updates was answered by one write transaction
    /// (`applied` when it changed content): one update paid for the write,
    /// the others rode along.
    pub fn record_write(&self, size: usize, applied: bool) {
        let (slot, outcome) = if applied {
            (&self.inner.writes_applied, "applied")
        } else {
            (&self.inner.writes_noop, "noop")
        };
        slot.fetch_add(1, Ordering::Relaxed);
        counter!(names::WRITE_TRANSACTIONS, "outcome" => outcome).increment(1);
        self.record_collapsed(size.saturating_sub(1));
        histogram!(names::BATCH_SIZE).record(size as f64);
    }

    /// A batch of `size` updates changed nothing and was answered after a
    /// plain read (shared with other sessions'), so none of them cost a write.
    pub fn record_noop_answer(&self, size: usize) {
        self.record_collapsed(size);
        histogram!(names::BATCH_SIZE).record(size as f64);
    }

    /// One plain read confirmed the versions of one or more sessions' no-op batches.
    pub fn record_version_read(&self) {
        self.inner.noop_reads.fetch_add(1, Ordering::Relaxed);
        counter!(names::NOOP_READS).increment(1);
    }

    fn record_collapsed(&self, count: usize) {
        self.inner
            .updates_collapsed
            .fetch_add(count as u64, Ordering::Relaxed);
        counter!(names::UPDATES_COLLAPSED).increment(count as u64);
    }

    /// A session actor was started.
    pub fn record_actor_started(&self) {
        self.inner.actors_started.fetch_add(1, Ordering::Relaxed);
        counter!(names::ACTORS_STARTED).increment(1);
    }

    /// An update met a stopping actor and is re-sent to a fresh one.
    pub fn record_reroute(&self) {
        self.inner.reroutes.fetch_add(1, Ordering::Relaxed);
        counter!(names::UPDATE_REROUTES).increment(1);
    }

    /// A token's user was looked up in the database.
    pub fn record_token_lookup(&self) {
        self.inner.token_lookups.fetch_add(1, Ordering::Relaxed);
        counter!(names::TOKEN_LOOKUPS).increment(1);
    }

    /// The retention sweep deleted `count` sessions.
    pub fn record_retention_deleted(&self, count: u64) {
        self.inner
            .retention_deleted
            .fetch_add(count, Ordering::Relaxed);
        counter!(names::RETENTION_DELETED).increment(count);
    }

    /// A request was refused for a bad token.
    pub fn record_auth_failure(&self) {
        self.inner.auth_failures.fetch_add(1, Ordering::Relaxed);
        counter!(names::AUTH_FAILURES).increment(1);
    }

    /// An update was refused because `bound` was reached.
    pub fn record_rejected(&self, bound: &'static str) {
        counter!(names::UPDATES_REJECTED, "bound" => bound).increment(1);
    }
}

impl RetryObserver for Stats {
    fn retrying(&self, cause: TransientCause) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
        counter!(names::DB_RETRIES, "cause" => cause.label()).increment(1);
    }
}
