//! Everything that speaks SQL, and nothing that knows about HTTP, configuration or metrics.
//! The SQL functions in `sessions`, `users`, `tokens` and `webhooks` take a client, never the pool, so the caller
//! decides what one transaction covers; [`Store`] is that caller: the pool plus the retry
//! policy handed in by whoever builds it.

mod error;
pub mod migrations;
mod pool;
mod retry;
mod sessions;
mod store;
mod tokens;
mod users;
mod webhooks;

pub use error::{StorageError, StorageFailure, loggable};
pub use pool::{PoolSettings, connect_pool};
pub use retry::{RetryObserver, RetryPolicy, TransientCause};
pub use store::Store;
pub use tokens::{Revocation, StoredToken, TokenInfo};
pub use users::UserInfo;
pub use webhooks::{AttemptEnd, ClaimedEvent, EventSummary};

/// What operator commands do, one statement each, on a client they bring.
pub mod admin {
    pub use super::tokens::{
        insert as insert_token, list as list_tokens, revoke as revoke_token,
        tag_key as token_tag_key,
    };
    pub use super::users::{
        exists as user_exists, find_by_name as find_user, insert as insert_user, list as users_with,
    };
    pub use super::webhooks::{
        list as list_webhook_events, resume as resume_webhooks, retry_dead as retry_dead_webhooks,
    };
}
