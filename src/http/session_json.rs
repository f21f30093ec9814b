//! The session JSON of the API contract, with its `ETag`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{ETAG, EntityTag};
use serde::Serialize;
use time::OffsetDateTime;

use crate::domain::RecipientList;
use crate::storage::SessionState;

#[derive(Serialize)]
struct SessionJson<'a> {
    session_id: &'a str,
    subject: Option<&'a str>,
    recipients: &'a RecipientList,
    version: i64,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

/// The session's strong entity tag: its version.
pub fn entity_tag(session: &SessionState) -> EntityTag {
    EntityTag::new_strong(session.version.to_string())
}

/// Answers `status` with the session as JSON and `ETag: "<version>"`.
pub fn session_response(status: StatusCode, session: &SessionState) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((ETAG, entity_tag(session)))
        .json(SessionJson {
            session_id: session.session_id.as_str(),
            subject: session.content.subject.as_deref(),
            recipients: &session.content.recipients,
            version: session.version,
            created_at: session.created_at,
            updated_at: session.updated_at,
        })
}
