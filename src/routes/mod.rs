//! HTTP handlers, one file per feature, and the JSON shape they answer with.

pub mod body;
pub mod health;
pub mod metrics;
pub mod session_json;
pub mod sessions;
pub mod update;

use actix_web::{FromRequest, HttpRequest, HttpResponse};

use crate::auth::AuthenticatedUser;

use crate::error::{ApiError, ErrorCode};

/// The JSON 404 for paths no route serves. Under `/api/` the caller must
/// still authenticate first (401), as on every API path.
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    if request.path().starts_with("/api/") {
        AuthenticatedUser::extract(&request).await?;
    }
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}

/// `/api/email/update/` and `/api/email/sessions/` with nothing after the
/// slash: an empty session ID, which is a bad ID rather than a missing route.
pub async fn empty_session_id(user: AuthenticatedUser) -> Result<HttpResponse, ApiError> {
    sessions::session_key(user, "")?;
    Err(ApiError::new(
        ErrorCode::InvalidSessionId,
        "session ID is empty",
    ))
}

/// The JSON 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    ))
}
