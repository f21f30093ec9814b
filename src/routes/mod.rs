//! HTTP handlers, one file per feature, and the JSON shape they answer with.

pub mod body;
pub mod health;
pub mod metrics;
pub mod session_json;
pub mod sessions;
pub mod update;

use actix_web::HttpResponse;

use crate::error::{ApiError, ErrorCode};

/// The JSON 404 for paths no route serves.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "no such endpoint"))
}

/// The JSON 405 for a known path with the wrong method.
pub async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not accept that method",
    ))
}
