//! `DELETE /api/email/sessions/{session_id}`: the owner removes a session and its recipients.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::session::DeleteResult;
use crate::error::{ApiError, ErrorBody, Unauthenticated, precondition_failed};
use crate::http::caller::AuthenticatedUser;
use crate::http::conditional::precondition;
use crate::http::{session_key, session_not_found};
use crate::storage::Store;

/// 204 once the session and its recipients are gone; 404 when the caller has no such session
/// (another user's included); 412 when `If-Match` does not hold. A later PUT creates it afresh at
/// version 1.
#[utoipa::path(
    delete,
    path = "/api/email/sessions/{session_id}",
    tag = "sessions",
    params(
        ("session_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("If-Match" = Option<String>, Header,
            description = r#"Delete only at one of these versions: `"3"`, `"3", "4"` or `*`"#),
    ),
    responses(
        (status = 204, description = "Deleted, with its recipients"),
        (status = 400, description = "`invalid_session_id`, `invalid_precondition` or `invalid_authorization`", body = ErrorBody),
        (status = 412, description = "`precondition_failed`: If-Match did not hold (or named an absent session); nothing was deleted", body = ErrorBody),
        Unauthenticated,
        (status = 404, description = "`session_not_found`: absent, or owned by another user", body = ErrorBody),
        (status = 503, description = "`database_unavailable`, `identity_provider_unavailable` or `starting`", body = ErrorBody,
            headers(("Retry-After" = u32))),
    ),
    security(("bearer" = [])),
)]
pub async fn delete_session(
    user: AuthenticatedUser,
    path: web::Path<String>,
    request: HttpRequest,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    let key = session_key(user, &path)?;
    let if_match = precondition(&request)?.if_match;
    match store.delete(&key, if_match.as_ref()).await? {
        DeleteResult::Deleted => Ok(HttpResponse::NoContent().finish()),
        DeleteResult::NotFound => Err(session_not_found(&key)),
        DeleteResult::PreconditionFailed => Err(precondition_failed()),
    }
}
