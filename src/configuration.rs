//! Settings, layered the way operators expect: the defaults in
//! `config/base.toml` (compiled in, so the binary runs from any directory),
//! then `config/<APP_ENVIRONMENT>.toml` from the working directory when
//! present, then `APP_*` environment variables, then `DATABASE_URL`, and last
//! whatever the command line says (`serve --bind`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use config::{Config, Environment, File, FileFormat};
use serde::Deserialize;

const BASE_CONFIG: &str = include_str!("../config/base.toml");

/// Every knob of the service; see `config/base.toml` for their meaning.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// HTTP listener settings.
    pub server: ServerSettings,
    /// Where the data lives and how we talk to it.
    pub database: DatabaseSettings,
    /// The per-session serializer.
    pub sessions: SessionSettings,
    /// Bearer token verification.
    pub auth: AuthSettings,
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
    /// How long a graceful stop waits for requests in flight.
    pub shutdown_timeout_secs: u64,
    /// How long, after the listener closes, accepted connections get to
    /// reach a worker before the workers stop taking new ones.
    pub drain_grace_ms: u64,
}

/// Database connection and pool settings.
#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL; `None` selects the embedded cluster.
    pub url: Option<String>,
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

/// Which code path writes an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePath {
    /// One actor per session; duplicates collapse into one write.
    Actor,
    /// One locked transaction per request: the classic fix, kept for benchmarks.
    Direct,
}

/// Settings of the per-session serializer.
#[derive(Debug, Clone, Deserialize)]
pub struct SessionSettings {
    /// Actor or direct writes.
    pub write_path: WritePath,
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
    /// Most tokens remembered at once.
    pub token_cache_capacity: usize,
}

impl Settings {
    /// Reads the layered settings from the working directory and environment.
    pub fn load() -> anyhow::Result<Settings> {
        let environment = std::env::var("APP_ENVIRONMENT").unwrap_or_else(|_| "local".to_string());
        let mut settings: Settings = Config::builder()
            .add_source(File::from_str(BASE_CONFIG, FileFormat::Toml))
            .add_source(File::with_name(&format!("config/{environment}")).required(false))
            .add_source(
                Environment::with_prefix("APP")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true),
            )
            .build()
            .context("reading configuration")?
            .try_deserialize()
            .context("parsing configuration")?;
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.trim().is_empty()
        {
            settings.database.url = Some(url);
        }
        Ok(settings)
    }

    /// The compiled-in defaults alone, for tests that must not depend on the
    /// environment they run in.
    pub fn defaults() -> Settings {
        Config::builder()
            .add_source(File::from_str(BASE_CONFIG, FileFormat::Toml))
            .build()
            .and_then(Config::try_deserialize)
            .expect("config/base.toml is valid")
    }
}

impl DatabaseSettings {
    /// Longest wait for a pooled connection.
    pub fn pool_wait_timeout(&self) -> Duration {
        Duration::from_millis(self.pool_wait_timeout_ms)
    }

    /// Longest time to open a connection.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
}

impl SessionSettings {
    /// Idle time after which an actor stops.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

impl AuthSettings {
    /// How long a verified token is remembered.
    pub fn token_cache_ttl(&self) -> Duration {
        Duration::from_millis(self.token_cache_ttl_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_in_defaults_parse() {
        let settings = Settings::defaults();
        assert_eq!(settings.sessions.write_path, WritePath::Actor);
        assert!(settings.database.url.is_none());
    }
}
