//! The one error type of the HTTP edge.
//!
//! Every failure a client can see is an [`ApiError`]: a stable snake_case
//! [`ErrorCode`] the plugin can branch on, a message for a human, and the
//! right status. This is the only place where a failure becomes a status and
//! headers: authentication, storage and serializer errors arrive through `From`, and every
//! 503, readiness included, carries `Retry-After` ([`response_for`]).
//! Internal causes are logged with their whole chain and never sent to the
//! client.

use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use serde::Serialize;

use crate::auth::AuthError;
use crate::metric_names;
use crate::serializer::UpdateError;
use crate::storage::{StorageError, StorageFailure, loggable};

/// Seconds a client is asked to wait after a 503.
const RETRY_AFTER_SECS: u32 = 1;

/// The wire-level error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No bearer token (no `Authorization: Bearer ...` header).
    Unauthorized,
    /// A bearer token was presented and failed a check: unknown, malformed, revoked or expired
    /// API token; identity token with a bad signature, issuer, audience, algorithm, key or time.
    InvalidToken,
    /// More than one `Authorization` header.
    InvalidAuthorization,
    /// The user's quota of new sessions for today is used up.
    QuotaExceeded,
    /// The session ID in the path is not 1-64 chars of `[A-Za-z0-9_-]`.
    InvalidSessionId,
    /// A recipient address is invalid, or there are too many.
    InvalidRecipients,
    /// The subject is too long or contains control characters.
    InvalidSubject,
    /// The body could not be parsed.
    InvalidBody,
    /// A list's `limit` is not a whole number from 1 to 100.
    InvalidLimit,
    /// A list's `cursor` is not one the service handed out.
    InvalidCursor,
    /// The body is neither a form nor JSON, or not UTF-8.
    UnsupportedMediaType,
    /// The body is compressed (or otherwise encoded); send it as is.
    UnsupportedEncoding,
    /// The body is larger than the configured limit.
    PayloadTooLarge,
    /// The body did not arrive in time.
    RequestTimeout,
    /// No such session for this user.
    SessionNotFound,
    /// No such route.
    NotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// An `If-Match` or `If-None-Match` precondition did not hold; nothing changed.
    PreconditionFailed,
    /// An `If-Match` or `If-None-Match` header could not be read.
    InvalidPrecondition,
    /// A bound on live actors or waiting requests was reached.
    Overloaded,
    /// The database did not answer in time.
    DatabaseUnavailable,
    /// An identity token names a signing key that is not cached, and its issuer cannot be
    /// reached to fetch it.
    IdentityProviderUnavailable,
    /// Migrations are still running.
    Starting,
    /// The instance is shutting down (readiness only).
    Draining,
    /// A bug; see the logs.
    Internal,
}

impl fmt::Display for ErrorCode {
    /// The wire spelling (`precondition_failed`), for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(code)) => f.write_str(&code),
            _ => write!(f, "{self:?}"),
        }
    }
}

impl ErrorCode {
    fn status(self) -> StatusCode {
        match self {
            ErrorCode::Unauthorized | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidSessionId
            | ErrorCode::InvalidRecipients
            | ErrorCode::InvalidSubject
            | ErrorCode::InvalidBody
            | ErrorCode::InvalidLimit
            | ErrorCode::InvalidCursor
            | ErrorCode::InvalidPrecondition
            | ErrorCode::InvalidAuthorization => StatusCode::BAD_REQUEST,
            ErrorCode::UnsupportedMediaType | ErrorCode::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::SessionNotFound | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ErrorCode::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Overloaded
            | ErrorCode::DatabaseUnavailable
            | ErrorCode::IdentityProviderUnavailable
            | ErrorCode::Starting
            | ErrorCode::Draining => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error answered to the client as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
    cause: Option<anyhow::Error>,
    retry_after_secs: Option<u64>,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub(crate) struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

/// The answer of every `/api/` route to a caller it cannot authenticate: `unauthorized` (no bearer
/// token) or `invalid_token` (the token failed a check, which the message names). One definition
/// for the contract, so the routes cannot drift apart.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 401,
    headers(("WWW-Authenticate" = String, description = r#"`Bearer`, or `Bearer error="invalid_token"`"#))
)]
#[expect(dead_code, reason = "a contract type: described, never built")]
pub(crate) struct Unauthenticated(#[to_schema] ErrorBody<'static>);

/// What went wrong: a stable code to branch on and a message for a human.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl<'a> ErrorDetail<'a> {
    pub(crate) fn new(code: ErrorCode, message: &'a str) -> ErrorDetail<'a> {
        ErrorDetail { code, message }
    }
}

impl ApiError {
    /// An error the client caused or can act on.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            cause: None,
            retry_after_secs: None,
        }
    }

    /// A failure of ours: the client sees `message`, the log sees `cause`.
    pub fn internal(code: ErrorCode, message: impl Into<String>, cause: anyhow::Error) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            cause: Some(cause),
            retry_after_secs: None,
        }
    }
}

