//! A session as one commit left it, and what a write of it came to. Storage builds these from
//! rows, the serializer hands them to every request a write answered, and the HTTP edge renders
//! them: one type from the database to the wire.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::domain::SessionId;
use crate::domain::content::Content;

/// A session with its content as of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The owner's name for the session.
    pub session_id: SessionId,
    /// Subject and recipients.
    pub content: Content,
    /// Number of applied content changes; the ETag.
    pub version: i64,
    /// When the row was created (a session deleted and written again is a new row).
    pub created_at: OffsetDateTime,
    /// When the content last changed.
    pub updated_at: OffsetDateTime,
}

/// What a write of a change came to, decided by the database under the session's row lock.
#[derive(Debug, Clone)]
pub enum ChangeResult {
    /// The precondition held (or there was none): the session as of the commit that included the
    /// change.
    Stored(StoredChange),
    /// The precondition did not hold: nothing changed.
    PreconditionFailed,
    /// Creating the session would exceed its user's quota of new sessions for today: nothing
    /// changed.
    QuotaExceeded,
}

/// A change that is part of the stored session.
#[derive(Debug, Clone)]
pub struct StoredChange {
    /// Shared by every request one write answers, so a batch's answers cost one copy.
    pub session: Arc<Session>,
    /// The session did not exist before.
    pub created: bool,
    /// The content changed, and `version` with it.
    pub applied: bool,
}

/// What minting came to.
#[derive(Debug, Clone)]
pub enum MintResult {
    /// A new empty session at version 0.
    Created(Session),
    /// The user's quota of new sessions for today is used up.
    QuotaExceeded,
}

/// What a delete came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteResult {
    Deleted,
    /// No such session of this owner.
    NotFound,
    /// `If-Match` did not hold under the row lock (or named an absent session); nothing changed.
    PreconditionFailed,
}
