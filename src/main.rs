//! The `email-sessions` command: parses the command line and calls the
//! library; nothing else lives here.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use email_sessions::auth;
use email_sessions::configuration::Settings;
use email_sessions::database::Database;
use email_sessions::lifecycle::Phase;
use email_sessions::startup::Application;
use email_sessions::storage::{self, migrations, users};
use email_sessions::telemetry;

/// Email session API: collapses a plugin's duplicate reports into
/// exactly-once session data.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies pending migrations, then serves the API.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_tracing();
    let result = actix_web::rt::System::new().block_on(run(cli));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut settings = Settings::load()?;
    if let Command::Serve { bind: Some(bind) } = &cli.command {
        settings.server.bind = *bind;
    }
    let database = Database::open(&settings.database).await?;
    let result = run_with_database(cli.command, &settings, &database.config).await;
    let closed = database.close().await;
    result.and(closed)
}

async fn run_with_database(
    command: Command,
    settings: &Settings,
    database: &tokio_postgres::Config,
) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => serve(settings, database).await,
        Command::Migrate => {
            migrations::run_migrations(database).await?;
            tracing::info!("migrations are up to date");
            Ok(())
        }
        Command::User {
            command: UserCommand::Create { name },
        } => {
            migrations::run_migrations(database).await?;
            let pool = storage::connect_pool(database, &settings.database)?;
            let client = pool.get().await.context("connecting to the database")?;
            let token = auth::generate_token();
            users::create(&client, name.trim(), &auth::hash_token(&token)).await?;
            println!("{token}");
            Ok(())
        }
    }
}

/// Listens at once (so `/readyz` can say "starting"), migrates, then serves
/// until SIGTERM/SIGINT and drains.
async fn serve(settings: &Settings, database: &tokio_postgres::Config) -> anyhow::Result<()> {
    let pool = storage::connect_pool(database, &settings.database)?;
    let application = Application::build(settings, pool, Phase::Starting)?;
    let lifecycle = application.lifecycle();
    tracing::info!(port = application.port(), bind = %settings.server.bind, "listening");
    let serving = actix_web::rt::spawn(application.run_until_signal());
    migrations::run_migrations(database).await?;
    lifecycle.enter(Phase::Serving);
    tracing::info!("ready");
    serving.await.context("joining the server task")?
}
