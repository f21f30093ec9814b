//! The connection pool. Timeouts are set at every layer (connect, pool wait,
//! statement) so that no request can hang on a slow or absent database: it
//! gets a 503 instead, and the pool recovers by itself when the database
//! comes back because broken connections are dropped on recycle.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use deadpool_postgres::{Connect, Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

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

/// Builds a pool for `config`; no connection is opened until one is needed. With a `home`, every
/// connection is opened and driven on that runtime (see [`ConnectAtHome`]).
pub fn connect_pool(
    config: &tokio_postgres::Config,
    settings: PoolSettings,
    home: Option<Handle>,
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
    let manager = Manager::from_connect(
        pg_config,
        ConnectAtHome { home },
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

/// A connection's client and the task that drives it, as deadpool wants them.
type Opened = Result<(Client, JoinHandle<()>), tokio_postgres::Error>;

/// Opens each connection on its home runtime, so the task that reads and writes its socket runs
/// there, whoever asked for it. The service's home is the thread its session actors run on: a write
/// then goes from the actor to the socket and back without waking another thread, where a
/// connection first opened by an HTTP worker (for a token lookup, say) would have every later
/// write through it cross to that worker and back. Without a home, or once the home has stopped
/// (the end of a drain), a connection lives where it was asked for.
struct ConnectAtHome {
    home: Option<Handle>,
}

impl Connect for ConnectAtHome {
    fn connect(
        &self,
        pg_config: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Opened> + Send + '_>> {
        let pg_config = pg_config.clone();
        Box::pin(async move {
            if let Some(home) = &self.home
                && let Ok(opened) = home.spawn(open(pg_config.clone())).await
            {
                return opened;
            }
            open(pg_config).await
        })
    }
}

/// Opens a connection and drives it in a task on the current runtime.
async fn open(pg_config: tokio_postgres::Config) -> Opened {
    let (client, connection) = pg_config.connect(NoTls).await?;
    let task = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "database connection ended");
        }
    });
    Ok((client, task))
}
