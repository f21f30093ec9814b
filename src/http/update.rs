//! `PUT /api/email/update/{session_id}`: the plugin's report of a sent
//! email, repeated several times a second. The change is parsed here and
//! handed to the registry, which collapses the duplicates.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::auth::AuthenticatedUser;
use crate::error::ApiError;
use crate::http::body::{BodyLimit, parse_update, read_limited};
use crate::http::conditional::precondition;
use crate::http::session_json::session_response;
use crate::http::session_key;
use crate::serializer::Registry;

/// Sets the session's recipients and/or subject; 201 when this created the
/// session, else 200, with the session as of the commit that included it;
/// 412 when an `If-Match` or `If-None-Match` precondition does not hold.
pub async fn update_session(
    user: AuthenticatedUser,
    path: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
    registry: web::Data<Registry>,
    limit: web::Data<BodyLimit>,
) -> Result<HttpResponse, ApiError> {
    let key = session_key(user, &path)?;
    let precondition = precondition(&request)?;
    let body = read_limited(payload, **limit).await?;
    let change = parse_update(&request, &body)?;
    tracing::debug!(
        recipients = change.recipients.as_ref().map(|r| r.len()),
        subject = change.subject.is_some(),
        "update"
    );
    let outcome = registry.update(key, change, precondition).await?;
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(session_response(status, &outcome.session))
}
