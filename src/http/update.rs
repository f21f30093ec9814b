//! `PUT /api/email/update/{session_id}`: the plugin's report of a sent
//! email, repeated several times a second. The change is parsed here and
//! handed to the registry, which collapses the duplicates.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::session::ChangeResult;
use crate::error::{ApiError, ErrorBody, Unauthenticated, precondition_failed, quota_exceeded};
use crate::http::body::{
    BodyLimits, FormUpdate, JsonUpdate, body_kind, declared_length_within, read_limited,
};
use crate::http::caller::AuthenticatedUser;
use crate::http::conditional::precondition;
use crate::http::recent_changes::parse_update_remembered;
use crate::http::session_json::{SessionJson, session_response};
use crate::http::session_key;
use crate::serializer::Registry;

/// Sets the session's recipients and/or subject; 201 when this created the
/// session, else 200, with the session as of the commit that included it;
/// 412 when an `If-Match` or `If-None-Match` precondition does not hold.
#[utoipa::path(
    put,
    path = "/api/email/update/{session_id}",
    tag = "sessions",
    params(
        ("session_id" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$",
            description = "The session ID the plugin minted or chose"),
        ("If-Match" = Option<String>, Header,
            description = r#"Apply only at one of these versions: `"3"`, `"3", "4"` or `*`; never creates"#),
        ("If-None-Match" = Option<String>, Header,
            description = "`*`: apply only if the session does not exist yet (create only)"),
    ),
    request_body(
        description = "Recipients and/or subject; absent fields leave the stored value alone",
        content(
            (FormUpdate = "application/x-www-form-urlencoded"),
            (JsonUpdate = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Updated (or unchanged: a duplicate); the session as of the commit that included this request",
            body = SessionJson, headers(("ETag" = String, description = r#"`"<version>"`"#), ("X-Request-Id" = String))),
        (status = 201, description = "This request's commit created the session",
            body = SessionJson, headers(("ETag" = String, description = r#"`"<version>"`"#), ("X-Request-Id" = String))),
        (status = 400, description = "`invalid_session_id`, `invalid_recipients`, `invalid_subject`, `invalid_body`, `invalid_precondition` or `invalid_authorization` (two Authorization headers)", body = ErrorBody),
        Unauthenticated,
        (status = 429, description = "`quota_exceeded`: creating this session would exceed today's quota of new sessions (Retry-After: seconds to midnight UTC; updates of existing sessions are never refused)", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds until midnight UTC"))),
        (status = 412, description = "`precondition_failed`: If-Match or If-None-Match did not hold; nothing changed", body = ErrorBody),
        (status = 408, description = "`request_timeout`: the body did not arrive within `server.body_read_timeout_ms`; the connection is closed", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type` (neither a form nor JSON, or a charset other than UTF-8) or `unsupported_encoding` (a Content-Encoding other than identity)", body = ErrorBody),
        (status = 503, description = "`overloaded`, `database_unavailable`, `identity_provider_unavailable` or `starting`",
            body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait"))),
    ),
    security(("bearer" = [])),
)]
pub async fn update_session(
    user: AuthenticatedUser,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    registry: web::Data<Registry>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let key = session_key(user, &path)?;
    let precondition = precondition(&request)?;
    let kind = body_kind(&request)?;
    // Known from the head: refused before a byte of the body is read.
    declared_length_within(request.headers(), limits.max_bytes)?;
    let admission = registry.admit()?;
    let body = read_limited(payload, **limits).await?;
    let change = parse_update_remembered(kind, &body)?;
    tracing::debug!(
        recipients = change.recipients.as_ref().map(|r| r.len()),
        subject = change.subject.is_some(),
        "update"
    );
    match registry
        .update(admission, key, change, precondition)
        .await?
    {
        ChangeResult::Stored(stored) => {
            let status = if stored.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(session_response(status, &stored.session))
        }
        ChangeResult::PreconditionFailed => Err(precondition_failed()),
        ChangeResult::QuotaExceeded => Err(quota_exceeded()),
    }
}
