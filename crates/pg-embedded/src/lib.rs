//! A private PostgreSQL cluster for local runs and tests, from the distribution's server binaries.
//!
//! A service should need zero setup on a developer's machine, and a test suite on a fresh clone
//! must find a database without anyone provisioning one. So this crate runs a server of its own:
//! `initdb` once into a data directory it owns, then `pg_ctl start`. The data directory persists,
//! so data survives restarts; the server listens on no TCP port, only on a Unix socket in a
//! directory nobody else may enter, which is what makes `trust` authentication acceptable. The
//! process that started the server stops it (`pg_ctl stop -m fast`) when asked; a server found
//! already running is left alone, so several processes can share one cluster. Every step that
//! touches the cluster holds a lock file, so concurrent starters neither run `initdb` twice nor
//! fight over `pg_ctl start`.
//!
//! Layout under the root directory: `data/` (PGDATA), `run/` (the socket directory),
//! `postgres.log`, `.lock`. One file per job: [`binaries`] finds the server programs, `runner`
//! runs them (as the `postgres` user when we are root), `cluster` creates, starts and stops the
//! server, `socket` picks and guards its socket directory, `lock` serialises starters, and
//! [`conninfo`] hands a database to a child process.

mod binaries;
mod cluster;
mod conninfo;
mod lock;
mod runner;
mod socket;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

pub use binaries::find_server_binaries;
pub use conninfo::conninfo;

use cluster::{Cluster, init_cluster};
use lock::lock_root;
use runner::Runner;
use socket::{ensure_private_dir, socket_dir_for, socket_url};

/// The cluster's superuser, named by `initdb -U`; trust auth lets it in without a password.
const SUPERUSER: &str = "postgres";
/// The system user the server runs as when we are root (PostgreSQL refuses to run as root).
const SERVER_USER: &str = "postgres";
/// The socket's file name carries the port; the directory is private, so the default cannot clash.
const PORT: u16 = 5432;
/// Bounds `pg_ctl start/stop -w` and waiting for a server another process is starting.
const SERVER_TIMEOUT: Duration = Duration::from_secs(60);
/// The maintenance database every cluster has.
const MAINTENANCE_DATABASE: &str = "postgres";

/// A private PostgreSQL cluster in a data directory, created on first use.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    cluster: Cluster,
    socket_dir: PathBuf,
    port: u16,
    started_by_us: bool,
}