impl ApiError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// Tells the client how long to wait (`Retry-After`), for answers other than the 503s,
    /// which always carry one.
    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_secs = Some(seconds);
        self
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        metrics::counter!(metric_names::HTTP_ERRORS, "code" => self.code.to_string()).increment(1);
        if let Some(cause) = &self.cause {
            tracing::error!(code = %self.code, error = loggable(cause), "request failed");
        }
        let mut response = response_for(self.code).json(ErrorBody {
            error: ErrorDetail::new(self.code, &self.message),
        });
        if let Some(seconds) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // RFC 6750: a 401 says which scheme it wants, and whether the token itself was bad.
        let challenge = match self.code {
            ErrorCode::Unauthorized => Some("Bearer"),
            ErrorCode::InvalidToken => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if self.code == ErrorCode::RequestTimeout {
            // The rest of a late body may still come; it must not be read as a next request.
            response
                .head_mut()
                .set_connection_type(ConnectionType::Close);
        }
        response
    }
}

/// A response builder with the status of `code` and, for every 503, `Retry-After`: the one
/// rule, shared by the API's errors and the readiness probe.
pub fn response_for(code: ErrorCode) -> HttpResponseBuilder {
    let status = code.status();
    let mut response = HttpResponse::build(status);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.insert_header((header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS)));
    }
    response
}

/// 429: no new session until midnight UTC, when the day's quota starts afresh.
pub fn quota_exceeded() -> ApiError {
    let now = time::OffsetDateTime::now_utc();
    let midnight = (now.date() + time::Duration::days(1))
        .midnight()
        .assume_utc();
    let wait = u64::try_from((midnight - now).whole_seconds()).unwrap_or(0) + 1;
    ApiError::new(
        ErrorCode::QuotaExceeded,
        "today's quota of new sessions is used up; updates of existing sessions still work, \
         and new sessions can be created again after midnight UTC",
    )
    .with_retry_after(wait)
}

/// 412: the precondition did not hold under the row lock.
pub fn precondition_failed() -> ApiError {
    ApiError::new(
        ErrorCode::PreconditionFailed,
        "the session is not at a version this request's If-Match allows, or exists although \
         If-None-Match forbids it; nothing was changed (read it again and retry)",
    )
}

/// How a storage failure looks on the wire, whoever reports it.
fn storage_failure(failure: StorageFailure) -> (ErrorCode, &'static str) {
    match failure {
        StorageFailure::Unavailable => (
            ErrorCode::DatabaseUnavailable,
            "the database is unavailable; try again shortly",
        ),
        StorageFailure::Failed => (ErrorCode::Internal, "internal error"),
    }
}

impl From<StorageError> for ApiError {
    /// A failed read or mint: answered here, its cause logged with the request.
    fn from(error: StorageError) -> ApiError {
        let (code, message) = storage_failure(error.failure());
        let cause = match error {
            StorageError::Unavailable(cause) | StorageError::Failed(cause) => cause,
        };
        ApiError::internal(code, message, cause)
    }
}

impl From<UpdateError> for ApiError {
    /// A failed update: its cause was logged once for the whole batch.
    fn from(error: UpdateError) -> ApiError {
        match error {
            UpdateError::Storage(failure) => {
                let (code, message) = storage_failure(failure);
                ApiError::new(code, message)
            }
            UpdateError::Overloaded(bound) => ApiError::new(
                ErrorCode::Overloaded,
                format!(
                    "too many updates in progress ({}); try again shortly",
                    bound.label()
                ),
            ),
            UpdateError::Unrouted => ApiError::new(ErrorCode::Internal, "internal error"),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::InvalidToken(message) => ApiError::new(ErrorCode::InvalidToken, message),
            AuthError::IdentityProviderUnavailable => ApiError::new(
                ErrorCode::IdentityProviderUnavailable,
                "the token's issuer cannot be reached for its signing keys; try again shortly",
            ),
            AuthError::Storage(error) => error.into(),
        }
    }
}
