//! Session rows, each with its recipients (two arrays of the row, since V11).
//!
//! [`apply_change`] is the one write: a single call of the SQL function in
//! `sql/functions/apply_email_session_change.sql`, which creates-or-finds the
//! row through the unique constraint, locks it, and decides on the state it
//! read *under the lock*, never on a cached copy (the precondition of a
//! conditional request included), so two instances writing the same session
//! at once still serialise and `version` grows by exactly one per applied
//! change. [`load`] reads a session in one statement, so one snapshot.

use std::sync::Arc;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::domain::content::{Change, Content};
use crate::domain::identity::{SessionKey, UserId};
use crate::domain::page::PageCursor;
use crate::domain::precondition::{Precondition, Versions};
use crate::domain::session::{ChangeResult, DeleteResult, MintResult, Session, StoredChange};
use crate::domain::{Recipient, RecipientList, SessionId};

// The whole write of a batch, in one round trip: create-or-find, row lock,
// precondition, compare, replace, bump. Named arguments, so the call reads
// against sql/functions/apply_email_session_change.sql line by line.
// Also reads, from the statement's own snapshot (taken when it starts, so after whatever asked
// for them), the versions of other sessions whose no-op batches wait for one: they ride along
// on a write that happens anyway instead of costing a read of their own (see
// serializer::version_reads).
const APPLY_CHANGE: &str = "SELECT quota_exceeded, precondition_failed, created, applied,
            version, subject, emails, names, created_at, updated_at,
            ARRAY(SELECT s.version
                  FROM unnest($14::bigint[], $15::text[])
                       WITH ORDINALITY AS k(user_id, session_id, position)
                  LEFT JOIN email_sessions s
                         ON s.user_id = k.user_id AND s.session_id = k.session_id
                  ORDER BY k.position) AS riders_versions
     FROM apply_email_session_change(
         p_user_id => $1, p_session_id => $2,
         p_set_subject => $3, p_subject => $4,
         p_set_recipients => $5, p_emails => $6, p_names => $7,
         p_if_match => $8, p_if_match_any => $9,
         p_if_none_match => $10, p_if_none_match_any => $11,
         p_quota => $12, p_webhooks => $13)";

// A whole session in ONE statement, so one snapshot: version, subject and
// recipients always belong to the same commit. (Two statements could show
// version N with the recipients of N+1.)
const SELECT_SESSION: &str = "SELECT version, subject, created_at, updated_at, emails, names
     FROM email_sessions
     WHERE user_id = $1 AND session_id = $2";

// A page of the owner's sessions, newest first, each with its recipients, in one statement (so
// one snapshot). It walks email_sessions_by_creation (V8) for `limit` rows, from the newest or
// from just after a cursor (a row comparison the index can seek to).
macro_rules! select_page {
    ($after_cursor:literal) => {
        concat!(
            "SELECT session_id, version, subject, created_at, updated_at, emails, names
             FROM email_sessions
             WHERE user_id = $1 ",
            $after_cursor,
            " ORDER BY created_at DESC, session_id DESC
             LIMIT $2"
        )
    };
}
const SELECT_FIRST_PAGE: &str = select_page!("");
const SELECT_PAGE_AFTER: &str = select_page!("AND (created_at, session_id) < ($3, $4)");

const SELECT_VERSION: &str =
    "SELECT version FROM email_sessions WHERE user_id = $1 AND session_id = $2";

// Ordered as the keys were given; a key without a row gets a NULL version.
const SELECT_VERSIONS: &str = "SELECT s.version
     FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS k(user_id, session_id, position)
     LEFT JOIN email_sessions s ON s.user_id = k.user_id AND s.session_id = k.session_id
     ORDER BY k.position";

// See sql/functions/mint_email_session.sql.
const MINT: &str = "SELECT outcome, created_at, updated_at
     FROM mint_email_session(p_user_id => $1, p_session_id => $2, p_quota => $3)";

/// What every write must also do, whoever asks for it.
#[derive(Debug, Clone, Copy)]
pub struct WriteRules {
    /// New sessions a user may create per UTC day; 0: unlimited.
    pub daily_quota: i32,
    /// Whether an applied version (and a deletion) inserts its webhook event.
    pub webhooks: bool,
}

