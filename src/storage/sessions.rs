//! Session rows and their recipients.
//!
//! [`apply_change`] is the one write: inside the caller's transaction it
//! creates-or-finds the row through the unique constraint, locks it, and
//! decides on the state it read *under the lock*, never on a cached copy, so
//! two instances writing the same session at once still serialise and
//! `version` grows by exactly one per applied change.

use anyhow::Context;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::domain::content::{Change, Content};
use crate::domain::identity::SessionKey;
use crate::domain::{Recipient, RecipientList, SessionId};

/// A session as stored, with the content as of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionState {
    /// The owner's name for the session.
    pub session_id: SessionId,
    /// Subject and recipients.
    pub content: Content,
    /// Number of applied content changes.
    pub version: i64,
    /// When the row was created.
    pub created_at: OffsetDateTime,
    /// When the content last changed.
    pub updated_at: OffsetDateTime,
}

/// What one write transaction did.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    /// The state as of the commit.
    pub session: SessionState,
    /// The row did not exist before this transaction.
    pub created: bool,
    /// The content changed (and `version` grew by one).
    pub applied: bool,
}

// Create-or-find: a concurrent creator makes us wait, then DO NOTHING, so
// the unique key never surfaces as an error.
const INSERT_IF_ABSENT: &str =
    "INSERT INTO email_sessions (user_id, session_id, content_fingerprint)
     VALUES ($1, $2, $3)
     ON CONFLICT (user_id, session_id) DO NOTHING";

// The row lock every writer of this session queues on; what it returns is
// the state the write decides on.
const LOCK_SESSION: &str =
    "SELECT id, subject, version, content_fingerprint, created_at, updated_at
     FROM email_sessions
     WHERE user_id = $1 AND session_id = $2
     FOR UPDATE";

const SELECT_SESSION: &str =
    "SELECT id, subject, version, content_fingerprint, created_at, updated_at
     FROM email_sessions
     WHERE user_id = $1 AND session_id = $2";

const SELECT_VERSION: &str =
    "SELECT version FROM email_sessions WHERE user_id = $1 AND session_id = $2";

const SELECT_RECIPIENTS: &str = "SELECT email, display_name
     FROM email_session_recipients
     WHERE session_row_id = $1
     ORDER BY position";

const DELETE_RECIPIENTS: &str = "DELETE FROM email_session_recipients WHERE session_row_id = $1";

// One statement for the whole list, however long.
const INSERT_RECIPIENTS: &str =
    "INSERT INTO email_session_recipients (session_row_id, position, email, display_name)
     SELECT $1, position, email, display_name
     FROM unnest($2::int4[], $3::text[], $4::text[]) AS r(position, email, display_name)";

const UPDATE_CONTENT: &str = "UPDATE email_sessions
     SET subject = $2, content_fingerprint = $3, version = version + 1, updated_at = now()
     WHERE id = $1
     RETURNING version, updated_at";

const INSERT_NEW: &str = "INSERT INTO email_sessions (user_id, session_id, content_fingerprint)
     VALUES ($1, $2, $3)
     ON CONFLICT (user_id, session_id) DO NOTHING
     RETURNING created_at, updated_at";

