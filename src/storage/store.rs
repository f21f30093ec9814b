//! [`Store`]: the request path's handle on PostgreSQL. It owns the connection pool and the retry
//! policy, and offers every database operation a request can cause, each one statement (so one
//! transaction), re-run as a whole on transient failures. Callers above never see the pool.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Client, Pool, Status};

use crate::domain::SessionId;
use crate::domain::content::Change;
use crate::domain::identity::{Identity, SessionKey, TokenId, UserId};
use crate::domain::page::{PageCursor, PageLimit, SessionPage};
use crate::domain::precondition::{Precondition, Versions};
use crate::domain::session::{ChangeResult, DeleteResult, MintResult, Session};
use crate::storage::StorageError;
use crate::storage::retry::{RetryObserver, RetryPolicy, with_retries};
use crate::storage::sessions::{self, WriteRules};
use crate::storage::tokens::{self, StoredScheme, StoredToken};
use crate::storage::users;
use crate::storage::webhooks::{self, AttemptEnd, ClaimedEvent};

/// A cheap handle (clones share the pool) to the database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    retry: RetryPolicy,
    observer: Arc<dyn RetryObserver>,
    rules: WriteRules,
}

impl Store {
    /// A store on `pool`, retrying transient failures per `retry` and telling `observer`, that
    /// lets a user create `daily_quota` new sessions per UTC day (0: unlimited), and records a
    /// webhook event for every applied version and deletion when `webhooks` is on.
    pub fn new(
        pool: Pool,
        retry: RetryPolicy,
        observer: Arc<dyn RetryObserver>,
        daily_quota: u32,
        webhooks: bool,
    ) -> Store {
        Store {
            pool,
            retry,
            observer,
            rules: WriteRules {
                daily_quota: i32::try_from(daily_quota).unwrap_or(i32::MAX),
                webhooks,
            },
        }
    }

    /// Applies `change` to the session if `precondition` holds, creating it when absent and
    /// allowed (see [`sessions::apply_change`]).
    /// Reads in the same statement the stored versions of `riders`, in their order.
    pub async fn apply_change(
        &self,
        key: &SessionKey,
        change: &Change,
        precondition: &Precondition,
        riders: &[SessionKey],
    ) -> Result<(ChangeResult, Vec<Option<i64>>), StorageError> {
        self.retrying(async |client| {
            sessions::apply_change(client, key, change, precondition, &self.rules, riders).await
        })
        .await
    }

    /// The stored version of a session, `None` when it does not exist.
    pub async fn current_version(&self, key: &SessionKey) -> Result<Option<i64>, StorageError> {
        self.retrying(async |client| sessions::current_version(client, key).await)
            .await
    }

    /// The stored versions of `keys`, in their order, in one statement.
    pub async fn current_versions(
        &self,
        keys: &[SessionKey],
    ) -> Result<Vec<Option<i64>>, StorageError> {
        self.retrying(async |client| sessions::current_versions(client, keys).await)
            .await
    }

    /// Reads a session of its owner.
    pub async fn read(&self, key: &SessionKey) -> Result<Option<Session>, StorageError> {
        self.retrying(async |client| sessions::load(client, key).await)
            .await
    }

    /// A page of the owner's sessions, newest first by creation, after `after` (from the newest
    /// when `None`), with the cursor of the next page when there is one.
    pub async fn list(
        &self,
        user_id: UserId,
        after: Option<&PageCursor>,
        limit: PageLimit,
    ) -> Result<SessionPage, StorageError> {
        // One more than the page, to tell whether another page follows without a count.
        let wanted = i64::from(limit.get()) + 1;
        let mut sessions = self
            .retrying(async |client| sessions::list_page(client, user_id, after, wanted).await)
            .await?;
        let more = sessions.len() > limit.get() as usize;
        sessions.truncate(limit.get() as usize);
        let next = if more {
            sessions.last().map(PageCursor::after)
        } else {
            None
        };
        Ok(SessionPage { sessions, next })
    }

    /// Deletes up to `batch` sessions not updated for `days` days, if no other instance is
    /// sweeping right now; how many.
    pub async fn sweep_batch(&self, days: i32, batch: i64) -> Result<u64, StorageError> {
        self.retrying(async |client| sessions::sweep_batch(client, days, batch).await)
            .await
    }

    /// Deletes a session of its owner if `if_match` holds.
    pub async fn delete(
        &self,
        key: &SessionKey,
        if_match: Option<&Versions>,
    ) -> Result<DeleteResult, StorageError> {
        self.retrying(async |client| sessions::delete(client, key, if_match, &self.rules).await)
            .await
    }

