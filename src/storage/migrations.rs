//! The schema, brought up to date before the server listens: numbered migrations for tables and
//! data (`sql/migrations/`, applied once each by refinery), then the SQL functions
//! (`sql/functions/`, one file each), re-created with `CREATE OR REPLACE` on every start, Lemmy's
//! `replaceable_schema` way. A change to a function is then a diff of its one file, not a copy of
//! it in a new migration. Several instances may start at once against one database, so the whole
//! run is serialised with a PostgreSQL advisory lock.

use anyhow::Context;
use refinery::{Migration, Target};
use tokio_postgres::{Client, NoTls};

mod embedded {
    refinery::embed_migrations!("sql/migrations");
}

/// Arbitrary but fixed: every instance must take the same advisory lock.
const MIGRATION_LOCK_KEY: i64 = 0x656d_6169_6c5f_7365;

/// Every SQL function, in the order they are created (PL/pgSQL bodies are resolved when called,
/// so the order only matters for SQL-language ones). Each file is one `CREATE OR REPLACE`.
const FUNCTIONS: [(&str, &str); 8] = [
    (
        "take_new_session_quota",
        include_str!("../../sql/functions/take_new_session_quota.sql"),
    ),
    (
        "give_back_new_session_quota",
        include_str!("../../sql/functions/give_back_new_session_quota.sql"),
    ),
    (
        "mint_email_session",
        include_str!("../../sql/functions/mint_email_session.sql"),
    ),
    (
        "enqueue_webhook_event",
        include_str!("../../sql/functions/enqueue_webhook_event.sql"),
    ),
    (
        "finish_webhook_attempt",
        include_str!("../../sql/functions/finish_webhook_attempt.sql"),
    ),
    (
        "delete_email_session",
        include_str!("../../sql/functions/delete_email_session.sql"),
    ),
    (
        "apply_email_session_change",
        include_str!("../../sql/functions/apply_email_session_change.sql"),
    ),
    (
        "provision_identity",
        include_str!("../../sql/functions/provision_identity.sql"),
    ),
];

/// The functions a CHECK constraint calls. Each is defined by the migration that adds its
/// constraint, not in `sql/functions/`: PostgreSQL never re-checks stored rows when a function is
/// replaced, so a change to one is a migration that drops the constraint, replaces the function
/// and adds the constraint again, which validates every row.
#[cfg(test)]
const CONSTRAINT_FUNCTIONS: [&str; 1] = ["email_session_recipients_valid"];

/// Migrations edited after they had run: V3, V4, V6 and V7 defined or altered functions, which
/// moved to `sql/functions/`; V5 said migrations are never edited. Each pair is a version and the
/// checksum refinery recorded for its earlier text. A database that ran those texts (every
/// database of an earlier release) has these recorded checksums replaced by the current ones,
/// which refinery would otherwise refuse as divergent; any other difference is still refused.
const REWRITTEN: [(i32, u64); 5] = [
    (3, 8_920_009_215_305_950_109),
    (4, 13_739_699_648_871_556_900),
    (5, 7_775_077_389_582_400_078),
    (6, 13_636_854_316_416_520_092),
    (7, 7_716_987_079_000_172_893),
];

/// Applies every pending migration, then (re-)creates every SQL function, in the database
/// `config` names.
pub async fn run_migrations(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    run_migrations_to(config, None).await
}