/// The locked or read row, before its recipients are known.
struct SessionRow {
    row_id: i64,
    subject: Option<String>,
    version: i64,
    fingerprint: Vec<u8>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl SessionRow {
    fn from_row(row: &Row) -> anyhow::Result<SessionRow> {
        Ok(SessionRow {
            row_id: row.try_get("id")?,
            subject: row.try_get("subject")?,
            version: row.try_get("version")?,
            fingerprint: row.try_get("content_fingerprint")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }

    fn into_state(self, session_id: SessionId, recipients: RecipientList) -> SessionState {
        SessionState {
            session_id,
            content: Content {
                subject: self.subject,
                recipients,
            },
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// Applies `change` to the session inside `tx`, creating the session first
/// when it does not exist. The caller commits.
pub async fn apply_change(
    tx: &deadpool_postgres::Transaction<'_>,
    key: &SessionKey,
    change: &Change,
) -> anyhow::Result<WriteOutcome> {
    let user_id = key.user_id.0;
    let session_id = key.session_id.as_str();
    let empty_fingerprint = Content::default().fingerprint();
    let insert = tx.prepare_cached(INSERT_IF_ABSENT).await?;
    let created = tx
        .execute(
            &insert,
            &[&user_id, &session_id, &empty_fingerprint.as_slice()],
        )
        .await
        .context("creating the session if absent")?
        == 1;
    let lock = tx.prepare_cached(LOCK_SESSION).await?;
    let row = tx
        .query_one(&lock, &[&user_id, &session_id])
        .await
        .context("locking the session row")?;
    let locked = SessionRow::from_row(&row)?;

    // Reloading recipients is only needed when the change keeps them.
    let stored_recipients = match &change.recipients {
        Some(_) => None,
        None => Some(load_recipients(tx, locked.row_id).await?),
    };
    let current_subject = locked.subject.clone();
    let next = change.apply_to(&Content {
        subject: current_subject,
        recipients: stored_recipients.clone().unwrap_or_default(),
    });
    let next_fingerprint = next.fingerprint();
    if next_fingerprint.as_slice() == locked.fingerprint.as_slice() {
        let session = locked.into_state(key.session_id.clone(), next.recipients);
        return Ok(WriteOutcome {
            session,
            created,
            applied: false,
        });
    }

    if change.recipients.is_some() {
        replace_recipients(tx, locked.row_id, &next.recipients).await?;
    }
    let update = tx.prepare_cached(UPDATE_CONTENT).await?;
    let updated = tx
        .query_one(
            &update,
            &[&locked.row_id, &next.subject, &next_fingerprint.as_slice()],
        )
        .await
        .context("updating the session content")?;
    let session = SessionState {
        session_id: key.session_id.clone(),
        version: updated.try_get("version")?,
        updated_at: updated.try_get("updated_at")?,
        created_at: locked.created_at,
        content: next,
    };
    Ok(WriteOutcome {
        session,
        created,
        applied: true,
    })
}

async fn load_recipients(
    client: &impl GenericClient,
    row_id: i64,
) -> anyhow::Result<RecipientList> {
    let statement = client.prepare_cached(SELECT_RECIPIENTS).await?;
    let rows = client
        .query(&statement, &[&row_id])
        .await
        .context("loading recipients")?;
    let recipients = rows
        .iter()
        .map(|row| {
            Ok(Recipient {
                email: row.try_get("email")?,
                name: row.try_get("display_name")?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RecipientList::from_stored(recipients))
}

async fn replace_recipients(
    tx: &deadpool_postgres::Transaction<'_>,
    row_id: i64,
    recipients: &RecipientList,
) -> anyhow::Result<()> {
    let delete = tx.prepare_cached(DELETE_RECIPIENTS).await?;
    tx.execute(&delete, &[&row_id])
        .await
        .context("deleting the old recipients")?;
    if recipients.is_empty() {
        return Ok(());
    }
    let positions: Vec<i32> = (0..recipients.len() as i32).collect();
    let emails: Vec<&str> = recipients.iter().map(|r| r.email.as_str()).collect();
    let names: Vec<Option<&str>> = recipients.iter().map(|r| r.name.as_deref()).collect();
    let insert = tx.prepare_cached(INSERT_RECIPIENTS).await?;
    tx.execute(&insert, &[&row_id, &positions, &emails, &names])
        .await
        .context("inserting the new recipients")?;
    Ok(())
}

/// Reads a session with its recipients; `None` when the owner has none by
/// that ID.
pub async fn load(
    client: &impl GenericClient,
    key: &SessionKey,
) -> anyhow::Result<Option<SessionState>> {
    let statement = client.prepare_cached(SELECT_SESSION).await?;
    let Some(row) = client
        .query_opt(&statement, &[&key.user_id.0, &key.session_id.as_str()])
        .await
        .context("reading the session")?
    else {
        return Ok(None);
    };
    let row = SessionRow::from_row(&row)?;
    let recipients = load_recipients(client, row.row_id).await?;
    Ok(Some(row.into_state(key.session_id.clone(), recipients)))
}

/// The session's current version, without its content: the cheap check
/// that a cached state is still the stored one.
pub async fn current_version(
    client: &impl GenericClient,
    key: &SessionKey,
) -> anyhow::Result<Option<i64>> {
    let statement = client.prepare_cached(SELECT_VERSION).await?;
    let row = client
        .query_opt(&statement, &[&key.user_id.0, &key.session_id.as_str()])
        .await
        .context("reading the session version")?;
    Ok(row.map(|row| row.get(0)))
}

/// Creates an empty session; `None` when the owner already has one by that
/// ID (the caller picks another).
pub async fn create_empty(
    client: &impl GenericClient,
    key: &SessionKey,
) -> anyhow::Result<Option<SessionState>> {
    let fingerprint = Content::default().fingerprint();
    let statement = client.prepare_cached(INSERT_NEW).await?;
    let row = client
        .query_opt(
            &statement,
            &[
                &key.user_id.0,
                &key.session_id.as_str(),
                &fingerprint.as_slice(),
            ],
        )
        .await
        .context("creating a session")?;
    row.map(|row| {
        Ok(SessionState {
            session_id: key.session_id.clone(),
            content: Content::default(),
            version: 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    })
    .transpose()
}
