//! Which PostgreSQL the service uses: the configured one (`DATABASE_URL`),
//! or else the embedded private cluster, started on demand and stopped again
//! when the command that started it is done.

use anyhow::Context;

use crate::configuration::DatabaseSettings;
use crate::embedded::EmbeddedPostgres;

/// Where to connect, and the embedded cluster behind it if we started one.
pub struct Database {
    /// Connection settings.
    pub config: tokio_postgres::Config,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// The configured database, or the embedded one.
    pub async fn open(settings: &DatabaseSettings) -> anyhow::Result<Database> {
        if let Some(url) = &settings.url {
            return Ok(Database {
                config: url.parse().context("parsing DATABASE_URL")?,
                embedded: None,
            });
        }
        tracing::info!(dir = %settings.embedded_dir.display(), "no DATABASE_URL; using the embedded PostgreSQL");
        let embedded = EmbeddedPostgres::start(&settings.embedded_dir).await?;
        Ok(Database {
            config: embedded
                .default_url()
                .parse()
                .context("parsing the embedded database URL")?,
            embedded: Some(embedded),
        })
    }

    /// Stops the embedded cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        match self.embedded {
            Some(embedded) => embedded.stop().await,
            None => Ok(()),
        }
    }
}
