//! Everything that speaks SQL, and nothing that knows about HTTP, configuration or metrics.
//! The SQL functions in `sessions` and `users` take a client, never the pool, so the caller
//! decides what one transaction covers; [`Store`] is that caller: the pool plus the retry
//! policy handed in by whoever builds it.

mod error;
pub mod migrations;
mod pool;
mod retry;
mod sessions;
mod store;
mod users;

pub use error::{StorageError, StorageFailure, loggable};
pub use pool::{PoolSettings, connect_pool};
pub use retry::{RetryObserver, RetryPolicy, TransientCause};
pub use sessions::{ChangeResult, MintResult, SessionState};
pub use store::Store;
pub use users::{CreateUserError, insert as insert_user};
