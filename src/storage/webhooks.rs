//! The webhook outbox (`webhook_events`, V9): claiming due events, recording how their attempts
//! ended, and what an operator does with them. Events are inserted by the write and delete
//! functions themselves, in the transaction of the change they report
//! (`sql/functions/enqueue_webhook_event.sql`); nothing here inserts one.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::Row;

/// An event claimed for one attempt, with what its body needs.
#[derive(Debug, Clone)]
pub struct ClaimedEvent {
    pub id: i64,
    /// Proves the claim is still ours when the attempt is reported.
    pub lease_token: i64,
    /// This attempt's number, from 1.
    pub attempt: i32,
    pub kind: String,
    pub created_at: OffsetDateTime,
    pub user_id: i64,
    pub session_id: String,
    pub version: i64,
    /// The content of that version; `None` for a deletion.
    pub content: Option<EventContent>,
    /// The identity the owner was provisioned from, if any: `(issuer, subject)`.
    pub identity: Option<(String, String)>,
}

/// A session's content as the version the event reports left it.
#[derive(Debug, Clone)]
pub struct EventContent {
    pub subject: Option<String>,
    pub emails: Vec<String>,
    pub names: Vec<Option<String>>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// How an attempt ended, as `finish_webhook_attempt` records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptEnd {
    Delivered,
    /// Due again at this time.
    Retry(OffsetDateTime),
    /// Given up after the last delay.
    Dead,
    /// Not attempted after all (a stop gave the claim back).
    Released,
}

// Due events, soonest first, that no other instance holds (SKIP LOCKED), while the endpoint is
// not paused. The claim moves each to the end of its lease under a fresh token; the owner's
// identity, if any, comes along for the body.
const CLAIM: &str = "WITH due AS (
         SELECT id FROM webhook_events
         WHERE delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= now()
           AND NOT EXISTS (SELECT 1 FROM webhook_endpoint WHERE paused_at IS NOT NULL)
         ORDER BY next_attempt_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED),
     claimed AS (
         UPDATE webhook_events e
         SET next_attempt_at = now() + make_interval(secs => $2),
             lease_token = $3,
             attempts = e.attempts + 1
         FROM due WHERE e.id = due.id
         RETURNING e.*)
     SELECT c.id, c.lease_token, c.attempts, c.kind, c.created_at, c.user_id, c.session_id,
            c.version, c.subject, c.emails, c.names, c.session_created_at, c.session_updated_at,
            i.issuer AS identity_issuer, i.subject AS identity_subject
     FROM claimed c
     LEFT JOIN LATERAL (
         SELECT issuer, subject FROM identities WHERE user_id = c.user_id
         ORDER BY issuer, subject LIMIT 1) i ON true
     ORDER BY c.id";

/// Claims up to `limit` due events for `lease`, under `lease_token`.
pub async fn claim(
    client: &impl GenericClient,
    limit: i64,
    lease: Duration,
    lease_token: i64,
) -> anyhow::Result<Vec<ClaimedEvent>> {
    let statement = client.prepare_cached(CLAIM).await?;
    let rows = client
        .query(&statement, &[&limit, &lease.as_secs_f64(), &lease_token])
        .await
        .context("claiming webhook events")?;
    rows.iter().map(claimed_from_row).collect()
}

fn claimed_from_row(row: &Row) -> anyhow::Result<ClaimedEvent> {
    let kind: String = row.try_get("kind")?;
    let content = match row.try_get::<_, Option<Vec<String>>>("emails")? {
        None => None,
        Some(emails) => Some(EventContent {
            subject: row.try_get("subject")?,
            emails,
            names: row.try_get("names")?,
            created_at: row.try_get("session_created_at")?,
            updated_at: row.try_get("session_updated_at")?,
        }),
    };
    let issuer: Option<String> = row.try_get("identity_issuer")?;
    let subject: Option<String> = row.try_get("identity_subject")?;
    Ok(ClaimedEvent {
        id: row.try_get("id")?,
        lease_token: row.try_get("lease_token")?,
        attempt: row.try_get("attempts")?,
        kind,
        created_at: row.try_get("created_at")?,
        user_id: row.try_get("user_id")?,
        session_id: row.try_get("session_id")?,
        version: row.try_get("version")?,
        content,
        identity: issuer.zip(subject),
    })
}

