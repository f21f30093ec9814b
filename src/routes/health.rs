//! Liveness and readiness. Liveness is trivial on purpose (a process that
//! answers is alive); readiness asks the database, because an instance that
//! cannot reach it should get no traffic.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::lifecycle::{Lifecycle, Phase};
use crate::sessions::SessionWriter;

/// How long readiness waits for the database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when serving and the database answers within a
/// second; 503 with a reason while starting, draining, or without database.
pub async fn readyz(
    writer: web::Data<SessionWriter>,
    lifecycle: web::Data<Lifecycle>,
) -> HttpResponse {
    match lifecycle.phase() {
        Phase::Starting => return not_ready("starting", "migrations are running".to_owned()),
        Phase::Draining => {
            return not_ready("draining", "the instance is shutting down".to_owned());
        }
        Phase::Serving => {}
    }
    let pool = writer.pool().clone();
    let probe = async move {
        let client = pool.get().await?;
        client.simple_query("SELECT 1").await?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Err(error)) => {
            // The cause is for the operator's log, not for whoever polls us.
            tracing::warn!(error = format!("{error:#}"), "readiness check failed");
            not_ready(
                "database_unavailable",
                "the database did not answer".to_owned(),
            )
        }

        Err(_) => not_ready(
            "database_unavailable",
            "the database did not answer within 1s".to_owned(),
        ),
    }
}

fn not_ready(code: &str, message: String) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "1"))
        .json(json!({"status": "not_ready", "error": {"code": code, "message": message}}))
}
