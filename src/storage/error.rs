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

/// An error as the log may show it: every cause in the chain, but a database error only by its
/// SQLSTATE, severity and the objects it names. PostgreSQL's message and DETAIL quote the values
/// involved (`Key (...)=(a@x.com) already exists`), and recipient addresses must never reach a
/// log.
pub fn loggable(error: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in error.chain() {
        if let Some(db) = cause
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
        {
            let mut part = format!("database error {} ({})", db.code().code(), db.severity());
            for (what, name) in [
                ("table", db.table()),
                ("column", db.column()),
                ("constraint", db.constraint()),
            ] {
                if let Some(name) = name {
                    part.push_str(&format!(", {what} {name}"));
                }
            }
            parts.push(part);
            // Its sources repeat the message.
            break;
        }
        parts.push(cause.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_errors_keep_their_chain() {
        let error = anyhow::anyhow!("connection refused").context("applying the change");
        assert_eq!(loggable(&error), "applying the change: connection refused");
    }
}