    /// Creates an empty session under a fresh random ID for `user_id`, if its quota allows.
    pub async fn mint(&self, user_id: UserId) -> Result<MintResult, StorageError> {
        // A collision of 150 random bits will not happen, but if it did the right answer is
        // another ID, not an error.
        for _ in 0..3 {
            let key = SessionKey {
                user_id,
                session_id: SessionId::generate(),
            };
            let minted = self
                .retrying(async |client| {
                    sessions::create_empty(client, &key, self.rules.daily_quota).await
                })
                .await?;
            if let Some(minted) = minted {
                return Ok(minted);
            }
        }
        Err(StorageError::Failed(anyhow::anyhow!(
            "three random session IDs in a row were taken"
        )))
    }

    /// Token `id` as verification needs it. Not retried: a client whose token check failed
    /// transiently is answered 503 at once and tries again itself.
    pub async fn find_token(&self, id: TokenId) -> Result<Option<StoredToken>, StorageError> {
        self.once(async |client| tokens::find(client, id).await)
            .await
    }

    /// The tag key and the untagged tokens, read once per instance.
    pub async fn token_scheme(&self) -> Result<StoredScheme, StorageError> {
        self.retrying(async |client| tokens::scheme(client).await)
            .await
    }

    /// Notes that token `id` was just used. Not retried: the note is best effort.
    pub async fn touch_token(&self, id: TokenId) -> Result<(), StorageError> {
        self.once(async |client| tokens::touch(client, id).await)
            .await
    }

    /// The user of `identity`, created on its first contact.
    pub async fn provision(&self, identity: &Identity) -> Result<UserId, StorageError> {
        self.retrying(async |client| users::provision(client, identity).await)
            .await
    }

    /// Runs `operation` on a pooled connection, re-running it on a fresh one after transient
    /// failures (the pool checkout included).
    async fn retrying<T>(
        &self,
        operation: impl AsyncFn(&Client) -> anyhow::Result<T>,
    ) -> Result<T, StorageError> {
        with_retries(&self.retry, &*self.observer, || async {
            let client = self.pool.get().await?;
            operation(&client).await
        })
        .await
    }

    /// Runs `operation` once on a pooled connection, for callers that would rather answer at
    /// once than wait through retries.
    async fn once<T>(
        &self,
        operation: impl AsyncFn(&Client) -> anyhow::Result<T>,
    ) -> Result<T, StorageError> {
        let client = self
            .pool
            .get()
            .await
            .map_err(|error| StorageError::Unavailable(error.into()))?;
        operation(&client).await.map_err(StorageError::classify)
    }

    /// Claims up to `limit` due webhook events for `lease` under `lease_token`. Not retried: the
    /// delivery loop looks again soon anyway.
    pub async fn webhook_claim(
        &self,
        limit: i64,
        lease: Duration,
        lease_token: i64,
    ) -> Result<Vec<ClaimedEvent>, StorageError> {
        self.once(async |client| webhooks::claim(client, limit, lease, lease_token).await)
            .await
    }

    /// Records how an attempt ended; `false` when the claim was no longer ours.
    pub async fn webhook_finish(
        &self,
        id: i64,
        lease_token: i64,
        end: AttemptEnd,
        error: Option<&str>,
    ) -> Result<bool, StorageError> {
        self.retrying(async |client| webhooks::finish(client, id, lease_token, end, error).await)
            .await
    }

    /// Pauses webhook delivery (the endpoint answered 410).
    pub async fn webhook_pause(&self, why: &str) -> Result<(), StorageError> {
        self.retrying(async |client| webhooks::pause(client, why).await)
            .await
    }

    /// Undelivered events that are not dead, and the age in seconds of the oldest.
    pub async fn webhook_backlog(&self) -> Result<(i64, f64), StorageError> {
        self.once(async |client| webhooks::backlog(client).await)
            .await
    }

    /// Deletes up to `batch` events delivered more than `days` days ago.
    pub async fn webhook_sweep_delivered(
        &self,
        days: i32,
        batch: i64,
    ) -> Result<u64, StorageError> {
        self.once(async |client| webhooks::sweep_delivered(client, days, batch).await)
            .await
    }

    /// Whether the database answers a trivial query (readiness).
    pub async fn ping(&self) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Connections open, idle and waited for (pool gauges).
    pub fn pool_status(&self) -> Status {
        self.pool.status()
    }
}
