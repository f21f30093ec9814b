//! The name of every metric the service exports, in one place, each with
//! the `# HELP` text a Prometheus user sees. This module only names and
//! describes: the serializer's counters are recorded through
//! [`crate::stats::Stats`], the HTTP metrics by `http::middleware`, and the
//! gauges at scrape time by `http::metrics`.

/// HTTP requests, by method, route pattern and status class.
pub const HTTP_REQUESTS: &str = "email_sessions_http_requests_total";
/// Error answers, by wire code (`overloaded`, `database_unavailable`, ...).
pub const HTTP_ERRORS: &str = "email_sessions_http_errors_total";
/// 1 while the instance is serving, 0 while it starts or drains (read at scrape time).
pub const READY: &str = "email_sessions_ready";
/// HTTP request duration, by route pattern and status class.
pub const HTTP_REQUEST_DURATION: &str = "email_sessions_http_request_duration_seconds";
/// Update requests accepted for processing.
pub const UPDATES_RECEIVED: &str = "email_sessions_updates_received_total";
/// Update requests answered without a write transaction of their own.
pub const UPDATES_COLLAPSED: &str = "email_sessions_updates_collapsed_total";
/// Write transactions, labelled `outcome="applied"` or `outcome="noop"`.
pub const WRITE_TRANSACTIONS: &str = "email_sessions_write_transactions_total";
/// Plain reads that confirmed a batch changed nothing.
pub const NOOP_READS: &str = "email_sessions_noop_reads_total";
/// Retries of transient database failures, by cause (SQLSTATE).
pub const DB_RETRIES: &str = "email_sessions_db_retries_total";
/// Updates written together in one batch.
pub const BATCH_SIZE: &str = "email_sessions_batch_size";
/// Update requests refused because a bound was reached, by bound.
pub const UPDATES_REJECTED: &str = "email_sessions_updates_rejected_total";
/// Session actors started (each stops again when idle).
pub const ACTORS_STARTED: &str = "email_sessions_actors_started_total";
/// Updates re-sent because their actor stopped before taking them.
pub const UPDATE_REROUTES: &str = "email_sessions_update_reroutes_total";
/// Token lookups in the database (bad tokens from a flood mostly cost none).
pub const TOKEN_LOOKUPS: &str = "email_sessions_token_lookups_total";
/// Requests refused with 401 for a bad token.
pub const AUTH_FAILURES: &str = "email_sessions_auth_failures_total";
/// Fetches of an identity provider's signing keys, labelled `outcome="ok"` or `"failed"`.
pub const JWKS_FETCHES: &str = "email_sessions_jwks_fetches_total";
/// Sessions deleted by the retention sweep.
pub const RETENTION_DELETED: &str = "email_sessions_retention_deleted_total";
/// Webhook delivery attempts, labelled `outcome="delivered"`, `"failed"` or `"gone"` (410).
pub const WEBHOOK_ATTEMPTS: &str = "email_sessions_webhook_attempts_total";
/// How long a webhook delivery attempt took.
pub const WEBHOOK_ATTEMPT_DURATION: &str = "email_sessions_webhook_attempt_duration_seconds";
/// Webhook events neither delivered nor dead (measured every 10 s by each delivering instance).
pub const WEBHOOK_PENDING: &str = "email_sessions_webhook_events_pending";
/// Age of the oldest webhook event neither delivered nor dead, in seconds.
pub const WEBHOOK_OLDEST_PENDING_AGE: &str = "email_sessions_webhook_oldest_pending_age_seconds";
/// Connections refused at once, labelled `bound="connections"` or `"connections_per_address"`.
pub const CONNECTIONS_REFUSED: &str = "email_sessions_connections_refused_total";
/// Session actors alive in this instance.
pub const LIVE_ACTORS: &str = "email_sessions_live_actors";
/// Update requests waiting in session actors.
pub const WAITING_UPDATES: &str = "email_sessions_waiting_updates";
/// Pool connections open.
pub const POOL_SIZE: &str = "email_sessions_pool_connections";
/// Pool connections open and idle.
pub const POOL_AVAILABLE: &str = "email_sessions_pool_available_connections";
/// Requests waiting for a pool connection.
pub const POOL_WAITING: &str = "email_sessions_pool_waiting_requests";

