//! Turns a folded batch of changes into at most one transaction.
//!
//! The writer is where "a batch whose result equals the stored state costs
//! no write transaction" lives: when the actor's last known state already
//! has the content, one plain read of `version` confirms no other instance
//! changed the row meanwhile, and the batch is answered from that state.

use std::sync::Arc;

use deadpool_postgres::Pool;

use crate::domain::SessionId;
use crate::domain::content::Change;
use crate::domain::identity::{SessionKey, UserId};
use crate::stats::Stats;
use crate::storage::StorageError;
use crate::storage::retry::{RetryPolicy, with_retries};
use crate::storage::sessions::{self, SessionState, WriteOutcome};

/// What a batch came to.
#[derive(Debug, Clone)]
pub enum BatchResult {
    /// Nothing to change: the known state is still the stored one.
    Unchanged(Arc<SessionState>),
    /// One write transaction ran.
    Written(WriteOutcome),
}

/// A cheap handle that runs session transactions on the pool.
#[derive(Clone)]
pub struct SessionWriter {
    pool: Pool,
    retry: RetryPolicy,
    stats: Stats,
}

impl SessionWriter {
    /// A writer using `pool`, retrying transient failures per `retry`.
    pub fn new(pool: Pool, retry: RetryPolicy, stats: Stats) -> SessionWriter {
        SessionWriter { pool, retry, stats }
    }

    /// The pool, for readiness checks and pool gauges.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Writes `change`, unless `known` shows it changes nothing and the
    /// database confirms `known` is current.
    pub async fn write_batch(
        &self,
        key: &SessionKey,
        change: &Change,
        known: Option<Arc<SessionState>>,
    ) -> Result<BatchResult, StorageError> {
        if let Some(known) = known
            && change.is_noop_for(&known.content)
        {
            let stored_version = with_retries(&self.retry, &self.stats, || async {
                let client = self.pool.get().await?;
                sessions::current_version(&client, key).await
            })
            .await?;
            if stored_version == Some(known.version) {
                return Ok(BatchResult::Unchanged(known));
            }
        }
        self.write(key, change).await.map(BatchResult::Written)
    }

    /// Applies `change` in one transaction (one statement), retrying
    /// transient failures.
    pub async fn write(
        &self,
        key: &SessionKey,
        change: &Change,
    ) -> Result<WriteOutcome, StorageError> {
        with_retries(&self.retry, &self.stats, || async {
            let client = self.pool.get().await?;
            sessions::apply_change(&client, key, change).await
        })
        .await
    }

    /// Reads a session of its owner.
    pub async fn read(&self, key: &SessionKey) -> Result<Option<SessionState>, StorageError> {
        with_retries(&self.retry, &self.stats, || async {
            let client = self.pool.get().await?;
            sessions::load(&client, key).await
        })
        .await
    }

    /// Creates an empty session under a fresh random ID for `user_id`.
    pub async fn mint(&self, user_id: UserId) -> Result<SessionState, StorageError> {
        // A collision of 150 random bits will not happen, but if it did the
        // right answer is another ID, not an error.
        for _ in 0..3 {
            let key = SessionKey {
                user_id,
                session_id: SessionId::generate(),
            };
            let created = with_retries(&self.retry, &self.stats, || async {
                let client = self.pool.get().await?;
                sessions::create_empty(&client, &key).await
            })
            .await?;
            if let Some(session) = created {
                return Ok(session);
            }
        }
        Err(StorageError::Failed(anyhow::anyhow!(
            "three random session IDs in a row were taken"
        )))
    }
}
