//! The settings' types, one struct per table of `config/base.toml`. What a key means is said
//! once, in the comments of that file (the README's configuration table repeats keys and
//! defaults, and a test holds it to the file); a field has a `///` line only where Rust code
//! needs to know more. A duration's key names its unit (`idle_timeout_ms`); its field is a
//! `Duration` and drops the unit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use serde_with::{DurationMilliSeconds, DurationSeconds, NoneAsEmptyString, serde_as};

use crate::storage::{PoolSettings, RetryPolicy};

/// Every knob of the service, one field per table of `config/base.toml`.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Not a key: `load` sets it from `APP_ENVIRONMENT`.
    #[serde(skip)]
    pub environment: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub sessions: SessionSettings,
    pub auth: AuthSettings,
    pub cors: CorsSettings,
    pub quotas: QuotaSettings,
    pub retention: RetentionSettings,
    pub webhooks: WebhookSettings,
}

/// `[retention]`: the data lifecycle.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    pub days: u32,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "sweep_interval_ms")]
    pub sweep_interval: Duration,
    /// `i64` because it is bound as a PostgreSQL `bigint` (the batch's `LIMIT`).
    pub batch_size: i64,
}

/// `[webhooks]`: a signed event for every applied version, sent from the outbox.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    pub url: String,
    /// A `SecretString`, so no `Debug` of the settings can print it.
    #[serde(default)]
    pub secret: Option<SecretString>,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "timeout_ms")]
    pub timeout: Duration,
    #[serde_as(as = "Vec<DurationMilliSeconds<u64>>")]
    #[serde(rename = "retry_delays_ms")]
    pub retry_delays: Vec<Duration>,
    pub max_concurrency: usize,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "poll_interval_ms")]
    pub poll_interval: Duration,
    pub keep_delivered_days: u32,
}

impl WebhookSettings {
    /// Webhooks are on when a URL is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }
}

/// `[quotas]`: per-user limits.
#[derive(Debug, Clone, Deserialize)]
pub struct QuotaSettings {
    pub new_sessions_per_day: u32,
}

/// `[cors]`: which web pages may call the API from a browser.
#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
}

/// `[server]`: the HTTP listener.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub workers: usize,
    pub max_body_bytes: usize,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "body_read_timeout_ms")]
    pub body_read_timeout: Duration,
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "shutdown_timeout_secs")]
    pub shutdown_timeout: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "drain_grace_ms")]
    pub drain_grace: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "drain_readiness_grace_ms")]
    pub drain_readiness_grace: Duration,
    /// As written; `http::client_address::TrustedProxies::parse` reads them (and validation
    /// refuses what it cannot read).
    pub trusted_proxies: Vec<String>,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "request_head_timeout_ms")]
    pub request_head_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    /// `None` (written `""`): `/metrics` on the API's listener.
    #[serde_as(as = "NoneAsEmptyString")]
    pub metrics_bind: Option<SocketAddr>,
}

/// `[database]`: where the data lives, and the pool.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: Option<String>,
    pub embedded: bool,
    pub embedded_dir: PathBuf,
    pub pool_size: usize,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "pool_wait_timeout_ms")]
    pub pool_wait_timeout: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "connect_timeout_ms")]
    pub connect_timeout: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "statement_timeout_ms")]
    pub statement_timeout: Duration,
}

/// `[sessions]`: the per-session serializer.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "idle_timeout_ms")]
    pub idle_timeout: Duration,
    pub max_live_actors: usize,
    pub max_live_actors_per_user: usize,
    pub max_waiting_per_session: usize,
    pub max_in_flight_updates: usize,
    pub retry_attempts: u32,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "retry_base_delay_ms")]
    pub retry_base_delay: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "retry_max_delay_ms")]
    pub retry_max_delay: Duration,
}

/// `[auth]`: bearer token verification.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "token_cache_ttl_ms")]
    pub token_cache_ttl: Duration,
    pub token_cache_capacity: usize,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "failure_log_window_ms")]
    pub failure_log_window: Duration,
    /// Empty unless configured: `config/base.toml` only shows a commented-out example.
    #[serde(default)]
    pub oidc: Vec<OidcIssuerSettings>,
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "jwt_leeway_secs")]
    pub jwt_leeway: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "jwks_refetch_interval_ms")]
    pub jwks_refetch_interval: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "jwks_max_age_ms")]
    pub jwks_max_age: Duration,
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "jwks_fetch_timeout_ms")]
    pub jwks_fetch_timeout: Duration,
    pub jwks_max_bytes: usize,
    pub jwks_max_keys: usize,
}

/// One `[[auth.oidc]]` table: an OpenID Connect issuer whose tokens are accepted. Its keys are
/// explained by the commented-out example in `config/base.toml` and in the README's "Signing in
/// with an identity provider". Unknown keys are refused, or a misspelt optional key
/// (`required_scopes`) would silently drop the check it asks for.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerSettings {
    pub issuer: String,
    pub audience: String,
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub issuer_aliases: Vec<String>,
    pub required_scope: Option<String>,
}

impl DatabaseSettings {
    /// The pool's size and timeouts.
    pub fn pool(&self) -> PoolSettings {
        PoolSettings {
            size: self.pool_size,
            wait_timeout: self.pool_wait_timeout,
            connect_timeout: self.connect_timeout,
            statement_timeout: self.statement_timeout,
        }
    }
}

impl SessionSettings {
    /// How transient database failures are retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retry_attempts,
            base_delay: self.retry_base_delay,
            max_delay: self.retry_max_delay,
        }
    }
}
