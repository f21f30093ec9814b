//! The HTTP edge: handlers (one file per endpoint), the update body parser, the session JSON,
//! and the middleware around them. Raw input becomes domain types here and nowhere else.

pub(crate) mod body;
pub(crate) mod caller;
pub(crate) mod client_address;
mod conditional;
pub(crate) mod connection;
pub(crate) mod cors;
pub(crate) mod delete;
pub(crate) mod expect;
pub(crate) mod health;
pub(crate) mod list;
pub(crate) mod metrics;
pub(crate) mod middleware;
pub(crate) mod mint;
mod openapi;
pub(crate) mod read;
mod recent_changes;
pub(crate) mod routes;
pub(crate) mod session_json;
pub(crate) mod update;

use actix_web::http::header::{ALLOW, HeaderValue};
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::domain::SessionId;
use crate::domain::identity::SessionKey;
use crate::http::caller::AuthenticatedUser;

use crate::error::{ApiError, ErrorCode};

/// The JSON 404 for paths no route serves. Under `/api/` the caller must
/// still authenticate first (401), as on every API path; and a session path
/// with nothing after the slash (`/api/email/update/`) is an empty session ID,
/// a bad ID rather than a missing route (400).
pub async fn not_found(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    if request.path().starts_with("/api/") {
        let user = AuthenticatedUser::extract(&request).await?;
        if ["/api/email/update/", "/api/email/sessions/"].contains(&request.path()) {
            session_key(user, "")?;
        }
    }
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}

/// The methods a resource answers, as its 405 lists them in `Allow`.
pub(crate) struct AllowedMethods(pub(crate) String);

/// The JSON 405 for a known path with the wrong method, with `Allow`.
pub async fn method_not_allowed(request: HttpRequest) -> HttpResponse {
    let allowed = request
        .app_data::<AllowedMethods>()
        .map_or("", |allowed| allowed.0.as_str());
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("this endpoint does not accept that method; it accepts {allowed}"),
    )
    .error_response();
    if let Ok(value) = HeaderValue::from_str(allowed) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// The (user, session ID) a request addresses, or 400. Records both on the request's span.
fn session_key(user: AuthenticatedUser, raw_session_id: &str) -> Result<SessionKey, ApiError> {
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

/// The 404 for a session the caller does not have (absent, or another user's: the answer is the
/// same, so it leaks nothing about other users' sessions).
fn session_not_found(key: &SessionKey) -> ApiError {
    ApiError::new(
        ErrorCode::SessionNotFound,
        format!("no session {:?} for this user", key.session_id.as_str()),
    )
}
