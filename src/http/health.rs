//! Liveness and readiness. Liveness is trivial on purpose (a process that
//! answers is alive); readiness asks the database, because an instance that
//! cannot reach it should get no traffic.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::{ErrorCode, ErrorDetail, response_for};
use crate::lifecycle::{Lifecycle, Phase};
use crate::storage::{Store, loggable};

/// How long readiness waits for the database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// What the probes answer: `ok`, `ready`, or `not_ready` with the reason.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the JSON built with `json!` below, for the contract only.
pub(crate) struct Probe {
    /// `ok` (liveness), `ready` or `not_ready`.
    status: String,
    /// Why not ready: `starting`, `draining` or `database_unavailable`.
    error: Option<ErrorDetail<'static>>,
}

/// `GET /healthz`: 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", body = Probe)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when serving and the database answers within a
/// second; 503 with a reason while starting, draining, or without database.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving, and the database answers", body = Probe),
        (status = 503, description = "Starting, draining, or no database", body = Probe,
            headers(("Retry-After" = u32))),
    ),
)]
pub async fn readyz(store: web::Data<Store>, lifecycle: web::Data<Lifecycle>) -> HttpResponse {
    match lifecycle.phase() {
        Phase::Starting => return not_ready(ErrorCode::Starting, "migrations are running"),
        Phase::Draining => return not_ready(ErrorCode::Draining, "the instance is shutting down"),
        Phase::Serving => {}
    }
    match tokio::time::timeout(READINESS_TIMEOUT, store.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Err(error)) => {
            // The cause is for the operator's log, not for whoever polls us.
            tracing::warn!(error = loggable(&error), "readiness check failed");
            not_ready(
                ErrorCode::DatabaseUnavailable,
                "the database did not answer",
            )
        }
        Err(_) => not_ready(
            ErrorCode::DatabaseUnavailable,
            "the database did not answer within 1s",
        ),
    }
}

fn not_ready(code: ErrorCode, message: &str) -> HttpResponse {
    response_for(code)
        .json(json!({"status": "not_ready", "error": {"code": code, "message": message}}))
}