/// Records how the attempt on event `id` under `lease_token` ended; `false` when the claim was
/// no longer ours (its lease ended and another took it), and nothing changed.
pub async fn finish(
    client: &impl GenericClient,
    id: i64,
    lease_token: i64,
    end: AttemptEnd,
    error: Option<&str>,
) -> anyhow::Result<bool> {
    let (outcome, retry_at) = match end {
        AttemptEnd::Delivered => ("delivered", None),
        AttemptEnd::Retry(at) => ("retry", Some(at)),
        AttemptEnd::Dead => ("dead", None),
        AttemptEnd::Released => ("released", None),
    };
    let statement = client
        .prepare_cached(
            "SELECT finish_webhook_attempt(p_event_id => $1, p_lease_token => $2, \
             p_outcome => $3, p_retry_at => $4, p_error => $5) AS finished",
        )
        .await?;
    let row = client
        .query_one(
            &statement,
            &[&id, &lease_token, &outcome, &retry_at, &error],
        )
        .await
        .context("recording a webhook attempt")?;
    Ok(row.try_get("finished")?)
}

/// Pauses delivery to the endpoint (it answered 410 Gone) until an operator resumes it.
pub async fn pause(client: &impl GenericClient, why: &str) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE webhook_endpoint SET paused_at = now(), paused_why = $1 \
             WHERE paused_at IS NULL",
            &[&why],
        )
        .await
        .context("pausing webhook delivery")?;
    Ok(())
}

/// Resumes delivery; `false` when it was not paused.
pub async fn resume(client: &impl GenericClient) -> anyhow::Result<bool> {
    let resumed = client
        .execute(
            "UPDATE webhook_endpoint SET paused_at = NULL, paused_why = NULL \
             WHERE paused_at IS NOT NULL",
            &[],
        )
        .await
        .context("resuming webhook delivery")?;
    Ok(resumed > 0)
}

/// Deletes events delivered more than `days` days ago, at most `batch` of them; how many.
pub async fn sweep_delivered(
    client: &impl GenericClient,
    days: i32,
    batch: i64,
) -> anyhow::Result<u64> {
    let statement = client
        .prepare_cached(
            "DELETE FROM webhook_events WHERE id IN (
                 SELECT id FROM webhook_events
                 WHERE delivered_at < now() - make_interval(days => $1)
                 ORDER BY delivered_at LIMIT $2)",
        )
        .await?;
    client
        .execute(&statement, &[&days, &batch])
        .await
        .context("deleting delivered webhook events")
}

/// What waits to be delivered: undelivered events that are not dead, and the age in seconds of
/// the oldest of them.
pub async fn backlog(client: &impl GenericClient) -> anyhow::Result<(i64, f64)> {
    let row = client
        .query_one(
            "SELECT count(*) AS pending,
                    coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS oldest
             FROM webhook_events WHERE delivered_at IS NULL AND dead_at IS NULL",
            &[],
        )
        .await
        .context("measuring the webhook backlog")?;
    Ok((row.try_get("pending")?, row.try_get("oldest")?))
}

/// One event as `webhook list` shows it.
#[derive(Debug)]
pub struct EventSummary {
    pub id: i64,
    pub kind: String,
    pub user_id: i64,
    pub session_id: String,
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub attempts: i32,
    pub state: &'static str,
    pub last_error: Option<String>,
}

/// Undelivered events (pending and dead), or only the dead ones, oldest first.
pub async fn list(
    client: &impl GenericClient,
    dead_only: bool,
) -> anyhow::Result<Vec<EventSummary>> {
    let rows = client
        .query(
            "SELECT id, kind, user_id, session_id, version, created_at, attempts, last_error,
                    dead_at IS NOT NULL AS dead
             FROM webhook_events
             WHERE delivered_at IS NULL AND (dead_at IS NOT NULL OR NOT $1)
             ORDER BY id",
            &[&dead_only],
        )
        .await
        .context("listing webhook events")?;
    rows.iter()
        .map(|row| {
            Ok(EventSummary {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                user_id: row.try_get("user_id")?,
                session_id: row.try_get("session_id")?,
                version: row.try_get("version")?,
                created_at: row.try_get("created_at")?,
                attempts: row.try_get("attempts")?,
                state: if row.try_get("dead")? {
                    "dead"
                } else {
                    "pending"
                },
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
}

/// Makes dead events due again with a fresh schedule: event `id`, or every dead one when `None`;
/// how many.
pub async fn retry_dead(client: &impl GenericClient, id: Option<i64>) -> anyhow::Result<u64> {
    client
        .execute(
            "UPDATE webhook_events
             SET dead_at = NULL, attempts = 0, next_attempt_at = now(), lease_token = NULL
             WHERE dead_at IS NOT NULL AND ($1::bigint IS NULL OR id = $1)",
            &[&id],
        )
        .await
        .context("retrying dead webhook events")
}
