//! `GET /api/email/sessions/{session_id}`: a session as stored.

use actix_web::http::StatusCode;
use actix_web::http::header::ETAG;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::{ApiError, ErrorBody, Unauthenticated};
use crate::http::caller::AuthenticatedUser;
use crate::http::conditional::if_none_match;
use crate::http::session_json::{SessionJson, entity_tag, session_response};
use crate::http::{session_key, session_not_found};
use crate::storage::Store;

/// The caller's session, or 404 (also when another user owns a session by that ID: no
/// existence leak); 304 with the ETag alone when `If-None-Match` names the stored version.
#[utoipa::path(
    get,
    path = "/api/email/sessions/{session_id}",
    tag = "sessions",
    params(
        ("session_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("If-None-Match" = Option<String>, Header,
            description = r#"`"3"`, `W/"3"`, a list, or `*`: 304 when the stored version is among them"#),
    ),
    responses(
        (status = 200, description = "The session", body = SessionJson,
            headers(("ETag" = String, description = r#"`"<version>"`"#), ("X-Request-Id" = String))),
        (status = 304, description = "Not modified: If-None-Match names the stored version",
            headers(("ETag" = String))),
        (status = 400, description = "`invalid_session_id`, `invalid_precondition` or `invalid_authorization` (two Authorization headers)", body = ErrorBody),
        Unauthenticated,
        (status = 404, description = "`session_not_found`: absent, or owned by another user", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, `identity_provider_unavailable` or `starting`", body = ErrorBody,
            headers(("Retry-After" = u32))),
    ),
    security(("bearer" = [])),
)]
pub async fn read_session(
    user: AuthenticatedUser,
    path: web::Path<String>,
    request: HttpRequest,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    let key = session_key(user, &path)?;
    let if_none_match = if_none_match(&request)?;
    match store.read(&key).await? {
        Some(session)
            if if_none_match
                .as_ref()
                .is_some_and(|versions| versions.contains(session.version)) =>
        {
            Ok(HttpResponse::NotModified()
                .insert_header((ETAG, entity_tag(&session)))
                .finish())
        }
        Some(session) => Ok(session_response(StatusCode::OK, &session)),
        None => Err(session_not_found(&key)),
    }
}
