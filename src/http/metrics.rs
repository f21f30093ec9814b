//! `GET /metrics`: Prometheus text. Gauges that describe the present (live
//! actors, pool use) are read at scrape time rather than tracked on every
//! change, so they cannot drift.

use actix_web::{HttpResponse, web};
use metrics::gauge;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::lifecycle::{Lifecycle, Phase};
use crate::metric_names as names;
use crate::serializer::Registry;
use crate::storage::Store;

/// Renders every metric of this process.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format",
        body = String, content_type = "text/plain")),
)]
pub async fn metrics(
    handle: web::Data<PrometheusHandle>,
    registry: web::Data<Registry>,
    store: web::Data<Store>,
    lifecycle: web::Data<Lifecycle>,
) -> HttpResponse {
    let pool = store.pool_status();
    let serving = matches!(lifecycle.phase(), Phase::Serving);
    gauge!(names::READY).set(if serving { 1.0 } else { 0.0 });
    gauge!(names::LIVE_ACTORS).set(registry.live_actors() as f64);
    gauge!(names::WAITING_UPDATES).set(registry.waiting_updates() as f64);
    gauge!(names::POOL_SIZE).set(pool.size as f64);
    gauge!(names::POOL_AVAILABLE).set(pool.available as f64);
    gauge!(names::POOL_WAITING).set(pool.waiting as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}
