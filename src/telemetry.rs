//! Logs and the metrics recorder, set up once per process.

use std::io::IsTerminal;
use std::sync::OnceLock;

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};

use crate::error::ApiError;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::metric_names;

/// Targets capped at `info`, because below it they log personal data.
const QUIET_TARGETS: [&str; 3] = ["tokio_postgres=info", "actix_http=info", "h2=info"];

/// Sends logs to stderr (stdout belongs to command output such as a new
/// token): JSON for machines, readable text on a terminal. `RUST_LOG`
/// filters, default `info`. Each request's span is logged when it closes,
/// which makes the access log: request ID, route, status, timing, and the
/// user and session IDs (never tokens or recipient lists).
pub fn init_tracing() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Whatever RUST_LOG says: these libraries log request data at their verbose levels (query
    // parameters, which hold recipient addresses; headers, which hold the token).
    for quiet in QUIET_TARGETS {
        filter = filter.add_directive(quiet.parse().expect("a valid directive"));
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless, hence the ignored results.
    if std::io::stderr().is_terminal() {
        let _ = builder.try_init();
    } else {
        let _ = builder.json().flatten_event(true).try_init();
    }
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(metric_names::HTTP_REQUEST_DURATION.to_owned()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ],
                )
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(metric_names::BATCH_SIZE.to_owned()),
                        &[
                            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
                        ],
                    )
                })
                .and_then(|builder| {
                    builder.set_buckets_for_metric(
                        Matcher::Full(metric_names::WEBHOOK_ATTEMPT_DURATION.to_owned()),
                        &[
                            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                        ],
                    )
                })
                .expect("bucket lists are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            metric_names::describe_all();
            handle
        })
        .clone()
}

/// The root span of every request: request ID, method, path, and fields the
/// handlers and middleware fill in (route, status, caller, session). Built
/// by hand rather than with `root_span!`, which would match the route table
/// once more per request just to name the route (see `middleware`).
pub struct SessionRootSpan;

impl RootSpanBuilder for SessionRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let request_id = request.extensions().get::<RequestId>().copied();
        // Field values are only evaluated when the span is enabled: at `warn`, no string is built.
        tracing::info_span!(
            "HTTP request",
            request_id = %request_id.map(|id| id.to_string()).unwrap_or_default(),
            http.method = %request.method(),
            // No path: a session ID that failed its check is whatever the client sent (an
            // address, say). The route pattern (`http.route`) and a valid `session_id` say enough.
            http.route = tracing::field::Empty,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.code = tracing::field::Empty,
            user_id = tracing::field::Empty,
            session_id = tracing::field::Empty,
        )
    }

    /// Status and error code only. The default builder logs the error's message, which may
    /// quote what the client sent (an address in `invalid_recipients`): personal data stays in
    /// the answer to the client and out of the log.
    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let (status, error) = match outcome {
            Ok(response) => (response.status(), response.response().error()),
            Err(error) => (error.as_response_error().status_code(), Some(error)),
        };
        span.record("http.status_code", status.as_u16());
        span.record(
            "otel.status_code",
            if status.is_server_error() {
                "ERROR"
            } else {
                "OK"
            },
        );
        if let Some(error) = error {
            let code = error
                .as_error::<ApiError>()
                .map_or_else(|| "other".to_owned(), |error| error.code().to_string());
            span.record("error.code", code);
        }
    }
}
