//! Minting and reading sessions.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::auth::AuthenticatedUser;
use crate::domain::SessionId;
use crate::domain::identity::SessionKey;
use crate::error::{ApiError, ErrorCode};
use crate::routes::session_json::session_response;
use crate::sessions::SessionWriter;

/// `POST /api/email/sessions`: a fresh, unguessable session ID owned by the
/// caller, stored empty at version 0.
pub async fn mint_session(
    user: AuthenticatedUser,
    writer: web::Data<SessionWriter>,
) -> Result<HttpResponse, ApiError> {
    tracing::Span::current().record("user_id", user.0.0);
    let session = writer.mint(user.0).await?;
    Ok(session_response(StatusCode::CREATED, &session))
}

/// `GET /api/email/sessions/{session_id}`: the caller's session, or 404 (also
/// when another user owns a session by that ID: no existence leak).
pub async fn read_session(
    user: AuthenticatedUser,
    path: web::Path<String>,
    writer: web::Data<SessionWriter>,
) -> Result<HttpResponse, ApiError> {
    let key = session_key(user, &path)?;
    match writer.read(&key).await? {
        Some(session) => Ok(session_response(StatusCode::OK, &session)),
        None => Err(ApiError::new(
            ErrorCode::SessionNotFound,
            format!("no session {:?} for this user", key.session_id.as_str()),
        )),
    }
}

/// The (user, session ID) a request addresses, or 400.
pub fn session_key(user: AuthenticatedUser, raw_session_id: &str) -> Result<SessionKey, ApiError> {
    let span = tracing::Span::current();
    span.record("user_id", user.0.0);
    let session_id = SessionId::parse(raw_session_id)
        .map_err(|error| ApiError::new(ErrorCode::InvalidSessionId, error.to_string()))?;
    span.record("session_id", session_id.as_str());
    Ok(SessionKey {
        user_id: user.0,
        session_id,
    })
}
