//! The connection pool. Timeouts are set at every layer (connect, pool wait,
//! statement) so that no request can hang on a slow or absent database: it
//! gets a 503 instead, and the pool recovers by itself when the database
//! comes back because broken connections are dropped on recycle.

use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

/// Size and timeouts of the pool.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    /// Most connections open at once.
    pub size: usize,
    /// Longest wait for a free pooled connection.
    pub wait_timeout: Duration,
    /// Longest time to open a connection.
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` of every connection.
    pub statement_timeout: Duration,
}

/// Builds a pool for `config`; no connection is opened until one is needed.
pub fn connect_pool(
    config: &tokio_postgres::Config,
    settings: PoolSettings,
) -> anyhow::Result<Pool> {
    let mut pg_config = config.clone();
    pg_config
        .connect_timeout(settings.connect_timeout)
        .application_name("email-sessions")
        .options(format!(
            "-c statement_timeout={}",
            settings.statement_timeout.as_millis()
        ))
        // statement_timeout is enforced by the server; if the server or the
        // network vanishes silently, only the kernel can notice. These make
        // it give up on a dead TCP peer in seconds, not the default ~15
        // minutes, so a stuck write fails (and is retried) instead of
        // holding its session's actor and every request waiting on it.
        .tcp_user_timeout(settings.statement_timeout + settings.connect_timeout)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    let manager = Manager::from_config(
        pg_config,
        NoTls,
        ManagerConfig {
            // Fast recycling only checks that the socket is open; a broken
            // connection still fails its next query, which the retry layer
            // treats as transient, so a verifying round trip per checkout
            // would buy nothing but latency.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(settings.size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(Duration::from_secs(1)))
        .runtime(Runtime::Tokio1)
        .build()
        .context("building the connection pool")
}
