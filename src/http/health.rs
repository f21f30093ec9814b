//! Liveness and readiness. Liveness is trivial on purpose (a process that
//! answers is alive); readiness asks the database, because an instance that
//! cannot reach it should get no traffic.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::error::{ErrorCode, ErrorDetail, response_for};
use crate::lifecycle::{Lifecycle, Phase};
use crate::storage::{Store, loggable};

/// How long readiness waits for the database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// What the probes answer: `ok`, `ready`, or `not_ready` with the reason. The answers are
/// built from this type, so the contract cannot drift from them.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Probe<'a> {
    status: ProbeStatus,
    /// Why not ready: `starting`, `draining` or `database_unavailable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum ProbeStatus {
    /// Liveness: the process runs.
    Ok,
    Ready,
    NotReady,
}

impl Probe<'static> {
    fn answer(status: ProbeStatus) -> Probe<'static> {
        Probe {
            status,
            error: None,
        }
    }
}

/// `GET /healthz`: 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", body = Probe)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Probe::answer(ProbeStatus::Ok))
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
        Ok(Ok(())) => HttpResponse::Ok().json(Probe::answer(ProbeStatus::Ready)),
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
    response_for(code).json(Probe {
        status: ProbeStatus::NotReady,
        error: Some(ErrorDetail::new(code, message)),
    })
}
