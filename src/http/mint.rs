//! `POST /api/email/sessions`: a fresh session ID for the email being composed.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, LOCATION};
use actix_web::{HttpResponse, web};

use crate::domain::session::MintResult;
use crate::error::{ApiError, ErrorBody, Unauthenticated, quota_exceeded};
use crate::http::caller::AuthenticatedUser;
use crate::http::session_json::{SessionJson, session_response};
use crate::storage::Store;

/// A fresh, unguessable session ID owned by the caller, stored empty at version 0.
#[utoipa::path(
    post,
    path = "/api/email/sessions",
    tag = "sessions",
    responses(
        (status = 201, description = "A new empty session (version 0) owned by the caller", body = SessionJson,
            headers(
                ("ETag" = String, description = r#"`"0"`"#),
                ("Location" = String, description = "`/api/email/sessions/{session_id}`"),
                ("X-Request-Id" = String),
            )),
        (status = 400, description = "`invalid_authorization`: two Authorization headers", body = ErrorBody),
        (status = 429, description = "`quota_exceeded`: today's quota of new sessions is used up (Retry-After: seconds to midnight UTC)", body = ErrorBody,
            headers(("Retry-After" = u32))),
        Unauthenticated,
        (status = 503, description = "`database_unavailable`, `identity_provider_unavailable` or `starting`", body = ErrorBody,
            headers(("Retry-After" = u32))),
    ),
    security(("bearer" = [])),
)]
pub async fn mint_session(
    user: AuthenticatedUser,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    tracing::Span::current().record("user_id", user.0.0);
    let session = match store.mint(user.0).await? {
        MintResult::Created(session) => session,
        MintResult::QuotaExceeded => return Err(quota_exceeded()),
    };
    let mut response = session_response(StatusCode::CREATED, &session);
    let location = format!("/api/email/sessions/{}", session.session_id.as_str());
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}
