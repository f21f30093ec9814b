//! Session rows and their recipients.
//!
//! [`apply_change`] is the one write: a single call of the SQL function in
//! `sql/V3__apply_session_change.sql`, which creates-or-finds the row through
//! the unique constraint, locks it, and decides on the state it read *under
//! the lock*, never on a cached copy, so two instances writing the same
//! session at once still serialise and `version` grows by exactly one per
//! applied change.

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

// The whole write of a batch, in one round trip: create-or-find, row lock,
// compare, replace, bump. See sql/V3__apply_session_change.sql.
const APPLY_CHANGE: &str =
    "SELECT created, applied, version, subject, emails, names, created_at, updated_at
     FROM apply_email_session_change($1, $2, $3, $4, $5, $6, $7)";

const SELECT_SESSION: &str = "SELECT id, subject, version, created_at, updated_at
     FROM email_sessions
     WHERE user_id = $1 AND session_id = $2";

const SELECT_VERSION: &str =
    "SELECT version FROM email_sessions WHERE user_id = $1 AND session_id = $2";

const SELECT_RECIPIENTS: &str = "SELECT email, display_name
     FROM email_session_recipients
     WHERE session_row_id = $1
     ORDER BY position";

const INSERT_NEW: &str = "INSERT INTO email_sessions (user_id, session_id, content_fingerprint)
     VALUES ($1, $2, email_session_fingerprint(NULL, '{}', '{}'))
     ON CONFLICT (user_id, session_id) DO NOTHING
     RETURNING created_at, updated_at";

/// The locked or read row, before its recipients are known.
struct SessionRow {
    row_id: i64,
    subject: Option<String>,
    version: i64,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl SessionRow {
    fn from_row(row: &Row) -> anyhow::Result<SessionRow> {
        Ok(SessionRow {
            row_id: row.try_get("id")?,
            subject: row.try_get("subject")?,
            version: row.try_get("version")?,
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

/// Applies `change` to the session, creating it first when it does not
/// exist, in one statement (and so one transaction of its own).
pub async fn apply_change(
    client: &impl GenericClient,
    key: &SessionKey,
    change: &Change,
) -> anyhow::Result<WriteOutcome> {
    let (emails, names): (Vec<&str>, Vec<Option<&str>>) = change
        .recipients
        .iter()
        .flat_map(RecipientList::iter)
        .map(|recipient| (recipient.email.as_str(), recipient.name.as_deref()))
        .unzip();
    let statement = client.prepare_cached(APPLY_CHANGE).await?;
    let row = client
        .query_one(
            &statement,
            &[
                &key.user_id.0,
                &key.session_id.as_str(),
                &change.subject.is_some(),
                &change.subject.as_ref().map(|subject| subject.as_str()),
                &change.recipients.is_some(),
                &emails,
                &names,
            ],
        )
        .await
        .context("applying the change")?;
    let emails: Vec<String> = row.try_get("emails")?;
    let names: Vec<Option<String>> = row.try_get("names")?;
    let recipients = emails
        .into_iter()
        .zip(names)
        .map(|(email, name)| Recipient { email, name })
        .collect();
    Ok(WriteOutcome {
        created: row.try_get("created")?,
        applied: row.try_get("applied")?,
        session: SessionState {
            session_id: key.session_id.clone(),
            content: Content {
                subject: row.try_get("subject")?,
                recipients: RecipientList::from_stored(recipients),
            },
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
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
    let statement = client.prepare_cached(INSERT_NEW).await?;
    let row = client
        .query_opt(&statement, &[&key.user_id.0, &key.session_id.as_str()])
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
