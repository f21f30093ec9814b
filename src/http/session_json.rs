//! The session JSON of the API contract, with its `ETag`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, EntityTag};
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::RecipientList;
use crate::domain::session::Session;

/// A session as stored, as of one commit. Its `ETag` is `"<version>"`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub(crate) struct SessionJson<'a> {
    /// The owner's name for the session: 1 to 64 of `[A-Za-z0-9_-]`.
    session_id: &'a str,
    /// `null` until a request sets it.
    subject: Option<&'a str>,
    /// In the order sent, without duplicates (compared case-insensitively).
    #[schema(value_type = Vec<RecipientJson>)]
    recipients: &'a RecipientList,
    /// Grows by exactly one per applied change of content; 0 for a freshly minted session.
    #[schema(minimum = 0)]
    version: i64,
    /// RFC 3339.
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    /// RFC 3339; when the content last changed.
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// One recipient (the schema of `RecipientList`'s items, for the contract only).
#[derive(utoipa::ToSchema)]
#[schema(as = Recipient)]
#[allow(dead_code)]
pub(crate) struct RecipientJson {
    /// The address as given (case kept).
    email: String,
    /// The display name, or `null`.
    name: Option<String>,
}

/// The session's strong entity tag: its version.
pub fn entity_tag(session: &Session) -> EntityTag {
    EntityTag::new_strong(session.version.to_string())
}

/// The session as the contract shows it.
pub fn session_json(session: &Session) -> SessionJson<'_> {
    SessionJson {
        session_id: session.session_id.as_str(),
        subject: session.content.subject.as_deref(),
        recipients: &session.content.recipients,
        version: session.version,
        created_at: session.created_at,
        updated_at: session.updated_at,
    }
}

/// Answers `status` with the session as JSON and `ETag: "<version>"`.
pub fn session_response(status: StatusCode, session: &Session) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((ETAG, entity_tag(session)))
        .json(session_json(session))
}
