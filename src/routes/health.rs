//! Liveness and readiness. Liveness is trivial on purpose (a process that
//! answers is alive); readiness asks the database, because an instance that
//! cannot reach it should get no traffic.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::sessions::SessionWriter;

/// How long readiness waits for the database.
const READINESS_TIMEOUT: Duration = Duration::from_secs(1);

/// `GET /healthz`: 200 while the process runs.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 when the database answers within a second, else 503.
pub async fn readyz(writer: web::Data<SessionWriter>) -> HttpResponse {
    let pool = writer.pool().clone();
    let probe = async move {
        let client = pool.get().await?;
        client.simple_query("SELECT 1").await?;
        anyhow::Ok(())
    };
    match tokio::time::timeout(READINESS_TIMEOUT, probe).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ready"})),
        Ok(Err(error)) => not_ready(format!("database error: {error}")),
        Err(_) => not_ready("database did not answer within 1s".to_owned()),
    }
}

fn not_ready(reason: String) -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header(("Retry-After", "1"))
        .json(json!({"status": "not_ready", "error": {"code": "database_unavailable", "message": reason}}))
}