/// Applies `change` to the session if `precondition` holds for the row read under its lock,
/// creating the session first when it does not exist (unless the precondition needs it to), in
/// one statement (and so one transaction of its own); in the same statement, reads the stored
/// versions of `riders` (`None` where one does not exist), in their order.
pub async fn apply_change(
    client: &impl GenericClient,
    key: &SessionKey,
    change: &Change,
    precondition: &Precondition,
    rules: &WriteRules,
    riders: &[SessionKey],
) -> anyhow::Result<(ChangeResult, Vec<Option<i64>>)> {
    let (rider_users, rider_sessions): (Vec<i64>, Vec<&str>) = riders
        .iter()
        .map(|rider| (rider.user_id.0, rider.session_id.as_str()))
        .unzip();
    let (emails, names): (Vec<&str>, Vec<Option<&str>>) = change
        .recipients
        .iter()
        .flat_map(RecipientList::iter)
        .map(|recipient| (recipient.email.as_str(), recipient.name.as_deref()))
        .unzip();
    let (if_match, if_match_any) = versions_parameters(precondition.if_match.as_ref());
    let (if_none_match, if_none_match_any) =
        versions_parameters(precondition.if_none_match.as_ref());
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
                &if_match,
                &if_match_any,
                &if_none_match,
                &if_none_match_any,
                &rules.daily_quota,
                &rules.webhooks,
                &rider_users,
                &rider_sessions,
            ],
        )
        .await
        .context("applying the change")?;
    let riders_versions: Vec<Option<i64>> = row.try_get("riders_versions")?;
    let result = if row.try_get("quota_exceeded")? {
        ChangeResult::QuotaExceeded
    } else if row.try_get("precondition_failed")? {
        ChangeResult::PreconditionFailed
    } else {
        ChangeResult::Stored(StoredChange {
            created: row.try_get("created")?,
            applied: row.try_get("applied")?,
            session: Arc::new(session_from_row(&row, key.session_id.clone())?),
        })
    };
    Ok((result, riders_versions))
}

/// The SQL function's pair for one header: the listed versions (NULL when absent) and `*`.
fn versions_parameters(versions: Option<&Versions>) -> (Option<&[i64]>, bool) {
    match versions {
        None => (None, false),
        Some(Versions::Any) => (None, true),
        Some(Versions::Listed(listed)) => (Some(listed), false),
    }
}

