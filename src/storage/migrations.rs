//! Schema migrations, embedded from `sql/` at compile time and applied before
//! the server listens. Several instances may start at once against one
//! database, so the run is serialised with a PostgreSQL advisory lock.

use anyhow::Context;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Arbitrary but fixed: every instance must take the same advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x656d_6169_6c5f_7365;

/// Applies every pending migration in `sql/` to the database `config` names.
pub async fn run_migrations(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .context("connecting to the database to migrate it")?;
    let connection = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .context("waiting for the migration lock")?;
    let report = embedded::migrations::runner()
        .run_async(&mut client)
        .await
        .context("applying migrations from sql/");
    // The lock dies with the session anyway; unlocking just frees it sooner.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    drop(client);
    let _ = connection.await;
    for migration in report?.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    Ok(())
}
