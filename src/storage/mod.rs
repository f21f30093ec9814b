//! Everything that speaks SQL. Functions here take a client or a transaction,
//! never the pool, so the caller decides what one transaction covers: one
//! collapsed batch of updates is one transaction.

pub mod migrations;
pub mod pool;
pub mod retry;
pub mod sessions;
pub mod users;

pub use pool::connect_pool;
pub use retry::{RetryPolicy, StorageError};
