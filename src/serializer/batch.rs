//! Turns a folded batch of changes into at most one write transaction.
//!
//! This is where "a batch whose result equals the stored state costs no write transaction"
//! lives: when the actor's last known state already has the content, one plain read of
//! `version` confirms no other instance changed the row meanwhile, and the batch is answered
//! from that state.

use std::sync::Arc;

use crate::domain::content::Change;
use crate::domain::identity::SessionKey;
use crate::storage::{SessionState, StorageError, Store, WriteOutcome};

/// What a batch came to.
#[derive(Debug, Clone)]
pub(super) enum BatchResult {
    /// Nothing to change: the known state is still the stored one.
    Unchanged(Arc<SessionState>),
    /// One write transaction ran.
    Written(WriteOutcome),
}

/// Writes `change`, unless `known` shows it changes nothing and the database confirms `known`
/// is current.
pub(super) async fn write_batch(
    store: &Store,
    key: &SessionKey,
    change: &Change,
    known: Option<Arc<SessionState>>,
) -> Result<BatchResult, StorageError> {
    if let Some(known) = known
        && change.is_noop_for(&known.content)
        && store.current_version(key).await? == Some(known.version)
    {
        return Ok(BatchResult::Unchanged(known));
    }
    store
        .apply_change(key, change)
        .await
        .map(BatchResult::Written)
}
