//! `POST /api/email/sessions`: a fresh session ID for the email being composed.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::http::session_json::session_response;
use crate::storage::Store;

/// A fresh, unguessable session ID owned by the caller, stored empty at version 0.
pub async fn mint_session(
    user: AuthenticatedUser,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    tracing::Span::current().record("user_id", user.0.0);
    let session = store.mint(user.0).await?;
    Ok(session_response(StatusCode::CREATED, &session))
}
