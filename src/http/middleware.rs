//! Cross-cutting request handling: per-request metrics, the `X-Request-Id`
//! header (the same ID the request's log span carries), and the gate that
//! answers 503 on the API while the instance is still starting.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Instant;

use actix_web::Error;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use metrics::{Counter, Histogram, counter, histogram};
use tracing_actix_web::RequestId;

use crate::error::{ApiError, ErrorCode};
use crate::lifecycle::{Lifecycle, Phase};
use crate::metric_names as names;

pub(crate) const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The route pattern a resource serves, attached to it as app data so the
/// metrics can name the route without matching the path again (route
/// matching is regex work, and it showed in the profile).
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::PUT => "PUT",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        _ => "OTHER",
    }
}

fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// The request counter and duration histogram of one (method, route, status class), looked up
/// in the recorder once per worker thread rather than once per request (building and hashing
/// a labelled key each time showed in the profile).
fn request_series(
    method: &'static str,
    route: &'static str,
    status: &'static str,
) -> (Counter, Histogram) {
    type Series = HashMap<(&'static str, &'static str, &'static str), (Counter, Histogram)>;
    thread_local! {
        static SERIES: RefCell<Series> = RefCell::new(HashMap::new());
    }
    SERIES.with_borrow_mut(|series| {
        series
            .entry((method, route, status))
            .or_insert_with(|| {
                (
                    counter!(names::HTTP_REQUESTS, "method" => method, "route" => route, "status" => status),
                    histogram!(names::HTTP_REQUEST_DURATION, "route" => route, "status" => status),
                )
            })
            .clone()
    })
}

/// Counts and times every request by route pattern and status class.
pub async fn http_metrics(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = method_label(request.method());
    let request_id = request.extensions().get::<RequestId>().copied();
    let mut response = next.call(request).await?;
    // The pattern, not the path: one series per route, however many IDs.
    let route = response
        .request()
        .app_data::<RouteLabel>()
        .map_or("unmatched", |label| label.0);
    tracing::Span::current().record("http.route", route);
    let status = status_class(response.status().as_u16());
    let elapsed = started.elapsed().as_secs_f64();
    let (requests, duration) = request_series(method, route, status);
    requests.increment(1);
    duration.record(elapsed);
    if let Some(id) = request_id
        && let Ok(value) = HeaderValue::from_str(&id.to_string())
    {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(response)
}

/// Answers API requests with 503 until migrations are done.
pub async fn api_gate(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let starting = request
        .app_data::<web::Data<Lifecycle>>()
        .is_some_and(|lifecycle| lifecycle.phase() == Phase::Starting);
    if starting && request.path().starts_with("/api/") {
        let error = ApiError::new(
            ErrorCode::Starting,
            "the service is starting; try again shortly",
        );
        return Ok(request.into_response(error.error_response()));
    }
    next.call(request).await
}