/// A session from a row with `version, subject, emails, names, created_at, updated_at`.
fn session_from_row(row: &Row, session_id: SessionId) -> anyhow::Result<Session> {
    let emails: Vec<String> = row.try_get("emails")?;
    let names: Vec<Option<String>> = row.try_get("names")?;
    let recipients = emails
        .into_iter()
        .zip(names)
        .map(|(email, name)| Recipient { email, name })
        .collect();
    Ok(Session {
        session_id,
        content: Content {
            subject: row.try_get("subject")?,
            recipients: RecipientList::from_stored(recipients),
        },
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Reads a session with its recipients, in one statement; `None` when the owner has none by
/// that ID.
pub async fn load(
    client: &impl GenericClient,
    key: &SessionKey,
) -> anyhow::Result<Option<Session>> {
    let statement = client.prepare_cached(SELECT_SESSION).await?;
    let row = client
        .query_opt(&statement, &[&key.user_id.0, &key.session_id.as_str()])
        .await
        .context("reading the session")?;
    row.map(|row| session_from_row(&row, key.session_id.clone()))
        .transpose()
}

/// Up to `limit` of the owner's sessions, newest first by creation, starting after `after` (from
/// the newest when `None`), in one statement.
pub async fn list_page(
    client: &impl GenericClient,
    user_id: UserId,
    after: Option<&PageCursor>,
    limit: i64,
) -> anyhow::Result<Vec<Session>> {
    let rows = match after {
        None => {
            let statement = client.prepare_cached(SELECT_FIRST_PAGE).await?;
            client.query(&statement, &[&user_id.0, &limit]).await
        }
        Some(cursor) => {
            let statement = client.prepare_cached(SELECT_PAGE_AFTER).await?;
            client
                .query(
                    &statement,
                    &[
                        &user_id.0,
                        &limit,
                        &cursor.created_at,
                        &cursor.session_id.as_str(),
                    ],
                )
                .await
        }
    }
    .context("reading a page of sessions")?;
    rows.iter()
        .map(|row| {
            let session_id = SessionId::parse(row.try_get("session_id")?)
                .map_err(|error| anyhow::anyhow!("a stored session ID: {error}"))?;
            session_from_row(row, session_id)
        })
        .collect()
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
    row.map(|row| row.try_get("version"))
        .transpose()
        .map_err(Into::into)
}

/// The stored versions of `keys`, in their order (`None` where a session does not exist), in
/// one statement.
pub async fn current_versions(
    client: &impl GenericClient,
    keys: &[SessionKey],
) -> anyhow::Result<Vec<Option<i64>>> {
    let (user_ids, session_ids): (Vec<i64>, Vec<&str>) = keys
        .iter()
        .map(|key| (key.user_id.0, key.session_id.as_str()))
        .unzip();
    let statement = client.prepare_cached(SELECT_VERSIONS).await?;
    let rows = client
        .query(&statement, &[&user_ids, &session_ids])
        .await
        .context("reading session versions")?;
    rows.iter()
        .map(|row| row.try_get("version").map_err(Into::into))
        .collect()
}

/// Creates an empty session if the quota allows; `None` when the owner already has one by that ID
/// (the caller picks another).
pub async fn create_empty(
    client: &impl GenericClient,
    key: &SessionKey,
    quota: i32,
) -> anyhow::Result<Option<MintResult>> {
    let statement = client.prepare_cached(MINT).await?;
    let row = client
        .query_one(
            &statement,
            &[&key.user_id.0, &key.session_id.as_str(), &quota],
        )
        .await
        .context("creating a session")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(match outcome.as_str() {
        "created" => Some(MintResult::Created(Session {
            session_id: key.session_id.clone(),
            content: Content::default(),
            version: 0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })),
        "taken" => None,
        "quota_exceeded" => Some(MintResult::QuotaExceeded),
        other => anyhow::bail!("mint_email_session answered {other:?}"),
    })
}

/// Deletes a session of its owner (its recipients are in its row), if `if_match` holds for the
/// row locked first.
pub async fn delete(
    client: &impl GenericClient,
    key: &SessionKey,
    if_match: Option<&Versions>,
    rules: &WriteRules,
) -> anyhow::Result<DeleteResult> {
    let statement = client
        .prepare_cached(
            "SELECT delete_email_session(p_user_id => $1, p_session_id => $2, \
             p_if_match => $3, p_if_match_any => $4, p_webhooks => $5) AS outcome",
        )
        .await?;
    let (versions, any) = versions_parameters(if_match);
    let row = client
        .query_one(
            &statement,
            &[
                &key.user_id.0,
                &key.session_id.as_str(),
                &versions,
                &any,
                &rules.webhooks,
            ],
        )
        .await
        .context("deleting the session")?;
    let outcome: String = row.try_get("outcome")?;
    Ok(match outcome.as_str() {
        "deleted" => DeleteResult::Deleted,
        "not_found" => DeleteResult::NotFound,
        "precondition_failed" => DeleteResult::PreconditionFailed,
        other => anyhow::bail!("delete_email_session answered {other:?}"),
    })
}

/// Arbitrary but fixed: every instance must take the same advisory lock to sweep.
const RETENTION_LOCK_KEY: i64 = 0x7265_7465_6e74_696f;

// One batch of the retention sweep, in one statement (so one transaction): only the instance
// that gets the advisory lock deletes; the others delete nothing and try again later.
const SWEEP_BATCH: &str = "WITH sweeper AS (SELECT pg_try_advisory_xact_lock($1) AS locked),
          victims AS (
              SELECT s.id FROM email_sessions s, sweeper
              WHERE sweeper.locked AND s.updated_at < now() - make_interval(days => $2)
              ORDER BY s.updated_at
              LIMIT $3
              FOR UPDATE OF s SKIP LOCKED)
     DELETE FROM email_sessions WHERE id IN (SELECT id FROM victims)";

/// Deletes up to `batch` sessions not updated for `days` days; how many. Zero also when another
/// instance holds the sweep's lock.
pub async fn sweep_batch(
    client: &impl GenericClient,
    days: i32,
    batch: i64,
) -> anyhow::Result<u64> {
    let statement = client.prepare_cached(SWEEP_BATCH).await?;
    client
        .execute(&statement, &[&RETENTION_LOCK_KEY, &days, &batch])
        .await
        .context("sweeping old sessions")
}