impl EmbeddedPostgres {
    /// Creates the cluster under `root` on first use (initdb) and starts it unless already running;
    /// returns once the server answers.
    pub async fn start(root: &Path) -> anyhow::Result<EmbeddedPostgres> {
        let (root, runner) = prepare_root(root).await?;
        runner.check_reachable(&root).await?;

        let _lock = lock_root(&root).await?;
        let data_dir = root.join("data");
        if !data_dir
            .try_exists()
            .with_context(|| format!("checking for {}", data_dir.display()))?
        {
            let bin_dir = find_server_binaries()?;
            init_cluster(&root, &bin_dir, runner).await?;
        }
        let cluster = Cluster::open(root, runner)?;

        let deadline = Instant::now() + SERVER_TIMEOUT;
        let started_by_us = loop {
            if !cluster.is_running().await? {
                let socket_dir = socket_dir_for(&cluster.root);
                ensure_private_dir(&socket_dir, runner)?;
                cluster.write_socket_settings(&socket_dir)?;
                break cluster.start_server().await?;
            }
            // A server someone else runs may still be starting up, or may be dying (pg_ctl status
            // only asks whether the pid lives): wait for it to answer, re-checking it is there.
            let (socket_dir, port) = cluster.socket();
            let url = socket_url(&socket_dir, port, MAINTENANCE_DATABASE);
            if tokio_postgres::connect(&url, NoTls).await.is_ok() {
                tracing::info!(data_dir = %cluster.data_dir.display(), "embedded PostgreSQL already running; using it");
                break false;
            }
            if Instant::now() >= deadline {
                let context = cluster.with_log_tail("connecting to the embedded PostgreSQL");
                bail!(
                    "{context}\n\npg_ctl status reports a running server, but none answers at {url}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };

        // The running server knows its socket best, even if another process started it.
        let (socket_dir, port) = cluster.socket();
        let postgres = EmbeddedPostgres {
            cluster,
            socket_dir,
            port,
            started_by_us,
        };
        // A server that has just started (or just recovered from a crash) can still refuse a
        // connection for a moment; waiting here beats a spurious failure in the caller.
        postgres.connect_admin().await?;
        Ok(postgres)
    }

    /// A libpq-style URL for database `dbname` over the cluster's Unix socket, e.g. `postgresql://postgres@/email_sessions?host=%2Fpath%2Fto%2Frun`.
    pub fn database_url(&self, dbname: &str) -> String {
        socket_url(&self.socket_dir, self.port, dbname)
    }

    /// The URL of the maintenance database `postgres`, where databases are created and dropped.
    pub fn admin_url(&self) -> String {
        self.database_url(MAINTENANCE_DATABASE)
    }

    /// Stops the server with `pg_ctl stop -m fast -w`, but only if this process started it (a cluster already running is left alone).
    pub async fn stop(self) -> anyhow::Result<()> {
        if !self.started_by_us {
            tracing::debug!(data_dir = %self.cluster.data_dir.display(), "leaving embedded PostgreSQL running: another process started it");
            return Ok(());
        }
        let _lock = lock_root(&self.cluster.root).await?;
        self.cluster.stop_server().await
    }

    /// Stops the server at `root` if running, whoever started it (for test-suite cleanup / CI).
    pub async fn stop_at(root: &Path) -> anyhow::Result<()> {
        let data_dir = root.join("data");
        let initialized = data_dir
            .join("PG_VERSION")
            .try_exists()
            .with_context(|| format!("checking for a cluster in {}", data_dir.display()))?;
        if !initialized {
            return Ok(());
        }
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving the path {}", root.display()))?;
        let cluster = Cluster::open(root, Runner::detect()?)?;
        let _lock = lock_root(&cluster.root).await?;
        if cluster.is_running().await? {
            cluster.stop_server().await?;
        }
        Ok(())
    }

    /// A streaming standby of this (running) cluster under `root`, copied with
    /// `pg_basebackup -R` on first use and started; it follows this one until promoted.
    pub async fn start_standby(&self, root: &Path) -> anyhow::Result<EmbeddedPostgres> {
        let (root, runner) = prepare_root(root).await?;
        runner.check_reachable(&root).await?;
        let _lock = lock_root(&root).await?;
        if !root
            .join("data")
            .try_exists()
            .with_context(|| format!("checking for {}", root.display()))?
        {
            let bin_dir = find_server_binaries()?;
            cluster::base_backup(&root, &bin_dir, runner, &self.socket_dir, self.port).await?;
        }
        let cluster = Cluster::open(root, runner)?;
        // The copy carries the primary's socket settings; the standby listens in its own directory.
        let socket_dir = socket_dir_for(&cluster.root);
        ensure_private_dir(&socket_dir, runner)?;
        cluster.write_socket_settings(&socket_dir)?;
        let started_by_us = cluster.start_server().await?;
        let (socket_dir, port) = cluster.socket();
        let standby = EmbeddedPostgres {
            cluster,
            socket_dir,
            port,
            started_by_us,
        };
        standby.connect_admin().await?;
        Ok(standby)
    }

    /// Promotes a standby to a primary (`pg_ctl promote -w`).
    pub async fn promote(&self) -> anyhow::Result<()> {
        self.cluster
            .control("promote", &[], "promoting the standby")
            .await
    }

    /// Stops the server the way a crash would (`pg_ctl stop -m immediate`): no checkpoint, and
    /// clients see their connections drop.
    pub async fn crash(&self) -> anyhow::Result<()> {
        self.cluster
            .control(
                "stop",
                &["-m", "immediate"],
                "crashing the embedded PostgreSQL",
            )
            .await
    }

    /// Creates database `name` unless it exists (safe when several processes race to create it).
    pub async fn ensure_database(&self, name: &str) -> anyhow::Result<()> {
        let client = self.connect_admin().await?;
        if database_exists(&client, name).await? {
            return Ok(());
        }
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match client
            .batch_execute(&format!("CREATE DATABASE {quoted}"))
            .await
        {
            Ok(()) => {
                tracing::info!(database = name, "created database in embedded PostgreSQL");
                Ok(())
            }
            Err(err) if err.code() == Some(&SqlState::DUPLICATE_DATABASE) => Ok(()),
            // A racing creator can also surface as a unique violation on pg_database; believe the catalog.
            Err(err) if database_exists(&client, name).await.unwrap_or(false) => {
                tracing::debug!(error = %err, "CREATE DATABASE lost a race; database exists");
                Ok(())
            }
            Err(err) => Err(err).context(format!("creating database {name}")),
        }
    }

    async fn connect_admin(&self) -> anyhow::Result<tokio_postgres::Client> {
        connect_with_retry(&self.admin_url(), SERVER_TIMEOUT)
            .await
            .with_context(|| {
                self.cluster
                    .with_log_tail("connecting to the embedded PostgreSQL")
            })
    }
}

/// What [`check`] found: everything [`EmbeddedPostgres::start`] needs is in place.
#[derive(Debug)]
pub struct Preflight {
    /// Where the server programs are.
    pub bin_dir: PathBuf,
    /// The system user the server will run as, when it is not the caller.
    pub server_user: Option<&'static str>,
    /// Directories made traversable for it (only with `grant_traverse`).
    pub granted: Vec<PathBuf>,
}

/// Checks, without starting anything, that a cluster under `root` could start: the server
/// binaries exist, a non-root user can run them, and that user can reach `root`. With
/// `grant_traverse`, directories above `root` that block that user are opened (`chmod o+x`).
pub async fn check(root: &Path, grant_traverse: bool) -> anyhow::Result<Preflight> {
    let bin_dir = find_server_binaries()?;
    let (root, runner) = prepare_root(root).await?;
    let granted = if grant_traverse {
        runner.grant_traverse(&root).await?
    } else {
        Vec::new()
    };
    runner.check_reachable(&root).await?;
    Ok(Preflight {
        bin_dir,
        server_user: runner.server_user(),
        granted,
    })
}

/// Creates `root`, resolves it, and hands it to whoever will run the server.
async fn prepare_root(root: &Path) -> anyhow::Result<(PathBuf, Runner)> {
    fs::create_dir_all(root)
        .with_context(|| format!("creating the embedded PostgreSQL root {}", root.display()))?;
    // Absolute and symlink-free: the socket directory and the /tmp fallback key derive from it.
    let root = root
        .canonicalize()
        .with_context(|| format!("resolving the path {}", root.display()))?;
    let runner = Runner::detect()?;
    runner.give(&root)?;
    Ok((root, runner))
}

async fn connect_with_retry(
    url: &str,
    timeout: Duration,
) -> anyhow::Result<tokio_postgres::Client> {
    let deadline = Instant::now() + timeout;
    loop {
        match tokio_postgres::connect(url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(async move {
                    if let Err(err) = connection.await {
                        tracing::warn!(error = %err, "embedded PostgreSQL setup connection failed");
                    }
                });
                return Ok(client);
            }
            Err(err) if Instant::now() >= deadline => {
                return Err(err).with_context(|| format!("connecting to {url}"));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

async fn database_exists(client: &tokio_postgres::Client, name: &str) -> anyhow::Result<bool> {
    let row = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .with_context(|| format!("looking up database {name}"))?;
    Ok(row.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;
    use tokio_postgres::config::Host;

    fn postgres_at(socket_dir: &str, port: u16) -> EmbeddedPostgres {
        EmbeddedPostgres {
            cluster: Cluster {
                root: PathBuf::from("/unused"),
                data_dir: PathBuf::from("/unused/data"),
                bin_dir: PathBuf::from("/unused/bin"),
                runner: Runner::Myself,
            },
            socket_dir: PathBuf::from(socket_dir),
            port,
            started_by_us: false,
        }
    }

    #[test]
    fn database_url_is_accepted_by_tokio_postgres() {
        // Arrange
        let postgres = postgres_at("/path/to/run", PORT);

        // Act
        let url = postgres.database_url("email_sessions");
        let config = tokio_postgres::Config::from_str(&url).expect("tokio-postgres parses the URL");

        // Assert
        assert_eq!(
            url,
            "postgresql://postgres@/email_sessions?host=%2Fpath%2Fto%2Frun"
        );
        assert_eq!(
            config.get_hosts(),
            [Host::Unix(PathBuf::from("/path/to/run"))]
        );
        assert_eq!(config.get_user(), Some("postgres"));
        assert_eq!(config.get_dbname(), Some("email_sessions"));
    }

    #[test]
    fn awkward_socket_paths_survive_the_url() {
        // Arrange
        let dir = "/tmp/a b&c=d?e%f#g/run";
        let postgres = postgres_at(dir, 5433);

        // Act
        let config = tokio_postgres::Config::from_str(&postgres.database_url("odd db&x"))
            .expect("tokio-postgres parses the URL");

        // Assert
        assert_eq!(config.get_hosts(), [Host::Unix(PathBuf::from(dir))]);
        assert_eq!(config.get_dbname(), Some("odd db&x"));
        assert_eq!(config.get_ports(), [5433]);
    }
}
