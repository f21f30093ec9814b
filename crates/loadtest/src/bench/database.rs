//! The benchmark's database: created fresh for each run under a name of its own, and dropped
//! afterwards. The benchmark drops nothing else, so pointing it at a shared server cannot cost
//! anyone their data.

use std::path::Path;

use anyhow::Context;
use pg_embedded::EmbeddedPostgres;
use tokio_postgres::NoTls;

/// A database this run created, on a server it may also have started.
pub struct BenchDatabase {
    admin: tokio_postgres::Config,
    config: tokio_postgres::Config,
    name: String,
    cluster: Option<EmbeddedPostgres>,
}

impl BenchDatabase {
    /// Creates `email_sessions_bench_<random>` on the server `admin_url` names, or on the
    /// benchmark's own embedded cluster under `embedded_dir` when no URL is given.
    pub async fn create(admin_url: Option<&str>, embedded_dir: &Path) -> anyhow::Result<Self> {
        let (admin, cluster) = match admin_url {
            Some(url) => (url.parse().context("parsing --database-url")?, None),
            None => {
                let cluster = EmbeddedPostgres::start(embedded_dir).await?;
                let admin = cluster
                    .admin_url()
                    .parse()
                    .context("parsing the embedded cluster's URL")?;
                (admin, Some(cluster))
            }
        };
        let name = format!("email_sessions_bench_{:08x}", rand::random::<u32>());
        // The name is ours and alphanumeric, so formatting it into the statement is safe.
        let created = async {
            admin_client(&admin)
                .await?
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .with_context(|| format!("creating the benchmark database {name}"))
        }
        .await;
        if let Err(error) = created {
            if let Some(cluster) = cluster {
                let _ = cluster.stop().await;
            }
            return Err(error);
        }
        let mut config = admin.clone();
        config.dbname(&name);
        Ok(BenchDatabase {
            admin,
            config,
            name,
            cluster,
        })
    }

    /// Connection settings of the benchmark database.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The same, as a string for `DATABASE_URL` and `pgbench`.
    pub fn conninfo(&self) -> String {
        pg_embedded::conninfo(&self.config)
    }

    /// Drops the database this run created, and stops the cluster if this run started it.
    pub async fn drop(self) -> anyhow::Result<()> {
        let dropped = async {
            admin_client(&self.admin)
                .await?
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await
                .with_context(|| format!("dropping the benchmark database {}", self.name))
        }
        .await;
        let stopped = match self.cluster {
            Some(cluster) => cluster.stop().await,
            None => Ok(()),
        };
        dropped.and(stopped)
    }
}

async fn admin_client(admin: &tokio_postgres::Config) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = admin
        .connect(NoTls)
        .await
        .context("connecting to the benchmark's PostgreSQL server")?;
    tokio::spawn(connection);
    Ok(client)
}
