//! What can go wrong in storage, sorted by what a caller can do about it. The HTTP edge turns
//! these into answers (`error.rs`); nothing here knows about HTTP.

use crate::storage::retry::transient_cause;

/// A storage failure, with its cause for the log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database is unreachable, overloaded or kept aborting: try later.
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Anything else: a bug or a broken invariant.
    #[error("storage failure")]
    Failed(#[source] anyhow::Error),
}

/// The kind of a [`StorageError`] without its cause: what one failed write answers to every
/// request it was meant to serve (the cause is logged once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// See [`StorageError::Unavailable`].
    Unavailable,
    /// See [`StorageError::Failed`].
    Failed,
}

impl StorageError {
    /// Sorts a failure that was not retried: transient causes mean "unavailable".
    pub(super) fn classify(error: anyhow::Error) -> StorageError {
        match transient_cause(&error) {
            Some(_) => StorageError::Unavailable(error),
            None => StorageError::Failed(error),
        }
    }

    /// The kind, for answering without the cause.
    pub fn failure(&self) -> StorageFailure {
        match self {
            StorageError::Unavailable(_) => StorageFailure::Unavailable,
            StorageError::Failed(_) => StorageFailure::Failed,
        }
    }
}
