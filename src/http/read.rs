//! `GET /api/email/sessions/{session_id}`: a session as stored.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::auth::AuthenticatedUser;
use crate::error::{ApiError, ErrorCode};
use crate::http::session_json::session_response;
use crate::http::session_key;
use crate::storage::Store;

/// The caller's session, or 404 (also when another user owns a session by that ID: no
/// existence leak).
pub async fn read_session(
    user: AuthenticatedUser,
    path: web::Path<String>,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    let key = session_key(user, &path)?;
    match store.read(&key).await? {
        Some(session) => Ok(session_response(StatusCode::OK, &session)),
        None => Err(ApiError::new(
            ErrorCode::SessionNotFound,
            format!("no session {:?} for this user", key.session_id.as_str()),
        )),
    }
}