/// Registers the `# HELP` line of every metric with the installed recorder.
pub fn describe_all() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route and status class"
    );
    describe_counter!(HTTP_ERRORS, "Error answers by wire code");
    describe_gauge!(
        READY,
        "1 while the instance is serving, 0 while it starts or drains"
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "HTTP request duration by route and status class"
    );
    describe_counter!(UPDATES_RECEIVED, "Update requests accepted for processing");
    describe_counter!(
        UPDATES_COLLAPSED,
        "Update requests answered without a write transaction of their own"
    );
    describe_counter!(
        WRITE_TRANSACTIONS,
        "Write transactions by outcome (applied or noop)"
    );
    describe_counter!(
        NOOP_READS,
        "Plain reads that confirmed a batch changed nothing"
    );
    describe_counter!(
        DB_RETRIES,
        "Retries of transient database failures by cause"
    );
    describe_histogram!(BATCH_SIZE, "Update requests written together in one batch");
    describe_counter!(
        UPDATES_REJECTED,
        "Update requests refused because a bound was reached"
    );
    describe_counter!(ACTORS_STARTED, "Session actors started");
    describe_counter!(
        CONNECTIONS_REFUSED,
        "Connections refused at once because a bound was reached, by bound"
    );
    describe_counter!(
        UPDATE_REROUTES,
        "Updates re-sent because their actor stopped before taking them"
    );
    describe_counter!(TOKEN_LOOKUPS, "Token lookups in the database");
    describe_counter!(AUTH_FAILURES, "Requests refused for a bad token");
    describe_counter!(
        JWKS_FETCHES,
        "Fetches of identity providers' signing keys, by outcome"
    );
    describe_counter!(RETENTION_DELETED, "Sessions deleted by the retention sweep");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts by outcome (delivered, failed, gone)"
    );
    describe_histogram!(
        WEBHOOK_ATTEMPT_DURATION,
        Unit::Seconds,
        "Webhook delivery attempt duration"
    );
    describe_gauge!(WEBHOOK_PENDING, "Webhook events neither delivered nor dead");
    describe_gauge!(
        WEBHOOK_OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Age of the oldest webhook event neither delivered nor dead"
    );
    describe_gauge!(LIVE_ACTORS, "Session actors alive in this instance");
    describe_gauge!(WAITING_UPDATES, "Update requests waiting in session actors");
    describe_gauge!(POOL_SIZE, "Database connections open in the pool");
    describe_gauge!(
        POOL_AVAILABLE,
        "Database connections open and idle in the pool"
    );
    describe_gauge!(POOL_WAITING, "Requests waiting for a database connection");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every metric the service exports (a histogram's series add `_bucket`, `_sum`, `_count`).
    const ALL: [&str; 28] = [
        HTTP_REQUESTS,
        HTTP_ERRORS,
        READY,
        HTTP_REQUEST_DURATION,
        UPDATES_RECEIVED,
        UPDATES_COLLAPSED,
        WRITE_TRANSACTIONS,
        NOOP_READS,
        DB_RETRIES,
        BATCH_SIZE,
        UPDATES_REJECTED,
        ACTORS_STARTED,
        UPDATE_REROUTES,
        TOKEN_LOOKUPS,
        AUTH_FAILURES,
        JWKS_FETCHES,
        RETENTION_DELETED,
        WEBHOOK_ATTEMPTS,
        WEBHOOK_ATTEMPT_DURATION,
        WEBHOOK_PENDING,
        WEBHOOK_OLDEST_PENDING_AGE,
        CONNECTIONS_REFUSED,
        LIVE_ACTORS,
        WAITING_UPDATES,
        POOL_SIZE,
        POOL_AVAILABLE,
        POOL_WAITING,
        "up",
    ];

    #[test]
    fn every_metric_an_alert_names_is_exported() {
        let rules = include_str!("../deploy/prometheus/alerts.yml");
        let mut named = 0;
        for (start, _) in rules.match_indices("email_sessions_") {
            let name: String = rules[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(&name);
            assert!(
                ALL.contains(&base),
                "deploy/prometheus/alerts.yml names {name}, which the service does not export"
            );
            named += 1;
        }
        assert!(named > 0);
    }
}
