//! Schema migrations, embedded from `sql/` at compile time and applied before
//! the server listens. Several instances may start at once against one
//! database, so the run is serialised with a PostgreSQL advisory lock.

use anyhow::Context;
use refinery::Target;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("sql");
}

/// Arbitrary but fixed: every instance must take the same advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x656d_6169_6c5f_7365;

/// Applies every pending migration in `sql/` to the database `config` names.
pub async fn run_migrations(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    run_migrations_to(config, None).await
}

/// Applies the pending migrations up to version `target` (all of them when `None`).
pub async fn run_migrations_to(
    config: &tokio_postgres::Config,
    target: Option<u32>,
) -> anyhow::Result<()> {
    let target = match target {
        None => Target::Latest,
        Some(version) => Target::Version(version.try_into().context("migration version")?),
    };
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
        .set_target(target)
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
