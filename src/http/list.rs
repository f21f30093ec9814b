//! `GET /api/email/sessions`: the caller's sessions, a page at a time, newest first. Pages are
//! cut at a cursor (the last session's sort key), never at an offset, so sessions created or
//! deleted during a walk cannot make it skip or repeat one (see `domain::page`).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Serialize;

use crate::domain::page::{PageCursor, PageLimit};
use crate::error::{ApiError, ErrorBody, ErrorCode, Unauthenticated};
use crate::http::caller::AuthenticatedUser;
use crate::http::session_json::{SessionJson, session_json};
use crate::storage::Store;

/// One page of the caller's sessions.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SessionPage)]
pub(crate) struct SessionPageJson<'a> {
    /// Newest first by `created_at`, then `session_id`, both descending.
    sessions: Vec<SessionJson<'a>>,
    /// Pass it as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// The caller's sessions, newest first, `limit` at a time from `cursor`.
#[utoipa::path(
    get,
    path = "/api/email/sessions",
    tag = "sessions",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100,
            description = "Sessions per page, 1 to 100; 50 when absent"),
        ("cursor" = Option<String>, Query,
            description = "The previous page's `next_cursor`, as it was; absent for the first page"),
    ),
    responses(
        (status = 200, description = "A page of the caller's sessions (each as `GET` of one answers it), one snapshot",
            body = SessionPageJson, headers(("X-Request-Id" = String))),
        (status = 400, description = "`invalid_limit`, `invalid_cursor` or `invalid_authorization` (two Authorization headers)", body = ErrorBody),
        Unauthenticated,
        (status = 503, description = "`database_unavailable`, `identity_provider_unavailable` or `starting`", body = ErrorBody,
            headers(("Retry-After" = u32))),
    ),
    security(("bearer" = [])),
)]
pub async fn list_sessions(
    user: AuthenticatedUser,
    request: HttpRequest,
    store: web::Data<Store>,
) -> Result<HttpResponse, ApiError> {
    let (limit, cursor) = page_parameters(request.query_string())?;
    let page = store.list(user.0, cursor.as_ref(), limit).await?;
    Ok(HttpResponse::Ok().json(SessionPageJson {
        sessions: page.sessions.iter().map(session_json).collect(),
        next_cursor: page.next.as_ref().map(PageCursor::encode),
    }))
}

/// `limit` and `cursor` from the query string; other parameters are ignored, and one given twice
/// is refused rather than guessed at.
fn page_parameters(query: &str) -> Result<(PageLimit, Option<PageCursor>), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| ApiError::new(ErrorCode::InvalidLimit, "the query string is not readable"))?;
    let only = |name: &str, code: ErrorCode| -> Result<Option<&str>, ApiError> {
        let mut values = pairs.iter().filter(|(key, _)| key == name);
        let first = values.next().map(|(_, value)| value.as_str());
        if values.next().is_some() {
            return Err(ApiError::new(
                code,
                format!("{name} is given more than once"),
            ));
        }
        Ok(first)
    };
    let limit = match only("limit", ErrorCode::InvalidLimit)? {
        None => PageLimit::DEFAULT,
        Some(raw) => PageLimit::parse(raw)
            .map_err(|error| ApiError::new(ErrorCode::InvalidLimit, error.to_string()))?,
    };
    let cursor = only("cursor", ErrorCode::InvalidCursor)?
        .map(PageCursor::parse)
        .transpose()
        .map_err(|error| ApiError::new(ErrorCode::InvalidCursor, error.to_string()))?;
    Ok((limit, cursor))
}
