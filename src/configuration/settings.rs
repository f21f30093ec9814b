//! The settings' types, one struct per table of `config/base.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_with::{DurationMilliSeconds, DurationSeconds, serde_as};

use crate::storage::{PoolSettings, RetryPolicy};

/// Every knob of the service; see `config/base.toml` for their meaning.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The environment these settings were loaded for (`APP_ENVIRONMENT`).
    #[serde(skip)]
    pub environment: String,
    /// HTTP listener settings.
    pub server: ServerSettings,
    /// Where the data lives and how we talk to it.
    pub database: DatabaseSettings,
    /// The per-session serializer.
    pub sessions: SessionSettings,
    /// Bearer token verification.
    pub auth: AuthSettings,
    /// Cross-origin access for browser plugins.
    pub cors: CorsSettings,
    /// What one user may store.
    pub quotas: QuotaSettings,
    /// How long sessions are kept.
    pub retention: RetentionSettings,
}

/// The data lifecycle.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Delete sessions not updated for this many days; 0 keeps them forever.
    pub days: u32,
    /// How often the sweep runs.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "sweep_interval_ms")]
    pub sweep_interval: Duration,
    /// Sessions deleted per transaction.
    pub batch_size: i64,
}

/// Per-user limits.
#[derive(Debug, Clone, Deserialize)]
pub struct QuotaSettings {
    /// New sessions (minted or created by a first PUT) per user per UTC day; 0: unlimited.
    pub new_sessions_per_day: u32,
}

/// Which web pages may call the API from a browser.
#[derive(Debug, Clone, Deserialize)]
pub struct CorsSettings {
    /// Exact origins (`scheme://host[:port]`, no path) allowed to read answers; empty: none.
    pub allowed_origins: Vec<String>,
}

/// HTTP listener settings.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request body may take to arrive (then 408).
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "body_read_timeout_ms")]
    pub body_read_timeout: Duration,
    /// How long a graceful stop waits for requests in flight.
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "shutdown_timeout_secs")]
    pub shutdown_timeout: Duration,
    /// How long, after the listener closes, accepted connections get to
    /// reach a worker before the workers stop taking new ones.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "drain_grace_ms")]
    pub drain_grace: Duration,
}

/// Database connection and pool settings.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL (`DATABASE_URL`).
    pub url: Option<String>,
    /// Without a URL, run the private embedded cluster; without either, refuse to start.
    pub embedded: bool,
    /// Root directory of the embedded cluster.
    pub embedded_dir: PathBuf,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Longest wait for a free pooled connection.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "pool_wait_timeout_ms")]
    pub pool_wait_timeout: Duration,
    /// Longest time to open a connection.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "connect_timeout_ms")]
    pub connect_timeout: Duration,
    /// Server-side statement timeout.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "statement_timeout_ms")]
    pub statement_timeout: Duration,
}

/// Settings of the per-session serializer.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// Idle time after which an actor stops.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "idle_timeout_ms")]
    pub idle_timeout: Duration,
    /// Bound on live actors.
    pub max_live_actors: usize,
    /// Bound on requests waiting in one actor.
    pub max_waiting_per_session: usize,
    /// Bound on update requests in flight in this instance.
    pub max_in_flight_updates: usize,
    /// Retries of a transient database error.
    pub retry_attempts: u32,
    /// First backoff delay.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "retry_base_delay_ms")]
    pub retry_base_delay: Duration,
    /// Largest backoff delay.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "retry_max_delay_ms")]
    pub retry_max_delay: Duration,
}

/// Token verification settings.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// How long a verified token is remembered.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "token_cache_ttl_ms")]
    pub token_cache_ttl: Duration,
    /// Most tokens (and user IDs, and failing addresses) remembered at once.
    pub token_cache_capacity: usize,
    /// Failed authentications an address may make per window before it gets 429.
    pub failures_before_throttle: u32,
    /// The window.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "throttle_window_ms")]
    pub throttle_window: Duration,
    /// Identity providers whose tokens are accepted beside API tokens (`[[auth.oidc]]`).
    #[serde(default)]
    pub oidc: Vec<OidcIssuerSettings>,
    /// Clock skew allowed on a token's `exp` and `nbf` (at most 60 s).
    #[serde_as(as = "DurationSeconds<u64>")]
    #[serde(rename = "jwt_leeway_secs")]
    pub jwt_leeway: Duration,
    /// Shortest time between two JWKS fetches of one issuer, so tokens naming made-up key IDs
    /// cannot hammer it.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "jwks_refetch_interval_ms")]
    pub jwks_refetch_interval: Duration,
    /// Keys older than this are fetched again when next needed (and kept if that fails).
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "jwks_max_age_ms")]
    pub jwks_max_age: Duration,
    /// Longest time a discovery or JWKS fetch may take.
    #[serde_as(as = "DurationMilliSeconds<u64>")]
    #[serde(rename = "jwks_fetch_timeout_ms")]
    pub jwks_fetch_timeout: Duration,
}

/// One OpenID Connect issuer whose tokens are accepted.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuerSettings {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// A value that must be in a token's `aud`: this API's identifier at the issuer.
    pub audience: String,
    /// Where its signing keys are; by default from `<issuer>/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// Other spellings of `iss` that mean this same issuer (Google's `accounts.google.com`):
    /// their tokens name the same people, so they are provisioned under `issuer`.
    #[serde(default)]
    pub issuer_aliases: Vec<String>,
    /// A scope the token's `scp` must hold: tells an access token for this API from an ID token
    /// that happens to carry the same audience (Entra ID, when plugin and API share one app).
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
