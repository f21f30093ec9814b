//! Liveness and readiness. Liveness is trivial on purpose (a process that
//! answers is alive); readiness asks the database, because an instance that
//! cannot reach it should get no traffic.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::error::{ErrorCode, response_for};
use crate::lifecycle::{Lifecycle, Phase};
use crate::storage::Store;

/// How long readiness waits for the database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when serving and the database answers within a
/// second; 503 with a reason while starting, draining, or without database.
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
            tracing::warn!(error = format!("{error:#}"), "readiness check failed");
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
