//! The reads that confirm a batch changed nothing. A duplicate arriving just after its
//! session's write committed is answered from the actor's memory only once a read, begun after
//! it arrived, shows the stored version is still the one the actor knows (another instance may
//! have written since). Those reads cost as little as the contract allows:
//!
//! - they ride along on writes: a write that starts while confirmations wait takes them into
//!   its own statement, whose snapshot is taken when it starts, so after they asked
//!   (`storage::sessions::apply_change`), and they cost no transaction of their own;
//! - when no write is under way to take them (none was, or the last one ended), a read of their
//!   own follows `RIDE_GRACE` later, unless a write starting meanwhile took them (under load
//!   one starts well within it); one read confirms every session waiting, and those that ask
//!   while it is in flight share the next, unless a write started meanwhile: they then wait for
//!   a write to take them or for the last write to end (fewer reads of their own: in the
//!   benchmark's D=20 bursts 0.009 instead of 0.012 per request).
//!
//! So no answer rests on a read older than its request, and a burst of duplicates costs about
//! one write per session and hardly any read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::domain::identity::SessionKey;
use crate::stats::Stats;
use crate::storage::{StorageError, StorageFailure, Store, loggable};

/// The most sessions one statement confirms; more wait for the next.
const MAX_KEYS_PER_READ: usize = 1000;

/// How long a confirmation that found no write under way waits for one to start before it is
/// read on its own: what a quiet session's duplicate may pay, against a read per session in a
/// burst (the benchmark's bursts start a write every fraction of a millisecond).
const RIDE_GRACE: Duration = Duration::from_millis(1);

type Reply = oneshot::Sender<Result<Option<i64>, StorageFailure>>;

/// The confirmations of one registry.
#[derive(Clone)]
pub(super) struct VersionReads {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    stats: Stats,
    // A std mutex: held only to push or take, never across an `.await`.
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<(SessionKey, Reply)>,
    reading: bool,
    writes_under_way: usize,
}

/// Confirmations a write takes into its statement, answered with what it read.
pub(super) struct Riders {
    inner: Arc<Inner>,
    keys: Vec<SessionKey>,
    replies: Vec<Reply>,
}

impl VersionReads {
    pub(super) fn new(store: Store, stats: Stats) -> VersionReads {
        VersionReads {
            inner: Arc::new(Inner {
                store,
                stats,
                state: Mutex::default(),
            }),
        }
    }

    /// The stored version of `key` (`None` when it does not exist), read after this call began.
    pub(super) async fn current(&self, key: SessionKey) -> Result<Option<i64>, StorageError> {
        let (reply, answer) = oneshot::channel();
        let start_reader = {
            let mut state = self.inner.lock();
            state.waiting.push((key, reply));
            // A write under way will end, and the last one to end starts the reader if a write
            // starting meanwhile has not taken the confirmation along.
            state.writes_under_way == 0 && !std::mem::replace(&mut state.reading, true)
        };
        if start_reader {
            self.inner.clone().start_reader(RIDE_GRACE);
        }
        match answer.await {
            Ok(Ok(version)) => Ok(version),
            Ok(Err(StorageFailure::Unavailable)) => Err(StorageError::Unavailable(
                anyhow::anyhow!("the version read could not reach the database"),
            )),
            Ok(Err(StorageFailure::Failed)) | Err(_) => Err(StorageError::Failed(anyhow::anyhow!(
                "the version read failed"
            ))),
        }
    }

    /// A write is starting: it takes the confirmations waiting now along in its statement.
    pub(super) fn write_starting(&self) -> Riders {
        let mut state = self.inner.lock();
        state.writes_under_way += 1;
        let take = state.waiting.len().min(MAX_KEYS_PER_READ);
        let (keys, replies) = state.waiting.drain(..take).unzip();
        Riders {
            inner: self.inner.clone(),
            keys,
            replies,
        }
    }
}

impl Riders {
    /// The sessions whose versions the write must read.
    pub(super) fn keys(&self) -> &[SessionKey] {
        &self.keys
    }

    /// Answers the riders with what the write read (in their order), or with its failure.
    pub(super) fn answer(mut self, read: Result<Vec<Option<i64>>, StorageFailure>) {
        answer_all(std::mem::take(&mut self.replies), read);
    }
}

impl Drop for Riders {
    /// The write is over (answered, or dropped unanswered: its riders' replies then close, and
    /// they fail like a failed read). The last write to end starts the reader for whoever came
    /// to wait meanwhile.
    fn drop(&mut self) {
        let start_reader = {
            let mut state = self.inner.lock();
            state.writes_under_way -= 1;
            state.writes_under_way == 0
                && !state.waiting.is_empty()
                && !std::mem::replace(&mut state.reading, true)
        };
        // The next write often starts just after this one ended: the same grace.
        if start_reader {
            self.inner.clone().start_reader(RIDE_GRACE);
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Reads for whoever waits after `grace`; a write starting meanwhile may take them first.
    fn start_reader(self: Arc<Self>, grace: Duration) {
        // Its own task: the reads outlive any one request that started them.
        actix_web::rt::spawn(async move {
            tokio::time::sleep(grace).await;
            self.read_until_nobody_waits().await
        });
    }

    /// Reads for whoever waits, one statement at a time, until nobody does.
    async fn read_until_nobody_waits(&self) {
        loop {
            let (keys, replies): (Vec<SessionKey>, Vec<Reply>) = {
                let mut state = self.lock();
                // A write under way leaves whoever came meanwhile to the next write to start,
                // or to the reader the last write to end starts.
                if state.waiting.is_empty() || state.writes_under_way > 0 {
                    state.reading = false;
                    return;
                }
                let take = state.waiting.len().min(MAX_KEYS_PER_READ);
                state.waiting.drain(..take).unzip()
            };
            self.stats.record_version_read();
            let read = self.store.current_versions(&keys).await.map_err(|error| {
                let failure = error.failure();
                tracing::error!(
                    sessions = replies.len(),
                    error = loggable(&anyhow::Error::new(error)),
                    "version read failed"
                );
                failure
            });
            answer_all(replies, read);
        }
    }
}

/// Answers each waiter with its version (in order), or all of them with the read's failure.
fn answer_all(replies: Vec<Reply>, read: Result<Vec<Option<i64>>, StorageFailure>) {
    match read {
        Ok(versions) => {
            for (reply, version) in replies.into_iter().zip(versions) {
                let _ = reply.send(Ok(version));
            }
        }
        Err(failure) => {
            for reply in replies {
                let _ = reply.send(Err(failure));
            }
        }
    }
}
