//! Which PostgreSQL a command uses: the configured one (`DATABASE_URL`), or the embedded private
//! cluster when the configuration asks for it (the `local` environment does), started on demand
//! and stopped again when the command that started it is done. With neither, the command stops
//! at once: a production instance must never invent a database of its own.

use anyhow::Context;
use pg_embedded::EmbeddedPostgres;

use crate::configuration::Settings;

/// The database the service keeps its data in, in the embedded cluster.
const EMBEDDED_DATABASE: &str = "email_sessions";

/// Where to connect, and the embedded cluster behind it if we started one.
pub(crate) struct Database {
    /// Connection settings.
    pub(crate) config: tokio_postgres::Config,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// The configured database, or the embedded one when enabled; an error naming
    /// `DATABASE_URL` when there is neither.
    pub(crate) async fn open(settings: &Settings) -> anyhow::Result<Database> {
        let database = &settings.database;
        if let Some(url) = &database.url {
            return Ok(Database {
                config: url.parse().context("parsing DATABASE_URL")?,
                embedded: None,
            });
        }
        anyhow::ensure!(
            database.embedded,
            "DATABASE_URL is not set, and environment {:?} runs no embedded database \
             (database.embedded = false). Set DATABASE_URL to the PostgreSQL server to use",
            settings.environment
        );
        tracing::info!(dir = %database.embedded_dir.display(), "no DATABASE_URL; using the embedded PostgreSQL");
        let embedded = EmbeddedPostgres::start(&database.embedded_dir).await?;
        embedded.ensure_database(EMBEDDED_DATABASE).await?;
        Ok(Database {
            config: embedded
                .database_url(EMBEDDED_DATABASE)
                .parse()
                .context("parsing the embedded database URL")?,
            embedded: Some(embedded),
        })
    }

    /// Stops the embedded cluster if this process started it.
    pub(crate) async fn close(self) -> anyhow::Result<()> {
        match self.embedded {
            Some(embedded) => embedded.stop().await,
            None => Ok(()),
        }
    }
}
