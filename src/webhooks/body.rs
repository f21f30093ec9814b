//! The JSON body of an event: `{"type", "timestamp", "data"}`, where `data` is the session JSON
//! of the API (the same fields `GET` answers, as of the version the event reports) with the
//! owner's `user_id`, or for a deletion the session ID, the owner and the last version. An owner
//! provisioned from an identity provider also has `identity: {issuer, subject}`, nested because
//! the session JSON's own `subject` is the email's. Rendered from the stored event alone, so
//! every retry sends the same bytes.

use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::content::Content;
use crate::domain::session::Session;
use crate::domain::{Recipient, RecipientList, SessionId};
use crate::http::session_json::{SessionJson, session_json};
use crate::storage::ClaimedEvent;

#[derive(Serialize)]
struct EventBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(with = "time::serde::rfc3339")]
    timestamp: OffsetDateTime,
    data: EventData<'a>,
}

#[derive(Serialize)]
struct EventData<'a> {
    #[serde(flatten)]
    session: SessionPart<'a>,
    user_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<Identity<'a>>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum SessionPart<'a> {
    Updated(SessionJson<'a>),
    Deleted { session_id: &'a str, version: i64 },
}

#[derive(Serialize)]
struct Identity<'a> {
    issuer: &'a str,
    subject: &'a str,
}

/// The body of `event`.
pub(super) fn render(event: &ClaimedEvent) -> anyhow::Result<Vec<u8>> {
    let session = match &event.content {
        None => None,
        Some(content) => Some(Session {
            session_id: SessionId::parse(&event.session_id)
                .map_err(|error| anyhow::anyhow!("a stored session ID: {error}"))?,
            content: Content {
                subject: content.subject.clone(),
                recipients: RecipientList::from_stored(
                    content
                        .emails
                        .iter()
                        .zip(&content.names)
                        .map(|(email, name)| Recipient {
                            email: email.clone(),
                            name: name.clone(),
                        })
                        .collect(),
                ),
            },
            version: event.version,
            created_at: content.created_at,
            updated_at: content.updated_at,
        }),
    };
    let body = EventBody {
        kind: &event.kind,
        timestamp: event.created_at,
        data: EventData {
            session: match &session {
                Some(session) => SessionPart::Updated(session_json(session)),
                None => SessionPart::Deleted {
                    session_id: &event.session_id,
                    version: event.version,
                },
            },
            user_id: event.user_id,
            identity: event
                .identity
                .as_ref()
                .map(|(issuer, subject)| Identity { issuer, subject }),
        },
    };
    Ok(serde_json::to_vec(&body)?)
}
