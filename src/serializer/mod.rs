//! The serializer: one actor per live session, so duplicate requests queue and collapse in
//! memory instead of racing in the database.
//!
//! [`Registry`] maps (user, session ID) to that session's actor, enforces the bounds and waits
//! for the last batch when draining; `actor` batches one session's requests, which wait in its
//! `inbox` (a wake-up message only when the actor sleeps); `batch`
//! plans a batch into writes (folded runs, conditional requests alone) through the
//! [`Store`](crate::storage::Store) and counts what each cost.
//! A request is answered with the store's own [`ChangeResult`](crate::domain::session::ChangeResult)
//! for the write that included it, or with an [`UpdateError`] when no write did; only the HTTP
//! edge decides what either looks like on the wire.

mod actor;
mod batch;
mod inbox;
mod registry;
mod version_reads;

pub use registry::Registry;

use crate::domain::identity::SessionKey;
use crate::storage::{StorageError, StorageFailure, loggable};

/// A limit on what one instance holds; past it, requests are refused rather than queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `sessions.max_live_actors`.
    LiveActors,
    /// `sessions.max_live_actors_per_user`.
    LiveActorsPerUser,
    /// `sessions.max_waiting_per_session`.
    WaitingPerSession,
    /// `sessions.max_in_flight_updates`.
    InFlightUpdates,
}

impl Bound {
    /// The name used in metrics labels and error messages.
    pub fn label(self) -> &'static str {
        match self {
            Bound::LiveActors => "live_actors",
            Bound::LiveActorsPerUser => "live_actors_per_user",
            Bound::WaitingPerSession => "waiting_per_session",
            Bound::InFlightUpdates => "in_flight_updates",
        }
    }
}

/// Why no write included an update. Copy because one failed batch answers every request in it;
/// the cause was logged once, where the batch failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateError {
    /// The write failed.
    Storage(StorageFailure),
    /// A bound was reached.
    Overloaded(Bound),
    /// Every actor the request was routed to stopped before taking it (a bug, or absurdly short
    /// idle timeouts).
    Unrouted,
}

impl UpdateError {
    /// Logs a failed write once, with its cause and the session, and gives the answer for
    /// every request the write was meant to serve.
    fn from_failed_write(error: StorageError, key: &SessionKey, requests: usize) -> UpdateError {
        let failure = error.failure();
        let message = match failure {
            StorageFailure::Unavailable => "database unavailable",
            StorageFailure::Failed => "session write failed",
        };
        tracing::error!(
            user_id = %key.user_id,
            session_id = %key.session_id,
            requests,
            error = loggable(&anyhow::Error::new(error)),
            "{message}"
        );
        UpdateError::Storage(failure)
    }
}
