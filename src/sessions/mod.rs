//! The serializer: one actor per live session, so duplicate requests queue
//! and collapse in memory instead of racing in the database.
//!
//! [`Registry`] maps (user, session ID) to that session's actor and enforces
//! the bounds; [`actor::SessionActor`] batches and writes; [`SessionWriter`]
//! turns a batch into one transaction (with retries).

pub mod actor;
pub mod registry;
pub mod writer;

use std::sync::Arc;

pub use registry::Registry;
pub use writer::SessionWriter;

use crate::domain::identity::SessionKey;
use crate::error::{ApiError, ErrorCode};
use crate::storage::StorageError;
use crate::storage::sessions::SessionState;

/// What an update request is answered with.
#[derive(Debug, Clone)]
pub struct UpdateOutcome {
    /// The session as of the commit that included the request.
    pub session: Arc<SessionState>,
    /// That commit created the session.
    pub created: bool,
}

/// Why an update was not applied. Cloneable because one failed batch
/// answers every request in it; the cause is logged once, by the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// The database did not answer in time, even after retries.
    DatabaseUnavailable,
    /// A bound was reached; the name says which.
    Overloaded(&'static str),
    /// An unexpected failure (logged).
    Internal,
}

impl UpdateError {
    /// Logs a failed write once, with its cause and the session, and gives
    /// the answer for every request the write was meant to serve.
    pub fn log_storage_failure(
        error: StorageError,
        key: &SessionKey,
        requests: usize,
    ) -> UpdateError {
        let (answer, message) = match &error {
            StorageError::Unavailable(_) => {
                (UpdateError::DatabaseUnavailable, "database unavailable")
            }
            StorageError::Failed(_) => (UpdateError::Internal, "session write failed"),
        };
        tracing::error!(
            user_id = %key.user_id,
            session_id = %key.session_id,
            requests,
            error = format!("{:#}", anyhow::Error::new(error)),
            "{message}"
        );
        answer
    }
}

impl From<UpdateError> for ApiError {
    fn from(error: UpdateError) -> ApiError {
        match error {
            UpdateError::DatabaseUnavailable => ApiError::new(
                ErrorCode::DatabaseUnavailable,
                "the database is unavailable; try again shortly",
            ),
            UpdateError::Overloaded(bound) => ApiError::new(
                ErrorCode::Overloaded,
                format!("too many updates in progress ({bound}); try again shortly"),
            ),
            UpdateError::Internal => ApiError::new(ErrorCode::Internal, "internal error"),
        }
    }
}
