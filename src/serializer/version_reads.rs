//! The plain reads that confirm a batch changed nothing, shared between sessions: a duplicate
//! arriving just after its session's write committed is answered from the actor's memory only
//! once a read, started after it arrived, shows the stored version is still the one the actor
//! knows (another instance may have written since). Those reads are pooled: while one is in
//! flight, every session asking queues, and the next read answers all of them in one statement.
//! So a burst of duplicates over many sessions costs one read per round trip, not one per
//! session, and no answer ever rests on a read older than its request.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::domain::identity::SessionKey;
use crate::stats::Stats;
use crate::storage::{StorageError, StorageFailure, Store, loggable};

/// The most sessions one read asks about; more wait for the next.
const MAX_KEYS_PER_READ: usize = 1000;

type Reply = oneshot::Sender<Result<Option<i64>, StorageFailure>>;

/// Pools the version reads of one registry.
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
            !std::mem::replace(&mut state.reading, true)
        };
        if start_reader {
            let inner = self.inner.clone();
            // Its own task: the reads outlive any one request that started them.
            actix_web::rt::spawn(async move { inner.read_until_nobody_waits().await });
        }
        match answer.await {
            Ok(Ok(version)) => Ok(version),
            Ok(Err(StorageFailure::Unavailable)) => Err(StorageError::Unavailable(
                anyhow::anyhow!("the shared version read could not reach the database"),
            )),
            Ok(Err(StorageFailure::Failed)) | Err(_) => Err(StorageError::Failed(anyhow::anyhow!(
                "the shared version read failed"
            ))),
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Reads for whoever waits, one statement at a time, until nobody does.
    async fn read_until_nobody_waits(&self) {
        loop {
            let batch: Vec<(SessionKey, Reply)> = {
                let mut state = self.lock();
                if state.waiting.is_empty() {
                    state.reading = false;
                    return;
                }
                let take = state.waiting.len().min(MAX_KEYS_PER_READ);
                state.waiting.drain(..take).collect()
            };
            let (keys, replies): (Vec<SessionKey>, Vec<Reply>) = batch.into_iter().unzip();
            self.stats.record_version_read();
            match self.store.current_versions(&keys).await {
                Ok(versions) => {
                    for (reply, version) in replies.into_iter().zip(versions) {
                        let _ = reply.send(Ok(version));
                    }
                }
                Err(error) => {
                    let failure = error.failure();
                    tracing::error!(
                        sessions = replies.len(),
                        error = loggable(&anyhow::Error::new(error)),
                        "shared version read failed"
                    );
                    for reply in replies {
                        let _ = reply.send(Err(failure));
                    }
                }
            }
        }
    }
}