/// Applies the pending migrations up to version `target` (all of them when `None`). The
/// functions are created only at the latest version: they are written against its schema.
pub async fn run_migrations_to(
    config: &tokio_postgres::Config,
    target: Option<u32>,
) -> anyhow::Result<()> {
    let refinery_target = match target {
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
    let result = migrate_locked(&mut client, refinery_target).await;
    // The lock dies with the session anyway; unlocking just frees it sooner.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    drop(client);
    let _ = connection.await;
    result
}

async fn migrate_locked(client: &mut Client, target: Target) -> anyhow::Result<()> {
    let runner = embedded::migrations::runner().set_target(target);
    let latest = runner
        .get_migrations()
        .iter()
        .map(Migration::version)
        .max()
        .unwrap_or_default();
    let with_functions = match target {
        Target::Version(version) => i64::from(version) >= i64::from(latest),
        _ => true,
    };
    accept_rewritten_migrations(client, runner.get_migrations()).await?;
    let report = runner
        .run_async(client)
        .await
        .context("applying migrations from sql/migrations/")?;
    for migration in report.applied_migrations() {
        tracing::info!(migration = %migration, "applied migration");
    }
    if with_functions {
        create_functions(client).await?;
    }
    Ok(())
}

/// Records the current checksums of the [`REWRITTEN`] migrations where the database recorded
/// their earlier texts' checksums.
async fn accept_rewritten_migrations(
    client: &Client,
    migrations: &[Migration],
) -> anyhow::Result<()> {
    let history: Option<String> = client
        .query_one(
            "SELECT to_regclass('refinery_schema_history')::text AS history",
            &[],
        )
        .await
        .context("looking for the migration history")?
        .try_get("history")?;
    if history.is_none() {
        return Ok(());
    }
    for (version, earlier) in REWRITTEN {
        let current = migrations
            .iter()
            .find(|migration| migration.version() == version)
            .with_context(|| format!("migration V{version} is missing from sql/migrations/"))?
            .checksum();
        // refinery keeps checksums as text.
        let updated = client
            .execute(
                "UPDATE refinery_schema_history SET checksum = $1
                 WHERE version = $2 AND checksum = $3",
                &[&current.to_string(), &version, &earlier.to_string()],
            )
            .await
            .context("recording a rewritten migration's checksum")?;
        if updated > 0 {
            tracing::info!(
                version,
                "recorded the current text of a rewritten migration"
            );
        }
    }
    Ok(())
}

/// Re-creates every function from `sql/functions/`, all in one transaction: another instance
/// calling them meanwhile sees either the old set or the new one.
async fn create_functions(client: &mut Client) -> anyhow::Result<()> {
    let transaction = client
        .transaction()
        .await
        .context("starting the functions' transaction")?;
    for (name, definition) in FUNCTIONS {
        transaction
            .batch_execute(definition)
            .await
            .with_context(|| format!("creating the function {name} (sql/functions/{name}.sql)"))?;
    }
    transaction
        .commit()
        .await
        .context("committing the functions")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_function_file_is_created() {
        let files: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/functions"))
                .expect("sql/functions/ exists")
                .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
        let mut listed: Vec<String> = FUNCTIONS
            .iter()
            .map(|(name, _)| format!("{name}.sql"))
            .collect();
        let mut files = files;
        files.sort();
        listed.sort();
        assert_eq!(files, listed);
    }

    #[test]
    fn migrations_define_only_the_functions_constraints_call() {
        for migration in embedded::migrations::runner().get_migrations() {
            let sql = migration.sql().unwrap_or_default();
            for keyword in ["CREATE FUNCTION ", "CREATE OR REPLACE FUNCTION "] {
                for (at, _) in sql.match_indices(keyword) {
                    let name = sql[at + keyword.len()..].split('(').next().unwrap().trim();
                    assert!(
                        CONSTRAINT_FUNCTIONS.contains(&name),
                        "{migration} defines {name}, which belongs in sql/functions/"
                    );
                }
            }
        }
        for name in CONSTRAINT_FUNCTIONS {
            assert!(
                FUNCTIONS.iter().all(|(function, _)| *function != name),
                "{name} is re-created on every start, so its constraint's rows go unchecked"
            );
        }
    }

    #[test]
    fn each_function_is_defined_in_its_own_file_only() {
        let migrations = embedded::migrations::runner();
        for (name, definition) in FUNCTIONS {
            assert!(
                definition.contains(&format!("CREATE OR REPLACE FUNCTION {name}(")),
                "sql/functions/{name}.sql defines {name}"
            );
            for migration in migrations.get_migrations() {
                let sql = migration.sql().unwrap_or_default();
                assert!(
                    !sql.contains(&format!("FUNCTION {name}("))
                        || sql.contains(&format!("DROP FUNCTION IF EXISTS {name}(")),
                    "{migration} restates the function {name}"
                );
            }
        }
    }
}
