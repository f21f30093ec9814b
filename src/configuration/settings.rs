//! The settings' types, one struct per table of `config/base.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

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
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    /// Delete sessions not updated for this many days; 0 keeps them forever.
    pub days: u32,
    /// How often the sweep runs.
    pub sweep_interval_ms: u64,
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
#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
    /// Longest time a request body may take to arrive (then 408).
    pub body_read_timeout_ms: u64,
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// How long, after the listener closes, accepted connections get to
    /// reach a worker before the workers stop taking new ones.
    pub drain_grace_ms: u64,
}

/// Database connection and pool settings.
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
    pub pool_wait_timeout_ms: u64,
    /// Longest time to open a connection.
    pub connect_timeout_ms: u64,
    /// Server-side statement timeout.
    pub statement_timeout_ms: u64,
}

/// Settings of the per-session serializer.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// Idle time after which an actor stops.
    pub idle_timeout_ms: u64,
    /// Bound on live actors.
    pub max_live_actors: usize,
    /// Bound on requests waiting in one actor.
    pub max_waiting_per_session: usize,
    /// Bound on update requests in flight in this instance.
    pub max_in_flight_updates: usize,
    /// Retries of a transient database error.
    pub retry_attempts: u32,
    /// First backoff delay.
    pub retry_base_delay_ms: u64,
    /// Largest backoff delay.
    pub retry_max_delay_ms: u64,
}

/// Token verification settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// How long a verified token is remembered.
    pub token_cache_ttl_ms: u64,
    /// Most tokens (and user IDs, and failing addresses) remembered at once.
    pub token_cache_capacity: usize,
    /// Failed authentications an address may make per window before it gets 429.
    pub failures_before_throttle: u32,
    /// The window, in ms.
    pub throttle_window_ms: u64,
    /// Identity providers whose tokens are accepted beside API tokens (`[[auth.oidc]]`).
    #[serde(default)]
    pub oidc: Vec<OidcIssuerSettings>,
    /// Clock skew allowed on a token's `exp` and `nbf`, in seconds (at most 60).
    pub jwt_leeway_secs: u64,
    /// Shortest time between two JWKS fetches of one issuer, so tokens naming made-up key IDs
    /// cannot hammer it.
    pub jwks_refetch_interval_ms: u64,
    /// Keys older than this are fetched again when next needed (and kept if that fails).
    pub jwks_max_age_ms: u64,
    /// Longest time a discovery or JWKS fetch may take.
    pub jwks_fetch_timeout_ms: u64,
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
            wait_timeout: Duration::from_millis(self.pool_wait_timeout_ms),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms),
            statement_timeout: Duration::from_millis(self.statement_timeout_ms),
        }
    }
}

impl SessionSettings {
    /// Idle time after which an actor stops.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// How transient database failures are retried.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retry_attempts,
            base_delay: Duration::from_millis(self.retry_base_delay_ms),
            max_delay: Duration::from_millis(self.retry_max_delay_ms),
        }
    }
}

impl AuthSettings {
    /// How long a verified token is remembered.
    pub fn token_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.token_cache_ttl_ms)
    }
}
