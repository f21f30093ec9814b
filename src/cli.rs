//! The `email-sessions` command line: `serve`, `migrate` and `user create`. Each command finds
//! its database first (`DATABASE_URL`, or the embedded cluster where the configuration enables
//! it) and stops at once, naming `DATABASE_URL`, when there is none.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::auth;
use crate::configuration::Settings;
use crate::database::Database;
use crate::lifecycle::Phase;
use crate::startup::Application;
use crate::storage::{self, migrations};
use crate::telemetry;

/// What `serve` prints on stdout, before the address, once it listens: scripts (and the load
/// tool) that start `serve --bind 127.0.0.1:0` learn the port from this line.
const LISTENING_PREFIX: &str = "listening on ";

/// Email session API: collapses a plugin's duplicate reports into
/// exactly-once session data.
#[derive(Parser)]
#[command(name = "email-sessions", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Listens, applies pending migrations, then serves the API until SIGTERM/SIGINT.
    Serve {
        /// Address to listen on (overrides configuration).
        #[arg(long)]
        bind: Option<SocketAddr>,
    },
    /// Applies pending migrations and exits.
    Migrate,
    /// Manages API users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Creates a user and prints its new token alone on stdout.
    Create {
        /// A unique name for the user.
        name: String,
    },
}

/// Parses the command line, runs the command, and reports a failure on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();
    let result = actix_web::rt::System::new().block_on(run(cli.command));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    if let Command::Serve { bind: Some(bind) } = &command {
        settings.server.bind = *bind;
    }
    let database = Database::open(&settings).await?;
    let result = match command {
        Command::Serve { .. } => serve(&settings, &database.config).await,
        Command::Migrate => migrations::run_migrations(&database.config)
            .await
            .map(|()| tracing::info!("migrations are up to date")),
        Command::User {
            command: UserCommand::Create { name },
        } => create_user(&settings, &database.config, name.trim())
            .await
            .map(|token| println!("{token}")),
    };
    let closed = database.close().await;
    result.and(closed)
}

/// Listens at once (so `/readyz` can say "starting"), migrates, then serves
/// until SIGTERM/SIGINT and drains.
async fn serve(settings: &Settings, database: &tokio_postgres::Config) -> anyhow::Result<()> {
    let application = Application::build(settings, database, Phase::Starting)?;
    let lifecycle = application.lifecycle();
    let address = SocketAddr::new(settings.server.bind.ip(), application.port());
    tracing::info!(%address, "listening");
    // On stdout, whatever the log level.
    println!("{LISTENING_PREFIX}{address}");
    let serving = actix_web::rt::spawn(application.run_until_signal());
    migrations::run_migrations(database).await?;
    lifecycle.finish_starting();
    tracing::info!("ready");
    serving.await.context("joining the server task")?
}

/// Migrates the database, creates a user named `name`, and returns its new token (the only
/// time the token exists in full).
pub async fn create_user(
    settings: &Settings,
    database: &tokio_postgres::Config,
    name: &str,
) -> anyhow::Result<String> {
    migrations::run_migrations(database).await?;
    let pool = storage::connect_pool(database, settings.database.pool())?;
    let client = pool.get().await.context("connecting to the database")?;
    Ok(auth::register_user(&client, name).await?)
}
